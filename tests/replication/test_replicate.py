"""Replication end to end, with the processes users run: a writer commits a counter and
one key per commit while ``toondb replicate`` ships them, killed with SIGKILL and
started again at random moments; then restores, of the newest state and of points in
time, must each give a state the writer committed (counter == number of keys), exactly
the newest at or before the point asked for. Followers are read by other processes
that check every snapshot they see."""

from __future__ import annotations

import contextlib
import json
import random
import time
from pathlib import Path

import pytest
from replication_harness import consistent, harness, spawn, stop

from toondb import Database
from toondb.replication import open_store, restore
from toondb.replication.inventory import fetch, follow_chain, read_manifest
from toondb.replication.objects import BATCH, batch_key, iter_frames


def shipped_txns(url: str) -> list[int]:
    """Every transaction id in the store's newest generation, in chain order."""
    store = open_store(url)
    m = read_manifest(store)
    gen = m.generation_info(m.generation)
    base = gen["first_txn"]
    out = []
    lineage = bytes.fromhex(m.lineage)
    while True:
        got = fetch(store, batch_key(m.generation, base), BATCH)
        if got is None:
            break
        f, h = got
        with f:
            for frame in iter_frames(f, h, "batch"):
                if frame.last:
                    out.append(frame.txn)
        base = h.last
    assert follow_chain(store, m.generation, lineage, gen["first_txn"])[0] == base
    return out


def check_restore(url: str, dest: Path, log: list, txn=None, at_time=None) -> int:
    """Restore, and check the state is one the writer committed, the newest at or
    before the point asked for: its counter."""
    info = restore(url, dest, txn=txn, at_time=at_time)
    with Database.open(dest, read_only=True) as db:
        with db.transaction(read_only=True) as t:
            c, ok = consistent(t)
    assert ok, f"restored counter {c} does not match its keys"
    by_counter = {row[0]: row for row in log}
    if c in by_counter:
        assert info["txn_id"] == by_counter[c][1]
    if txn is not None:
        assert info["txn_id"] <= txn
        nxt = by_counter.get(c + 1)
        assert nxt is None or nxt[1] > txn, "not the newest transaction at or before"
    if at_time is not None:
        if c in by_counter:
            assert by_counter[c][2] <= at_time, "a state committed after the time asked for"
        nxt = by_counter.get(c + 1)
        assert nxt is None or nxt[3] > at_time, "not the newest state at or before the time"
    return c


def test_replicators_killed_and_restarted_lose_nothing(tmp_path, s3):
    rnd = random.Random(1234)
    db = tmp_path / "db"
    # the application keeps the database open throughout, as a service does (when
    # every handle closes while no replicator runs, its pin goes with the lock file
    # and the next replicator starts a new generation: test_commands.py)
    app = Database.open(db)
    app.put(b"counter", b"0")
    writer_stop = tmp_path / "stop-writer"
    writer = harness("writer", str(db), str(writer_stop), "0.001", str(tmp_path / "log.json"))
    logfile = tmp_path / "replicate.log"
    args = ("replicate", str(db), s3.url, "--interval", "0.1", "--resume-within", "60")
    proc = spawn(*args, log=logfile)
    deadline = time.monotonic() + 30
    while read_manifest(open_store(s3.url)) is None:  # the first generation exists
        assert time.monotonic() < deadline and proc.poll() is None, logfile.read_text()
        time.sleep(0.05)
    for _ in range(5):
        # at a random moment: while it starts, resumes, captures or uploads
        time.sleep(rnd.choice([0.0, 0.2, rnd.uniform(0.3, 1.2)]))
        proc.kill()  # SIGKILL: no flush, no goodbye
        proc.wait()
        time.sleep(rnd.uniform(0.0, 0.3))
        proc = spawn(*args, log=logfile)
    time.sleep(0.5)
    writer_stop.touch()
    assert writer.wait(60) == 0
    log = json.loads((tmp_path / "log.json").read_text())
    last = log[-1]
    deadline = time.monotonic() + 60
    while True:  # the last replicator ships the last commit
        m = read_manifest(open_store(s3.url))
        if m is not None and m.last_txn == last[1]:
            break
        assert time.monotonic() < deadline and proc.poll() is None, logfile.read_text()
        time.sleep(0.05)
    assert stop(proc) == 0, logfile.read_text()
    app.close()
    # no gap, no duplicate: every transaction from the first snapshot on, once, in order
    txns = shipped_txns(s3.url)
    assert txns == list(range(txns[0], last[1] + 1))
    assert read_manifest(open_store(s3.url)).generation == 1  # every restart resumed
    assert check_restore(s3.url, tmp_path / "latest", log) == last[0]
    # points in time: any transaction (or time) from the first snapshot on
    held = [row for row in log if row[1] >= txns[0]]
    for k, row in enumerate(rnd.sample(held, 4)):
        check_restore(s3.url, tmp_path / f"txn{k}", log, txn=row[1])
        t = rnd.uniform(held[0][3], last[3])
        check_restore(s3.url, tmp_path / f"time{k}", log, at_time=t)


