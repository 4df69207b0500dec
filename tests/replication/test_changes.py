"""The engine's side of replication (toondb.storage.changes): the change log each commit
writes while a replicator is attached, the structural diff it holds, applying it, and
the lock file's version. Checked differentially: applying the log to a copy of the
database as it was when logging began must give exactly the database (every tree,
every key, every value), after every step."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
import time

import pytest

from toondb import CorruptionError, DatabaseLockedError
from toondb.storage import StorageEnvironment
from toondb.storage import changes as ch


def dump(env):
    t = env.begin_transaction(read_only=True)
    try:
        out = {None: list(t.scan(b""))}
        for name in t.tree_names():
            out[name] = list(t.tree(name).scan())
        return out
    finally:
        t.abort()


def copy_into(src, dst):
    """dst (empty) made equal to src's newest snapshot."""
    snap = src.begin_transaction(read_only=True)
    with dst.transaction(immediate=True) as t:
        for k, v in snap.scan(b""):
            t.put(k, v)
        for name in snap.tree_names():
            tree = t.tree(name, create=True)
            for k, v in snap.tree(name).scan():
                tree.put(k, v)
    snap.abort()


def mutate(env, rnd, n):
    """n random transactions of every kind: puts (small, large, overflow-sized),
    deletes, named trees created, filled, emptied and dropped, optimistic,
    immediate and autocommit."""
    for _ in range(n):
        r = rnd.random()
        if r < 0.2:
            k = b"k%05d" % rnd.randrange(3000)
            if rnd.random() < 0.3:
                env.delete(k)
            else:
                env.put(k, rnd.randbytes(rnd.choice([0, 40, 9000])))
            continue
        with env.transaction(immediate=r < 0.5) as t:
            for _ in range(rnd.randint(1, 6)):
                k = b"k%05d" % rnd.randrange(3000)
                if rnd.random() < 0.25:
                    t.delete(k)
                else:
                    t.put(k, rnd.randbytes(rnd.choice([0, 3, 40, 200, 2000, 9000])))
            if rnd.random() < 0.08:
                name = b"tree%d" % rnd.randrange(6)
                if t.has_tree(name) and rnd.random() < 0.3:
                    t.drop_tree(name)
                else:
                    tree = t.tree(name, create=True)
                    for _ in range(rnd.randint(1, 300)):
                        key = b"x%05d" % rnd.randrange(8000)
                        if rnd.random() < 0.2:
                            tree.delete(key)
                        else:
                            tree.put(key, rnd.randbytes(rnd.randint(0, 120)))


def apply_log(src, dst, log_id, offset, last):
    """Apply the records after offset to dst, one transaction each; (offset, last txn)."""
    status, records, offset = ch.read(src, log_id, offset)
    assert status == "ok"
    for rec in records:
        assert rec.txn == last + 1 and rec.kind == ch.CHANGES
        with dst.transaction(immediate=True) as t:
            ch.apply_changes(t, rec.changes)
        last = rec.txn
    return offset, last


@pytest.mark.parametrize("page_size", [512, 4096])
def test_the_change_log_rebuilds_every_state(tmp_path, page_size):
    rnd = random.Random(page_size)
    with StorageEnvironment.open(tmp_path / "src", {"page_size": page_size}) as src:
        mutate(src, rnd, 30)
        info = ch.attach(src, 60)
        assert not info["resumed"] and info["first"] == src.stats()["last_txn_id"] + 1
        with StorageEnvironment.open(tmp_path / "dst") as dst:
            copy_into(src, dst)
            offset, last = info["head"], info["first"] - 1
            for step in range(150):
                mutate(src, rnd, rnd.randint(1, 4))
                offset, last = apply_log(src, dst, info["id"], offset, last)
                assert last == src.stats()["last_txn_id"]
                if step % 10 == 0:
                    assert dump(dst) == dump(src)
            assert dump(dst) == dump(src)
        ch.detach(src, stop=True)


