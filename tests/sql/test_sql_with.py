"""WITH (common table expressions, plain and recursive), compared with stdlib
sqlite3 on the same schema and data: the same rows (in the same order where
the query or the recursion fixes one) or an error of the same meaning."""

from __future__ import annotations

import sqlite3

import pytest

from toondb import SchemaError, SQLError
from toondb.sql import catalog

SCHEMA = [
    "CREATE TABLE emp (id INTEGER PRIMARY KEY, name TEXT, boss INTEGER, salary REAL, dept TEXT)",
    "INSERT INTO emp VALUES (1, 'ann', NULL, 100, 'a'), (2, 'bob', 1, 80, 'a'),"
    " (3, 'cid', 1, 70, 'b'), (4, 'dan', 2, 50, 'a'), (5, 'eve', 4, 40, NULL),"
    " (6, 'fay', 3, 60, 'b')",
    "CREATE TABLE t (a INTEGER, b TEXT)",
    "INSERT INTO t VALUES (1, 'x'), (2, 'y'), (2, 'y'), (NULL, 'z')",
]


@pytest.fixture
def pair(db):
    ref = sqlite3.connect(":memory:")
    for sql in SCHEMA:
        db.execute(sql)
        ref.execute(sql)
    yield db, ref
    ref.close()


# (sql, whether the order of the rows is fixed)
QUERIES = [
    ("WITH x AS (SELECT 1 AS a) SELECT * FROM x", True),
    ("WITH x(a, b) AS (SELECT 1, 2) SELECT b, a FROM x", True),
    ("WITH x AS (SELECT * FROM t WHERE a > 1) SELECT count(*), sum(a) FROM x", True),
    (
        "WITH x AS (SELECT a FROM t), y AS (SELECT a * 10 AS c FROM x) SELECT c FROM y ORDER BY c",
        True,
    ),
    # a WITH name hides a table of that name
    ("WITH t AS (SELECT 42 AS a) SELECT a FROM t", True),
    # the names of one WITH see each other, in either order
    ("WITH x AS (SELECT * FROM y), y AS (SELECT 1 AS a) SELECT * FROM x", True),
    (
        "WITH d AS (SELECT dept, avg(salary) AS s FROM emp GROUP BY dept) "
        "SELECT e.name, d.s FROM emp e JOIN d ON e.dept = d.dept ORDER BY e.name",
        True,
    ),
    ("SELECT (WITH m AS (SELECT max(salary) AS v FROM emp) SELECT v FROM m)", True),
    (
        "SELECT name FROM emp WHERE salary > "
        "(WITH m AS (SELECT avg(salary) AS v FROM emp) SELECT v FROM m) ORDER BY name",
        True,
    ),
    ("WITH x AS (SELECT a FROM t) SELECT * FROM x AS p, x AS q WHERE p.a = q.a", False),
    ("WITH x AS (SELECT 1 AS a UNION ALL SELECT 2) SELECT a FROM x ORDER BY a DESC", True),
    ("WITH x AS (SELECT a, b FROM t) SELECT DISTINCT b FROM x", False),
    # recursive: counting, LIMIT stopping an endless recursion, the keyword optional
    (
        "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 10) "
        "SELECT n FROM c",
        True,
    ),
    (
        "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c LIMIT 7) SELECT n FROM c",
        True,
    ),
    ("WITH c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 5) SELECT n FROM c", True),
    # a tree walked down (breadth first, as SQLite's queue gives it) and up
    (
        "WITH RECURSIVE sub(id, name, depth) AS ("
        " SELECT id, name, 0 FROM emp WHERE boss IS NULL"
        " UNION ALL SELECT e.id, e.name, s.depth + 1 FROM emp e JOIN sub s ON e.boss = s.id)"
        " SELECT * FROM sub",
        True,
    ),
    (
        "WITH RECURSIVE up(id) AS (SELECT 5 UNION "
        " SELECT boss FROM emp, up WHERE emp.id = up.id AND boss IS NOT NULL) SELECT id FROM up",
        True,
    ),
    # an inner WITH of the same name hides the recursive one in its subquery
    (
        "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c"
        " WHERE n < (WITH c AS (SELECT 4 AS n) SELECT n FROM c)) SELECT n FROM c",
        True,
    ),
    # UNION ends a cycle: rows seen before are not queued again
    ("WITH RECURSIVE c(x) AS (VALUES (1) UNION SELECT x % 3 + 1 FROM c) SELECT x FROM c", True),
    (
        "WITH RECURSIVE fib(a, b) AS (SELECT 0, 1 UNION ALL SELECT b, a + b FROM fib WHERE b < 100)"
        " SELECT group_concat(a) FROM fib",
        True,
    ),
    (
        "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 4) "
        "SELECT a.n, b.n FROM c a JOIN c b ON b.n = a.n + 1",
        False,
    ),
]


