"""Window functions, JSON operators, collations and RETURNING, differentially
against stdlib sqlite3; the join order chosen by estimated cost.

Every query runs on sqlite3 in memory and on toondb with the same text and the
same data; rows are compared with exact types (floats within 1e-9). Generated
window queries always make their answer independent of the order rows are
visited: an ORDER BY inside the window ends with the unique id unless the frame
is RANGE with an offset (which takes one ORDER BY term, and whose frames hold
whole peer groups), and the statement orders by id.
"""

from __future__ import annotations

import math
import sqlite3
import tempfile
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import toondb
from toondb.errors import SQLError

ROWS = [
    (1, "a", 1, 1.5, "Bob"),
    (2, "a", 2, None, "bob "),
    (3, "b", 3, 2.5, "ALICE"),
    (4, "a", 2, 0.5, "alice"),
    (5, "b", None, 1.0, None),
    (6, "c", 5, 5.0, "Carol"),
    (7, "b", 3, -1.0, "bob"),
    (8, None, 0, 0.0, "B"),
]
SCHEMA = "CREATE TABLE t (id INTEGER PRIMARY KEY, g TEXT, x INTEGER, y REAL, s TEXT)"
NOCASE = "CREATE TABLE n (id INTEGER PRIMARY KEY, name TEXT COLLATE NOCASE, r TEXT COLLATE RTRIM)"


def same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return a == b or math.isclose(a, b, rel_tol=1e-9)
    return a == b


def rows_same(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]]) -> bool:
    return len(a) == len(b) and all(
        len(x) == len(y) and all(same(p, q) for p, q in zip(x, y)) for x, y in zip(a, b)
    )


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    db = toondb.Database.open(str(tmp_path_factory.mktemp("win") / "db"))
    ref = sqlite3.connect(":memory:")
    for stmt in (SCHEMA, NOCASE):
        db.execute_sql(stmt)
        ref.execute(stmt)
    insert = "INSERT INTO t VALUES (?, ?, ?, ?, ?)"
    db.execute_sql(insert, ROWS)
    ref.executemany(insert, ROWS)
    names = [
        (1, "Bob", "x  "),
        (2, "alice", "x"),
        (3, "BOB", "y"),
        (4, "Carol", " x"),
        (5, None, None),
    ]
    db.execute_sql("INSERT INTO n VALUES (?, ?, ?)", names)
    ref.executemany("INSERT INTO n VALUES (?, ?, ?)", names)
    yield db, ref
    db.close()


def check(pair: Any, sql: str) -> None:
    db, ref = pair
    try:
        want: Any = [tuple(r) for r in ref.execute(sql).fetchall()]
    except sqlite3.Error as e:
        with pytest.raises(SQLError):
            db.execute_sql(sql)
        return str(e)
    got = [tuple(r) for r in db.execute_sql(sql).rows]
    assert rows_same(got, want), f"{sql}\n toondb {got}\n sqlite {want}"


# ---------------------------------------------------------------- window functions

