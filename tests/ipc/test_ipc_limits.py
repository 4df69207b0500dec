"""The limits toondb-server keeps against hostile or careless clients (toondb.ipc.limits,
docs/ipc-protocol.md "Limits"): each test reproduces what got through before the limit
existed and checks what a client gets instead.

- replies a client does not read: bounded server memory, every reply still in order;
- reader slots: a reserve the server never uses, so embedded readers in other
  processes are not starved; open scans per connection capped (CursorLimitError);
- connections that never send HELLO: counted apart, closed after a short deadline,
  never keeping out a client that sends its HELLO;
- an idle transaction holding the write lock: aborted after --idle-transaction-timeout,
  its client told why (TransactionTimeoutError);
- failed requests: one log line each, rate limited, no traceback;
- integers outside 64 bits and too-deep SQL: the typed error the embedded call gives.
"""

from __future__ import annotations

import fcntl
import os
import stat
import struct
import termios
import time

import pytest
from ipc_harness import ServerProcess, error_of, raw_connect, read_frame

from toondb import (
    CursorLimitError,
    Database,
    DatabaseLockedError,
    IntegerOverflowError,
    IpcClient,
    ReadersFullError,
    SQLError,
    TransactionTimeoutError,
)
from toondb.ipc import protocol as P


def _unread_bytes(sock) -> int:
    """Bytes waiting in sock's receive queue (FIONREAD)."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]


# ---- replies a client does not read (invariant 3 of toondb.ipc.session) ---------------


def test_pipelined_gets_of_large_values_keep_server_memory_bounded(tmp_path):
    srv = ServerProcess(tmp_path / "db").start()
    try:
        client = IpcClient.connect(srv.socket_path)
        values = [os.urandom(1 << 20) for _ in range(3)]
        for i, v in enumerate(values):
            client.put(b"big%d" % i, v)
        assert client.get(b"big0") == values[0]
        base = srv.memory_kib()
        s = raw_connect(srv.socket_path, timeout=60)
        # 300 GETs of 1 MiB values: 2.4 KB of requests ask for 300 MiB of replies
        s.sendall(b"".join(P.frame(P.OP_GET, b"big%d" % (i % 3)) for i in range(300)))
        # the server answers until its unsent replies reach the limit, then waits
        # for this client; sample its memory until our receive queue stops growing
        peak, last, still = base, -1, 0
        deadline = time.monotonic() + 10
        while still < 20 and time.monotonic() < deadline:
            peak = max(peak, srv.memory_kib())
            queued = _unread_bytes(s)
            still = still + 1 if queued == last and queued > 0 else 0
            last = queued
            time.sleep(0.02)
        peak = max(peak, srv.memory_kib())
        assert peak - base < 64 * 1024, f"server memory grew by {(peak - base) / 1024:.0f} MiB"
        # a slow reader slows only itself
        t0 = time.monotonic()
        client.put(b"other", b"client")
        assert client.get(b"big1") == values[1]
        assert time.monotonic() - t0 < 2
        for i in range(300):  # every reply arrives, in order
            code, payload = read_frame(s)
            assert code == P.ST_OK and payload == values[i % 3], i
        s.sendall(P.frame(P.OP_PING))
        assert read_frame(s) == (P.ST_OK, b"")
        s.close()
        client.close()
    finally:
        assert srv.stop() == 0


# ---- reader slots ----------------------------------------------------------------------


def _open_scan(s) -> tuple[int, bytes]:
    s.sendall(P.frame(P.OP_SCAN, struct.pack("<BII", 0, 1, 0)))  # limit 1: the cursor stays
    return read_frame(s)


def test_ipc_clients_cannot_take_the_reader_slots_of_other_processes(tmp_path):
    db_path = tmp_path / "db"
    # this process opens the database first: its 40-slot reader table is the one the
    # server maps (the server keeps min(64, 40 / 4) = 10 slots for other processes)
    embedded = Database.open(db_path, {"max_readers": 40})
    for i in range(3):
        embedded.put(b"k%d" % i, b"v")
    srv = ServerProcess(db_path, "--max-cursors", "8").start()
    try:
        conns, failures = [], []
        for _ in range(10):  # 80 scans asked for: more than the whole table holds
            s = raw_connect(srv.socket_path)
            conns.append(s)
            for _ in range(8):
                code, payload = _open_scan(s)
                if code == P.ST_ERROR:
                    failures.append(error_of(payload))
                else:
                    assert code == P.ST_OK
        # the server stopped at its share, with a typed error
        assert failures and {name for name, _ in failures} == {"ReadersFullError"}
        # the per-connection cap: a ninth scan on one connection
        s = raw_connect(srv.socket_path, timeout=10)
        conns.append(s)
        with IpcClient.connect(srv.socket_path) as client:
            scans = []
            with pytest.raises((CursorLimitError, ReadersFullError)):
                for _ in range(9):
                    it = client.scan(b"k")
                    next(it)
                    scans.append(it)
        # the embedded reader in this process still gets slots: gets, transactions, scans
        assert embedded.get(b"k1") == b"v"
        held = [embedded.begin_transaction(read_only=True) for _ in range(5)]
        assert all(t.get(b"k2") == b"v" for t in held)
        for t in held:
            t.abort()
        for s in conns:
            s.close()
    finally:
        assert srv.stop() == 0
        embedded.close()


def test_cursor_cap_is_a_typed_error_and_the_connection_goes_on(tmp_path):
    srv = ServerProcess(tmp_path / "db", "--max-cursors", "3").start()
    try:
        with IpcClient.connect(srv.socket_path) as client:
            for i in range(5):
                client.put(b"k%d" % i, b"v")
            s = raw_connect(srv.socket_path)
            for _ in range(3):
                assert _open_scan(s)[0] == P.ST_OK
            code, payload = _open_scan(s)
            name, message = error_of(payload)
            assert (code, name) == (P.ST_ERROR, "CursorLimitError")
            assert "--max-cursors" in message
            s.sendall(P.frame(P.OP_SCAN_CLOSE, struct.pack("<I", 1)))
            assert read_frame(s) == (P.ST_OK, b"")
            assert _open_scan(s)[0] == P.ST_OK  # room again
            s.close()
            assert client.info["max_cursors"] == 3
    finally:
        assert srv.stop() == 0


# ---- connections that never send HELLO (invariant 5) ------------------------------------


def test_a_handshake_flood_does_not_keep_clients_out(tmp_path):
    srv = ServerProcess(tmp_path / "db", "--max-clients", "4").start()
    try:
        flood = [raw_connect(srv.socket_path, hello=False) for _ in range(330)]
        t0 = time.monotonic()
        clients = [IpcClient.connect(srv.socket_path, timeout=10) for _ in range(4)]
        for i, c in enumerate(clients):  # admitted at once, each of the four
            c.put(b"c%d" % i, b"ok")
            assert c.get(b"c%d" % i) == b"ok"
        assert time.monotonic() - t0 < 5
        for s in flood:
            s.close()
        for c in clients:
            c.close()
        assert "Traceback" not in srv.log()
    finally:
        assert srv.stop() == 0


def test_a_connection_without_hello_is_closed_after_the_deadline(tmp_path):
    srv = ServerProcess(tmp_path / "db", "--hello-timeout", "0.3").start()
    try:
        s = raw_connect(srv.socket_path, hello=False, timeout=10)
        t0 = time.monotonic()
        code, payload = read_frame(s)
        assert code == P.ST_ERROR and error_of(payload) == (
            "ProtocolError",
            "no HELLO within 0.3 s of connecting",
        )
        assert read_frame(s) == (-1, b"")
        assert time.monotonic() - t0 < 5
        # a HELLO that arrives in pieces before the deadline is fine
        s = raw_connect(srv.socket_path, hello=False, timeout=10)
        hello = P.frame(P.OP_HELLO, P.HELLO_HEAD.pack(P.MAGIC, 1, 1) + b"slow")
        for i in range(len(hello)):
            s.sendall(hello[i : i + 1])
        assert read_frame(s)[0] == P.ST_OK
        s.close()
    finally:
        assert srv.stop() == 0


# ---- idle transactions -----------------------------------------------------------------


def test_an_idle_transaction_holding_the_write_lock_is_aborted(tmp_path):
    srv = ServerProcess(tmp_path / "db", "--idle-transaction-timeout", "0.5").start()
    try:
        with IpcClient.connect(srv.socket_path) as a, IpcClient.connect(srv.socket_path) as b:
            txn = a.begin_transaction(immediate=True)
            txn.put(b"from-a", b"never applied")
            t0 = time.monotonic()
            b.put(b"from-b", b"1")  # waits for the lock until a's transaction is aborted
            assert 0.3 < time.monotonic() - t0 < 5
            with pytest.raises(TransactionTimeoutError, match="idle-transaction-timeout"):
                txn.put(b"more", b"x")
            assert txn.closed
            assert a.get(b"from-a") is None and b.get(b"from-b") == b"1"
            # the same for SQL BEGIN IMMEDIATE; the next statement is told, then runs alone
            a.execute_sql("CREATE TABLE t (x)")
            a.execute_sql("BEGIN IMMEDIATE")
            a.execute_sql("INSERT INTO t VALUES (1)")
            b.put(b"from-b", b"2")
            with pytest.raises(TransactionTimeoutError):
                a.execute_sql("INSERT INTO t VALUES (2)")
            a.execute_sql("INSERT INTO t VALUES (3)")
            assert a.execute_sql("SELECT x FROM t").rows == [(3,)]
            # an optimistic transaction holds no lock: it is left alone
            txn = a.begin_transaction()
            txn.put(b"optimistic", b"1")
            b.put(b"from-b", b"3")
            for _ in range(3):  # idle a while (bounded), then commit
                b.ping()
                time.sleep(0.3)
            txn.commit()
            assert b.get(b"optimistic") == b"1"
            # abort after the server aborted: fine, nothing to tell
            txn = a.begin_transaction(immediate=True)
            b.put(b"from-b", b"4")
            txn.abort()
        assert "unexpected" not in srv.log()
    finally:
        assert srv.stop() == 0


def test_idle_transactions_are_not_aborted_by_default(tmp_path):
    srv = ServerProcess(tmp_path / "db", "--lock-timeout", "0.5").start()
    try:
        with IpcClient.connect(srv.socket_path) as a, IpcClient.connect(srv.socket_path) as b:
            txn = a.begin_transaction(immediate=True)
            txn.put(b"k", b"v")
            with pytest.raises(DatabaseLockedError):
                b.put(b"other", b"w")
            txn.commit()
            assert b.get(b"k") == b"v"
    finally:
        assert srv.stop() == 0


# ---- failed requests: one log line each, rate limited ------------------------------------


def _new_log(srv: ServerProcess, since: int) -> list[str]:
    return srv.log()[since:].splitlines()


def test_failed_requests_log_one_line_each_rate_limited(tmp_path):
    srv = ServerProcess(tmp_path / "db").start()
    try:
        with IpcClient.connect(srv.socket_path) as client:
            since = len(srv.log())
            with pytest.raises(SQLError):
                client.execute_sql("SELEKT 1")
            lines = _new_log(srv, since)
            assert len(lines) == 1, lines
            assert "request failed: SQLSyntaxError" in lines[0] and f"pid {os.getpid()}" in lines[0]
            since = len(srv.log())
            t0 = time.monotonic()
            for _ in range(400):
                with pytest.raises(SQLError):
                    client.execute_sql("SELEKT 1")
            elapsed = time.monotonic() - t0
            lines = _new_log(srv, since)
            assert 0 < len(lines) <= 50 + 10 * elapsed + 2, len(lines)
            assert "Traceback" not in srv.log()
    finally:
        assert srv.stop() == 0


def test_too_deep_sql_is_a_typed_error_and_one_log_line(tmp_path):
    sql = "SELECT " + "(" * 2000 + "1" + ")" * 2000
    with Database.open(tmp_path / "embedded") as db:
        try:
            db.execute_sql(sql)
            embedded: BaseException | None = None
        except Exception as exc:
            embedded = exc
    assert isinstance(embedded, SQLError) and "maximum depth 1000" in str(embedded)
    srv = ServerProcess(tmp_path / "db").start()
    try:
        with IpcClient.connect(srv.socket_path) as client:
            since = len(srv.log())
            if embedded is None:
                client.execute_sql(sql)
                assert _new_log(srv, since) == []
            else:
                with pytest.raises(type(embedded)):
                    client.execute_sql(sql)
                lines = _new_log(srv, since)
                assert len(lines) == 1 and type(embedded).__name__ in lines[0], lines
            assert client.execute_sql("SELECT 1").rows == [(1,)]
        assert "Traceback" not in srv.log()
    finally:
        assert srv.stop() == 0


# ---- integers outside 64 bits ----------------------------------------------------------


def test_a_bigint_parameter_is_the_embedded_typed_error(tmp_path):
    srv = ServerProcess(tmp_path / "db").start()
    try:
        with IpcClient.connect(srv.socket_path) as client:
            client.execute_sql("CREATE TABLE k (id INTEGER PRIMARY KEY, n INTEGER)")
            for sql in (
                "SELECT ?",
                "INSERT INTO k (id) VALUES (?)",
                "INSERT INTO k (n) VALUES (?)",
            ):
                with pytest.raises(IntegerOverflowError) as caught:
                    client.execute_sql(sql, [1 << 64])
                assert isinstance(caught.value, OverflowError)
                assert str(caught.value) == "Python int too large to convert to SQLite INTEGER"
            with client.transaction() as txn:
                with pytest.raises(IntegerOverflowError):
                    txn.execute_sql("INSERT INTO k VALUES (?, 1)", [-(1 << 70)])
                txn.execute_sql("INSERT INTO k VALUES (?, 1)", [(1 << 63) - 1])
            assert client.execute_sql("SELECT id FROM k").rows == [((1 << 63) - 1,)]
        assert "unexpected" not in srv.log()
    finally:
        assert srv.stop() == 0


# ---- file modes --------------------------------------------------------------------------


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_server_creates_private_files_unless_told(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    srv = ServerProcess(tmp_path / "private").start()
    try:
        for name in ("toondb.data", "toondb.lock", "toondb.server.lock", "toondb.sock"):
            assert _mode(tmp_path / "private" / name) == 0o600, name
    finally:
        assert srv.stop() == 0
    srv = ServerProcess(tmp_path / "shared", "--file-mode", "644").start()
    try:
        for name in ("toondb.data", "toondb.lock"):
            assert _mode(tmp_path / "shared" / name) == 0o644 & ~umask, name
    finally:
        assert srv.stop() == 0
    bad = ServerProcess(tmp_path / "bad", "--file-mode", "rw-r--r--")
    bad.start(expect_listening=False)
    assert bad.wait() == 2
