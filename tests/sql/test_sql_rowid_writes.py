"""UPDATE and DELETE of the one row a rowid names (dml.py's by_rowid path, taken
when nothing but the row and its index entries is written), against stdlib
sqlite3: the rows, the index entries (read back through the index), rowcounts,
probes that are not integers, and the undo of a statement inside a transaction."""

from __future__ import annotations

import sqlite3

import pytest

from toondb import Database

SCHEMA = [
    "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b TEXT, c REAL, d)",
    "CREATE INDEX t_a ON t(a)",
    "CREATE INDEX t_bc ON t(b, c)",
]
ROWS = [(i, i * 7 % 50, f"n{i}", i * 0.5, None if i % 3 else i) for i in range(1, 41)]
STATEMENTS = [
    ("UPDATE t SET c = ? WHERE id = ?", (2.5, 3)),
    ("UPDATE t SET a = ? WHERE id = ?", ("12", 4)),  # INTEGER affinity: 12
    ("UPDATE t SET b = ?, a = a + 1 WHERE id = ?", (7, 5)),  # TEXT affinity: '7'
    ("UPDATE t SET c = ? WHERE id = ?", ("1e3", 6)),  # REAL affinity: 1000.0
    ("UPDATE t SET d = ? WHERE id = ?", (b"\x00x", 7)),
    ("UPDATE t SET c = c * 2 WHERE id = ?", ("8",)),  # a text probe that is an integer
    ("UPDATE t SET c = 0 WHERE id = ?", (9.0,)),  # an integral real probe
    ("UPDATE t SET c = 0 WHERE id = ?", (9.5,)),  # no row
    ("UPDATE t SET c = 0 WHERE id = ?", (None,)),  # no row
    ("UPDATE t SET c = 0 WHERE id = ?", (1000,)),  # no row
    ("UPDATE t SET a = NULL, b = NULL WHERE id = ?", (10,)),
    ("UPDATE t SET a = ? WHERE rowid = ?", (-3, 11)),
    ("DELETE FROM t WHERE id = ?", (12,)),
    ("DELETE FROM t WHERE id = ?", ("13",)),
    ("DELETE FROM t WHERE id = ?", (12,)),  # gone already
    ("DELETE FROM t WHERE rowid = ?", (14.0,)),
]
QUERIES = [
    "SELECT * FROM t ORDER BY id",
    "SELECT id, a FROM t WHERE a BETWEEN -5 AND 60 ORDER BY a, id",  # through t_a
    "SELECT id, b, c FROM t WHERE b >= '' ORDER BY b, c, id",  # through t_bc
    "SELECT count(*) FROM t WHERE a IS NULL",
]


def _load(con) -> None:
    for sql in SCHEMA:
        con.execute(sql)
    for r in ROWS:
        con.execute("INSERT INTO t VALUES (?, ?, ?, ?, ?)", r)


def _answers(run) -> list[list[tuple]]:
    return [[tuple(r) for r in run(q)] for q in QUERIES]


@pytest.fixture
def pair(db_path):
    sq = sqlite3.connect(":memory:", isolation_level=None)
    _load(sq)
    with Database.open(db_path) as db:
        _load(db)
        yield db, sq
    sq.close()


def test_single_row_writes_by_rowid_match_sqlite(pair):
    db, sq = pair
    for sql, params in STATEMENTS:
        got = db.execute(sql, params).rowcount
        want = sq.execute(sql, params).rowcount
        assert got == want, (sql, params)
    assert _answers(lambda q: db.execute(q).rows) == _answers(lambda q: sq.execute(q).fetchall())
    db.check(deep=True)


def test_single_row_writes_by_rowid_roll_back(pair):
    db, sq = pair
    before = _answers(lambda q: db.execute(q).rows)
    db.execute("BEGIN")
    for sql, params in STATEMENTS:
        db.execute(sql, params)
    db.execute("ROLLBACK")
    assert _answers(lambda q: db.execute(q).rows) == before
    # a savepoint rolled back undoes the statements after it only
    db.execute("BEGIN")
    db.execute(*STATEMENTS[0])
    sq.execute(*STATEMENTS[0])
    db.execute("SAVEPOINT s")
    for sql, params in STATEMENTS[1:]:
        db.execute(sql, params)
    db.execute("ROLLBACK TO s")
    db.execute("COMMIT")
    assert _answers(lambda q: db.execute(q).rows) == _answers(lambda q: sq.execute(q).fetchall())
    db.check(deep=True)


def test_a_failed_statement_by_rowid_changes_nothing(db):
    db.execute("CREATE TABLE u (id INTEGER PRIMARY KEY, n INTEGER NOT NULL, s TEXT UNIQUE)")
    db.execute("INSERT INTO u VALUES (1, 1, 'x'), (2, 2, 'y')")
    with pytest.raises(Exception, match="NOT NULL"):
        db.execute("UPDATE u SET n = NULL WHERE id = ?", (1,))
    with pytest.raises(Exception, match="UNIQUE"):
        db.execute("UPDATE u SET s = 'y' WHERE id = ?", (1,))
    assert db.execute("SELECT * FROM u ORDER BY id").rows == [(1, 1, "x"), (2, 2, "y")]