HAND = [
    "SELECT id, row_number() OVER (ORDER BY id) FROM t ORDER BY id",
    "SELECT id, rank() OVER w, dense_rank() OVER w, percent_rank() OVER w, cume_dist() OVER w"
    " FROM t WINDOW w AS (PARTITION BY g ORDER BY x) ORDER BY id",
    "SELECT id, sum(x) OVER (ORDER BY id), count(*) OVER (PARTITION BY g),"
    " avg(y) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING) FROM t ORDER BY id",
    "SELECT id, ntile(3) OVER (ORDER BY id), lag(x) OVER (ORDER BY id),"
    " lead(x, 2, -1) OVER (ORDER BY id) FROM t ORDER BY id",
    "SELECT id, first_value(x) OVER w, last_value(x) OVER w, nth_value(x, 2) OVER w FROM t"
    " WINDOW w AS (ORDER BY id ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) ORDER BY id",
    "SELECT id, sum(x) OVER (ORDER BY x RANGE BETWEEN 1 PRECEDING AND 1 FOLLOWING) FROM t ORDER BY id",
    "SELECT id, sum(x) OVER (ORDER BY x DESC RANGE BETWEEN 1 PRECEDING AND CURRENT ROW) FROM t ORDER BY id",
    "SELECT id, total(y) OVER (ORDER BY y RANGE 1.5 PRECEDING) FROM t ORDER BY id",
    "SELECT id, sum(x) OVER (ORDER BY x GROUPS BETWEEN 1 PRECEDING AND CURRENT ROW EXCLUDE TIES)"
    " FROM t ORDER BY id",
    "SELECT id, count(*) FILTER (WHERE x > 1) OVER (ORDER BY id) FROM t ORDER BY id",
    "SELECT g, sum(x), rank() OVER (ORDER BY sum(x) DESC) FROM t GROUP BY g ORDER BY g",
    "SELECT id, max(x) OVER (ORDER BY id), min(y) OVER (PARTITION BY g ORDER BY id ROWS 1 PRECEDING)"
    " FROM t ORDER BY id",
    "SELECT id, group_concat(x, '-') OVER (ORDER BY id ROWS BETWEEN CURRENT ROW AND"
    " UNBOUNDED FOLLOWING) FROM t ORDER BY id",
    "SELECT * FROM (SELECT id, rank() OVER (ORDER BY x) AS rk FROM t) WHERE rk > 2 ORDER BY id",
    "SELECT id FROM t ORDER BY row_number() OVER (ORDER BY y DESC, id)",
    "SELECT id, sum(x) OVER (w ORDER BY id) FROM t WINDOW w AS (PARTITION BY g) ORDER BY id",
    "SELECT x, count(*) OVER (ORDER BY x RANGE BETWEEN 1 FOLLOWING AND 2 FOLLOWING) FROM t ORDER BY id",
    "SELECT id, total(y) OVER (ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED"
    " FOLLOWING EXCLUDE CURRENT ROW) FROM t ORDER BY id",
    "SELECT id, count(x) OVER (ORDER BY x GROUPS BETWEEN 1 FOLLOWING AND 2 FOLLOWING EXCLUDE GROUP)"
    " FROM t ORDER BY id",
    "SELECT g, json_group_array(x) OVER (PARTITION BY g ORDER BY id) FROM t ORDER BY id",
    "SELECT id, sum(x) OVER (ORDER BY id ROWS BETWEEN 2 FOLLOWING AND 3 FOLLOWING) FROM t ORDER BY id",
    "SELECT id, (SELECT count(*) FROM t t2 WHERE t2.x < t.x), row_number() OVER (ORDER BY x, id)"
    " FROM t ORDER BY 3",
    # errors
    "SELECT row_number() FROM t",
    "SELECT id FROM t WHERE row_number() OVER () > 1",
    "SELECT id, sum(x) OVER (ORDER BY id ROWS -1 PRECEDING) FROM t",
    "SELECT id, nth_value(x, 0) OVER () FROM t",
    "SELECT id, ntile(0) OVER () FROM t",
    "SELECT id, sum(x) OVER w FROM t",
    "SELECT id, sum(DISTINCT x) OVER () FROM t",
    "SELECT id, sum(x) OVER (ORDER BY x, id RANGE 1 PRECEDING) FROM t",
    "SELECT id, sum(x) OVER (ORDER BY id ROWS BETWEEN 1 FOLLOWING AND 1 PRECEDING) FROM t",
    "SELECT abs(x) FILTER (WHERE x > 1) FROM t",
    "SELECT id, count(*) OVER (w2) FROM t WINDOW w AS (ORDER BY id), w2 AS (w ROWS 1 PRECEDING)",
    # more shapes
    "SELECT DISTINCT g, count(*) OVER (PARTITION BY g) FROM t ORDER BY 1",
    "SELECT id, sum(x) OVER (ORDER BY id) AS rs FROM t ORDER BY rs DESC, id",
    "SELECT id FROM t UNION ALL SELECT row_number() OVER () FROM t ORDER BY 1",
    "SELECT id, count(*) OVER (ORDER BY g RANGE CURRENT ROW) FROM t ORDER BY id",
    "SELECT id, lag(x, 2) OVER (), lead(x, -1) OVER (ORDER BY id) FROM t ORDER BY id",
    "SELECT g, sum(sum(x)) OVER (ORDER BY g) FROM t GROUP BY g ORDER BY g",
    "SELECT id, row_number() OVER (PARTITION BY s COLLATE NOCASE ORDER BY id) FROM t ORDER BY id",
    "SELECT id, ntile(x) OVER (ORDER BY id) FROM t WHERE x > 0 ORDER BY id",
]


