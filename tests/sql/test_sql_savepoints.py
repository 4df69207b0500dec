"""SQL's SAVEPOINT / RELEASE / ROLLBACK TO through Database.execute_sql, against
stdlib sqlite3 in autocommit mode (each statement as the library sends it)."""

from __future__ import annotations

import sqlite3

from toondb import Database

SCRIPT = """CREATE TABLE t (x PRIMARY KEY, y)
RELEASE nope
SAVEPOINT one
INSERT INTO t VALUES (1, 'a')
SAVEPOINT two
UPDATE t SET y = 'b'
INSERT INTO t VALUES (2, 'c')
SELECT * FROM t ORDER BY x
ROLLBACK TO two
SELECT * FROM t ORDER BY x
INSERT INTO t VALUES (1, 'dup')
SAVEPOINT three
CREATE TABLE u (z)
INSERT INTO u VALUES (7)
ROLLBACK TO SAVEPOINT three
SELECT * FROM u
RELEASE two
ROLLBACK TO one
SELECT * FROM t
RELEASE one
SELECT * FROM t
BEGIN
INSERT INTO t VALUES (10, 'x')
SAVEPOINT inner
DELETE FROM t
RELEASE inner
SELECT count(*) FROM t
COMMIT
SELECT count(*) FROM t""".splitlines()


def _outcomes(run, in_txn):
    out = []
    for sql in SCRIPT:
        try:
            out.append((sql, run(sql), in_txn()))
        except Exception:  # noqa: BLE001 - compared: which statements fail
            out.append((sql, "error", in_txn()))
    return out


def test_savepoint_statements_as_sqlite(tmp_path):
    ref = sqlite3.connect(":memory:", isolation_level=None)
    want = _outcomes(lambda s: ref.execute(s).fetchall(), lambda: ref.in_transaction)
    with Database.open(tmp_path / "db") as db:
        got = _outcomes(lambda s: db.execute_sql(s).rows, lambda: db.in_transaction)
    assert got == want


def test_savepoint_statements_inside_a_transaction_object(tmp_path):
    with Database.open(tmp_path / "db") as db:
        db.execute_sql("CREATE TABLE t (x)")
        with db.transaction() as txn:
            txn.execute_sql("INSERT INTO t VALUES (1)")
            txn.execute_sql("SAVEPOINT s")
            txn.execute_sql("INSERT INTO t VALUES (2)")
            txn.execute_sql("ROLLBACK TO s")
            txn.execute_sql("RELEASE s")
            assert txn.execute_sql("SELECT x FROM t").rows == [(1,)]
        assert db.execute_sql("SELECT x FROM t").rows == [(1,)]
