"""A correlated subquery's ``column op outer.column`` term is tested by the row
decoder itself with the outer value read once per run (planner/access.py
c_filter): the answers are sqlite3's whatever the types on each side (integers,
reals, numeric-looking texts, NULL), under affinities and collations, with the
outer column on either side of the operator."""

from __future__ import annotations

import sqlite3

import pytest

from toondb import Database

SETUP = [
    "CREATE TABLE t(a INTEGER, b REAL, c TEXT, d, n TEXT COLLATE NOCASE)",
    "INSERT INTO t VALUES (1, 1.5, '1', 1, 'a'), (2, 2.0, '10', '2', 'B'), "
    "(NULL, NULL, NULL, NULL, NULL), (3, -1.0, 'x', 2.5, 'b'), (10, 3.0, '2', 'x', 'A')",
    "CREATE TABLE u(k INTEGER PRIMARY KEY, v INTEGER, w TEXT, m TEXT COLLATE NOCASE)",
    "INSERT INTO u VALUES (1, 1, '1', 'a'), (2, 2, 'b', 'A'), (3, NULL, '3', 'b'), (4, 10, '10', 'B')",
]
QUERIES = (
    [
        f"SELECT a, (SELECT count(*) FROM t AS x WHERE x.{col} {op} t.{other}) FROM t ORDER BY 1"
        for col in ("a", "b", "c", "d")
        for other in ("a", "b", "c", "d")
        for op in ("<", "=", ">=", "!=")
    ]
    + [
        f"SELECT a, (SELECT count(*) FROM t AS x WHERE t.{other} {op} x.{col}) FROM t ORDER BY 1"
        for col in ("a", "c", "d")
        for other in ("a", "c", "d")
        for op in ("<", "=")
    ]
    + [
        "SELECT n, (SELECT count(*) FROM t AS x WHERE x.n = t.n) FROM t ORDER BY 1, 2",
        "SELECT n, (SELECT count(*) FROM t AS x WHERE t.n = x.c) FROM t ORDER BY 1, 2",
        "SELECT n, (SELECT count(*) FROM t AS x WHERE x.c = t.n) FROM t ORDER BY 1, 2",
        "SELECT n, (SELECT count(*) FROM u WHERE u.m = t.n) FROM t ORDER BY 1, 2",
        "SELECT n, (SELECT count(*) FROM u WHERE t.n = u.m) FROM t ORDER BY 1, 2",
        "SELECT n, (SELECT count(*) FROM u WHERE u.w = t.n) FROM t ORDER BY 1, 2",
        "SELECT n, (SELECT count(*) FROM u WHERE t.n = u.w) FROM t ORDER BY 1, 2",
        "SELECT a, (SELECT max(k) FROM u WHERE u.v < t.a) FROM t ORDER BY 1",
        "SELECT a, (SELECT max(k) FROM u WHERE u.k < t.a) FROM t ORDER BY 1",
        "SELECT a, (SELECT max(k) FROM u WHERE u.w > t.c) FROM t ORDER BY 1",
        "SELECT a, (SELECT max(k) FROM u WHERE u.v > t.c) FROM t ORDER BY 1",
        "SELECT c, (SELECT count(*) FROM u WHERE u.v = t.c) FROM t ORDER BY 1",
        "SELECT a FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.v = t.d) ORDER BY 1",
        "SELECT a FROM t WHERE a IN (SELECT k FROM u WHERE u.w >= t.c) ORDER BY 1",
        # two levels out: the grandparent's row
        "SELECT a, (SELECT (SELECT count(*) FROM u WHERE u.v <= t.a) FROM u AS y WHERE y.k = 1) "
        "FROM t ORDER BY 1",
        # in a join: the outer value per run, the inner table read once per run
        "SELECT a, (SELECT count(*) FROM u, t AS x WHERE x.a = u.v AND u.k < t.a) FROM t ORDER BY 1",
    ]
)


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    ref = sqlite3.connect(":memory:")
    db = Database.open(tmp_path_factory.mktemp("corr") / "db")
    for s in SETUP:
        ref.execute(s)
        db.execute_sql(s)
    yield ref, db
    db.close()
    ref.close()


@pytest.mark.parametrize("sql", QUERIES)
def test_like_sqlite(engines, sql):
    ref, db = engines
    assert db.execute_sql(sql).rows == ref.execute(sql).fetchall()
