"""REINDEX as SQLite: no name (every index), a collation (the indexes with a key
column under it), a table (its indexes), an index; an unknown name is an error
that changes nothing. A rebuilt index gives the same answers (checked against
sqlite3, with the planner using the index) and passes check(deep=True)."""

from __future__ import annotations

import sqlite3

import pytest

from toondb import Database
from toondb.errors import SQLError

SCHEMA = [
    "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT COLLATE NOCASE UNIQUE, b INT, c TEXT)",
    "CREATE INDEX t_b ON t(b)",
    "CREATE INDEX t_c ON t(c COLLATE RTRIM)",
    "CREATE TABLE u (id INTEGER PRIMARY KEY, v TEXT)",
    "CREATE INDEX u_v ON u(v)",
]
QUERIES = [
    "SELECT id FROM t WHERE a = 'X7' ORDER BY id",
    "SELECT count(*) FROM t WHERE b = 3",
    "SELECT id FROM t WHERE c = 'c2' ORDER BY id",
    "SELECT b, count(*) FROM t WHERE b BETWEEN 2 AND 4 GROUP BY b",
    "SELECT id FROM u WHERE v > 'v5' ORDER BY v, id",
]


@pytest.fixture
def pair(tmp_path):
    db = Database.open(str(tmp_path / "db"))
    sq = sqlite3.connect(":memory:", isolation_level=None)
    for con in (db, sq):
        for sql in SCHEMA:
            con.execute(sql)
        for i in range(60):
            con.execute(
                "INSERT INTO t (a, b, c) VALUES (?, ?, ?)",
                (f"x{i}", i % 7, f"c{i % 5}" + " " * (i % 3)),
            )
            con.execute("INSERT INTO u (v) VALUES (?)", (f"v{i % 11}",))
    yield db, sq
    db.close()
    sq.close()


@pytest.mark.parametrize(
    "statement",
    ["REINDEX", "REINDEX t", "REINDEX u_v", "REINDEX NOCASE", "REINDEX rtrim", "REINDEX binary",
     "REINDEX main.t_b"],
)  # fmt: skip
def test_rebuilt_indexes_answer_as_before(pair, statement):
    db, sq = pair
    before = {q: db.execute(q).rows for q in QUERIES}
    for con in (db, sq):
        con.execute(statement)
    for q in QUERIES:
        assert db.execute(q).rows == before[q] == sq.execute(q).fetchall(), q
    report = db.check(deep=True)
    assert report["sql_index_entries"] == 4 * 60  # t: a, b, c; u: v


def test_an_unknown_name_is_an_error_like_sqlites(pair):
    db, sq = pair
    with pytest.raises(SQLError, match="unable to identify the object to be reindexed"):
        db.execute("REINDEX nothere")
    with pytest.raises(sqlite3.OperationalError, match="unable to identify"):
        sq.execute("REINDEX nothere")


def test_reindex_in_a_transaction_rolls_back_with_it(pair):
    db, _ = pair
    before = db.execute("SELECT count(*) FROM t WHERE b = 3").rows
    txn = db.begin_transaction()
    txn.execute_sql("REINDEX")
    txn.execute_sql("INSERT INTO t (a, b, c) VALUES ('new', 3, 'c1')")
    txn.abort()
    assert db.execute("SELECT count(*) FROM t WHERE b = 3").rows == before
    assert db.check(deep=True)["sql_index_entries"] == 240


def test_reindex_names_an_index_in_the_plan_it_serves(pair):
    db, _ = pair
    db.execute("REINDEX t_b")
    plan = " ".join(
        r[0] for r in db.execute("EXPLAIN QUERY PLAN SELECT id FROM t WHERE b = 3").rows
    )
    assert "t_b" in plan
