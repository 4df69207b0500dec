"""ALTER TABLE ADD COLUMN ... GENERATED ALWAYS AS (...) VIRTUAL, against sqlite3:
existing rows read the computed value (toondb stores it, so they get it now),
later writes keep it current, a STORED column cannot be added (SQLite's rule),
and a CHECK or NOT NULL the new values break refuses the statement and changes
nothing."""

from __future__ import annotations

import sqlite3

import pytest

from toondb import Database
from toondb.errors import SQLError


@pytest.fixture
def pair(tmp_path):
    db = Database.open(str(tmp_path / "db"))
    sq = sqlite3.connect(":memory:", isolation_level=None)
    for con in (db, sq):
        con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a INT, b TEXT)")
        con.execute("CREATE INDEX t_a ON t(a)")
        for i in range(20):
            con.execute("INSERT INTO t (a, b) VALUES (?, ?)", (i % 5 if i % 7 else None, f"r{i}"))
    yield db, sq
    db.close()
    sq.close()


def _same(pair, sql):
    db, sq = pair
    assert db.execute(sql).rows == sq.execute(sql).fetchall(), sql


def test_existing_and_new_rows_read_the_computed_value(pair):
    db, sq = pair
    for con in (db, sq):
        con.execute("ALTER TABLE t ADD COLUMN c INT GENERATED ALWAYS AS (a * 10 + id) VIRTUAL")
        con.execute("ALTER TABLE t ADD COLUMN d TEXT AS (upper(b) || c)")
        con.execute("INSERT INTO t (a, b) VALUES (9, 'new')")
        con.execute("UPDATE t SET a = a + 1 WHERE id % 3 = 0")
    _same(pair, "SELECT * FROM t ORDER BY id")
    _same(pair, "SELECT id, c FROM t WHERE a = 2 ORDER BY id")
    assert db.check(deep=True)["sql_rows"] == 21


def test_a_stored_column_cannot_be_added(pair):
    db, sq = pair
    sql = "ALTER TABLE t ADD COLUMN c INT GENERATED ALWAYS AS (a + 1) STORED"
    with pytest.raises(sqlite3.OperationalError, match="cannot add a STORED column"):
        sq.execute(sql)
    with pytest.raises(SQLError, match="cannot add a STORED column"):
        db.execute(sql)
    _same(pair, "SELECT * FROM t ORDER BY id")


def test_a_check_the_values_break_changes_nothing(pair):
    db, _ = pair
    before = db.execute("SELECT * FROM t ORDER BY id").rows
    with pytest.raises(SQLError):
        db.execute("ALTER TABLE t ADD COLUMN c INT AS (a * 2) VIRTUAL CHECK (c < 6)")
    with pytest.raises(SQLError):
        db.execute("ALTER TABLE t ADD COLUMN c INT AS (a * 2) VIRTUAL NOT NULL")
    assert db.execute("SELECT * FROM t ORDER BY id").rows == before
    assert [r[1] for r in db.execute("PRAGMA table_info(t)").rows] == ["id", "a", "b"]