@pytest.mark.parametrize(("sql", "ordered"), QUERIES)
def test_with_gives_the_rows_sqlite_gives(pair, sql, ordered):
    db, ref = pair
    want = ref.execute(sql).fetchall()
    got = db.execute(sql).rows
    if ordered:
        assert got == want
    else:
        assert sorted(got, key=repr) == sorted(want, key=repr)


def test_with_takes_parameters(pair):
    db, ref = pair
    sql = "WITH x AS (SELECT a FROM t WHERE a = ?) SELECT count(*) FROM x"
    assert db.execute(sql, (2,)).rows == ref.execute(sql, (2,)).fetchall() == [(2,)]


@pytest.mark.parametrize(
    ("sql", "error", "message"),
    [
        (
            "WITH x(a) AS (SELECT 1, 2) SELECT * FROM x",
            SQLError,
            "table x has 2 values for 1 columns",
        ),
        (
            "WITH RECURSIVE c(n) AS (SELECT n FROM c) SELECT * FROM c",
            SQLError,
            "circular reference: c",
        ),
        ("WITH x AS (SELECT * FROM nope) SELECT * FROM x", SchemaError, "no such table: nope"),
        ("WITH x AS (SELECT 1) SELECT * FROM y", SchemaError, "no such table: y"),
        # names that lead back to themselves, or one that reads a table of its own name
        (
            "WITH x AS (SELECT * FROM y), y AS (SELECT * FROM x) SELECT * FROM x",
            SQLError,
            "circular reference: [xy]",
        ),
        ("WITH t AS (SELECT a + 1 AS a FROM t) SELECT * FROM t", SQLError, "circular reference: t"),
        (
            "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL "
            "SELECT n + 1 FROM t WHERE a IN (SELECT n FROM c)) SELECT * FROM c",
            SQLError,
            "exactly once, in its FROM clause",
        ),
    ],
)
def test_with_errors_match_sqlites(pair, sql, error, message):
    db, ref = pair
    with pytest.raises(sqlite3.Error):
        ref.execute(sql).fetchall()
    with pytest.raises(error, match=message):
        db.execute(sql)


def test_with_before_insert_update_delete_and_inside_ddl(pair):
    db, ref = pair
    statements = [
        "INSERT INTO t WITH x AS (SELECT 7 AS a, 'w' AS b) SELECT * FROM x",
        "WITH x AS (SELECT 8 AS a) INSERT INTO t SELECT a, 'v' FROM x",
        "WITH RECURSIVE c(n) AS (SELECT 100 UNION ALL SELECT n + 1 FROM c WHERE n < 104)"
        " INSERT INTO t (a, b) SELECT n, 'r' FROM c",
        "WITH big AS (SELECT a FROM t WHERE a > 102) DELETE FROM t WHERE a IN (SELECT a FROM big)",
        "WITH m AS (SELECT max(a) AS v FROM t) UPDATE t SET b = 'max' WHERE a = (SELECT v FROM m)",
        "CREATE VIEW v AS WITH x AS (SELECT a FROM t WHERE a IS NOT NULL) SELECT sum(a) AS s FROM x",
        "CREATE TABLE t2 AS WITH x AS (SELECT a, b FROM t) SELECT * FROM x WHERE a < 8",
    ]
    for sql in statements:
        db.execute(sql)
        ref.execute(sql)
    for sql in ("SELECT * FROM t", "SELECT * FROM v", "SELECT * FROM t2"):
        assert sorted(db.execute(sql).rows, key=repr) == sorted(
            ref.execute(sql).fetchall(), key=repr
        )
    sql = "SELECT a FROM t WHERE b = 'r' ORDER BY a"
    assert db.execute(sql).rows == ref.execute(sql).fetchall() == [(100,), (101,)]


def test_a_failing_with_statement_writes_nothing(pair):
    db, _ = pair
    with pytest.raises(SchemaError):
        db.execute("WITH x AS (SELECT * FROM nope) INSERT INTO t SELECT * FROM x")
    with pytest.raises(SQLError):
        db.execute("CREATE TABLE t3 AS WITH x(a) AS (SELECT 1, 2) SELECT * FROM x")
    assert db.execute("SELECT count(*) FROM t").rows == [(4,)]
    with db.transaction(read_only=True) as txn:
        assert sorted(catalog.load(txn).tables) == ["emp", "t"]
