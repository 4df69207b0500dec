"""toondb.dbapi's transaction control where stdlib sqlite3 of this Python cannot be run
beside it (``autocommit`` came with Python 3.12: tested against its documentation),
where toondb's own concurrency shows (optimistic transactions that conflict, the
write lock of IMMEDIATE), threads sharing a connection, and the same driver over
the server (connect_ipc, through the plugin's toondb_server fixture)."""

from __future__ import annotations

import threading

import pytest

import toondb.dbapi as tdb
from toondb import Database, IpcClient


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "db")


def _count(con, table="k"):
    return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_autocommit_false_always_has_a_transaction(path):
    setup = tdb.connect(path)
    setup.execute("CREATE TABLE k (x)")
    setup.close()
    con = tdb.connect(path, autocommit=False)
    other = tdb.connect(path)
    assert con.autocommit is False and con.in_transaction
    con.execute("INSERT INTO k VALUES (1)")
    assert _count(other) == 0
    con.commit()
    assert con.in_transaction  # the next one is open already
    assert _count(other) == 1
    con.execute("INSERT INTO k VALUES (2)")
    con.rollback()
    assert con.in_transaction and _count(con) == 1
    with pytest.raises(tdb.OperationalError):
        con.execute("BEGIN")  # one is always open
    con.execute("INSERT INTO k VALUES (3)")
    con.close()  # rolls back
    assert _count(other) == 1
    other.close()


def test_autocommit_true_runs_each_statement_alone(path):
    con = tdb.connect(path, autocommit=True)
    other = tdb.connect(path)
    con.execute("CREATE TABLE k (x)")
    con.execute("INSERT INTO k VALUES (1)")
    assert not con.in_transaction and _count(other) == 1
    con.rollback()  # does nothing
    assert _count(other) == 1
    con.execute("BEGIN")  # SQL still controls transactions
    con.execute("INSERT INTO k VALUES (2)")
    assert _count(other) == 1
    con.commit()  # does nothing under autocommit=True
    assert con.in_transaction
    con.execute("COMMIT")
    assert _count(other) == 2
    with con:  # neither commits nor rolls back
        con.execute("INSERT INTO k VALUES (3)")
    assert _count(other) == 3
    con.close()
    other.close()


def test_setting_autocommit_commits_or_begins(path):
    con = tdb.connect(path)
    other = tdb.connect(path)
    con.execute("CREATE TABLE k (x)")
    con.execute("INSERT INTO k VALUES (1)")
    assert con.in_transaction
    con.autocommit = True  # commits the open transaction
    assert not con.in_transaction and _count(other) == 1
    con.autocommit = False  # begins one
    assert con.in_transaction
    con.execute("INSERT INTO k VALUES (2)")
    assert _count(other) == 1
    con.autocommit = tdb.LEGACY_TRANSACTION_CONTROL
    con.commit()
    assert _count(other) == 2
    with pytest.raises(ValueError):
        con.autocommit = "yes"
    with pytest.raises(ValueError):
        con.isolation_level = "SERIALIZABLE"
    con.close()
    other.close()


def test_optimistic_transactions_conflict_at_commit(path):
    a, b = tdb.connect(path), tdb.connect(path)
    a.execute("CREATE TABLE k (id INTEGER PRIMARY KEY, x)")
    a.execute("INSERT INTO k VALUES (1, 0)")
    a.commit()
    a.execute("UPDATE k SET x = 1 WHERE id = 1")
    b.execute("UPDATE k SET x = 2 WHERE id = 1")
    a.commit()
    with pytest.raises(tdb.OperationalError):  # a TransactionConflictError
        b.commit()
    assert not b.in_transaction
    assert b.execute("SELECT x FROM k").fetchall() == [(1,)]
    a.close()
    b.close()


def test_immediate_takes_the_write_lock_and_waits_at_most_timeout(path):
    a = tdb.connect(path, isolation_level="IMMEDIATE")
    b = tdb.connect(path, timeout=0.2, isolation_level="IMMEDIATE")
    a.execute("CREATE TABLE k (x)")
    a.execute("INSERT INTO k VALUES (1)")  # holds the write lock until commit
    with pytest.raises(tdb.OperationalError):  # a DatabaseLockedError
        b.execute("INSERT INTO k VALUES (2)")
    a.commit()
    b.execute("INSERT INTO k VALUES (2)")
    b.commit()
    assert _count(a) == 2
    a.close()
    b.close()


