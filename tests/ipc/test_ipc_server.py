"""toondb-server as users run it: the guide's example, start-up and shutdown,
crashes, many clients, errors that cross the wire."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from ipc_harness import ServerProcess, server_command

import toondb
from toondb import (
    Database,
    DatabaseLockedError,
    IpcClient,
    ReadOnlyError,
    ServerConnectionError,
    ToonDBError,
)
from toondb.ipc import protocol as P


@pytest.fixture
def server(tmp_path):
    srv = ServerProcess(tmp_path / "db").start()
    yield srv
    srv.kill()


# ---- the guide ------------------------------------------------------------------


def test_guide_ipc_example(tmp_path):
    """The product guide's IPC Mode section, verbatim: the server started as the
    guide shows (toondb-server --db ./my_database), the client as its own process."""
    srv = ServerProcess("./my_database", command=server_command(), cwd=tmp_path)
    srv.start()
    try:
        client_code = textwrap.dedent(
            """
            from toondb import IpcClient

            client = IpcClient.connect("./my_database/toondb.sock")

            client.put(b"key", b"value")
            value = client.get(b"key")
            print(value.decode())
            """
        )
        out = subprocess.run(
            [sys.executable, "-c", client_code],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout == "value\n"
        assert srv.socket_path == str(tmp_path / "my_database" / "toondb.sock")
    finally:
        assert srv.stop(signal.SIGINT) == 0, srv.log()
    with Database.open(tmp_path / "my_database") as db:
        assert db.get(b"key") == b"value"
        db.check()


def test_python_dash_m_entry_and_socket_permissions(server):
    mode = os.stat(server.socket_path).st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600
    assert "listening on" in server.line and str(server.pid) in server.line


# ---- start-up -------------------------------------------------------------------


def test_second_server_is_refused_and_the_first_keeps_serving(server, tmp_path):
    second = ServerProcess(tmp_path / "db", log_path=tmp_path / "second.log")
    second.start(expect_listening=False)
    assert second.wait() == 1
    message = second.log()
    assert "already serving" in message and str(server.pid) in message
    with IpcClient.connect(server.socket_path) as client:
        client.put(b"a", b"1")
        assert client.get(b"a") == b"1"


def test_second_server_refused_in_process(server, tmp_path):
    from toondb.ipc.server import Server

    other = Server(tmp_path / "db", socket_path=tmp_path / "other.sock")
    with pytest.raises(DatabaseLockedError, match="already serving"):
        other.start()
    other.close()
    assert not (tmp_path / "other.sock").exists()


def test_stale_socket_of_a_killed_server_is_replaced(tmp_path):
    first = ServerProcess(tmp_path / "db").start()
    with IpcClient.connect(first.socket_path) as client:
        client.put(b"survives", b"yes")
    first.stop(signal.SIGKILL)
    assert os.path.exists(first.socket_path)  # left behind
    second = ServerProcess(tmp_path / "db").start()
    try:
        assert "stale socket" in second.log()
        with IpcClient.connect(second.socket_path) as client:
            assert client.get(b"survives") == b"yes"
    finally:
        assert second.stop() == 0


def test_refuses_to_replace_a_file_that_is_not_a_socket(tmp_path):
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "toondb.sock").write_text("not a socket")
    srv = ServerProcess(tmp_path / "db").start(expect_listening=False)
    assert srv.wait() == 1
    assert "is not a socket" in srv.log()
    assert (tmp_path / "db" / "toondb.sock").read_text() == "not a socket"


def test_custom_socket_path_and_read_only(tmp_path):
    with Database.open(tmp_path / "db") as db:
        db.put(b"k", b"v")
    sock = tmp_path / "custom.sock"
    srv = ServerProcess(tmp_path / "db", "--socket", str(sock), "--read-only").start()
    try:
        assert srv.socket_path == str(sock)
        with IpcClient.connect(sock) as client:
            assert client.read_only
            assert client.get(b"k") == b"v"
            with pytest.raises(ReadOnlyError):
                client.put(b"k", b"w")
            with pytest.raises(ReadOnlyError):
                client.begin_transaction()
            with client.transaction(read_only=True) as t:
                assert t.get(b"k") == b"v"
    finally:
        assert srv.stop() == 0
    assert not sock.exists()


def test_bad_arguments_exit_nonzero(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "toondb.server", "--db", str(tmp_path / "db"), "--max-clients", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0 and "max_clients" in out.stderr
    out = subprocess.run(
        [sys.executable, "-m", "toondb.server", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0
    for option in ("--db", "--socket", "--max-clients", "--log-level", "--read-only"):
        assert option in out.stdout


def test_connect_without_a_server_fails_promptly(tmp_path):
    t0 = time.monotonic()
    with pytest.raises(ServerConnectionError) as info:
        IpcClient.connect(tmp_path / "nothing.sock", timeout=5)
    assert time.monotonic() - t0 < 2
    assert isinstance(info.value, ToonDBError)
    assert isinstance(info.value, builtins_connection_error())
    assert "no toondb server is listening" in str(info.value)


def builtins_connection_error() -> type:
    import builtins

    return builtins.ConnectionError


# ---- shutdown -------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_clean_stop_aborts_open_transactions(tmp_path, sig):
    srv = ServerProcess(tmp_path / "db").start()
    client = IpcClient.connect(srv.socket_path)
    client.put(b"committed", b"1")
    t = client.begin_transaction()
    t.put(b"uncommitted", b"1")
    immediate = IpcClient.connect(srv.socket_path).begin_transaction(immediate=True)
    immediate.put(b"uncommitted2", b"1")
    assert srv.stop(sig) == 0, srv.log()
    assert not os.path.exists(srv.socket_path)
    with pytest.raises(ServerConnectionError):
        t.put(b"more", b"1")
    with pytest.raises(ServerConnectionError):
        client.get(b"committed")
    with Database.open(tmp_path / "db") as db:
        assert db.get(b"committed") == b"1"
        assert db.get(b"uncommitted") is None and db.get(b"uncommitted2") is None
        db.check()
    assert "shutting down" in srv.log()


def test_stop_lets_the_request_in_flight_finish(tmp_path):
    """A scan batch being served when SIGTERM arrives is answered in full."""
    srv = ServerProcess(tmp_path / "db").start()
    with IpcClient.connect(srv.socket_path) as client:
        with client.transaction() as t:
            for i in range(20000):
                t.put(b"k%06d" % i, b"x" * 100)
        got: list[int] = []

        def reader():
            for _ in range(200):
                try:
                    got.append(sum(1 for _ in client.scan(b"k")))
                except ServerConnectionError:
                    return

        th = threading.Thread(target=reader)
        th.start()
        time.sleep(0.3)  # let some scans run; the assertion does not depend on timing
        assert srv.stop() == 0, srv.log()
        th.join(30)
        assert not th.is_alive()
    assert got and all(n == 20000 for n in got)


# ---- crashes ---------------------------------------------------------------------


def test_sigkill_keeps_every_committed_write_and_clients_get_connection_error(tmp_path):
    srv = ServerProcess(tmp_path / "db").start()
    clients = [IpcClient.connect(srv.socket_path, timeout=10) for _ in range(4)]
    acknowledged: dict[bytes, bytes] = {}
    stop = threading.Event()
    failures: list[BaseException] = []

    def writer(n: int, client: IpcClient) -> None:
        i = 0
        while not stop.is_set():
            key, value = b"w%d:%06d" % (n, i), b"v%d" % i
            try:
                if i % 3 == 0:
                    with client.transaction() as t:
                        t.put(key, value)
                        t.put(key + b"+", value)
                    acknowledged[key + b"+"] = value
                else:
                    client.put(key, value)
            except ServerConnectionError:
                return
            except BaseException as exc:
                failures.append(exc)
                return
            acknowledged[key] = value
            i += 1

    threads = [threading.Thread(target=writer, args=(n, c)) for n, c in enumerate(clients)]
    for th in threads:
        th.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 2000 and time.monotonic() < deadline:
        time.sleep(0.01)
    t0 = time.monotonic()
    srv.stop(signal.SIGKILL)
    for th in threads:
        th.join(10)
    assert not any(th.is_alive() for th in threads), "a client hung on a dead server"
    assert time.monotonic() - t0 < 10
    stop.set()
    assert not failures, failures
    for client in clients:
        with pytest.raises(ServerConnectionError):
            client.get(b"anything")
    assert len(acknowledged) >= 2000
    again = ServerProcess(tmp_path / "db", log_path=tmp_path / "again.log").start()
    try:
        with IpcClient.connect(again.socket_path) as client:
            missing = [k for k, v in list(acknowledged.items()) if client.get(k) != v]
            assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:3]}"
    finally:
        assert again.stop() == 0
    with Database.open(tmp_path / "db") as db:
        db.check()


def test_client_survives_a_server_restart(tmp_path):
    srv = ServerProcess(tmp_path / "db").start()
    client = IpcClient.connect(srv.socket_path)
    client.put(b"a", b"1")
    srv.stop(signal.SIGKILL)
    with pytest.raises(ServerConnectionError):
        client.get(b"a")
    srv2 = ServerProcess(tmp_path / "db").start()
    try:
        assert client.get(b"a") == b"1"  # new connections on the next request
    finally:
        client.close()
        srv2.stop()


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def test_hung_server_gives_connection_error_after_the_timeout(server):
    client = IpcClient.connect(server.socket_path, timeout=1.0)
    client.put(b"a", b"1")
    os.kill(server.pid, signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 10
        while _state(server.pid) != "T":  # SIGSTOP takes effect asynchronously
            assert time.monotonic() < deadline
            time.sleep(0.001)
        t0 = time.monotonic()
        with pytest.raises(ServerConnectionError, match="did not answer"):
            client.get(b"a")
        assert time.monotonic() - t0 < 5
    finally:
        os.kill(server.pid, signal.SIGCONT)
    assert client.get(b"a") == b"1"  # a fresh connection once it answers again
    client.close()


# ---- many clients ----------------------------------------------------------------


def test_disconnect_in_a_transaction_aborts_it_and_releases_the_lock(server, tmp_path):
    code = textwrap.dedent(
        f"""
        import os, sys
        from toondb import IpcClient
        c = IpcClient.connect({server.socket_path!r})
        t = c.begin_transaction(immediate=True)
        t.put(b"ghost", b"1")
        print("holding", flush=True)
        sys.stdin.readline()
        os._exit(0)  # no commit, no close: the process just goes away
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline() == "holding\n"
        with IpcClient.connect(server.socket_path) as other:
            # reads are served while the write transaction is open
            t0 = time.monotonic()
            assert other.get(b"ghost") is None
            assert list(other.scan(b"")) == []
            assert time.monotonic() - t0 < 1.0
            proc.stdin.write("go\n")
            proc.stdin.flush()
            assert proc.wait(30) == 0
            t0 = time.monotonic()
            other.put(b"after", b"1")  # the write lock was released by the abort
            assert time.monotonic() - t0 < 5.0
            assert other.get(b"ghost") is None
    finally:
        proc.kill()
        proc.wait(30)


