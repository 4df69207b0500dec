"""ALTER TABLE RENAME COLUMN / DROP COLUMN and what names the column (CHECK
constraints, generated columns, foreign keys, views), against stdlib sqlite3:
after a rename the schema still works and reads the same rows; a drop that
would break something is refused and changes nothing."""

from __future__ import annotations

import sqlite3

import pytest

from toondb import Database
from toondb.errors import SQLError

SCHEMA = [
    "CREATE TABLE t (a INTEGER, b INTEGER CHECK (b > a), c AS (a * 2), d TEXT DEFAULT 'x')",
    "CREATE TABLE p (id INTEGER PRIMARY KEY, ta INTEGER REFERENCES t(a))",
    "CREATE UNIQUE INDEX t_a ON t(a)",
    'CREATE VIEW v AS SELECT a, b, t.a + 1 AS a1 FROM t WHERE a > 0 ORDER BY "a"',
    "CREATE VIEW w AS SELECT x.a, p.id FROM t AS x JOIN p ON p.ta = x.a",
    "CREATE VIEW u (first, second) AS SELECT a, upper(d) FROM t",
    "INSERT INTO t (a, b) VALUES (1, 2), (3, 5)",
    "INSERT INTO p VALUES (10, 1), (11, 3)",
]
READS = [
    "SELECT * FROM t ORDER BY 1",
    "SELECT * FROM v",
    "SELECT * FROM w ORDER BY 2",
    "SELECT * FROM u ORDER BY 1",
]


def _run(con, sql):
    try:
        cur = con.execute(sql)
    except (sqlite3.Error, SQLError) as e:
        return ("error", type(e).__name__)
    rows = cur.fetchall() if hasattr(cur, "fetchall") else cur.rows
    return [tuple(r) for r in rows]


@pytest.fixture
def engines(tmp_path):
    db = Database.open(str(tmp_path / "db"))
    sq = sqlite3.connect(":memory:", isolation_level=None)
    for sql in SCHEMA:
        db.execute(sql)
        sq.execute(sql)
    yield db, sq
    db.close()
    sq.close()


def _failed(outcome):
    return isinstance(outcome, tuple) and outcome[0] == "error"


def _same(db, sq, sql):
    got, want = _run(db, sql), _run(sq, sql)
    assert _failed(got) == _failed(want), (sql, got, want)
    if not _failed(want):
        assert got == want, sql
    return got


@pytest.mark.parametrize("new", ["z", "Key", "two words", 'q"uote'])
def test_rename_column_keeps_checks_generated_columns_foreign_keys_and_views(engines, new):
    db, sq = engines
    quoted = '"' + new.replace('"', '""') + '"'
    _same(db, sq, f"ALTER TABLE t RENAME COLUMN a TO {quoted}")
    for sql in READS:
        _same(db, sq, sql)
    # the CHECK and the generated column read the renamed column
    _same(db, sq, f"INSERT INTO t ({quoted}, b) VALUES (7, 9)")
    assert _failed(_same(db, sq, f"INSERT INTO t ({quoted}, b) VALUES (8, 1)"))
    _same(db, sq, f"SELECT c FROM t WHERE {quoted} = 7")
    # the foreign key of p references the renamed column
    db.execute("PRAGMA foreign_keys = ON")
    sq.execute("PRAGMA foreign_keys = ON")
    assert _failed(_same(db, sq, "INSERT INTO p VALUES (12, 99)"))
    _same(db, sq, "INSERT INTO p VALUES (13, 7)")
    for sql in READS:
        _same(db, sq, sql)


def test_rename_column_rewrites_the_view_text_as_sqlite_does(engines):
    db, sq = engines
    for con in (db, sq):
        con.execute("ALTER TABLE t RENAME COLUMN a TO z")
    sql = "SELECT name, sql FROM sqlite_master WHERE type = 'view' ORDER BY name"
    assert _run(db, sql) == _run(sq, sql)


def test_a_view_where_the_name_may_be_another_sources_is_not_guessed(engines):
    db, sq = engines
    db.execute("CREATE VIEW s AS SELECT a FROM (SELECT a FROM t)")
    with pytest.raises(SQLError, match="view s names it without a table"):
        db.execute("ALTER TABLE t RENAME COLUMN a TO z")
    assert _run(db, "SELECT a FROM t ORDER BY 1") == [(1,), (3,)]
    assert _run(db, "SELECT * FROM s ORDER BY 1") == [(1,), (3,)]


def test_drop_column_refuses_what_would_break_and_changes_nothing(engines):
    db, sq = engines
    before = _run(db, "SELECT * FROM t ORDER BY 1")
    for sql in (
        "ALTER TABLE t DROP COLUMN a",  # index, generated column, CHECK, FK, views
        "ALTER TABLE t DROP COLUMN b",  # a CHECK that reads a too; view v
        "ALTER TABLE p DROP COLUMN ta",  # its FOREIGN KEY
    ):
        assert _failed(_same(db, sq, sql))
    assert _run(db, "SELECT * FROM t ORDER BY 1") == before
    for sql in READS:
        _same(db, sq, sql)


def test_drop_column_takes_its_own_check_and_breaks_no_view(engines):
    db, sq = engines
    for con in (db, sq):
        con.execute("CREATE TABLE k (x INTEGER, y INTEGER CHECK (y >= 0), g AS (x + 1))")
        con.execute("INSERT INTO k (x, y) VALUES (1, 2)")
    _same(db, sq, "ALTER TABLE k DROP COLUMN y")
    _same(db, sq, "INSERT INTO k (x) VALUES (5)")
    _same(db, sq, "SELECT * FROM k ORDER BY 1")
    assert _failed(_same(db, sq, "ALTER TABLE k DROP COLUMN x"))  # the generated g
    assert _failed(_same(db, sq, "ALTER TABLE t DROP COLUMN d"))  # view u reads it
    _same(db, sq, "SELECT * FROM u ORDER BY 1")


def test_rename_table_renames_it_in_views_and_checks(engines):
    db, sq = engines
    for con in (db, sq):
        con.execute("CREATE TABLE q (t INTEGER, y INTEGER CHECK (y > q.t))")
        con.execute("INSERT INTO q VALUES (1, 2), (3, 4)")
        con.execute("CREATE VIEW qv AS SELECT q.t, t.b FROM q, t WHERE t.a = q.t")
        con.execute(
            "CREATE VIEW qw AS SELECT x.t FROM (q AS x JOIN t ON t.a = x.t) "
            "WHERE x.t IN (SELECT t FROM q)"
        )
    _same(db, sq, "ALTER TABLE q RENAME TO q2")
    _same(db, sq, "ALTER TABLE t RENAME TO t2")
    for sql in ("SELECT * FROM qv ORDER BY 1", "SELECT * FROM qw ORDER BY 1", *READS[1:]):
        _same(db, sq, sql)
    assert _failed(_same(db, sq, "INSERT INTO q2 VALUES (5, 1)"))  # the CHECK, renamed
    _same(db, sq, "INSERT INTO q2 VALUES (5, 6)")
    _same(db, sq, "SELECT * FROM qv ORDER BY 1")