@pytest.mark.parametrize("sql", HAND)
def test_window_functions_match_sqlite(pair, sql):
    check(pair, sql)


def test_empty_input_and_empty_partitions(pair):
    check(pair, "SELECT id, sum(x) OVER (PARTITION BY g ORDER BY id) FROM t WHERE id > 100")
    check(pair, "SELECT count(*) OVER () FROM t WHERE 0")


_funcs = st.sampled_from(
    [
        "sum(x)", "count(*)", "count(y)", "avg(x)", "min(y)", "max(x)", "total(y)",
        "group_concat(x)", "first_value(x)", "last_value(y)", "nth_value(x, 2)",
        "sum(x) FILTER (WHERE y > 0)",
    ]
)  # fmt: skip
_ranking = st.sampled_from(
    ["row_number()", "rank()", "dense_rank()", "percent_rank()", "cume_dist()", "ntile(3)",
     "lag(x)", "lead(y, 2, 0)"]
)  # fmt: skip
_bound_n = st.integers(0, 3)


@st.composite
def _bound(draw: Any, start: bool) -> str:
    kind = draw(st.sampled_from(["UNBOUNDED", "PRECEDING", "CURRENT", "FOLLOWING"]))
    if kind == "UNBOUNDED":
        return "UNBOUNDED PRECEDING" if start else "UNBOUNDED FOLLOWING"
    if kind == "CURRENT":
        return "CURRENT ROW"
    return f"{draw(_bound_n)} {kind}"


@st.composite
def window_query(draw: Any) -> str:
    part = draw(st.sampled_from(["", "PARTITION BY g", "PARTITION BY x % 2"]))
    unit = draw(st.sampled_from(["", "ROWS", "RANGE", "GROUPS", "RANGE-offset"]))
    key = draw(st.sampled_from(["x", "y", "x DESC", "y DESC NULLS LAST", "g"]))
    frame = ""
    if unit == "RANGE-offset":
        order = f"ORDER BY {draw(st.sampled_from(['x', 'y', 'x DESC']))}"
        frame = f"RANGE BETWEEN {draw(_bound_n)} PRECEDING AND {draw(_bound_n)} FOLLOWING"
        func = draw(st.sampled_from(["sum(x)", "count(*)", "min(y)", "max(x)", "total(y)"]))
    else:
        order = f"ORDER BY {key}, id"
        if unit:
            start = draw(_bound(True))
            end = draw(_bound(False))
            frame = f"{unit} BETWEEN {start} AND {end}"
            excl = draw(
                st.sampled_from(["", "", "EXCLUDE CURRENT ROW", "EXCLUDE GROUP", "EXCLUDE TIES"])
            )
            frame += f" {excl}" if excl else ""
        func = draw(st.one_of(_funcs, _ranking))
    return f"SELECT id, {func} OVER ({part} {order} {frame}) FROM t ORDER BY id"


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(window_query())
def test_generated_window_queries_match_sqlite(pair, sql):
    check(pair, sql)


# ---------------------------------------------------------------- JSON operators, ALL, FILTER


