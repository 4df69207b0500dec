"""Read-heavy services: point gets per second summed over 1, 2 and 4 reader
processes while one process writes 1k commits per second, side by side with
py-lmdb doing the same in the same run; and the same with the writer off, for
the scaling from 1 to 2 processes.

Run: ``python -m pytest bench/bench_readers.py --benchmark-only`` (or
``bash ci/bench.sh readers``). Each reader does ``db.get`` (lmdb: a read
transaction per get, which is what ``db.get`` is) of random present keys.
"""

from __future__ import annotations

import os
import random
import shutil
import struct
import tempfile
import time

import pytest

from toondb import Database

lmdb = pytest.importorskip("lmdb")

N = 200_000
SECONDS = 2.0
_rnd = random.Random(7)
KEYS = [_rnd.randbytes(16) for _ in range(N)]


def _toon_reader(path, keys, start, seconds):
    db = Database.open(path)
    get = db.get
    while time.time() < start:
        pass
    end = start + seconds
    n = 0
    while True:
        for i in range(0, len(keys), 1000):
            for k in keys[i : i + 1000]:
                get(k)
            n += 1000
            if time.time() >= end:
                return n


def _lmdb_reader(path, keys, start, seconds):
    env = lmdb.open(path, map_size=1 << 34, readonly=True, lock=True)
    begin = env.begin
    while time.time() < start:
        pass
    end = start + seconds
    n = 0
    while True:
        for i in range(0, len(keys), 1000):
            for k in keys[i : i + 1000]:
                with begin() as t:
                    t.get(k)
            n += 1000
            if time.time() >= end:
                return n


def _toon_writer(path, start, seconds, rate):
    db = Database.open(path)
    rnd = random.Random(1)
    while time.time() < start:
        pass
    n = 0
    while time.time() < start + seconds:
        db.put(KEYS[rnd.randrange(N)], b"w" * 100)
        n += 1
        wait = start + n / rate - time.time()
        if wait > 0:
            time.sleep(wait)
    return n


def _lmdb_writer(path, start, seconds, rate):
    env = lmdb.open(path, map_size=1 << 34)
    rnd = random.Random(1)
    while time.time() < start:
        pass
    n = 0
    while time.time() < start + seconds:
        with env.begin(write=True) as t:
            t.put(KEYS[rnd.randrange(N)], b"w" * 100)
        n += 1
        wait = start + n / rate - time.time()
        if wait > 0:
            time.sleep(wait)
    return n


def _fork(fn, *args) -> tuple[int, int]:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.write(w, struct.pack("<Q", fn(*args)))
        finally:
            os._exit(0)
    os.close(w)
    return pid, r


def _collect(children) -> list[int]:
    out = []
    for pid, r in children:
        data = os.read(r, 8)
        os.close(r)
        os.waitpid(pid, 0)
        out.append(struct.unpack("<Q", data)[0] if len(data) == 8 else 0)
    return out


@pytest.fixture(scope="module")
def stores():
    d = tempfile.mkdtemp(prefix="toondb-readers-")
    tpath, lpath = os.path.join(d, "toondb"), os.path.join(d, "lmdb")
    with Database.open(tpath) as db:
        with db.transaction() as t:
            for k in KEYS:
                t.put(k, b"v" * 100)
    env = lmdb.open(lpath, map_size=1 << 34)
    with env.begin(write=True) as t:
        for k in KEYS:
            t.put(k, b"v" * 100)
    env.close()
    yield {"toondb": tpath, "lmdb": lpath}
    shutil.rmtree(d, ignore_errors=True)


RESULTS: dict[tuple, float] = {}


@pytest.mark.parametrize("writer", ["writer 1k/s", "writer off"])
@pytest.mark.parametrize("procs", [1, 2, 4])
@pytest.mark.parametrize("engine", ["toondb", "lmdb"])
def test_reader_processes(benchmark, stores, engine, procs, writer):
    benchmark.group = f"gets/s over {procs} reader process(es), {writer}"
    reader = _toon_reader if engine == "toondb" else _lmdb_reader
    write = _toon_writer if engine == "toondb" else _lmdb_writer
    path = stores[engine]
    rnd = random.Random(procs)
    total = {}

    def run():
        start = time.time() + 0.5
        kids = [_fork(reader, path, rnd.sample(KEYS, 20_000), start, SECONDS) for _ in range(procs)]
        w = [_fork(write, path, start, SECONDS, 1000)] if writer != "writer off" else []
        total["gets"] = sum(_collect(kids))
        total["commits"] = sum(_collect(w))

    benchmark.pedantic(run, rounds=1, iterations=1)
    rate = total["gets"] / SECONDS
    RESULTS[(engine, procs, writer)] = rate
    benchmark.extra_info.update(
        {
            "engine": engine,
            "ops": rate * benchmark.stats.stats.median,
            "unit": "gets/s",
            "writer_commits": total["commits"],
        }
    )


def test_scaling_summary(benchmark):
    """The scaling from 1 to 2 reader processes with the writer off, printed
    after the table."""
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    lines = []
    for engine in ("toondb", "lmdb"):
        one, two = RESULTS.get((engine, 1, "writer off")), RESULTS.get((engine, 2, "writer off"))
        if one and two:
            lines.append(
                f"{engine}: scaling 1 -> 2 reader processes (writer off): {two / one:.2f}x"
            )
    benchmark.extra_info["summary"] = lines
