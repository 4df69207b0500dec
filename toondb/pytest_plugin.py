"""toondb's pytest plugin (entry point ``pytest11: toondb``, active wherever toondb is
installed): database fixtures, and the benchmark regression gate. docs/testing.md
tells how to use them.

Fixtures:

- ``toondb_db``: a fresh ``Database`` in the test's ``tmp_path``; after the test it
  is integrity-checked (``check()``) and closed.
- ``toondb_factory``: ``toondb_factory(name=None, **config) -> Database`` opens as
  many as the test wants (each in its own directory of ``tmp_path``, or the same one
  again by name); each is checked and closed after the test, and each directory is
  opened read-only and checked once more when its handles are closed.
- ``toondb_server``: the socket path of a ``toondb-server`` running on a fresh
  database, started once for the session (``--toondb-server-scope module``: once per
  module); stopped at the end (SIGTERM, then SIGKILL if it does not stop within 30 s)
  and its database checked. Starting waits at most 30 s for the server's line.
- ``toondb_client``: an ``IpcClient`` connected to ``toondb_server``, closed after the
  test.

Options: ``--toondb-sync-mode full|normal|off`` (ini ``toondb_sync_mode``) is the
sync_mode of every database these fixtures open (default: toondb's, "normal"; "off"
is fastest for tests). ``--toondb-bench-store PATH``, ``--toondb-bench-gate``,
``--toondb-bench-floors FILE``, ``--toondb-bench-threshold FRACTION``,
``--toondb-bench-window N`` and ``--toondb-bench-subject NAME`` drive the gate (see
toondb.benchgate).
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import pytest

from toondb.database import Database

if TYPE_CHECKING:
    from toondb.ipc.client import IpcClient

_Scope = Literal["session", "package", "module", "class", "function"]

START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
_SYNC_MODES = ("full", "normal", "off")


# ---- options


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("toondb", "toondb: database fixtures and the benchmark gate")
    group.addoption(
        "--toondb-sync-mode",
        choices=_SYNC_MODES,
        default=None,
        help="sync_mode of the databases toondb's fixtures open (default: toondb's)",
    )
    parser.addini("toondb_sync_mode", "sync_mode of toondb's fixture databases", default="")
    group.addoption(
        "--toondb-server-scope",
        choices=("session", "module"),
        default=None,
        help="how long one toondb_server lives (default: the session)",
    )
    parser.addini("toondb_server_scope", "session or module", default="session")
    group.addoption(
        "--toondb-bench-store",
        metavar="PATH",
        default=None,
        help="store this pytest-benchmark run in the toondb database at PATH",
    )
    group.addoption(
        "--toondb-bench-gate",
        action="store_true",
        default=False,
        help="fail the run if a benchmark breaks a floor or regresses against the stored runs",
    )
    group.addoption(
        "--toondb-bench-floors",
        metavar="FILE",
        default=None,
        help="the floors file (JSON, or TOML on Python 3.11+): bounds on ratios to anchors",
    )
    parser.addini("toondb_bench_floors", "the floors file of the benchmark gate", default="")
    group.addoption(
        "--toondb-bench-threshold",
        type=float,
        metavar="FRACTION",
        default=None,
        help="how much slower than its stored history a benchmark may be (default 0.25)",
    )
    group.addoption(
        "--toondb-bench-window",
        type=int,
        metavar="N",
        default=5,
        help="compare with the median of the last N stored runs (default 5)",
    )
    group.addoption(
        "--toondb-bench-subject",
        metavar="ENGINE",
        default="toondb",
        help="the extra_info['engine'] whose ratios to the others are taken (default toondb)",
    )


def _sync_mode(config: pytest.Config) -> str | None:
    mode = config.getoption("toondb_sync_mode") or config.getini("toondb_sync_mode") or None
    if mode is not None and mode not in _SYNC_MODES:
        raise pytest.UsageError(f"toondb_sync_mode must be one of {', '.join(_SYNC_MODES)}")
    return mode


# ---- databases


class DatabaseFactory:
    """toondb_factory's value: call it to open a database (see the module docstring)."""

    def __init__(self, root: Path, config: dict[str, Any]) -> None:
        self.root = root
        self.config = config
        self.handles: list[Database] = []
        self.paths: list[Path] = []

    def __call__(self, name: str | None = None, **config: Any) -> Database:
        path = self.root / (name or f"db{len(self.paths)}")
        if path not in self.paths:
            self.paths.append(path)
        handle = Database.open(path, {**self.config, **config})
        self.handles.append(handle)
        return handle

    def finish(self) -> None:
        """Check and close every handle, then check every database from a fresh open."""
        for handle in self.handles:
            if not handle.closed:
                try:
                    if not handle.read_only:
                        handle.check()
                finally:
                    handle.close()
        for path in self.paths:
            if (path / "toondb.data").exists():
                with Database.open(path, read_only=True) as again:
                    again.check()