def test_max_clients(tmp_path):
    srv = ServerProcess(tmp_path / "db", "--max-clients", "2").start()
    try:
        a = IpcClient.connect(srv.socket_path)
        b = IpcClient.connect(srv.socket_path)
        with pytest.raises(ServerConnectionError, match="max-clients"):
            IpcClient.connect(srv.socket_path)
        a.close()
        deadline = time.monotonic() + 10
        while True:  # the server notices the closed connection asynchronously
            try:
                c = IpcClient.connect(srv.socket_path)
                break
            except ServerConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        c.put(b"x", b"1")
        assert b.get(b"x") == b"1"
        b.close()
        c.close()
    finally:
        assert srv.stop() == 0


def test_one_client_shared_by_threads(server):
    client = IpcClient.connect(server.socket_path)
    failures: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(300):
                key = b"t%d:%d" % (n, i)
                client.put(key, key)
                assert client.get(key) == key
                if i % 50 == 0:
                    assert len(list(client.scan(b"t%d:" % n))) == i + 1
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not failures, failures
    assert sum(1 for _ in client.scan(b"t")) == 8 * 300
    client.close()


def test_large_values_and_the_frame_limit(tmp_path):
    srv = ServerProcess(tmp_path / "db", "--max-frame-size", "65536").start()
    try:
        with IpcClient.connect(srv.socket_path) as client:
            client.put(b"fits", b"x" * 60000)
            assert client.get(b"fits") == b"x" * 60000
            with pytest.raises(ValueError, match="max-frame-size"):
                client.put(b"big", b"x" * 70000)
            client.ping()
        with Database.open(tmp_path / "db") as db:  # a big value written embedded
            db.put(b"huge", b"y" * 3_000_000)
        with IpcClient.connect(srv.socket_path) as client:
            assert client.get(b"huge") == b"y" * 3_000_000  # replies are not limited
            assert [k for k, _ in client.scan(b"")] == [b"fits", b"huge"]
    finally:
        assert srv.stop() == 0


