"""The storage engine side by side with py-lmdb and stdlib sqlite3, same data,
same run: 200k keys of 16 bytes with 100-byte values, in random order.

Run: ``python -m pytest bench/bench_storage.py --benchmark-only`` (or
``bash ci/bench.sh storage``); the table at the end gives toondb's rate over each
anchor's. sqlite3 runs in WAL mode with synchronous=NORMAL on a WITHOUT ROWID
table, as its users would tune it for this.
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import tempfile

import pytest

from toondb import Database

lmdb = pytest.importorskip("lmdb")

N = 200_000
GETS = 50_000
AUTOCOMMIT = 20_000
AUTOCOMMIT_FULL = 1_000
VALUE = b"v" * 100

_rnd = random.Random(2026)
KEYS = [_rnd.randbytes(16) for _ in range(N)]
MISSING = [_rnd.randbytes(16) for _ in range(GETS)]
PROBES = [KEYS[_rnd.randrange(N)] for _ in range(GETS)]
SORTED = sorted(KEYS)
RANGE_STARTS = [SORTED[_rnd.randrange(N - 200)] for _ in range(1000)]
DOOMED = _rnd.sample(KEYS, N // 2)


# ---- engine adapters ---------------------------------------------------------


class Toon:
    name = "toondb"

    def __init__(self, path, sync="off"):
        self.db = Database.open(path, {"sync_mode": sync})

    def load(self, items):
        with self.db.transaction() as t:
            put = t.put
            for k, v in items:
                put(k, v)

    def get_each(self, keys):
        get = self.db.get
        for k in keys:
            get(k)

    def get_in_txn(self, keys):
        with self.db.transaction(read_only=True) as t:
            get = t.get
            for k in keys:
                get(k)

    def scan_all(self):
        n = 0
        for _ in self.db.scan(b""):
            n += 1
        return n

    def range_scans(self, starts, count):
        with self.db.transaction(read_only=True) as t:
            for s in starts:
                n = 0
                for _ in t.scan(s, b"\xff" * 17):
                    n += 1
                    if n == count:
                        break

    def delete_many(self, keys):
        with self.db.transaction() as t:
            d = t.delete
            for k in keys:
                d(k)

    def put_each(self, items):
        put = self.db.put
        for k, v in items:
            put(k, v)

    def size(self):
        self.db.checkpoint()
        return os.path.getsize(os.path.join(self.db.path, "toondb.data"))

    def close(self):
        self.db.close()


class Lmdb:
    name = "lmdb"

    def __init__(self, path, sync="off"):
        os.makedirs(path, exist_ok=True)
        self.env = lmdb.open(path, map_size=1 << 34, sync=sync != "off", metasync=sync == "full")

    def load(self, items):
        with self.env.begin(write=True) as t:
            put = t.put
            for k, v in items:
                put(k, v)

    def get_each(self, keys):
        begin = self.env.begin
        for k in keys:
            with begin() as t:
                t.get(k)

    def get_in_txn(self, keys):
        with self.env.begin() as t:
            get = t.get
            for k in keys:
                get(k)

    def scan_all(self):
        n = 0
        with self.env.begin() as t:
            for _ in t.cursor():
                n += 1
        return n

    def range_scans(self, starts, count):
        with self.env.begin() as t:
            cur = t.cursor()
            for s in starts:
                cur.set_range(s)
                n = 0
                for _ in cur:
                    n += 1
                    if n == count:
                        break

    def delete_many(self, keys):
        with self.env.begin(write=True) as t:
            d = t.delete
            for k in keys:
                d(k)

    def put_each(self, items):
        begin = self.env.begin
        for k, v in items:
            with begin(write=True) as t:
                t.put(k, v)

    def size(self):
        self.env.sync(True)
        return os.path.getsize(os.path.join(self.env.path(), "data.mdb"))

    def close(self):
        self.env.close()


class Sqlite:
    name = "sqlite3"

    def __init__(self, path, sync="off"):
        os.makedirs(path, exist_ok=True)
        self.file = os.path.join(path, "db.sqlite")
        self.con = sqlite3.connect(self.file, isolation_level=None)
        self.con.execute("PRAGMA journal_mode=WAL")
        self.con.execute(
            f"PRAGMA synchronous={ {'off': 'OFF', 'normal': 'NORMAL', 'full': 'FULL'}[sync] }"
        )
        self.con.execute("CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID")

    def load(self, items):
        self.con.execute("BEGIN")
        self.con.executemany("INSERT OR REPLACE INTO kv VALUES (?, ?)", items)
        self.con.execute("COMMIT")

    def get_each(self, keys):
        ex = self.con.execute
        for k in keys:
            ex("SELECT v FROM kv WHERE k = ?", (k,)).fetchone()

    def get_in_txn(self, keys):
        ex = self.con.execute
        ex("BEGIN")
        for k in keys:
            ex("SELECT v FROM kv WHERE k = ?", (k,)).fetchone()
        ex("COMMIT")

    def scan_all(self):
        n = 0
        for _ in self.con.execute("SELECT k, v FROM kv ORDER BY k"):
            n += 1
        return n

    def range_scans(self, starts, count):
        ex = self.con.execute
        ex("BEGIN")
        for s in starts:
            ex("SELECT k, v FROM kv WHERE k >= ? ORDER BY k LIMIT ?", (s, count)).fetchall()
        ex("COMMIT")

    def delete_many(self, keys):
        self.con.execute("BEGIN")
        self.con.executemany("DELETE FROM kv WHERE k = ?", ((k,) for k in keys))
        self.con.execute("COMMIT")

    def put_each(self, items):
        ex = self.con.execute
        for k, v in items:
            ex("INSERT OR REPLACE INTO kv VALUES (?, ?)", (k, v))

    def size(self):
        self.con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return os.path.getsize(self.file)

    def close(self):
        self.con.close()


ENGINES = [Toon, Lmdb, Sqlite]
ids = [e.name for e in ENGINES]


@pytest.fixture(scope="module")
def workdir():
    d = tempfile.mkdtemp(prefix="toondb-bench-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _settle():
    """Write back every dirty page of the machine before a timed round, so that
    no engine is timed while the kernel flushes what an earlier one wrote."""
    os.sync()


class Rounds:
    """A fresh engine per benchmark round; the previous round's files are deleted
    (their unwritten pages are then dropped, not flushed during the next round)."""

    def __init__(self, cls, workdir, tag, sync="off"):
        self.cls, self.workdir, self.tag, self.sync = cls, workdir, tag, sync
        self.n = 0
        self.engine = None

    def fresh(self):
        self.discard()
        self.n += 1
        self.path = os.path.join(self.workdir, f"{self.tag}-{self.cls.name}-{self.n}")
        self.engine = self.cls(self.path, self.sync)
        return self.engine

    def discard(self):
        if self.engine is not None:
            self.engine.close()
            shutil.rmtree(self.path, ignore_errors=True)
            self.engine = None


@pytest.fixture(scope="module", params=ENGINES, ids=ids)
def loaded(request, workdir):
    """Each engine with the 200k keys loaded once, shared by the read benchmarks."""
    engine = request.param(os.path.join(workdir, "loaded-" + request.param.name))
    engine.load(zip(KEYS, [VALUE] * N))
    _settle()
    yield engine
    engine.close()


def _info(benchmark, engine, ops, unit="ops/s"):
    benchmark.extra_info.update({"engine": engine.name, "ops": ops, "unit": unit})


# ---- the workloads -------------------------------------------------------------


@pytest.mark.parametrize("cls", ENGINES, ids=ids)
def test_bulk_load(benchmark, cls, workdir):
    benchmark.group = "bulk load 200k in one transaction"
    rounds = Rounds(cls, workdir, "bulk")

    def setup():
        rounds.fresh()
        _settle()
        return (), {}

    benchmark.pedantic(
        lambda: rounds.engine.load(zip(KEYS, [VALUE] * N)), setup=setup, rounds=3, iterations=1
    )
    rounds.discard()
    _info(benchmark, cls, N, "puts/s")


def test_get_present(benchmark, loaded):
    benchmark.group = "get, present keys (a transaction per get)"
    benchmark.pedantic(loaded.get_each, args=(PROBES,), rounds=5, iterations=1)
    _info(benchmark, loaded, GETS, "gets/s")


def test_get_missing(benchmark, loaded):
    benchmark.group = "get, missing keys (a transaction per get)"
    benchmark.pedantic(loaded.get_each, args=(MISSING,), rounds=5, iterations=1)
    _info(benchmark, loaded, GETS, "gets/s")


def test_get_in_one_transaction(benchmark, loaded):
    benchmark.group = "get, present keys, one read transaction"
    benchmark.pedantic(loaded.get_in_txn, args=(PROBES,), rounds=5, iterations=1)
    _info(benchmark, loaded, GETS, "gets/s")


def test_full_scan(benchmark, loaded):
    benchmark.group = "full ordered scan"
    n = benchmark.pedantic(loaded.scan_all, rounds=5, iterations=1)
    assert n == N
    _info(benchmark, loaded, N, "pairs/s")


def test_range_scans(benchmark, loaded):
    benchmark.group = "1000 range scans of 100 keys"
    benchmark.pedantic(loaded.range_scans, args=(RANGE_STARTS, 100), rounds=5, iterations=1)
    _info(benchmark, loaded, 100_000, "pairs/s")


def test_file_size(benchmark, loaded):
    benchmark.group = "file size after the bulk load (smaller is better)"
    size = loaded.size()
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    benchmark.extra_info.update({"engine": loaded.name, "size": size})


@pytest.mark.parametrize("cls", ENGINES, ids=ids)
def test_random_deletes(benchmark, cls, workdir):
    benchmark.group = "delete 100k random keys in one transaction"
    rounds = Rounds(cls, workdir, "del")

    def setup():
        rounds.fresh().load(zip(KEYS, [VALUE] * N))
        _settle()
        return (), {}

    benchmark.pedantic(
        lambda: rounds.engine.delete_many(DOOMED), setup=setup, rounds=3, iterations=1
    )
    rounds.discard()
    _info(benchmark, cls, len(DOOMED), "deletes/s")


@pytest.mark.parametrize("sync", ["off", "normal", "full"])
@pytest.mark.parametrize("cls", ENGINES, ids=ids)
def test_autocommit_puts(benchmark, cls, sync, workdir):
    benchmark.group = f"autocommit put, sync {sync}"
    count = AUTOCOMMIT_FULL if sync == "full" else AUTOCOMMIT
    rounds = Rounds(cls, workdir, f"auto-{sync}", sync)

    def setup():
        rounds.fresh().load(zip(KEYS[:10_000], [VALUE] * 10_000))
        _settle()
        return (), {}

    items = [(KEYS[i % N], b"w" * 100) for i in range(count)]
    benchmark.pedantic(lambda: rounds.engine.put_each(items), setup=setup, rounds=3, iterations=1)
    rounds.discard()
    _info(benchmark, cls, count, "commits/s")
