"""Replication to object storage (toondb.replication): what it costs the primary and
how fast it is, one table.

- commits/s of an autocommit writer (db.put, sync_mode "normal", 16-byte keys and
  100-byte values into 100k keys) with and without ``toondb replicate`` running
  beside it (file:// store, default 1 s interval), in alternating rounds, medians;
- bytes shipped per commit (batch objects, zlib) against the bytes the commit wrote
  (the writer's write(2) bytes: pages and meta);
- replica lag at 1k commits/s: ``toondb replicate`` + ``toondb follow`` + a reader of
  the replica that measures how old the newest commit it sees is (p50, p99), at the
  default 1 s interval and at 0.2 s;
- snapshot and restore time of a large database: TOONDB_BENCH_RESTORE_MB MiB of 2 KB
  values (default 256; the page file is about twice that, since two such values do
  not fit one 4 KiB page); the table gives seconds per GiB of page file.

Run: ``python bench/bench_replication.py`` (prints the table), or under pytest:
``python -m pytest bench/bench_replication.py --benchmark-only`` (the table is printed
at the end, as the other suites' summaries).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from toondb import Database  # noqa: E402
from toondb.replication import open_store, restore  # noqa: E402
from toondb.replication.inventory import read_manifest  # noqa: E402

RESTORE_MB = int(os.environ.get("TOONDB_BENCH_RESTORE_MB", "256"))
ROUND_SECONDS = 2.0
ROUNDS = 5
PRELOAD = 100_000


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT
    return env


def _spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "toondb", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_env(),
    )


def _stop(p: subprocess.Popen) -> None:
    p.terminate()
    try:
        p.wait(60)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def _wait_manifest(url: str, proc: subprocess.Popen, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while read_manifest(open_store(url)) is None:
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("the replicator did not start")
        time.sleep(0.05)


_WRITER = """
import os, random, sys, time, json
from toondb import Database
db = Database.open(sys.argv[1], {"sync_mode": "normal"})
seconds, rate = float(sys.argv[2]), float(sys.argv[3])
rnd = random.Random(os.getpid())
def wchar():
    for line in open("/proc/self/io"):
        if line.startswith("wchar:"):
            return int(line.split()[1])
put = db.put
w0 = wchar()
c0 = time.process_time()
t0 = time.perf_counter()
n = 0
while True:
    now = time.perf_counter()
    if now - t0 >= seconds:
        break
    if rate:
        put(b"t", repr(time.time()).encode())
        put(rnd.randbytes(16), b"v" * 100)
        n += 2
        wait = t0 + n / 2 / rate - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
    else:
        for _ in range(200):
            put(rnd.randbytes(16), b"v" * 100)
        n += 200
elapsed = time.perf_counter() - t0
cpu = time.process_time() - c0
w1 = wchar()
db.close()
print(json.dumps({"commits": n, "seconds": elapsed, "cpu": cpu, "wchar": w1 - w0}))
"""


def _writer(db: str, seconds: float, rate: float = 0.0) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _WRITER, db, str(seconds), str(rate)],
        capture_output=True,
        text=True,
        env=_env(),
        check=True,
    )
    return json.loads(out.stdout)


def _batch_bytes(store_dir: str) -> tuple[int, int]:
    """(bytes of batch objects, transactions in them) in a file:// store."""
    store = open_store("file://" + store_dir)
    m = read_manifest(store)
    size = sum(s for k, s in store.list("generations/") if k.endswith(".batch"))
    first = m.generation_info(m.generation)["first_txn"]
    return size, m.last_txn - first


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def overhead(work: str) -> list[str]:
    """Alternating rounds without and with a replicator: the writer's commits per
    second of wall time (this shared machine is noisy) and per second of its own CPU
    time (what logging costs each commit), the replicator's CPU per commit."""
    db = os.path.join(work, "primary")
    with Database.open(db) as d, d.transaction() as t:
        rnd = random.Random(1)
        for _ in range(PRELOAD):
            t.put(rnd.randbytes(16), b"v" * 100)
    _writer(db, ROUND_SECONDS)  # into the steady state of the freelist first
    wall = {False: [], True: []}
    cpu = {False: [], True: []}
    written, shipped, txns, repl_cpu, repl_commits = 0, 0, 0, 0.0, 0
    for r in range(ROUNDS):
        for on in (False, True):
            if not on:
                res = _writer(db, ROUND_SECONDS)
            else:
                store_dir = os.path.join(work, f"store{r}")
                url = "file://" + store_dir
                proc = _spawn("replicate", db, url, "--resume-within", "1s")
                _wait_manifest(url, proc)
                c0 = _cpu_seconds(proc.pid)
                res = _writer(db, ROUND_SECONDS)
                repl_cpu += _cpu_seconds(proc.pid) - c0
                repl_commits += res["commits"]
                written += res["wchar"]
                _stop(proc)
                time.sleep(1.5)  # the change log goes off a second after the replicator
                size, n = _batch_bytes(store_dir)
                shipped += size
                txns += n
            wall[on].append(res["commits"] / res["seconds"])
            cpu[on].append(res["commits"] / res["cpu"])
    med = {k: statistics.median(v) for k, v in wall.items()}
    cmed = {k: statistics.median(v) for k, v in cpu.items()}

    def rounds(v):
        return ", ".join(f"{x:,.0f}" for x in v)

    return [
        f"{'autocommit put, sync normal, no replicator':58s} {med[False]:12,.0f} commits/s"
        f"   (rounds {rounds(wall[False])})",
        f"{'autocommit put, sync normal, toondb replicate running':58s} {med[True]:12,.0f} commits/s"
        f"   ({(med[False] - med[True]) / med[False] * 100:+.1f}%; rounds {rounds(wall[True])})",
        f"{'  the same per second of the writer CPU, without / with':58s} "
        f"{cmed[False]:12,.0f} / {cmed[True]:,.0f}   "
        f"({(cmed[False] - cmed[True]) / cmed[False] * 100:+.1f}%: the commit's logging)",
        f"{'  CPU the replicator process used per commit':58s} "
        f"{repl_cpu / max(repl_commits, 1) * 1e6:12.1f} us",
        f"{'bytes written by the primary per commit':58s} "
        f"{written / max(repl_commits, 1):12,.0f} bytes",
        f"{'bytes shipped per commit (batches, zlib)':58s} {shipped / max(txns, 1):12,.1f} bytes",
    ]


