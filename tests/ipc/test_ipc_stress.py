"""16 client processes against one toondb-server for a bounded time: mixed reads,
writes, scans and transactions. No lost update (shared counters), no error, every
process reads back exactly what it wrote, and the server's memory stays flat."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest
from ipc_harness import ServerProcess, read_line

from toondb import Database, IpcClient

PROCESSES = 16
COUNTERS = 4

WORKER = textwrap.dedent(
    """
    import json, random, sys, time
    from toondb import IpcClient, TransactionConflictError

    socket_path, me, seconds, seed = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    counters = int(sys.argv[5])
    rnd = random.Random(seed)
    client = IpcClient.connect(socket_path, timeout=60)
    print("ready", flush=True)
    sys.stdin.readline()  # everyone starts together
    prefix = b"w%02d:" % me
    mine = {}
    increments = [0] * counters
    ops = {"incr": 0, "conflicts": 0, "put": 0, "get": 0, "scan": 0, "delete": 0, "snapshot": 0}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        r = rnd.random()
        if r < 0.30:
            c = rnd.randrange(counters)
            key = b"counter:%d" % c
            immediate = rnd.random() < 0.25
            while True:
                t = client.begin_transaction(immediate=immediate)
                value = t.get(key)
                t.put(key, b"%d" % (int(value or b"0") + 1))
                t.put(prefix + b"last", key)
                try:
                    t.commit()
                    break
                except TransactionConflictError:
                    ops["conflicts"] += 1
            increments[c] += 1
            mine[prefix + b"last"] = key
            ops["incr"] += 1
        elif r < 0.55:
            key = prefix + b"%05d" % rnd.randrange(2000)
            value = rnd.randbytes(rnd.randrange(1, 300))
            client.put(key, value)
            mine[key] = value
            ops["put"] += 1
        elif r < 0.80:
            key = prefix + b"%05d" % rnd.randrange(2000)
            got = client.get(key)
            assert got == mine.get(key), (key, got, mine.get(key))
            ops["get"] += 1
        elif r < 0.90:
            got = dict(client.scan(prefix))
            assert got == mine, "scan of my own keys differs"
            ops["scan"] += 1
        elif r < 0.95:
            key = prefix + b"%05d" % rnd.randrange(2000)
            assert client.delete(key) == (key in mine)
            mine.pop(key, None)
            ops["delete"] += 1
        else:
            with client.transaction(read_only=True) as t:
                a = [t.get(b"counter:%d" % c) for c in range(counters)]
                b = [v for k, v in t.scan(b"counter:")]
                assert [v for v in a if v is not None] == b
            ops["snapshot"] += 1
    client.close()
    print(json.dumps({"increments": increments, "ops": ops}))
    """
)


def _run(tmp_path, seconds: float) -> None:
    srv = ServerProcess(tmp_path / "db").start()
    try:
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    WORKER,
                    srv.socket_path,
                    str(i),
                    str(seconds),
                    str(1000 + i),
                    str(COUNTERS),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(PROCESSES)
        ]
        for p in procs:  # every worker connected before the clock starts
            assert p.stdout is not None
            assert read_line(p.stdout.fileno(), 120) == "ready\n"
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        start = time.monotonic()
        samples: list[tuple[float, int]] = []
        while any(p.poll() is None for p in procs):
            elapsed = time.monotonic() - start
            assert elapsed < seconds + 120, "the workers did not finish"
            samples.append((elapsed, srv.memory_kib("RssAnon")))
            time.sleep(0.2)
        results = []
        for p in procs:
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, err[-3000:]
            results.append(json.loads(out.strip().splitlines()[-1]))
        assert srv.alive()
        with IpcClient.connect(srv.socket_path) as client:
            for c in range(COUNTERS):
                expected = sum(r["increments"][c] for r in results)
                got = client.get(b"counter:%d" % c)
                assert int(got or b"0") == expected, f"counter {c}: {got!r} != {expected}"
            assert client.stats()["readers"] == 0
        total = {k: sum(r["ops"][k] for r in results) for k in results[0]["ops"]}
        print(f"\n{PROCESSES} processes, {seconds:g} s: {total}")
        # memory: after a warm-up quarter, the heap may not keep growing
        warm = [kib for t, kib in samples if seconds * 0.25 <= t <= seconds * 0.5]
        late = [kib for t, kib in samples if t >= seconds * 0.75]
        step = max(1, len(samples) // 12)
        series = ", ".join(f"{t:.0f}s {kib // 1024}M" for t, kib in samples[::step])
        print(f"server RssAnon: {series}")
        if warm and late:
            assert max(late) - max(warm) < 8 * 1024 + max(warm) // 10, samples
        assert total["incr"] > 0 and total["scan"] > 0 and total["get"] > 0
    finally:
        code = srv.stop()
    assert code == 0, srv.log()
    log = srv.log()
    assert "Traceback" not in log, log[-3000:]
    with Database.open(tmp_path / "db") as db:
        db.check()


def test_sixteen_processes(tmp_path):
    _run(tmp_path, 8.0)


@pytest.mark.slow
def test_sixteen_processes_soak(tmp_path):
    _run(tmp_path, 120.0)
