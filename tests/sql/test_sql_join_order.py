"""The order of inner joins chosen by estimated cost (planner/join_order.py),
differentially against stdlib sqlite3: whatever order the planner picks, the
rows are SQLite's (compared as multisets: SQL promises no order without ORDER BY),
and EXPLAIN shows the order chosen."""

from __future__ import annotations

import random
import sqlite3
import time
from typing import Any

import pytest

import toondb

# tables t0..t9 as select5.test's (aN the rowid, bN a permutation of the keys),
# t0..t5 with 10 rows, t6..t9 with 300; t7 and t8 with an index on bN
SMALL, LARGE = 10, 300
NTABLES = 10


def _size(i: int) -> int:
    return SMALL if i < 6 else LARGE


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    db = toondb.Database.open(str(tmp_path_factory.mktemp("joins") / "db"))
    ref = sqlite3.connect(":memory:")
    rng = random.Random(5)
    for i in range(NTABLES):
        n = _size(i)
        stmts = [f"CREATE TABLE t{i}(a{i} INTEGER PRIMARY KEY, b{i} INTEGER, x{i} VARCHAR(40))"]
        if i in (7, 8):
            stmts.append(f"CREATE INDEX t{i}_b ON t{i}(b{i})")
        for s in stmts:
            db.execute_sql(s)
            ref.execute(s)
        keys = list(range(1, n + 1))
        rng.shuffle(keys)
        # a few NULLs and out-of-range values so that some rows join nothing
        rows = [
            (k, None if k % 97 == 0 else b % SMALL + 1 if b % 7 == 0 else b, f"t{i} row {k}")
            for k, b in zip(range(1, n + 1), keys)
        ]
        ins = f"INSERT INTO t{i} VALUES (?, ?, ?)"
        db.executemany(ins, rows)
        ref.executemany(ins, rows)
    yield db, ref
    db.close()
    ref.close()


def _rows(pair: Any, sql: str) -> list[tuple[Any, ...]]:
    db, ref = pair
    got = sorted(db.execute_sql(sql).rows, key=repr)
    want = sorted(ref.execute(sql).fetchall(), key=repr)
    assert got == want, sql
    return got


def _plan(db: Any, sql: str) -> list[str]:
    return [r[0] for r in db.execute_sql("EXPLAIN QUERY PLAN " + sql).rows]


def _query(rng: random.Random) -> str:
    """A select5-like join: a tree of aI=bJ / bI=aJ equalities over some tables,
    a constant on one of them, now and then a range or a cartesian 10-row table."""
    n = rng.randint(2, 7)
    tables = rng.sample(range(NTABLES), n)
    conds = []
    for j in range(1, n):
        a, b = tables[j], tables[rng.randrange(j)]
        if rng.random() < 0.5:
            a, b = b, a
        conds.append(f"a{a}=b{b}")
    if rng.random() < 0.25:
        lone = [t for t in range(6) if t not in tables]
        if lone:  # a 10-row table no join term names: a cartesian product
            tables.insert(rng.randrange(n + 1), lone[0])
            n += 1
    k = rng.choice(tables)  # the constant may also fall on the cartesian table
    col = rng.choice("ab")
    if rng.random() < 0.3:
        conds.append(f"{col}{k} BETWEEN {rng.randint(1, 5)} AND {rng.randint(5, 9)}")
    else:
        conds.append(f"{col}{k}={rng.randint(1, SMALL)}")
    rng.shuffle(conds)
    out = ",".join(f"x{t}" for t in rng.sample(tables, n))
    return f"SELECT {out} FROM {','.join(f't{t}' for t in tables)} WHERE {' AND '.join(conds)}"


@pytest.mark.parametrize("seed", range(60))
def test_generated_joins_return_sqlites_rows(pair, seed):
    _rows(pair, _query(random.Random(seed)))


def test_the_table_a_constant_binds_goes_first_whatever_the_written_order(pair):
    # as select5.test: a chain of equalities whose one constant is on the last table
    chain = "a0=b1 AND a1=b2 AND a2=b3 AND a3=b4 AND a4=b5 AND a5=b6 AND a6=b7 AND a7=b8"
    sql = f"SELECT x0, x4, x8 FROM t0,t1,t2,t3,t4,t5,t6,t7,t8 WHERE {chain} AND a8=5"
    plan = _plan(pair[0], sql)
    assert plan[0].startswith("JOIN ORDER t8, t7, ")
    assert plan[1] == "SEARCH t8 USING ROWID (rowid=5)"
    start = time.process_time()
    _rows(pair, sql)
    assert time.process_time() - start < 1.0


def test_a_left_join_keeps_the_written_order(pair):
    sql = "SELECT x6, x0 FROM t6 LEFT JOIN t0 ON a0=b6 WHERE a6 < 50"
    plan = _plan(pair[0], sql)
    assert plan[0].startswith("SCAN t6") or plan[0].startswith("SEARCH t6")
    _rows(pair, sql)


def test_a_cartesian_table_is_joined_after_the_bound_ones(pair):
    sql = "SELECT count(*), sum(a0), sum(a8) FROM t0, t6, t8 WHERE a6=b8 AND a8=3"
    plan = _plan(pair[0], sql)
    assert plan[0] == "JOIN ORDER t8, t6, t0 (by estimated cost)"
    assert _rows(pair, sql) == [(10, 55, 30)]


def test_large_first_and_small_first_choose_the_same_plan(pair):
    large_first = "SELECT x6, x7 FROM t7 JOIN t6 ON b7 = a6 WHERE b6 < 100"
    small_first = "SELECT x6, x7 FROM t6 JOIN t7 ON b7 = a6 WHERE b6 < 100"
    lf, sf = _plan(pair[0], large_first), _plan(pair[0], small_first)
    assert lf[0] == "JOIN ORDER t6, t7 (by estimated cost)"
    assert lf[1:] == sf
    assert _rows(pair, large_first) == _rows(pair, small_first)


def test_a_full_text_match_is_read_first_and_probes_the_other_table(tmp_path):
    db = toondb.Database.open(str(tmp_path / "db"))
    ref = sqlite3.connect(":memory:")
    try:
        ref.execute("CREATE VIRTUAL TABLE f USING fts5(body)")
    except sqlite3.OperationalError:
        pytest.skip("this sqlite3 has no fts5")
    db.execute_sql("CREATE VIRTUAL TABLE f USING fts5(body)")
    docs = [(i, f"word{i % 50} common") for i in range(1, 2001)]
    users = [(i, f"n{i}") for i in range(1, 2001)]
    for con in (db, ref):
        con.execute("CREATE TABLE u (id INTEGER PRIMARY KEY, name TEXT)")
        con.executemany("INSERT INTO f(rowid, body) VALUES (?, ?)", docs)
        con.executemany("INSERT INTO u VALUES (?, ?)", users)
    sql = "SELECT u.name FROM u JOIN f ON f.rowid = u.id WHERE f MATCH 'word7'"
    plan = _plan(db, sql)
    assert plan[:2] == ["JOIN ORDER f, u (by estimated cost)", "SEARCH f USING FULL-TEXT INDEX"]
    assert sorted(db.execute_sql(sql).rows) == sorted(ref.execute(sql).fetchall())
    db.close()
    ref.close()
