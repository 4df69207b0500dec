"""User-defined SQL functions (Database.create_function, the DB-API's
Connection.create_function) against stdlib sqlite3's create_function: the same
results, precedence over built-ins, any-number-of-arguments definitions, the
same failures; plans cached before a definition do not call a stale one."""

from __future__ import annotations

import re
import sqlite3

import pytest

import toondb.dbapi as dbapi
from toondb import Database
from toondb.errors import SQLError

FUNCS = [
    ("rev", 1, lambda s: None if s is None else str(s)[::-1]),
    ("add3", 3, lambda a, b, c: a + b + c),
    ("nargs", -1, lambda *a: len(a)),
    ("nargs", 2, lambda a, b: -1),  # the exact count wins over -1
    ("regexp", 2, lambda pat, s: s is not None and re.search(pat, s) is not None),
    ("upper", 1, lambda s: f"U:{s}"),  # found before the built-in
    ("blobby", 0, lambda: bytearray(b"\x00\x01")),
    ("half", 1, lambda x: x / 2),
    ("truth", 0, lambda: True),
    ("nada", 1, lambda x: None),
]
QUERIES = [
    "SELECT rev(name), add3(id, 1, 2), nargs(), nargs(1), nargs(1, 2), nargs(1, 2, 3) FROM t ORDER BY id",
    "SELECT name FROM t WHERE name REGEXP '^b' ORDER BY 1",
    "SELECT name FROM t WHERE regexp('a$', name) ORDER BY 1",
    "SELECT name FROM t WHERE name NOT REGEXP 'n' ORDER BY 1",
    "SELECT upper(name), lower(name) FROM t ORDER BY id",
    "SELECT blobby(), half(id), truth(), nada(id) FROM t ORDER BY id",
    "SELECT rev(name) AS r, count(*) FROM t GROUP BY r ORDER BY r",
    "SELECT id FROM t WHERE half(id) > 1 ORDER BY rev(name)",
    "SELECT (SELECT max(rev(name)) FROM t AS u WHERE u.id <= t.id) FROM t ORDER BY id",
]
ERRORS = [
    "SELECT add3(1, 2)",  # wrong number of arguments: no definition for 2
    "SELECT add3(1, 'x', 2)",  # raises TypeError inside
    "SELECT half('x')",
]


@pytest.fixture
def engines(tmp_path):
    db = Database.open(str(tmp_path / "db"))
    sq = sqlite3.connect(":memory:", isolation_level=None)
    for con in (db, sq):
        con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
        con.execute("INSERT INTO t VALUES (1, 'ann'), (2, 'bob'), (3, 'cia'), (4, NULL)")
        for name, narg, fn in FUNCS:
            con.create_function(name, narg, fn)
    yield db, sq
    db.close()
    sq.close()


@pytest.mark.parametrize("sql", QUERIES)
def test_results_as_sqlite(engines, sql):
    db, sq = engines
    assert [tuple(r) for r in db.execute(sql).rows] == sq.execute(sql).fetchall()


@pytest.mark.parametrize("sql", ERRORS)
def test_failures_as_sqlite(engines, sql):
    db, sq = engines
    with pytest.raises(sqlite3.OperationalError) as want:
        sq.execute(sql)
    with pytest.raises(SQLError) as got:
        db.execute(sql)
    assert str(got.value) == str(want.value)


def test_a_result_sql_cannot_hold_fails(engines):
    db, _ = engines
    db.create_function("obj", 0, object)
    db.create_function("huge", 0, lambda: 2**70)
    for sql in ("SELECT obj()", "SELECT huge()"):
        with pytest.raises(SQLError, match="user-defined function raised exception"):
            db.execute(sql)


def test_a_new_definition_replaces_the_cached_plan(engines):
    db, _ = engines
    sql = "SELECT rev('abc')"
    assert db.execute(sql).rows == [("cba",)]
    db.create_function("rev", 1, lambda s: s * 2)
    assert db.execute(sql).rows == [("abcabc",)]
    db.create_function("rev", 1, None)
    with pytest.raises(SQLError, match="(?i)no such function: rev"):
        db.execute(sql)
    db.create_function("upper", 1, None)  # the built-in again
    assert db.execute("SELECT upper('x')").rows == [("X",)]


def test_functions_reach_sql_in_transactions_and_scripts(engines):
    db, _ = engines
    with db.transaction() as tx:
        assert tx.execute("SELECT rev('xy')").rows == [("yx",)]
        tx.executescript("INSERT INTO t VALUES (9, rev('zyx'))")
    db.executescript("BEGIN; UPDATE t SET name = rev(name) WHERE id = 9; COMMIT;")
    assert db.execute("SELECT name FROM t WHERE id = 9").rows == [("zyx",)]