@pytest.mark.parametrize(
    "sql",
    [
        """SELECT '{"a":{"b":[1,2]}}' -> '$.a', '{"a":{"b":[1,2]}}' ->> '$.a.b[1]'""",
        """SELECT '{"a":1}' -> 'a', '{"a":"x"}' ->> 'a', '[5,6]' -> 1, '[5,6]' ->> 0""",
        """SELECT '{"a":1' -> '$.a'""",
        """SELECT '{"a":[1,2]}' -> '$.a' -> 0 + 1""",
        "SELECT json_group_object(g, x) FROM t WHERE g IS NOT NULL AND id < 4",
        "SELECT count(ALL x), sum(ALL x) FROM t",
        "SELECT count(*) FILTER (WHERE x > 1), sum(x) FILTER (WHERE g = 'a') FROM t",
        "SELECT g, count(*) FILTER (WHERE y > 0) FROM t GROUP BY g ORDER BY g",
    ],
)
def test_json_operators_and_aggregate_forms_match_sqlite(pair, sql):
    check(pair, sql)


def test_json_results_reach_the_caller_as_plain_str(pair):
    db, _ = pair
    row = db.execute_sql("SELECT json_object('a', 1), json_array(1, 2), '[1]' -> '$'").rows[0]
    assert [type(v) for v in row] == [str, str, str]


def test_now_is_one_value_per_statement(pair):
    db, _ = pair
    sql = "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 2000) "
    sql += "SELECT count(DISTINCT strftime('%f', 'now')) FROM c"
    assert db.execute_sql(sql).rows == [(1,)]


# ---------------------------------------------------------------- collations


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT id FROM t WHERE s = 'bob' COLLATE NOCASE ORDER BY id",
        "SELECT id FROM t WHERE 'BOB' COLLATE NOCASE = s ORDER BY id",
        "SELECT id FROM t WHERE s = 'bob' COLLATE RTRIM ORDER BY id",
        "SELECT id FROM t WHERE s > 'b' COLLATE NOCASE ORDER BY id",
        "SELECT id FROM t WHERE s COLLATE NOCASE IN ('bob', 'alice') ORDER BY id",
        "SELECT s FROM t ORDER BY s COLLATE NOCASE, id",
        "SELECT id FROM n WHERE name = 'bob' ORDER BY id",
        "SELECT id FROM n WHERE name IN ('bob', 'ALICE') ORDER BY id",
        "SELECT id FROM n WHERE name BETWEEN 'b' AND 'c' ORDER BY id",
        "SELECT id FROM n WHERE name = 'bob' COLLATE BINARY ORDER BY id",
        "SELECT id FROM n WHERE r = 'x' ORDER BY id",
        "SELECT name FROM n ORDER BY name, id",
        "SELECT n.id, t.id FROM n JOIN t ON n.name = t.s ORDER BY 1, 2",
        "SELECT id, name LIKE 'b%' FROM n ORDER BY id",
        "SELECT 'a' = 'A' COLLATE NOCASE, 'a ' = 'a' COLLATE RTRIM, 'a' COLLATE BINARY = 'A'",
        "SELECT 'a' = 'A' COLLATE klingon",
    ],
)
def test_collations_match_sqlite(pair, sql):
    check(pair, sql)


_text = st.text(alphabet="aAbB ", max_size=4)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    st.lists(_text, min_size=1, max_size=8),
    _text,
    st.sampled_from(["=", "<", ">=", "!="]),
    st.sampled_from(["NOCASE", "RTRIM", "BINARY"]),
)
def test_generated_collated_comparisons_match_sqlite(values, probe, op, coll):
    ref = sqlite3.connect(":memory:")

    with tempfile.TemporaryDirectory() as d:
        db = toondb.Database.open(d + "/db")
        for stmt in (f"CREATE TABLE c (id INTEGER PRIMARY KEY, v TEXT COLLATE {coll})",):
            db.execute_sql(stmt)
            ref.execute(stmt)
        rows = list(enumerate(values))
        db.execute_sql("INSERT INTO c VALUES (?, ?)", rows)
        ref.executemany("INSERT INTO c VALUES (?, ?)", rows)
        lit = "'" + probe + "'"
        for sql in (
            f"SELECT id FROM c WHERE v {op} {lit} ORDER BY id",
            f"SELECT id FROM c WHERE {lit} {op} v ORDER BY id",
            f"SELECT id FROM c WHERE v {op} {lit} COLLATE BINARY ORDER BY id",
            "SELECT v FROM c ORDER BY v, id",
            f"SELECT id FROM c WHERE v IN ({lit}, 'a') ORDER BY id",
        ):
            check((db, ref), sql)
        db.close()