def test_a_follower_is_consistent_for_its_readers_and_keeps_up(tmp_path, store_url):
    db = tmp_path / "db"
    dest = tmp_path / "replica"
    with Database.open(db) as d:
        d.put(b"counter", b"0")
    repl = spawn("replicate", str(db), store_url, "--interval", "0.2", log=tmp_path / "r.log")
    deadline = time.monotonic() + 20
    while read_manifest(open_store(store_url)) is None:
        assert time.monotonic() < deadline and repl.poll() is None
        time.sleep(0.05)
    follower = spawn("follow", store_url, str(dest), "--interval", "0.2", log=tmp_path / "f.log")
    stop_file = tmp_path / "stop-readers"
    readers = [
        harness("reader", str(dest), str(stop_file), str(tmp_path / f"reader{i}.json"))
        for i in range(2)
    ]
    writer = harness("writer", str(db), "3.0", "0.002", str(tmp_path / "log.json"))
    assert writer.wait() == 0
    done = time.monotonic()
    final = json.loads((tmp_path / "log.json").read_text())[-1][0]
    lag = None
    while time.monotonic() - done < 10:
        if (dest / "toondb.data").exists():
            with Database.open(dest, read_only=True) as r:
                if r.get(b"counter") == str(final).encode():
                    lag = time.monotonic() - done
                    break
        time.sleep(0.02)
    stop_file.touch()
    for p in readers:
        assert p.wait(30) == 0
    assert lag is not None and lag < 2.0, f"replica lag {lag}"
    with Database.open(dest, read_only=True) as r:
        stats = r.stats()
    assert stats["replica"]["txn_id"] == json.loads((tmp_path / "log.json").read_text())[-1][1]
    assert stop(follower) == 0
    assert stop(repl) == 0
    for i in range(2):
        report = json.loads((tmp_path / f"reader{i}.json").read_text())
        assert report["bad"] == [] and report["snapshots"] > 10 and report["last"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["file", "s3"])
def test_soak_kills_of_replicator_and_follower_under_load(tmp_path, kind, request):
    """30 s of commits while the replicator and the follower are each SIGKILLed and
    restarted at random moments, with two readers on the replica all along."""
    url = (
        "file://" + str(tmp_path / "store") if kind == "file" else request.getfixturevalue("s3").url
    )
    rnd = random.Random(99)
    db, dest = tmp_path / "db", tmp_path / "replica"
    app = Database.open(db)
    app.put(b"counter", b"0")
    writer_stop, reader_stop = tmp_path / "stop-writer", tmp_path / "stop-readers"
    writer = harness("writer", str(db), str(writer_stop), "0.0005", str(tmp_path / "log.json"))
    rargs = ("replicate", str(db), url, "--interval", "0.2")
    fargs = ("follow", url, str(dest), "--interval", "0.2")
    repl = spawn(*rargs, log=tmp_path / "r.log")
    deadline = time.monotonic() + 60
    while read_manifest(open_store(url)) is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    follower = spawn(*fargs, log=tmp_path / "f.log")
    readers = [
        harness("reader", str(dest), str(reader_stop), str(tmp_path / f"reader{i}.json"))
        for i in range(2)
    ]
    end = time.monotonic() + 30
    while time.monotonic() < end:
        time.sleep(rnd.uniform(0.1, 1.5))
        if rnd.random() < 0.5:
            repl.kill()
            repl.wait()
            repl = spawn(*rargs, log=tmp_path / "r.log")
        else:
            follower.kill()
            follower.wait()
            follower = spawn(*fargs, log=tmp_path / "f.log")
    writer_stop.touch()
    assert writer.wait(60) == 0
    log = json.loads((tmp_path / "log.json").read_text())
    deadline = time.monotonic() + 60
    while True:
        with contextlib.suppress(Exception), Database.open(dest, read_only=True) as r:
            if r.get(b"counter") == str(log[-1][0]).encode():
                break
        assert time.monotonic() < deadline, "the replica did not catch up"
        time.sleep(0.1)
    reader_stop.touch()
    for p in readers:
        assert p.wait(60) == 0
    assert stop(follower) == 0 and stop(repl) == 0
    app.close()
    for i in range(2):
        report = json.loads((tmp_path / f"reader{i}.json").read_text())
        assert report["bad"] == [] and report["snapshots"] > 10
    txns = shipped_txns(url)
    assert txns == list(range(txns[0], log[-1][1] + 1))
    assert check_restore(url, tmp_path / "latest", log) == log[-1][0]
