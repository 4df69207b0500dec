"""Whole-database dumps (toondb/sql/dump.py: Database/Transaction.iterdump, the
DB-API's Connection.iterdump, `toondb dump`, the shell's .dump), in sqlite3's
iterdump() form: toondb loads its own dump back to the same rows and schema;
sqlite3 loads it to the rows sqlite3 itself holds after the same statements;
and a sqlite3 dump goes through toondb and back unchanged."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import numpy as np

import toondb.dbapi as dbapi
from toondb import Database

PORTABLE = """
CREATE TABLE people (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, photo BLOB,
                     score REAL, note);
CREATE TABLE "odd ""q"" name" ("a b" TEXT, c INTEGER DEFAULT 3, g AS (c * 2));
CREATE UNIQUE INDEX people_name ON people(name);
CREATE VIEW good AS SELECT name FROM people WHERE score > 0;
INSERT INTO people (name, photo, score, note) VALUES
    ('it''s; Ann', X'00FF', 1.5, NULL), ('日本', NULL, NULL, 'x'),
    ('z', X'', -2.5e-7, 7), ('big', NULL, 1e308, -9223372036854775808), ('gone', NULL, 0, 0);
DELETE FROM people WHERE name = 'gone';
INSERT INTO "odd ""q"" name" ("a b") VALUES ('new
line'), (NULL);
"""
TABLES = ["people", '"odd ""q"" name"', "good", "sqlite_sequence"]


def _rows(con, table):
    out = con.execute(f"SELECT * FROM {table} ORDER BY 1")
    return [tuple(r) for r in (out.fetchall() if hasattr(out, "fetchall") else out.rows)]


def test_toondb_dump_loads_into_sqlite3_as_sqlite3_built_it(tmp_path):
    db = Database.open(str(tmp_path / "db"))
    db.executescript(PORTABLE)
    built = sqlite3.connect(":memory:")
    built.executescript(PORTABLE)
    loaded = sqlite3.connect(":memory:")
    loaded.executescript("\n".join(db.iterdump()))
    for t in TABLES:
        assert _rows(loaded, t) == _rows(built, t) == _rows(db, t), t
    loaded.execute("INSERT INTO people (name) VALUES ('next')")  # AUTOINCREMENT goes on
    built.execute("INSERT INTO people (name) VALUES ('next')")
    assert _rows(loaded, "people") == _rows(built, "people")
    db.close()


def test_sqlite3_dump_through_toondb_and_back(tmp_path):
    src = sqlite3.connect(":memory:")
    src.executescript(PORTABLE)
    db = Database.open(str(tmp_path / "db"))
    db.executescript("\n".join(src.iterdump()))
    back = sqlite3.connect(":memory:")
    back.executescript("\n".join(db.iterdump()))
    for t in TABLES:
        assert _rows(back, t) == _rows(src, t), t
    db.close()


def test_toondb_dump_round_trip_with_its_own_features(tmp_path):
    db = Database.open(str(tmp_path / "a"))
    db.executescript(
        PORTABLE
        + """
        CREATE VIRTUAL TABLE docs USING fts5(title, content);
        INSERT INTO docs VALUES ('hello there', 'first'), ('general kenobi', 'second');
        CREATE TABLE emb (id INTEGER PRIMARY KEY, v VECTOR(3));
        INSERT INTO emb VALUES (1, '[1, 0, 0]'), (2, '[0, 1, 0]'), (3, '[0.9, 0.1, 0]');
        CREATE INDEX emb_v ON emb USING hnsw (v);
        """
    )
    copy = Database.open(str(tmp_path / "b"))
    copy.executescript("\n".join(db.iterdump()))
    schema = "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name"
    assert copy.execute(schema).rows == db.execute(schema).rows
    for t in TABLES + ["docs"]:
        assert _rows(copy, t) == _rows(db, t), t
    search = "SELECT rowid, title FROM docs WHERE docs MATCH 'kenobi'"
    assert copy.execute(search).rows == db.execute(search).rows == [(2, "general kenobi")]
    knn = "SELECT id FROM emb ORDER BY vec_distance_cosine(v, '[1, 0, 0]') LIMIT 2"
    assert copy.execute(knn).rows == db.execute(knn).rows == [(1,), (3,)]
    a = [np.asarray(r[1]) for r in _rows(db, "emb")]
    b = [np.asarray(r[1]) for r in _rows(copy, "emb")]
    assert all((x == y).all() for x, y in zip(a, b))
    assert list(copy.iterdump()) == list(db.iterdump())
    db.close()
    copy.close()


def test_dbapi_iterdump_sees_the_open_transaction(tmp_path):
    con = dbapi.connect(str(tmp_path / "db"))
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.execute("INSERT INTO t VALUES ('uncommitted')")  # opens the transaction
    dump = list(con.iterdump())
    assert "INSERT INTO \"t\" VALUES('uncommitted');" in dump
    sq = sqlite3.connect(":memory:")
    sq.execute("CREATE TABLE t (x)")
    sq.execute("INSERT INTO t VALUES ('uncommitted')")
    assert dump[0] == next(sq.iterdump()) and dump[-1] == list(sq.iterdump())[-1]
    con.rollback()
    con.close()


def test_cli_dump_and_shell_dump(tmp_path):
    db = Database.open(str(tmp_path / "db"))
    db.executescript(PORTABLE)
    want = "\n".join(db.iterdump()) + "\n"
    db.close()

    def toondb(*args, input=None):
        return subprocess.run(
            [sys.executable, "-m", "toondb", *map(str, args)],
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
        )

    out = toondb("dump", tmp_path / "db")
    assert out.returncode == 0 and out.stdout == want
    shell = toondb("shell", tmp_path / "db", input=".dump\n")
    assert shell.returncode == 0 and want in shell.stdout
    load = toondb("sql", tmp_path / "copy", input=out.stdout)
    assert load.returncode == 0, load.stderr
    copy = Database.open(str(tmp_path / "copy"))
    assert "\n".join(copy.iterdump()) + "\n" == want
    copy.close()
