"""Faults: a store that goes down for a while (the primary's commits go on and the
replicator catches up), objects deleted or damaged (CorruptionError naming the object,
never a silently wrong database), a full disk under a replica, a follower killed in the
middle of applying a batch."""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
from replication_harness import consistent, spawn, stop

from toondb import CorruptionError, Database
from toondb.replication import Follower, Replicator, open_store, restore
from toondb.replication.inventory import read_manifest
from toondb.replication.objects import parse_key


def start_replicator(db: Path, url: str, **kw) -> tuple[Replicator, threading.Thread]:
    r = Replicator(db, url, **kw)
    t = threading.Thread(target=r.run, daemon=True)
    t.start()
    return r, t


def wait_until(cond, seconds: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def commit_n(db: Database, start: int, n: int, pause: float = 0.0) -> list[float]:
    """Commits counter = i and key k<i> for i in (start, start + n]: each one's latency."""
    latencies = []
    for i in range(start + 1, start + n + 1):
        t0 = time.perf_counter()
        with db.transaction() as t:
            t.put(b"counter", str(i).encode())
            t.put(b"k%08d" % i, b"v" * 64)
        latencies.append(time.perf_counter() - t0)
        if pause:
            time.sleep(pause)
    return latencies


def restored_counter(url: str, dest: Path) -> int:
    restore(url, dest)
    with Database.open(dest, read_only=True) as db, db.transaction(read_only=True) as t:
        c, ok = consistent(t)
    assert ok
    return c


def test_a_store_that_is_down_for_a_while_holds_nothing_up(tmp_path, s3):
    db_path = tmp_path / "db"
    db = Database.open(db_path)
    db.put(b"counter", b"0")
    r, thread = start_replicator(db_path, s3.url, interval=0.1)
    wait_until(lambda: r.status()["shipped_txn"] is not None and not r.awaiting_first)
    commit_n(db, 0, 100)
    s3.stop()  # the store is unreachable
    latencies = commit_n(db, 100, 300, pause=0.003)
    wait_until(lambda: r.stats["errors"] > 0, what="a failed upload")
    assert max(latencies) < 0.25  # commits went on, not waiting for the store
    s3.start()
    final = db.stats()["last_txn_id"]
    wait_until(lambda: r.status()["shipped_txn"] == final, 40, "the replicator to catch up")
    r.stopping.set()
    thread.join(30)
    db.close()
    assert restored_counter(s3.url, tmp_path / "restored") == 400


def test_deleted_and_damaged_objects_are_named(tmp_path):
    url = "file://" + str(tmp_path / "store")
    db_path = tmp_path / "db"
    db = Database.open(db_path)
    db.put(b"counter", b"0")
    r, thread = start_replicator(db_path, url, interval=0.05)
    for k in range(6):
        commit_n(db, k * 20, 20)
        time.sleep(0.12)  # separate batches
    final = db.stats()["last_txn_id"]
    wait_until(lambda: r.status()["shipped_txn"] == final)
    r.stopping.set()
    thread.join(30)
    db.close()
    store = open_store(url)
    batches = [k for k, _ in store.list("generations/") if k.endswith(".batch")]
    assert len(batches) >= 4
    root = tmp_path / "store"
    # damaged: one flipped byte in a batch's payload
    victim = root / batches[2]
    raw = bytearray(victim.read_bytes())
    raw[-5] ^= 0x40
    victim.write_bytes(bytes(raw))
    with pytest.raises(CorruptionError, match=batches[2]):
        restore(url, tmp_path / "r1")
    assert not (tmp_path / "r1").exists()
    # a restore to a point before the damage still works
    before = parse_key(batches[2])[2]
    restore(url, tmp_path / "rep", txn=before)
    # a follower reaching it stops with the same error, its replica intact
    victim.write_bytes(bytes(raw[:200]))  # now truncated as well
    f = Follower(url, tmp_path / "rep", interval=0.05)
    f.open()
    assert f.pos.txn == before
    with pytest.raises(CorruptionError, match=batches[2]):
        f.step()
    f.close()
    with Database.open(tmp_path / "rep", read_only=True) as rep:
        rep.check()
        assert rep.stats()["replica"]["txn_id"] == before
    # deleted: named as missing
    victim.unlink()
    with pytest.raises(CorruptionError, match=rf"{batches[2]} is missing"):
        restore(url, tmp_path / "r3")
    # a damaged manifest is named too
    manifest = root / "manifest"
    raw = bytearray(manifest.read_bytes())
    raw[20] ^= 1
    manifest.write_bytes(bytes(raw))
    with pytest.raises(CorruptionError, match="manifest"):
        restore(url, tmp_path / "r4")


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str):
    path.mkdir()
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.mark.damages_files  # the replica lives on a tmpfs that is gone after the test
def test_a_full_disk_under_the_replica_is_retried(tmp_path):
    url = "file://" + str(tmp_path / "store")
    db_path = tmp_path / "db"
    db = Database.open(db_path)
    db.put(b"counter", b"0")
    r, rthread = start_replicator(db_path, url, interval=0.05)
    commit_n(db, 0, 50)
    wait_until(lambda: read_manifest(open_store(url)) is not None)
    with small_tmpfs(tmp_path / "small", "3m") as small:
        dest = small / "replica"
        f = Follower(url, dest, interval=0.05)
        stop_f = threading.Event()
        fthread = threading.Thread(target=f.run, args=(stop_f,), daemon=True)
        fthread.start()
        wait_until(lambda: f.pos is not None and f.pos.txn >= 3)
        filler = small / "filler"
        with open(filler, "wb") as out:  # fill the disk
            with contextlib.suppress(OSError):
                while True:
                    out.write(b"\0" * 65536)
                    out.flush()
        for k in range(5):  # big values: the replica cannot hold them now
            with db.transaction() as t:
                t.put(b"counter", str(50 + k + 1).encode())
                t.put(b"k%08d" % (50 + k + 1), os.urandom(200_000))
        final = db.stats()["last_txn_id"]
        wait_until(lambda: f.stats["errors"] > 0, what="a failed apply")
        with Database.open(dest, read_only=True) as rep, rep.transaction(read_only=True) as t:
            assert consistent(t)[1]  # a whole committed state, all along
        filler.unlink()
        wait_until(lambda: f.pos.txn == final, 30, "the follower to catch up")
        stop_f.set()
        fthread.join(30)
        with Database.open(dest, read_only=True) as rep:
            rep.check()
            assert rep.get(b"counter") == b"55"
    r.stopping.set()
    rthread.join(30)
    db.close()


