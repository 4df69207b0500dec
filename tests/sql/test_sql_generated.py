"""Generated columns against stdlib sqlite3: GENERATED ALWAYS AS (...) VIRTUAL /
STORED and the short AS (...), computed on INSERT, UPDATE and upsert, with their
declared affinity, in WHERE and in an index; not insertable or updatable; PRAGMA
table_info leaves them out and table_xinfo marks them hidden 2 (VIRTUAL) or 3
(STORED)."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toondb import Database
from toondb.errors import SQLError

SCHEMA = (
    "CREATE TABLE t (id INTEGER PRIMARY KEY, a INT, b AS (a * 2), "
    "c TEXT GENERATED ALWAYS AS (a || 'x') STORED, d, "
    "e INTEGER GENERATED ALWAYS AS (b + 1) VIRTUAL, f GENERATED ALWAYS AS (lower(d)))"
)


@pytest.fixture
def pair(tmp_path):
    db = Database.open(str(tmp_path / "db"))
    sq = sqlite3.connect(":memory:")
    for c in (db, sq):
        c.execute(SCHEMA)
    yield db, sq
    db.close()
    sq.close()


def _run(c, sql, params=()):
    try:
        r = c.execute(sql, params)
        return ("ok", [tuple(x) for x in (r.rows if hasattr(r, "rows") else r.fetchall())])
    except (sqlite3.Error, SQLError) as exc:
        return ("error", str(exc))


STATEMENTS = [
    "INSERT INTO t (a, d) VALUES (2, 'AbC')",
    "INSERT INTO t VALUES (NULL, 3, 'Q')",
    "INSERT INTO t (a, d) VALUES ('7', NULL)",
    "INSERT INTO t (a) VALUES (NULL)",
    "UPDATE t SET a = a + 10 WHERE a = 2",
    "UPDATE t SET d = 'ZZ' WHERE id = 2",
    "INSERT INTO t (id, a, d) VALUES (2, 100, 'up') ON CONFLICT (id) DO UPDATE SET a = excluded.a",
    "SELECT * FROM t ORDER BY id",
    "SELECT id, typeof(b), typeof(c), typeof(e) FROM t ORDER BY id",
    "SELECT id FROM t WHERE b > 10 ORDER BY id",
    "SELECT id FROM t WHERE c = '3x'",
    "CREATE INDEX t_b ON t (b)",
    "SELECT id, b FROM t WHERE b = 224",
    "UPDATE t SET a = 50 WHERE id = 1",
    "SELECT id, b FROM t WHERE b = 100",
    "PRAGMA table_info(t)",
    "PRAGMA table_xinfo(t)",
]

ERRORS = [
    "INSERT INTO t VALUES (NULL, 1, 2, 3)",
    "INSERT INTO t (a, b) VALUES (1, 2)",
    "UPDATE t SET c = 'no'",
]


def test_like_sqlite(pair):
    db, sq = pair
    for sql in STATEMENTS:
        assert _run(db, sql) == _run(sq, sql), sql


@pytest.mark.parametrize("sql", ERRORS)
def test_not_insertable_or_updatable(pair, sql):
    db, sq = pair
    got, want = _run(db, sql), _run(sq, sql)
    assert got[0] == want[0] == "error"
    assert got[1] == want[1]


def test_definition_survives_reopen(tmp_path):
    db = Database.open(str(tmp_path / "db"))
    db.execute(SCHEMA)
    db.close()
    db = Database.open(str(tmp_path / "db"))
    try:
        db.execute("INSERT INTO t (a, d) VALUES (4, 'W')")
        assert db.execute("SELECT b, c, e, f FROM t").rows == [(8, "4x", 9, "w")]
        sql = db.execute("SELECT sql FROM sqlite_schema WHERE name = 't'").rows[0][0]
        assert "GENERATED ALWAYS AS (a || 'x') STORED" in sql
    finally:
        db.close()


@given(st.lists(st.tuples(st.one_of(st.none(), st.integers(-50, 50), st.text(max_size=3)),
                          st.one_of(st.none(), st.text(max_size=3))), max_size=6))  # fmt: skip
@settings(max_examples=40, deadline=None)
def test_generated_rows(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("gen")
    db = Database.open(str(path / "db"))
    sq = sqlite3.connect(":memory:")
    try:
        for c in (db, sq):
            c.execute(SCHEMA)
            for r in rows:
                c.execute("INSERT INTO t (a, d) VALUES (?, ?)", r)
        sel = "SELECT *, typeof(b), typeof(e) FROM t ORDER BY id"
        assert _run(db, sel) == _run(sq, sel)
    finally:
        db.close()
        sq.close()


def test_add_stored_generated_column_is_refused(tmp_path):
    # a VIRTUAL one can be added (test_sql_add_generated.py); a STORED one, as SQLite, not
    db = Database.open(str(tmp_path / "db"))
    try:
        db.execute("CREATE TABLE s (a INT)")
        with pytest.raises(SQLError, match="cannot add a STORED column"):
            db.execute("ALTER TABLE s ADD COLUMN b AS (a + 1) STORED")
    finally:
        db.close()