def test_errors_cross_the_wire_by_class(server):
    with IpcClient.connect(server.socket_path) as client:
        t1 = client.begin_transaction()
        t2 = client.begin_transaction()
        t1.put(b"k", b"1")
        t2.put(b"k", b"2")
        t1.commit()
        with pytest.raises(toondb.TransactionConflictError) as info:
            t2.commit()
        assert "first committer wins" in str(info.value)
        with pytest.raises(ValueError, match="must not be empty"):
            client.get(b"")


def test_error_class_whitelist():
    for name in toondb.errors.__all__:
        cls = getattr(toondb.errors, name)
        exc = P.exception_from_error(P.error_payload(cls("why")))
        assert type(exc) is cls and str(exc) == "why"
    for cls in (ValueError, TypeError, KeyError):
        assert type(P.exception_from_error(P.error_payload(cls("why")))) is cls

    class Sneaky(toondb.ConstraintError):
        pass

    assert type(P.exception_from_error(P.error_payload(Sneaky("x")))) is toondb.ConstraintError
    exc = P.exception_from_error(P.error_payload(ZeroDivisionError("oops")))
    assert type(exc) is ToonDBError and "ZeroDivisionError: oops" in str(exc)
    exc = P.exception_from_error(b"\x0bSystemExit!" + b"bye")
    assert type(exc) is ToonDBError
    forged = P.exception_from_error(bytes([len(b"os.system")]) + b"os.system" + b"rm -rf /")
    assert type(forged) is ToonDBError
    assert type(P.exception_from_error(b"")) is toondb.ProtocolError
    assert type(P.exception_from_error(b"\xff")) is toondb.ProtocolError


def test_stats_and_ping(server):
    with IpcClient.connect(server.socket_path) as client:
        assert 0 < client.ping() < 1
        client.put(b"a", b"1")
        stats = client.stats()
        assert stats["entries"] == 1
        assert client.info["pid"] == server.pid
        assert client.path == str(server.socket_path).rsplit("/", 1)[0]


def test_interrupted_request_drops_its_connection(server):
    """A request interrupted between sending and the reply (Ctrl-C) must not leave
    its reply in a pooled connection for the next request to read."""
    client = IpcClient.connect(server.socket_path)
    client.put(b"a", b"1")
    conn = client._idle[-1]
    real = conn.sock

    class Interrupting:
        def __getattr__(self, name):
            return getattr(real, name)

        def recv(self, n):
            raise KeyboardInterrupt

    conn.sock = Interrupting()
    with pytest.raises(KeyboardInterrupt):
        client.get(b"a")
    assert conn.sock is None and conn not in client._idle
    assert client.get(b"a") == b"1"  # a new connection, in step with the server
    assert client.get(b"b") is None
    client.close()