_READER = """
import sys, time, json
from toondb import Database
dest, seconds = sys.argv[1], float(sys.argv[2])
while True:
    try:
        db = Database.open(dest, read_only=True)
        if db.get(b"t"):
            break
        db.close()
    except Exception:
        pass
    time.sleep(0.01)
lags = []
end = time.time() + seconds
while time.time() < end:
    t = db.get(b"t")
    lags.append(time.time() - float(t))
    time.sleep(0.01)
print(json.dumps(lags))
"""


def lag(work: str, interval: float) -> str:
    tag = f"i{interval:g}"
    db = os.path.join(work, "lag" + tag)
    dest = os.path.join(work, "replica" + tag)
    url = "file://" + os.path.join(work, "lagstore" + tag)
    with Database.open(db) as d:
        d.put(b"t", repr(time.time()).encode())
    repl = _spawn("replicate", db, url, "--interval", str(interval))
    _wait_manifest(url, repl)
    follow = _spawn("follow", url, dest, "--interval", str(interval))
    reader = subprocess.Popen(
        [sys.executable, "-c", _READER, dest, "8"],
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    res = _writer(db, 10.0, rate=1000)
    lags = json.loads(reader.communicate(timeout=120)[0])[100:]
    _stop(follow)
    _stop(repl)
    lags.sort()
    rate = res["commits"] / 2 / res["seconds"]
    p50 = lags[len(lags) // 2]
    p99 = lags[int(len(lags) * 0.99)]
    return (
        f"{f'replica lag at {rate:,.0f} commits/s, interval {interval:g}s (p50 / p99)':58s} "
        f"{p50:9.2f} s / {p99:.2f} s"
    )


def big_restore(work: str) -> list[str]:
    db = os.path.join(work, "big")
    rnd = random.Random(3)
    value_chars = 2000  # hex text: compresses about 2x, like typical data
    n = RESTORE_MB * (1 << 20) // (value_chars + 40)
    with Database.open(db) as d:
        for start in range(0, n, 10_000):
            with d.transaction() as t:
                for i in range(start, min(n, start + 10_000)):
                    t.put(b"key%010d" % i, rnd.randbytes(value_chars // 2).hex().encode())
    size = os.path.getsize(os.path.join(db, "toondb.data"))
    url = "file://" + os.path.join(work, "bigstore")
    t0 = time.perf_counter()
    proc = _spawn("replicate", db, url)
    _wait_manifest(url, proc, 3600)
    snap_s = time.perf_counter() - t0
    _stop(proc)
    t0 = time.perf_counter()
    restore(url, os.path.join(work, "restored"))
    rest_s = time.perf_counter() - t0
    gib = size / (1 << 30)
    return [
        f"{f'snapshot of a {size / (1 << 20):,.0f} MiB database (copy, zlib, upload)':58s} "
        f"{snap_s:9.1f} s   (~{snap_s / gib:.0f} s per GiB)",
        f"{'restore of it (download, check, decode, check())':58s} "
        f"{rest_s:9.1f} s   (~{rest_s / gib:.0f} s per GiB, extrapolated)",
    ]


def run_all() -> list[str]:
    work = tempfile.mkdtemp(prefix="toondb-bench-repl-")
    try:
        lines = ["replication (toondb.replication), this machine, one run:"]
        lines += overhead(work)
        lines.append(lag(work, 1.0))
        lines.append(lag(work, 0.2))
        lines += big_restore(work)
        return lines
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_replication(benchmark) -> None:
    lines = benchmark.pedantic(run_all, rounds=1, iterations=1)
    benchmark.extra_info["summary"] = lines


if __name__ == "__main__":
    print("\n".join(run_all()))