def test_an_index_on_a_nocase_column_compares_nocase(tmp_path):
    db = toondb.Database.open(str(tmp_path / "db"))
    db.execute_sql("CREATE TABLE n (name TEXT COLLATE NOCASE)")
    db.execute_sql("CREATE INDEX n_name ON n(name)")
    db.execute_sql("INSERT INTO n VALUES ('Bob'), ('BOB'), ('alice')")
    assert db.execute_sql("SELECT count(*) FROM n WHERE name = 'bob'").rows == [(2,)]
    plan = db.execute_sql("EXPLAIN QUERY PLAN SELECT * FROM n WHERE name = 'bob'").rows
    assert "USING INDEX n_name" in plan[0][0]
    assert [r[0] for r in db.execute_sql("SELECT name FROM n ORDER BY name").rows][0] == "alice"
    db.close()


# ---------------------------------------------------------------- RETURNING

RETURNING = [
    "INSERT INTO r(a, b) VALUES ('x', 1), ('y', 2) RETURNING id, a, b * 2 AS bb",
    "INSERT INTO r(a) VALUES ('z') RETURNING *",
    "UPDATE r SET b = b + 10 WHERE id = 2 RETURNING *",
    "UPDATE r SET b = 0 WHERE id > 100 RETURNING id",
    "DELETE FROM r WHERE id = 1 RETURNING a, rowid",
    "INSERT INTO r(id, a, b) VALUES (2, 'w', 5) ON CONFLICT(id) DO UPDATE SET b = excluded.b RETURNING *",
    "INSERT OR IGNORE INTO r(id, a) VALUES (2, 'q') RETURNING id",
    "DELETE FROM r RETURNING id, upper(a)",
    "INSERT INTO r(a) VALUES ('v') RETURNING count(*)",
]


def test_returning_matches_sqlite(tmp_path):
    db = toondb.Database.open(str(tmp_path / "db"))
    ref = sqlite3.connect(":memory:", isolation_level=None)
    schema = "CREATE TABLE r (id INTEGER PRIMARY KEY, a TEXT, b INTEGER DEFAULT 7)"
    db.execute_sql(schema)
    ref.execute(schema)
    for sql in RETURNING:
        check((db, ref), sql)
        check((db, ref), "SELECT * FROM r ORDER BY id")
    db.close()


def test_a_failed_returning_statement_writes_nothing(tmp_path):
    db = toondb.Database.open(str(tmp_path / "db"))
    db.execute_sql("CREATE TABLE r (id INTEGER PRIMARY KEY, a TEXT NOT NULL)")
    with pytest.raises(toondb.ConstraintError):
        db.execute_sql("INSERT INTO r(a) VALUES ('x'), (NULL) RETURNING id")
    assert db.execute_sql("SELECT count(*) FROM r").rows == [(0,)]
    db.close()


# ---------------------------------------------------------------- join order


def _plan(db: Any, sql: str) -> list[str]:
    return [r[0] for r in db.execute_sql("EXPLAIN " + sql).rows]