SAVEPOINT_SCRIPT = """CREATE TABLE t (x)
SAVEPOINT a
INSERT INTO t VALUES (1)
SAVEPOINT B
INSERT INTO t VALUES (2)
ROLLBACK TO b
INSERT INTO t VALUES (3)
RELEASE SAVEPOINT a
SELECT * FROM t
INSERT INTO t VALUES (4)
SAVEPOINT c
DELETE FROM t
SAVEPOINT c
INSERT INTO t VALUES (5)
ROLLBACK TRANSACTION TO SAVEPOINT c
SELECT * FROM t
ROLLBACK TO c
SELECT * FROM t
RELEASE c
SELECT * FROM t
ROLLBACK
SELECT * FROM t
RELEASE zz
ROLLBACK TO zz
SAVEPOINT z
INSERT INTO t VALUES (9)
ROLLBACK
SELECT * FROM t""".splitlines()


def _script_outcomes(con):
    out = []
    for sql in SAVEPOINT_SCRIPT:
        try:
            cur = con.execute(sql)
            rows = cur.fetchall() if cur.description else None
            out.append((sql, rows, con.in_transaction))
        except Exception as e:  # noqa: BLE001 - the class and message are compared
            out.append((sql, type(e).__name__, str(e), con.in_transaction))
    return out


def test_savepoints_as_sqlite3(path, toondb_server):
    """SAVEPOINT / RELEASE / ROLLBACK TO give sqlite3's rows, transaction state and
    errors, embedded and over the server; a SAVEPOINT outside a transaction begins
    one and releasing it commits."""
    import sqlite3

    want = _script_outcomes(sqlite3.connect(":memory:"))
    for con in (tdb.connect(path), tdb.connect_ipc(toondb_server)):
        assert _script_outcomes(con) == want
        con.close()


def test_threads_share_a_connection(path):
    con = tdb.connect(path)
    con.execute("CREATE TABLE k (t INTEGER, i INTEGER)")
    con.commit()
    errors = []

    def work(t):
        try:
            for i in range(50):
                con.execute("INSERT INTO k VALUES (?, ?)", (t, i))
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert errors == []
    con.commit()
    assert _count(con) == 200
    con.close()
    same = tdb.connect(path, check_same_thread=True)
    result = []
    th = threading.Thread(target=lambda: result.append(_raises(same)))
    th.start()
    th.join(60)
    assert result == [True]
    same.close()


def _raises(con):
    try:
        con.execute("SELECT 1")
    except tdb.ProgrammingError:
        return True
    return False


def test_uri_modes(tmp_path):
    path = tmp_path / "db"
    with pytest.raises(FileNotFoundError):
        tdb.connect(f"file:{path}?mode=rw", uri=True)
    tdb.connect(f"file:{path}", uri=True).close()
    ro = tdb.connect(f"file:{path}?mode=ro", uri=True)
    with pytest.raises(tdb.OperationalError):  # a ReadOnlyError
        ro.execute("CREATE TABLE k (x)")
    ro.close()


def test_same_driver_over_the_server(toondb_server):
    con = tdb.connect_ipc(toondb_server)
    other = tdb.connect_ipc(toondb_server)
    con.execute("CREATE TABLE IF NOT EXISTS ipc_t (id INTEGER PRIMARY KEY, name VARCHAR(10))")
    con.execute("DELETE FROM ipc_t")
    con.commit()
    cur = con.cursor()
    cur.executemany("INSERT INTO ipc_t (name) VALUES (?)", [("a",), ("b",)])
    assert cur.rowcount == 2 and con.in_transaction
    assert _count(other, "ipc_t") == 0
    con.commit()
    assert _count(other, "ipc_t") == 2
    cur.execute("SELECT id, name FROM ipc_t ORDER BY id")
    assert [d[0] for d in cur.description] == ["id", "name"]
    assert cur.description[1][1] == tdb.STRING
    assert [r[1] for r in cur.fetchall()] == ["a", "b"]
    with pytest.raises(tdb.IntegrityError):
        con.execute("INSERT INTO ipc_t (id, name) VALUES (1, 'dup')")
    with pytest.raises(tdb.ProgrammingError):
        con.execute("SELEC 1")
    con.rollback()
    client = IpcClient.connect(toondb_server)
    shared = tdb.connect_ipc(client)
    shared.close()
    assert client.get(b"nothing") is None  # a client given to connect_ipc stays open
    client.close()
    con.close()
    other.close()


def test_database_connection_leaves_the_database_usable(toondb_db: Database):
    con = toondb_db.connection(isolation_level=None)
    con.execute("CREATE TABLE k (x)")
    con.execute("INSERT INTO k VALUES (1)")
    assert toondb_db.execute_sql("SELECT count(*) FROM k").scalar() == 1
    con.close()
    toondb_db.put(b"still", b"open")


def test_create_function_over_the_server_is_refused(toondb_server):
    con = tdb.connect_ipc(toondb_server)
    with pytest.raises(tdb.NotSupportedError, match="cannot call this process's Python"):
        con.create_function("f", 0, lambda: 1)
    with pytest.raises(tdb.NotSupportedError, match="cannot call this process's Python"):
        con.create_aggregate("g", 1, object)
    assert con.execute("SELECT 1").fetchall() == [(1,)]
    con.close()