def test_each_handle_defines_its_own(tmp_path):
    a = Database.open(str(tmp_path / "a"))
    b = Database.open(str(tmp_path / "b"))
    a.create_function("f", 0, lambda: "a")
    b.create_function("f", 0, lambda: "b")
    assert a.execute("SELECT f()").rows == [("a",)] and b.execute("SELECT f()").rows == [("b",)]
    a.close()
    b.close()


def test_bad_definitions_are_refused(engines):
    db, sq = engines
    for args, exc in (
        (("x", 200, len), SQLError),
        (("x" * 300, 1, len), SQLError),
        (("x", 1, "not callable"), TypeError),
        ((3, 1, len), TypeError),
    ):
        with pytest.raises(exc):
            db.create_function(*args)


def test_dbapi_create_function(tmp_path):
    con = dbapi.connect(str(tmp_path / "d"))
    con.create_function("twice", 1, lambda x: x * 2, deterministic=True)
    cur = con.execute("SELECT twice(21), twice('ab')")
    assert cur.fetchall() == [(42, "abab")]
    con.create_function("boom", 0, lambda: 1 / 0)
    with pytest.raises(dbapi.OperationalError, match="user-defined function raised exception"):
        con.execute("SELECT boom()")
    with pytest.raises(dbapi.OperationalError):
        con.create_function("x", 200, len)
    con.execute("CREATE TABLE k (v)")
    con.execute("INSERT INTO k VALUES (twice(5))")  # in the connection's transaction
    con.commit()
    assert con.execute("SELECT v FROM k").fetchall() == [(10,)]
    con.close()


class Collect:
    """Arguments of every row, as text."""

    def __init__(self):
        self.seen = []

    def step(self, *args):
        self.seen.append(args)

    def finalize(self):
        return repr(self.seen)


class Total:
    def __init__(self):
        self.n = 0

    def step(self, x):
        if x is not None:
            self.n += x

    def finalize(self):
        return self.n


class StepFails:
    def __init__(self):
        pass

    def step(self, x):
        raise ValueError(x)

    def finalize(self):
        return 1


class FinalizeFails(Total):
    def finalize(self):
        raise ValueError("no")


AGG_QUERIES = [
    "SELECT collect(), collect(id), collect(id, name), total2(id) FROM t",
    "SELECT name IS NULL, collect(id), total2(id * 2) FROM t GROUP BY 1 ORDER BY 1",
    "SELECT total2(DISTINCT id % 2) FROM t",
    "SELECT total2(id) FILTER (WHERE id > 1) FROM t",
    "SELECT total2(id) FROM t WHERE 0",
    "SELECT id FROM t GROUP BY id HAVING total2(id) > 2 ORDER BY 1",
    "SELECT sum(id), total2(id) + 1 FROM t",
]


@pytest.mark.parametrize("sql", AGG_QUERIES)
def test_aggregates_as_sqlite(engines, sql):
    db, sq = engines
    for con in (db, sq):
        con.create_aggregate("collect", -1, Collect)
        con.create_aggregate("total2", 1, Total)
    assert [tuple(r) for r in db.execute(sql).rows] == sq.execute(sql).fetchall()


def test_aggregate_failures_as_sqlite(engines):
    db, sq = engines
    for con in (db, sq):
        con.create_aggregate("stepfails", 1, StepFails)
        con.create_aggregate("finfails", 1, FinalizeFails)
        con.create_aggregate("total2", 1, Total)
    for sql in (
        "SELECT stepfails(id) FROM t",
        "SELECT finfails(id) FROM t",
        "SELECT total2(id) OVER () FROM t",
        "SELECT total2(id, id) FROM t",
        "SELECT id FROM t WHERE total2(id) > 1",
    ):
        with pytest.raises(sqlite3.OperationalError) as want:
            sq.execute(sql).fetchall()
        with pytest.raises(SQLError) as got:
            db.execute(sql)
        assert str(got.value).lower() == str(want.value).lower(), sql
    db.create_aggregate("total2", 1, None)
    with pytest.raises(SQLError, match="(?i)no such function: total2"):
        db.execute("SELECT total2(id) FROM t")


def test_dbapi_create_aggregate(tmp_path):
    con = dbapi.connect(str(tmp_path / "d"))
    con.create_aggregate("total2", 1, Total)
    con.execute("CREATE TABLE k (v)")
    con.executemany("INSERT INTO k VALUES (?)", [(1,), (2,), (None,)])
    assert con.execute("SELECT total2(v) FROM k").fetchall() == [(3,)]
    con.close()