def test_a_join_written_large_table_first_runs_in_the_small_first_order(tmp_path):
    db = toondb.Database.open(str(tmp_path / "db"))
    db.execute_sql("CREATE TABLE big (id INTEGER PRIMARY KEY, sid INTEGER, v INTEGER)")
    db.execute_sql("CREATE TABLE small (id INTEGER PRIMARY KEY, name TEXT)")
    db.execute_sql("INSERT INTO small(name) VALUES (?)", [(f"n{i}",) for i in range(50)])
    db.execute_sql("INSERT INTO big(sid, v) VALUES (?, ?)", [(i % 50 + 1, i) for i in range(5000)])
    large_first = "SELECT sum(v) FROM big JOIN small ON big.sid = small.id"
    small_first = "SELECT sum(v) FROM small JOIN big ON big.sid = small.id"
    plan = _plan(db, large_first)
    assert plan[0] == "JOIN ORDER small, big (by estimated cost)"
    assert plan[1:] == _plan(db, small_first)
    assert db.execute_sql(large_first).rows == db.execute_sql(small_first).rows
    # SELECT * keeps the columns in the order written
    assert db.execute_sql("SELECT * FROM big JOIN small ON big.sid = small.id LIMIT 1").columns == [
        "id",
        "sid",
        "v",
        "id",
        "name",
    ]
    db.close()


def test_a_cached_plan_is_made_again_when_a_table_grows(tmp_path):
    db = toondb.Database.open(str(tmp_path / "db"))
    db.execute_sql("CREATE TABLE a (id INTEGER PRIMARY KEY, bid INTEGER)")
    db.execute_sql("CREATE TABLE b (id INTEGER PRIMARY KEY, x INTEGER)")
    sql = "SELECT count(*) FROM a JOIN b ON a.bid = b.id"
    db.execute_sql("INSERT INTO a(bid) VALUES (?)", [(i % 10,) for i in range(20)])
    db.execute_sql("INSERT INTO b(x) VALUES (?)", [(i,) for i in range(20)])
    assert _plan(db, sql)[0] == "SCAN a"
    db.execute_sql("INSERT INTO a(bid) VALUES (?)", [(i % 10,) for i in range(5000)])
    assert _plan(db, sql)[0] == "JOIN ORDER b, a (by estimated cost)"
    assert db.execute_sql(sql).rows == [(4518,)]
    db.close()


def test_running_and_sliding_aggregates_do_not_rescan_their_frames(pair, monkeypatch):
    # the per-frame fallback (window._aggregate calling AGG_FUNCS over the frame's
    # rows) must not run for count/sum/total/avg frames that only move forward
    from toondb.sql import window

    def rescan(vals: Any, *args: Any) -> Any:
        raise AssertionError("a frame was rescanned")

    monkeypatch.setattr(window, "AGG_FUNCS", dict.fromkeys(window.AGG_FUNCS, rescan))
    for sql in (
        "SELECT id, sum(x) OVER (ORDER BY id), total(y) OVER (PARTITION BY g ORDER BY id) FROM t ORDER BY id",
        "SELECT id, avg(y) OVER (ORDER BY id ROWS BETWEEN 2 PRECEDING AND 1 FOLLOWING) FROM t ORDER BY id",
        "SELECT id, count(x) OVER (ORDER BY x RANGE BETWEEN 1 PRECEDING AND 1 FOLLOWING) FROM t ORDER BY id",
    ):
        check(pair, sql)