def test_applying_records_twice_changes_nothing(tmp_path):
    rnd = random.Random(3)
    with StorageEnvironment.open(tmp_path / "src") as src:
        info = ch.attach(src, 60)
        mutate(src, rnd, 200)
        _, records, _ = ch.read(src, info["id"], info["head"])
        with StorageEnvironment.open(tmp_path / "dst") as dst:
            for _ in range(2):
                with dst.transaction(immediate=True) as t:
                    for rec in records:
                        ch.apply_changes(t, rec.changes)
                assert dump(dst) == dump(src)
        ch.detach(src, stop=True)


def test_a_commit_logs_only_what_it_changed(tmp_path):
    """O(changed pages): one put into 100k keys logs one record, cheaply."""
    with StorageEnvironment.open(tmp_path / "src") as src:
        with src.transaction() as t:
            for i in range(100_000):
                t.put(b"key%08d" % i, b"v" * 50)
        info = ch.attach(src, 60)
        src.put(b"key%08d" % 50_000, b"changed")
        _, (rec,), _ = ch.read(src, info["id"], info["head"])
        assert rec.changes == (
            b"\x01\x00\x00" + b"\x04\x0b\x00\x07\x00\x00\x00" + b"key00050000" + b"changed"
        )
        src.put(b"key%08d" % 50_000, b"changed")  # the same value again: nothing changed
        _, (rec,), _ = ch.read(src, info["id"], info["head"] + 64)
        assert rec.changes == b""
        ch.detach(src, stop=True)


def test_logging_costs_commits_little(tmp_path):
    """The whole point of logging in the commit: no snapshot held back, and the
    cost of a commit goes up by a few percent (CPU time, so that other processes on
    the machine do not count)."""
    rnd = random.Random(5)
    with StorageEnvironment.open(tmp_path / "src", {"sync_mode": "normal"}) as src:
        with src.transaction() as t:
            for _ in range(50_000):
                t.put(rnd.randbytes(16), b"v" * 100)

        def cpu_per_commit(n=4000):
            keys = [rnd.randbytes(16) for _ in range(n)]
            t0 = time.process_time()
            for k in keys:
                src.put(k, b"v" * 100)
            return (time.process_time() - t0) / n

        cpu_per_commit(20_000)  # into the steady state of the freelist first
        off, on = [], []
        for _ in range(4):
            off.append(cpu_per_commit())
            ch.attach(src, 60)
            on.append(cpu_per_commit())
            ch.detach(src, stop=True)
        # generous: CPU time of short runs is noisy (bench_replication measures it)
        assert sorted(on)[1] < sorted(off)[1] * 1.3


def test_malformed_records_abort_the_transaction(tmp_path):
    with StorageEnvironment.open(tmp_path / "db") as env:
        t = env.begin_transaction(immediate=True)
        with pytest.raises(CorruptionError, match="malformed"):
            ch.apply_changes(t, b"\x04\x05\x00\xff\xff\xff\x00abc")
        assert t.closed
        env.put(b"still", b"writable")  # the write lock was released


def test_the_log_wraps_and_a_reader_it_lapped_is_told(tmp_path):
    with StorageEnvironment.open(tmp_path / "db", {"sync_mode": "off"}) as env:
        info = ch.attach(env, 60)
        big = os.urandom(400_000)  # about 400 KB per record: 64 MiB in ~170 commits
        for i in range(200):
            env.put(b"k%d" % (i % 5), big[i:] + big[:i])
        status, records, nxt = ch.read(env, info["id"], info["head"])
        assert status == "lapped" and records == [] and nxt == info["head"]
        head = ch.state(env)["head"]
        size = (32 + 3 + 7 + 2 + 400_000 + 7) & ~7  # header, SELECT, PUT, key, value
        status, records, nxt = ch.read(env, info["id"], head - 3 * size)
        assert status == "ok" and len(records) == 3 and nxt == head
        ch.detach(env, stop=True)
        status, _, _ = ch.read(env, info["id"], head)
        assert status == "restarted"


def test_a_transaction_too_large_for_the_log_says_so(tmp_path):
    with StorageEnvironment.open(tmp_path / "db", {"sync_mode": "off"}) as env:
        info = ch.attach(env, 60)
        with env.transaction() as t:
            for i in range(40):
                t.put(b"k%03d" % i, os.urandom(1 << 20))  # 40 MiB: more than half the ring
        env.put(b"after", b"1")
        _, records, _ = ch.read(env, info["id"], info["head"])
        assert [r.kind for r in records] == [ch.TOO_LARGE, ch.CHANGES]
        assert records[0].changes == b""
        ch.detach(env, stop=True)


