"""NATURAL joins (an implicit USING of every column name both sides share),
against stdlib sqlite3: rows, the columns of SELECT *, and the errors."""

from __future__ import annotations

import sqlite3

import pytest

from toondb import Database
from toondb.errors import SQLError

SCHEMA = [
    "CREATE TABLE emp (id INTEGER PRIMARY KEY, name TEXT, dept_id INTEGER, city TEXT)",
    "CREATE TABLE dept (dept_id INTEGER PRIMARY KEY, dname TEXT, city TEXT)",
    "CREATE TABLE proj (pid INTEGER PRIMARY KEY, dname TEXT, budget REAL)",
    "CREATE TABLE other (x INTEGER, y TEXT)",
    "INSERT INTO emp VALUES (1, 'ann', 10, 'oslo'), (2, 'bob', 10, 'rome'), "
    "(3, 'cy', 20, 'rome'), (4, 'di', NULL, 'oslo'), (5, 'ed', 30, NULL)",
    "INSERT INTO dept VALUES (10, 'eng', 'oslo'), (20, 'ops', 'rome'), (30, 'hr', NULL)",
    "INSERT INTO proj VALUES (1, 'eng', 5.5), (2, 'ops', 1.0), (3, 'eng', 2.0)",
    "INSERT INTO other VALUES (1, 'a'), (2, 'b')",
]

QUERIES = [
    "SELECT * FROM emp NATURAL JOIN dept ORDER BY id",
    "SELECT * FROM emp NATURAL INNER JOIN dept ORDER BY id",
    "SELECT * FROM emp NATURAL LEFT JOIN dept ORDER BY id",
    "SELECT * FROM emp NATURAL LEFT OUTER JOIN dept ORDER BY id",
    "SELECT * FROM emp NATURAL CROSS JOIN dept ORDER BY id",
    "SELECT name, dname FROM emp NATURAL JOIN dept WHERE city = 'rome' ORDER BY name",
    "SELECT * FROM emp NATURAL JOIN dept NATURAL JOIN proj ORDER BY id, pid",
    "SELECT * FROM dept NATURAL JOIN other ORDER BY dept_id, x",
    "SELECT e.name, d.dname FROM emp AS e NATURAL JOIN dept AS d ORDER BY 1",
    "SELECT count(*) FROM emp NATURAL LEFT JOIN dept WHERE dname IS NULL",
    "SELECT * FROM (SELECT dept_id, name FROM emp) NATURAL JOIN dept ORDER BY name",
    "SELECT * FROM emp NATURAL JOIN (SELECT dept_id, dname FROM dept) ORDER BY id",
]


@pytest.fixture
def engines(tmp_path):
    db = Database.open(str(tmp_path / "db"))
    sq = sqlite3.connect(":memory:")
    for sql in SCHEMA:
        db.execute(sql)
        sq.execute(sql)
    yield db, sq
    db.close()
    sq.close()


@pytest.mark.parametrize("sql", QUERIES)
def test_natural_join_matches_sqlite(engines, sql):
    db, sq = engines
    cur = sq.execute(sql)
    want_cols = [d[0] for d in cur.description]
    want = cur.fetchall()
    got = db.execute(sql)
    assert [tuple(r) for r in got.rows] == want
    assert list(got.columns) == want_cols


def test_natural_join_with_on_or_using_is_refused(engines):
    db, sq = engines
    for sql in (
        "SELECT * FROM emp NATURAL JOIN dept ON emp.id = dept.dept_id",
        "SELECT * FROM emp NATURAL JOIN dept USING (city)",
    ):
        with pytest.raises(sqlite3.OperationalError, match="NATURAL join may not have"):
            sq.execute(sql)
        with pytest.raises(SQLError, match="NATURAL join may not have an ON or USING clause"):
            db.execute(sql)


def test_natural_join_through_dbapi_description(tmp_path):
    import toondb.dbapi as dbapi

    con = dbapi.connect(str(tmp_path / "d"))
    cur = con.cursor()
    for sql in SCHEMA:
        cur.execute(sql)
    cur.execute("SELECT * FROM emp NATURAL JOIN dept ORDER BY id")
    assert [d[0] for d in cur.description] == ["id", "name", "dept_id", "city", "dname"]
    assert cur.fetchall() == [(1, "ann", 10, "oslo", "eng"), (3, "cy", 20, "rome", "ops")]
    con.close()
