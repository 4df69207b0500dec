"""IPC mode side by side with redis-server, driven by redis-py, both on a Unix
socket in a temp dir, same machine, same run: ping latency, get and put with 1
and 8 client processes, and a streamed scan of 100k keys.

Run: ``python -m pytest bench/bench_ipc.py --benchmark-only`` (or
``bash ci/bench.sh ipc``); the table at the end gives toondb's rate over redis's.
redis-server is started by the benchmark (Debian package ``redis-server``); without
it the redis rows are skipped with a message.

Pairings, so that like is compared with like:

- toondb-server with ``--sync-mode off`` (a commit is in the OS page cache when
  it returns: it survives a crash of the server, not of the machine) against
  redis with no persistence at all (``--save "" --appendonly no``);
- toondb's default ``normal`` mode (fsync at sync points, about once a second)
  against redis ``--appendonly yes --appendfsync everysec``, for puts.

The scan: toondb streams ``client.scan(b"k:")`` in key order; redis has no ordered
scan of its keyspace, so its row is the usual ``SCAN MATCH k:* COUNT 1000`` with a
pipelined ``MGET`` per batch (unordered), which is what a redis user would write.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

import pytest

from toondb import IpcClient

ONE = 5000  # operations per round, one client
PER_CLIENT = 2000  # operations per client per round, eight clients
CLIENTS = 8
KEYS = 10_000
SCAN_KEYS = 100_000
VALUE = b"v" * 100

_rnd = random.Random(2026)
KEY_LIST = [b"key:%08d" % i for i in range(KEYS)]
PROBES = [KEY_LIST[_rnd.randrange(KEYS)] for _ in range(ONE)]


# ---- servers ---------------------------------------------------------------------


class _Proc:
    def __init__(self, argv: list[str], log: str) -> None:
        self.log = open(log, "wb")
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.log.close()


def _start_toondb(root: str, sync_mode: str) -> tuple[_Proc, str]:
    db = os.path.join(root, f"toondb-{sync_mode}")
    proc = _Proc(
        [sys.executable, "-m", "toondb.server", "--db", db, "--sync-mode", sync_mode,
         "--log-level", "warning"],
        os.path.join(root, f"toondb-{sync_mode}.log"),
    )  # fmt: skip
    line = proc.proc.stdout.readline().decode() if proc.proc.stdout else ""
    if "listening on" not in line:
        proc.stop()
        raise RuntimeError(f"toondb-server did not start: {line!r}")
    return proc, os.path.join(db, "toondb.sock")


def _start_redis(root: str, aof: bool) -> tuple[_Proc, str]:
    name = "redis-aof" if aof else "redis"
    sock = os.path.join(root, f"{name}.sock")
    argv = [
        "redis-server", "--port", "0", "--unixsocket", sock, "--unixsocketperm", "700",
        "--dir", root, "--save", "", "--daemonize", "no", "--loglevel", "warning",
        "--appendfilename", f"{name}.aof", "--appenddirname", f"{name}-aof",
    ]  # fmt: skip
    argv += ["--appendonly", "yes", "--appendfsync", "everysec"] if aof else ["--appendonly", "no"]
    proc = _Proc(argv, os.path.join(root, f"{name}.log"))
    import redis

    deadline = time.monotonic() + 30
    while True:
        try:
            redis.Redis(unix_socket_path=sock).ping()
            return proc, sock
        except (redis.ConnectionError, FileNotFoundError):
            if proc.proc.poll() is not None or time.monotonic() > deadline:
                proc.stop()
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.01)


@pytest.fixture(scope="module")
def root():
    path = tempfile.mkdtemp(prefix="bench_ipc_")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def servers(root):
    """{engine label: socket path} for every server that could be started."""
    procs: list[_Proc] = []
    socks: dict[str, str] = {}
    for mode in ("off", "normal"):
        proc, sock = _start_toondb(root, mode)
        procs.append(proc)
        socks[f"toondb-{mode}"] = sock
    if shutil.which("redis-server") is not None:
        try:
            import redis  # noqa: F401
        except ImportError:
            print("\nbench_ipc: redis-py is not installed; the redis rows are skipped")
        else:
            for aof in (False, True):
                proc, sock = _start_redis(root, aof)
                procs.append(proc)
                socks["redis-aof" if aof else "redis"] = sock
    else:
        print("\nbench_ipc: redis-server is not on PATH; the redis rows are skipped")
    yield socks
    for proc in procs:
        proc.stop()


# ---- clients: the same operations through each client library ------------------------


class _Toondb:
    def __init__(self, sock: str) -> None:
        self.c = IpcClient.connect(sock, timeout=60)

    def ping(self, n: int) -> None:
        ping = self.c.ping
        for _ in range(n):
            ping()

    def get_each(self, keys: list[bytes]) -> None:
        get = self.c.get
        for k in keys:
            get(k)

    def put_each(self, keys: list[bytes]) -> None:
        put = self.c.put
        for k in keys:
            put(k, VALUE)

    def load(self, keys: list[bytes]) -> None:
        with self.c.transaction() as t:
            for k in keys:
                t.put(k, VALUE)

    def scan_count(self, prefix: bytes) -> int:
        n = 0
        for _ in self.c.scan(prefix):
            n += 1
        return n

    def close(self) -> None:
        self.c.close()


class _Redis:
    def __init__(self, sock: str) -> None:
        import redis

        self.c = redis.Redis(unix_socket_path=sock)

    def ping(self, n: int) -> None:
        ping = self.c.ping
        for _ in range(n):
            ping()

    def get_each(self, keys: list[bytes]) -> None:
        get = self.c.get
        for k in keys:
            get(k)

    def put_each(self, keys: list[bytes]) -> None:
        put = self.c.set
        for k in keys:
            put(k, VALUE)

    def load(self, keys: list[bytes]) -> None:
        pipe = self.c.pipeline(transaction=False)
        for i, k in enumerate(keys):
            pipe.set(k, VALUE)
            if i % 1000 == 999:
                pipe.execute()
        pipe.execute()

    def scan_count(self, prefix: bytes) -> int:
        n = 0
        cursor = 0
        while True:
            cursor, keys = self.c.scan(cursor, match=prefix + b"*", count=1000)
            if keys:
                for _ in zip(keys, self.c.mget(keys)):
                    n += 1
            if cursor == 0:
                return n

    def close(self) -> None:
        self.c.close()


def _client(engine: str, sock: str) -> Any:
    return _Redis(sock) if engine.startswith("redis") else _Toondb(sock)


def _label(engine: str) -> str:
    # the conftest's table compares every engine with the one named "toondb"
    return "toondb" if engine.startswith("toondb") else "redis"


def _need(servers: dict[str, str], engine: str) -> str:
    if engine not in servers:
        pytest.skip(f"{engine} is not available (redis-server not installed?)")
    return servers[engine]


@pytest.fixture(scope="module")
def loaded(servers):
    for engine, sock in servers.items():
        c = _client(engine, sock)
        c.load(KEY_LIST)
        c.load(
            [b"k:%08d" % i for i in range(SCAN_KEYS)] if engine in ("toondb-off", "redis") else []
        )
        c.close()
    return servers


# ---- one client --------------------------------------------------------------------

PAIRS_FAST = ["toondb-off", "redis"]


def _one_client(benchmark, servers, engine, group, fn: Callable[[Any], None], ops: int) -> None:
    sock = _need(servers, engine)
    c = _client(engine, sock)
    try:
        benchmark.group = group
        benchmark.extra_info.update(engine=_label(engine), ops=ops, server=engine)
        benchmark.pedantic(fn, args=(c,), rounds=7, iterations=1, warmup_rounds=1)
    finally:
        c.close()


@pytest.mark.parametrize("engine", PAIRS_FAST)
def test_ping(benchmark, loaded, engine):
    _one_client(benchmark, loaded, engine, "ipc ping, 1 client", lambda c: c.ping(ONE), ONE)
    benchmark.extra_info["latency_us"] = round(benchmark.stats.stats.median / ONE * 1e6, 1)


@pytest.mark.parametrize("engine", PAIRS_FAST)
def test_get_one_client(benchmark, loaded, engine):
    _one_client(benchmark, loaded, engine, "ipc get, 1 client", lambda c: c.get_each(PROBES), ONE)


@pytest.mark.parametrize("engine", PAIRS_FAST)
def test_put_one_client(benchmark, loaded, engine):
    _one_client(
        benchmark, loaded, engine, "ipc put, 1 client, no fsync", lambda c: c.put_each(PROBES), ONE
    )


@pytest.mark.parametrize("engine", ["toondb-normal", "redis-aof"])
def test_put_one_client_fsync_every_second(benchmark, loaded, engine):
    _one_client(
        benchmark,
        loaded,
        engine,
        "ipc put, 1 client, fsync ~1/s",
        lambda c: c.put_each(PROBES),
        ONE,
    )


@pytest.mark.parametrize("engine", PAIRS_FAST)
def test_scan_100k_keys(benchmark, loaded, engine):
    def scan(c):
        assert c.scan_count(b"k:") == SCAN_KEYS

    _one_client(benchmark, loaded, engine, "ipc scan 100k keys (keys/s)", scan, SCAN_KEYS)


# ---- eight client processes ----------------------------------------------------------

_worker_client: Any = None


def _worker_init(engine: str, sock: str) -> None:
    global _worker_client
    _worker_client = _client(engine, sock)


def _worker_run(job: tuple[str, int]) -> float:
    what, seed = job
    rnd = random.Random(seed)
    keys = [KEY_LIST[rnd.randrange(KEYS)] for _ in range(PER_CLIENT)]
    t0 = time.perf_counter()
    if what == "get":
        _worker_client.get_each(keys)
    else:
        _worker_client.put_each(keys)
    return time.perf_counter() - t0


def _eight_clients(benchmark, servers, engine, what: str) -> None:
    sock = _need(servers, engine)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(CLIENTS, initializer=_worker_init, initargs=(engine, sock)) as pool:
        pool.map(_worker_run, [(what, i) for i in range(CLIENTS)])  # warm up every worker
        seeds = iter(range(1000, 100000))

        def run() -> None:
            pool.map(_worker_run, [(what, next(seeds)) for _ in range(CLIENTS)], chunksize=1)

        benchmark.group = f"ipc {what}, {CLIENTS} client processes"
        benchmark.extra_info.update(engine=_label(engine), ops=CLIENTS * PER_CLIENT, server=engine)
        benchmark.pedantic(run, rounds=5, iterations=1)


@pytest.mark.parametrize("engine", PAIRS_FAST)
def test_get_eight_clients(benchmark, loaded, engine):
    _eight_clients(benchmark, loaded, engine, "get")


@pytest.mark.parametrize("engine", PAIRS_FAST)
def test_put_eight_clients(benchmark, loaded, engine):
    _eight_clients(benchmark, loaded, engine, "put")