@pytest.fixture(scope="session")
def toondb_config(pytestconfig: pytest.Config) -> dict[str, Any]:
    """The config every database of toondb's fixtures is opened with (--toondb-sync-mode)."""
    mode = _sync_mode(pytestconfig)
    return {"sync_mode": mode} if mode else {}


@pytest.fixture
def toondb_factory(tmp_path: Path, toondb_config: dict[str, Any]) -> Iterator[DatabaseFactory]:
    """Open databases in tmp_path: toondb_factory(name=None, **config) -> Database."""
    factory = DatabaseFactory(tmp_path / "toondb", toondb_config)
    yield factory
    factory.finish()


@pytest.fixture
def toondb_db(toondb_factory: DatabaseFactory) -> Database:
    """A fresh Database in tmp_path, checked and closed after the test."""
    return toondb_factory("db")


# ---- the server


class ServerProcess:
    """toondb-server on a database, as a subprocess: started and waited for by its
    'listening on' line, never by sleeping; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, db_path: Path, sync_mode: str | None) -> None:
        self.db_path = db_path
        self.sync_mode = sync_mode
        self.log_path = db_path.parent / "toondb-server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.socket_path = ""

    def start(self, timeout: float = START_TIMEOUT) -> str:
        command = [sys.executable, "-m", "toondb.server", "--db", str(self.db_path)]
        if self.sync_mode:
            command += ["--sync-mode", self.sync_mode]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL
            )
        line = self._first_line(timeout)
        if "listening on " not in line:
            self.stop()
            raise RuntimeError(f"toondb-server did not start: {line!r}\n{self.log()}")
        self.socket_path = line.split("listening on ", 1)[1].split(" (", 1)[0]
        return self.socket_path

    def _first_line(self, timeout: float) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        buf = b""
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while b"\n" not in buf:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    return buf.decode(errors="replace") + f" (no line within {timeout:g} s)"
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                buf += chunk
        return buf.split(b"\n", 1)[0].decode(errors="replace")

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        if proc.stdout is not None:
            proc.stdout.close()
        return proc.returncode

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


def _server_scope(fixture_name: str, config: pytest.Config) -> _Scope:
    # pytest checks the name it gets back
    return cast(
        _Scope,
        str(config.getoption("toondb_server_scope") or config.getini("toondb_server_scope")),
    )


@pytest.fixture(scope=_server_scope)
def toondb_server(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[str]:
    """The socket path of a toondb-server on a fresh database (see the module)."""
    root = tmp_path_factory.mktemp("toondb-server")
    server = ServerProcess(root / "db", _sync_mode(pytestconfig))
    socket_path = server.start()
    try:
        yield socket_path
    finally:
        status = server.stop()
    if status not in (0, -signal.SIGTERM):
        raise RuntimeError(f"toondb-server exited with status {status}\n{server.log()}")
    with Database.open(root / "db", read_only=True) as db:
        db.check()


@pytest.fixture
def toondb_client(toondb_server: str) -> Iterator[IpcClient]:
    """An IpcClient connected to toondb_server, closed after the test."""
    from toondb.ipc.client import IpcClient

    client = IpcClient.connect(toondb_server)
    try:
        yield client
    finally:
        client.close()


# ---- the benchmark gate


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    store = config.getoption("toondb_bench_store")
    gate = config.getoption("toondb_bench_gate")
    if not (store or gate):
        return
    bench_session = getattr(config, "_benchmarksession", None)
    if bench_session is None or not getattr(bench_session, "benchmarks", None):
        return
    from toondb import benchgate

    machine = bench_session.get_machine_info()
    commit = config.hook.pytest_benchmark_generate_commit_info(config=config)
    run = benchgate.collect(
        bench_session.benchmarks, machine, commit, config.getoption("toondb_bench_subject")
    )
    if not run.results:
        return
    floors_file = config.getoption("toondb_bench_floors") or config.getini("toondb_bench_floors")
    floors = benchgate.load_floors(floors_file) if floors_file else None
    history = benchgate.load_runs(store, machine_id=run.machine_id) if store else []
    report = benchgate.evaluate(
        run,
        history,
        floors,
        config.getoption("toondb_bench_threshold"),
        config.getoption("toondb_bench_window"),
    )
    if gate:
        run.passed = report.passed
    if store:
        benchgate.save_run(store, run)
    config._toondb_bench = (run, report, gate, store)  # type: ignore[attr-defined]
    if gate and not report.passed and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    done = getattr(config, "_toondb_bench", None)
    if done is None:
        return
    run, report, gate, store = done
    tr = terminalreporter
    tr.section("toondb benchmark gate" if gate else "toondb benchmark store")
    for line in report.lines() if gate else []:
        tr.write_line(line)
    if store:
        tr.write_line(f"stored as run #{run.id} in {store} (toondb bench-history {store})")