def test_a_follower_killed_while_applying_resumes_exactly(tmp_path):
    url = "file://" + str(tmp_path / "store")
    db_path = tmp_path / "db"
    dest = tmp_path / "replica"
    db = Database.open(db_path)
    db.put(b"counter", b"0")
    repl = spawn("replicate", str(db_path), url, "--interval", "0.05")
    wait_until(lambda: read_manifest(open_store(url)) is not None)
    restore(url, dest)  # the replica exists before the big batch
    with db.transaction() as t:  # one big transaction: a batch that takes a while
        for i in range(1, 60_001):
            t.put(b"k%08d" % i, uuid.uuid4().bytes * 4)
        t.put(b"counter", b"60000")
    final = db.stats()["last_txn_id"]
    wait_until(lambda: read_manifest(open_store(url)).last_txn == final, 60)
    record = dest / "toondb.replica"
    for attempt in range(3):
        follower = spawn("follow", url, str(dest), "--interval", "0.05")
        # kill it once it has said it is applying the batch (before its commit, mostly)
        wait_until(
            lambda p=follower: b'"applying": {' in record.read_bytes() or p.poll() is not None
        )
        time.sleep(0.05 * attempt)
        follower.kill()
        follower.wait()
        with Database.open(dest, read_only=True) as rep, rep.transaction(read_only=True) as t:
            c, ok = consistent(t)
        assert ok and c in (0, 60000)
    follower = spawn("follow", url, str(dest), "--interval", "0.05")
    wait_until(
        lambda: (
            b'"applying": null' in record.read_bytes()
            and b'"txn": %d' % final in record.read_bytes()
        ),
        60,
    )
    assert stop(follower) == 0
    assert stop(repl) == 0
    db.close()
    with Database.open(dest, read_only=True) as rep, rep.transaction(read_only=True) as t:
        assert consistent(t) == (60000, True)