def test_ranking_and_running_sums_over_many_ties_match_sqlite(tmp_path):
    """Partitions and peer groups cut where adjacent keys differ, rank/dense_rank
    from the peer groups' sizes, running REAL sums as prefix sums, several window
    sorts in one SELECT (the earlier sorts' values permuted to the last's order):
    over 3,000 rows with ties, NULLs, -0.0, and integers, reals and text mixed in
    one ORDER BY column; REAL sums compared exactly."""
    rows = []
    for i in range(3000):
        k = (i * 7919) % 23
        v: Any = [None, k, k * 0.5, -0.0, f"t{k % 5}", 1e16 if k == 3 else k * 0.1][i % 6]
        rows.append((i, None if i % 17 == 0 else i % 9, v, (i * 37 % 1000) * 0.25 - 50.0))
    db = toondb.Database.open(str(tmp_path / "db"))
    ref = sqlite3.connect(":memory:")
    for c in (db.execute_sql, ref.execute):
        c("CREATE TABLE w (id INTEGER PRIMARY KEY, g INTEGER, v, r REAL)")
    db.execute_sql("INSERT INTO w VALUES (?, ?, ?, ?)", rows)
    ref.executemany("INSERT INTO w VALUES (?, ?, ?, ?)", rows)
    try:
        for sql in (
            "SELECT id, rank() OVER (PARTITION BY g ORDER BY v) FROM w ORDER BY id",
            "SELECT id, rank() OVER w, dense_rank() OVER w, percent_rank() OVER w,"
            " cume_dist() OVER w, row_number() OVER (PARTITION BY g ORDER BY v, id)"
            " FROM w WINDOW w AS (PARTITION BY g ORDER BY v DESC) ORDER BY id",
            "SELECT id, rank() OVER (ORDER BY v NULLS LAST), dense_rank() OVER (PARTITION BY v)"
            " FROM w ORDER BY id",
            "SELECT id, sum(r) OVER (PARTITION BY g ORDER BY id), total(r) OVER (ORDER BY r, id),"
            " avg(r) OVER (PARTITION BY g ORDER BY r), count(r) OVER (PARTITION BY g ORDER BY v)"
            " FROM w ORDER BY id",
            "SELECT id, sum(r) OVER (ORDER BY id ROWS BETWEEN 3 PRECEDING AND CURRENT ROW),"
            " count(v) OVER (PARTITION BY g ORDER BY id) FROM w ORDER BY id",
            "SELECT id, g, rank() OVER (PARTITION BY g ORDER BY r) FROM w WHERE id < 0",
        ):
            want = [tuple(r) for r in ref.execute(sql).fetchall()]
            got = [tuple(r) for r in db.execute_sql(sql).rows]
            assert got == want and [list(map(type, r)) for r in got] == [
                list(map(type, r)) for r in want
            ], sql
    finally:
        db.close()


# ---------------------------------------------------------------- sums of mixed values

_mixed_value = st.one_of(
    st.integers(-100, 100),
    st.floats(-100, 100, allow_nan=False).map(lambda f: round(f, 2)),
    st.none(),
    st.sampled_from(["7", "2.5x", "-0.1"]),
)
_sliding_frame = st.sampled_from(
    [
        "",
        "ROWS BETWEEN 3 PRECEDING AND CURRENT ROW",
        "ROWS BETWEEN 2 PRECEDING AND 2 FOLLOWING",
        "ROWS BETWEEN 1 FOLLOWING AND 3 FOLLOWING",
        "ROWS BETWEEN 2 FOLLOWING AND 5 FOLLOWING",
        "ROWS BETWEEN 3 PRECEDING AND 1 PRECEDING",
        "ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING",
        "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 FOLLOWING",
        "GROUPS BETWEEN 1 FOLLOWING AND 2 FOLLOWING",
        "RANGE BETWEEN 1 PRECEDING AND 1 FOLLOWING",
        "GROUPS BETWEEN 1 PRECEDING AND CURRENT ROW",
    ]
)


@settings(max_examples=120, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 2), _mixed_value), min_size=1, max_size=40),
    st.sampled_from(["sum", "total", "avg"]),
    _sliding_frame,
)
def test_sliding_sums_of_mixed_integers_and_reals_round_as_sqlite(
    tmp_path_factory, rows, fn, frame
):
    """A REAL sum over a moving frame adds and takes away each value in SQLite's
    order (as doubles, in one running state from the partition's first row), so
    its last bit is sqlite3's, not that of a sum of the integers and the reals
    kept apart."""
    db = toondb.Database.open(str(tmp_path_factory.mktemp("mixed") / "db"))
    sq = sqlite3.connect(":memory:")
    try:
        for con in (db, sq):
            con.execute("CREATE TABLE m (id INTEGER PRIMARY KEY, g INTEGER, v)")
            for g, v in rows:
                con.execute("INSERT INTO m (g, v) VALUES (?, ?)", (g, v))
        sql = f"SELECT id, {fn}(v) OVER (PARTITION BY g ORDER BY id {frame}) FROM m ORDER BY id"
        assert db.execute(sql).rows == sq.execute(sql).fetchall(), sql
    finally:
        db.close()
        sq.close()
