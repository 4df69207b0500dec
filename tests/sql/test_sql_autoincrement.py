"""AUTOINCREMENT and sqlite_sequence against stdlib sqlite3: random runs of
inserts (new, explicit, OR REPLACE, OR IGNORE, from SELECT, executemany),
deletes, failing statements and rolled-back transactions give the same rowids
and the same sqlite_sequence; a dump of sqlite3's iterdump() loads and goes on
numbering where SQLite would."""

from __future__ import annotations

import random
import sqlite3

import pytest

from toondb import Database
from toondb.errors import SQLError

SCHEMA = [
    "CREATE TABLE a (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT UNIQUE)",
    "CREATE TABLE b (id INTEGER PRIMARY KEY AUTOINCREMENT, v INTEGER CHECK (v >= 0))",
    "CREATE TABLE plain (id INTEGER PRIMARY KEY, v)",
]
READS = [
    "SELECT * FROM a ORDER BY id",
    "SELECT * FROM b ORDER BY id",
    "SELECT * FROM plain ORDER BY id",
    "SELECT name, seq FROM sqlite_sequence ORDER BY name",
]


def _run(con, sql, params=()):
    try:
        cur = con.execute(sql, params)
    except (sqlite3.Error, SQLError):
        return "error"
    rows = cur.fetchall() if hasattr(cur, "fetchall") else cur.rows
    return [tuple(r) for r in rows]


def _statement(rnd: random.Random) -> str:
    t = rnd.choice(["a", "b", "plain"])
    k = rnd.randrange(6)
    v = rnd.randrange(-2, 40)
    if k == 0:
        return f"DELETE FROM {t} WHERE id IN (SELECT max(id) FROM {t})"
    if k == 1:
        return f"INSERT INTO {t} (id, v) VALUES ({rnd.randrange(1, 60)}, {v})"
    if k == 2:
        return f"INSERT OR REPLACE INTO {t} (id, v) VALUES ({rnd.randrange(1, 60)}, {v})"
    if k == 3:
        return f"INSERT OR IGNORE INTO {t} (v) VALUES ({v}), ({v + 1})"
    if k == 4:
        return f"INSERT INTO {t} (v) SELECT v + 100 FROM {t} WHERE id % 3 = {v % 3}"
    return f"INSERT INTO {t} (v) VALUES ({v})"


@pytest.mark.parametrize("seed", range(6))
def test_random_runs_number_rows_as_sqlite(tmp_path, seed):
    rnd = random.Random(seed)
    db = Database.open(str(tmp_path / "db"))
    sq = sqlite3.connect(":memory:", isolation_level=None)
    for sql in SCHEMA:
        db.execute(sql)
        sq.execute(sql)
    for step in range(150):
        if rnd.random() < 0.1:  # a transaction that rolls back
            stmts = [_statement(rnd) for _ in range(3)]
            for con in (db, sq):
                con.execute("BEGIN")
                for sql in stmts:
                    _run(con, sql)
                con.execute("ROLLBACK")
            continue
        sql = _statement(rnd)
        assert (_run(db, sql) == "error") == (_run(sq, sql) == "error"), (step, sql)
    for sql in READS:
        assert _run(db, sql) == _run(sq, sql), sql
    db.close()


def test_insert_or_ignore_skips_a_row_a_check_refuses(tmp_path):
    db = Database.open(str(tmp_path / "db"))
    sq = sqlite3.connect(":memory:", isolation_level=None)
    for con in (db, sq):
        con.execute("CREATE TABLE s (a INT, b TEXT CHECK (b <> 'no') NOT NULL) STRICT")
        con.execute("INSERT OR IGNORE INTO s VALUES (1, 'no'), (2, NULL), (3, 'ok')")
        with pytest.raises((sqlite3.Error, SQLError), match="cannot store TEXT value"):
            con.execute("INSERT OR IGNORE INTO s VALUES ('x', 'y')")  # a STRICT type stays an error
    assert _run(db, "SELECT * FROM s") == _run(sq, "SELECT * FROM s") == [(3, "ok")]
    db.close()


def test_executemany_and_a_failing_statement(tmp_path):
    db = Database.open(str(tmp_path / "db"))
    sq = sqlite3.connect(":memory:", isolation_level=None)
    for con in (db, sq):
        con.execute(SCHEMA[1])
        con.executemany("INSERT INTO b (v) VALUES (?)", [(1,), (2,), (3,)])
        with pytest.raises((sqlite3.IntegrityError, SQLError)):
            con.execute("INSERT INTO b (v) VALUES (4), (-1)")  # the CHECK fails: undone
        con.execute("DELETE FROM b WHERE id = 3")
        con.execute("INSERT INTO b (v) VALUES (5)")
    for sql in ("SELECT * FROM b ORDER BY id", "SELECT * FROM sqlite_sequence"):
        assert _run(db, sql) == _run(sq, sql)
    db.close()


def test_sqlite_dump_with_autoincrement_loads_and_numbers_on(tmp_path):
    sq = sqlite3.connect(":memory:", isolation_level=None)
    sq.executescript(
        """
        CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, b TEXT);
        INSERT INTO t (b) VALUES ('x'), ('y'), ('z');
        DELETE FROM t WHERE id = 3;
        """
    )
    db = Database.open(str(tmp_path / "db"))
    db.executescript("\n".join(sq.iterdump()))
    for con in (db, sq):
        con.execute("INSERT INTO t (b) VALUES ('w')")
    for sql in ("SELECT * FROM t ORDER BY id", "SELECT * FROM sqlite_sequence"):
        assert _run(db, sql) == _run(sq, sql)
    db.close()


def test_the_sequence_table_follows_drop_and_rename_and_stays(tmp_path):
    db = Database.open(str(tmp_path / "db"))
    sq = sqlite3.connect(":memory:", isolation_level=None)
    for con in (db, sq):
        con.execute(SCHEMA[0])
        con.execute(SCHEMA[1])
        con.execute("INSERT INTO a (v) VALUES ('p')")
        con.execute("INSERT INTO b (v) VALUES (7)")
        con.execute("ALTER TABLE a RENAME TO a2")
        con.execute("DROP TABLE b")
        with pytest.raises((sqlite3.Error, SQLError), match="may not be dropped"):
            con.execute("DROP TABLE sqlite_sequence")
        with pytest.raises((sqlite3.Error, SQLError), match="reserved for internal use"):
            con.execute("CREATE TABLE sqlite_stat9 (x)")
    assert _run(db, READS[3]) == _run(sq, READS[3]) == [("a2", 1)]
    db.close()