def test_a_failed_commit_publishes_nothing(tmp_path):
    with StorageEnvironment.open(tmp_path / "db") as env:
        info = ch.attach(env, 60)
        env.put(b"a", b"1")

        def fail(kind, offset, data):
            if kind == "write" and offset < 2 * env.page_size:
                raise OSError("the disk is full")  # the meta page write fails

        env._set_io_hook(fail)
        with pytest.raises(OSError):
            env.put(b"b", b"2")
        env._set_io_hook(None)
        env.put(b"c", b"3")
        _, records, _ = ch.read(env, info["id"], info["head"])
        assert [r.txn for r in records] == [info["first"], info["first"] + 1]
        with StorageEnvironment.open(tmp_path / "copy") as copy:
            for rec in records:
                with copy.transaction(immediate=True) as t:
                    ch.apply_changes(t, rec.changes)
            assert dump(copy)[None] == [(b"a", b"1"), (b"c", b"3")]
        ch.detach(env, stop=True)


_HOLDER = textwrap.dedent(
    """
    import sys, time
    from toondb.storage import StorageEnvironment
    from toondb.storage import changes as ch
    env = StorageEnvironment.open(sys.argv[1])
    ch.attach(env, int(sys.argv[2]))
    print("attached", flush=True)
    time.sleep(60)
    """
)


def test_a_dead_replicators_log_goes_on_for_its_grace_then_stops(tmp_path):
    path = str(tmp_path / "db")
    with StorageEnvironment.open(path) as env:
        p = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, path, "1"], stdout=subprocess.PIPE, text=True
        )
        try:
            assert p.stdout.readline().strip() == "attached"
            with pytest.raises(DatabaseLockedError, match="another replicator"):
                ch.attach(env, 60)
        finally:
            p.kill()
            p.wait()
        deadline = time.monotonic() + 10
        while ch.state(env)["pid"] != 0:  # a writer notices the dead replicator
            env.put(b"a", b"b")
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert ch.state(env)["id"] != 0  # still logging, for a replicator started again
        info = ch.attach(env, 1)
        assert info["resumed"]
        ch.detach(env)
        time.sleep(1.1)
        env.put(b"a", b"c")
        time.sleep(0.06)
        env.put(b"a", b"d")  # the grace has passed: logging stops
        assert ch.state(env)["id"] == 0
        assert not ch.attach(env, 60)["resumed"]
        ch.detach(env, stop=True)


_OLD_LOCK_HOLDER = textwrap.dedent(
    """
    import fcntl, os, struct, sys, time
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
    os.ftruncate(fd, 64 + 126 * 64)
    os.pwrite(fd, b"toonlck\\x01" + struct.pack("<II", 1, 126), 0)
    # hold the presence byte shared, as an open handle of toondb 0.3 does
    fcntl.fcntl(fd, 37, struct.pack("hhqqi4x", fcntl.F_RDLCK, 0, 2, 1, 0))  # F_OFD_SETLK
    print("held", flush=True)
    time.sleep(60)
    """
)


def test_a_lock_file_of_another_version_in_use_is_refused_untouched(tmp_path):
    """A process of the old lock file version holds the database open: a new one
    refuses to open it (the old one would not log its commits), and changes nothing."""
    db = tmp_path / "db"
    StorageEnvironment.open(db).close()
    lock = db / "toondb.lock"
    os.unlink(lock)
    p = subprocess.Popen(
        [sys.executable, "-c", _OLD_LOCK_HOLDER, str(lock)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert p.stdout.readline().strip() == "held"
        before = lock.read_bytes()
        with pytest.raises(DatabaseLockedError, match="another toondb version"):
            StorageEnvironment.open(db)
        assert lock.read_bytes() == before
    finally:
        p.kill()
        p.wait()
    with StorageEnvironment.open(db) as env:  # nobody holds it: rebuilt as version 2
        env.put(b"a", b"b")
    assert lock.read_bytes()[8:12] == (2).to_bytes(4, "little")
