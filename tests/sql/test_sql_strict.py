"""STRICT tables against stdlib sqlite3: the six types, the value each stores after
its affinity, the "cannot store ... value in ... column" errors (INSERT and
UPDATE), ANY storing values as given, the DDL errors, and the schema text."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toondb import Database
from toondb.errors import ConstraintError, SQLError

SCHEMA = "CREATE TABLE t (a INT, b REAL, c TEXT, d BLOB, e ANY, f INTEGER, g int) STRICT"
VALUES = [None, 1, 1.0, 1.5, -0.0, "1", "1.5", "x", b"x", " 2", "1e3", "0x10", "", "9223372036854775808"]  # fmt: skip


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
        rows = c.execute(sql, params)
        rows = rows.rows if hasattr(rows, "rows") else rows.fetchall()
        return ("ok", [tuple(r) for r in rows])
    except (sqlite3.IntegrityError, ConstraintError) as exc:
        return ("constraint", str(exc))


def _both(pair, sql, params=()):
    db, sq = pair
    got, want = _run(db, sql, params), _run(sq, sql, params)
    assert got == want, (sql, params)


@pytest.mark.parametrize("col", "abcdefg")
def test_insert_and_update_like_sqlite(pair, col):
    for v in VALUES:
        _both(pair, f"INSERT INTO t ({col}) VALUES (?)", (v,))
    _both(pair, f"SELECT {col}, typeof({col}) FROM t ORDER BY rowid")
    for v in VALUES:
        _both(pair, f"UPDATE t SET {col} = ? WHERE rowid = 1", (v,))
        _both(pair, f"SELECT {col}, typeof({col}) FROM t WHERE rowid = 1")


@given(st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False),
                          st.text(max_size=5), st.binary(max_size=3)), min_size=7, max_size=7))  # fmt: skip
@settings(max_examples=60, deadline=None)
def test_generated_rows(tmp_path_factory, row):
    path = tmp_path_factory.mktemp("strict")
    db = Database.open(str(path / "db"))
    sq = sqlite3.connect(":memory:")
    try:
        for c in (db, sq):
            c.execute(SCHEMA)
        sql = "INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?)"
        assert _run(db, sql, row) == _run(sq, sql, row)
        sel = "SELECT a, b, c, d, e, f, g, typeof(e) FROM t"
        assert _run(db, sel) == _run(sq, sel)
    finally:
        db.close()
        sq.close()


@pytest.mark.parametrize(
    ("ddl", "message"),
    [
        ("CREATE TABLE s (a VARCHAR(10)) STRICT", 'unknown datatype for s.a: "VARCHAR(10)"'),
        ("CREATE TABLE s (a) STRICT", "missing datatype for s.a"),
        ("CREATE TABLE s (a NUMERIC) STRICT", 'unknown datatype for s.a: "NUMERIC"'),
    ],
)
def test_ddl_errors(tmp_path, ddl, message):
    sq = sqlite3.connect(":memory:")
    with pytest.raises(sqlite3.Error, match=message.replace("(", r"\(").replace(")", r"\)")):
        sq.execute(ddl)
    db = Database.open(str(tmp_path / "db"))
    try:
        with pytest.raises(SQLError, match=message.replace("(", r"\(").replace(")", r"\)")):
            db.execute(ddl)
    finally:
        db.close()


def test_strict_survives_reopen_and_shows_in_schema(tmp_path):
    db = Database.open(str(tmp_path / "db"))
    db.execute("CREATE TABLE s (id INTEGER PRIMARY KEY, n INT) STRICT")
    db.close()
    db = Database.open(str(tmp_path / "db"))
    try:
        sql = db.execute("SELECT sql FROM sqlite_schema WHERE name = 's'").rows[0][0]
        assert sql.rstrip(";").endswith("STRICT")
        with pytest.raises(ConstraintError, match="cannot store TEXT value in INT column s.n"):
            db.execute("INSERT INTO s (n) VALUES ('x')")
        db.execute("INSERT INTO s (n) VALUES ('7')")
        assert db.execute("SELECT n, typeof(n) FROM s").rows == [(7, "integer")]
    finally:
        db.close()


def test_add_column_to_a_strict_table_checks_its_type(tmp_path):
    db = Database.open(str(tmp_path / "db"))
    try:
        db.execute("CREATE TABLE s (a INT) STRICT")
        with pytest.raises(SQLError, match='unknown datatype for s.c: "varchar"'):
            db.execute("ALTER TABLE s ADD COLUMN c varchar")
        db.execute("ALTER TABLE s ADD COLUMN d TEXT")
        with pytest.raises(ConstraintError, match="cannot store BLOB value in TEXT column s.d"):
            db.execute("INSERT INTO s (d) VALUES (x'00')")
    finally:
        db.close()
