"""The engine's side of replication (toondb.storage.changes): the commit ring, the
structural diff of two snapshots and its application, replication pins, and the lock
file's version. The diff is checked differentially: applying it to a copy of the
older snapshot must give exactly the newer one (every tree, every key, every value)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
import time

import pytest

from toondb import CorruptionError, DatabaseLockedError, ToonDBError
from toondb.storage import StorageEnvironment
from toondb.storage import changes as ch

NAME = ch.pin_name("file:///test")
LINEAGE = bytes(range(16))


def dump(env):
    t = env.begin_transaction(read_only=True)
    try:
        out = {None: list(t.scan(b""))}
        for name in t.tree_names():
            out[name] = list(t.tree(name).scan())
        return out
    finally:
        t.abort()


def mutate(env, rnd, n):
    """n random transactions: puts (small, large, overflow-sized), deletes, named
    trees created, filled, emptied and dropped."""
    for _ in range(n):
        with env.transaction() as t:
            for _ in range(rnd.randint(1, 6)):
                k = b"k%05d" % rnd.randrange(3000)
                if rnd.random() < 0.25:
                    t.delete(k)
                else:
                    t.put(k, rnd.randbytes(rnd.choice([0, 3, 40, 200, 2000, 9000])))
            r = rnd.random()
            if r < 0.08:
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


def apply_diff(env, dst, older, newer, chunk=1 << 14):
    diff = ch.Diff(env, older, newer)
    with dst.transaction(immediate=True) as t:
        while True:
            records = diff.next(chunk)
            if not records:
                break
            ch.apply_changes(t, records)


@pytest.mark.parametrize("page_size", [512, 4096])
def test_per_commit_diffs_rebuild_every_state(tmp_path, page_size):
    rnd = random.Random(page_size)
    cfg = {"page_size": page_size}
    with (
        StorageEnvironment.open(tmp_path / "src", cfg) as src,
        StorageEnvironment.open(tmp_path / "dst") as dst,
    ):
        prev = ch.pin_create(src, NAME, 60, LINEAGE)
        assert ch.entry_txn_id(prev) == src.stats()["last_txn_id"]
        for step in range(300):
            mutate(src, rnd, rnd.randint(1, 3))
            entries = ch.ring_entries(src, ch.entry_txn_id(prev))
            assert [ch.entry_txn_id(e) for e in entries] == list(
                range(ch.entry_txn_id(prev) + 1, src.stats()["last_txn_id"] + 1)
            )
            for entry in entries:
                apply_diff(src, dst, prev, entry, chunk=rnd.choice([1, 100, 1 << 20]))
                prev = entry
                ch.pin_advance(src, NAME, ch.entry_txn_id(entry))
            if step % 10 == 0:
                assert dump(dst) == dump(src)
        assert dump(dst) == dump(src)
        ch.pin_release(src, NAME, drop=True)


def test_a_coarse_diff_equals_the_per_commit_diffs(tmp_path):
    rnd = random.Random(7)
    with StorageEnvironment.open(tmp_path / "src", {"page_size": 1024}) as src:
        mutate(src, rnd, 50)
        first = ch.pin_create(src, NAME, 60, LINEAGE)
        with StorageEnvironment.open(tmp_path / "a") as a:
            # a copy of the pinned state: the full content, as a diff from an empty db
            snap = src.begin_transaction(read_only=True)
            with a.transaction(immediate=True) as t:
                for k, v in snap.scan(b""):
                    t.put(k, v)
                for name in snap.tree_names():
                    tree = t.tree(name, create=True)
                    for k, v in snap.tree(name).scan():
                        tree.put(k, v)
            snap.abort()
            mutate(src, rnd, 300)
            apply_diff(src, a, first, ch.newest_entry(src))
            assert dump(a) == dump(src)
        ch.pin_release(src, NAME, drop=True)


def test_applying_a_diff_twice_changes_nothing(tmp_path):
    rnd = random.Random(3)
    with (
        StorageEnvironment.open(tmp_path / "src") as src,
        StorageEnvironment.open(tmp_path / "dst") as dst,
    ):
        first = ch.pin_create(src, NAME, 60, LINEAGE)
        mutate(src, rnd, 200)
        newest = ch.newest_entry(src)
        apply_diff(src, dst, first, newest)
        once = dump(dst)
        apply_diff(src, dst, first, newest)
        assert dump(dst) == once == dump(src)
        ch.pin_release(src, NAME, drop=True)


def test_a_diff_of_a_small_change_reads_few_pages(tmp_path):
    """O(changed pages): one put into 100k keys gives one record, fast."""
    with StorageEnvironment.open(tmp_path / "src") as src:
        with src.transaction() as t:
            for i in range(100_000):
                t.put(b"key%08d" % i, b"v" * 50)
        a = ch.pin_create(src, NAME, 60, LINEAGE)
        src.put(b"key%08d" % 50_000, b"changed")
        b = ch.newest_entry(src)
        records = ch.Diff(src, a, b).next()
        assert records == (
            b"\x01\x00\x00" + b"\x04\x0b\x00\x07\x00\x00\x00" + b"key00050000" + b"changed"
        )
        t0 = time.perf_counter()
        for _ in range(200):
            ch.Diff(src, a, b).next()
        assert (time.perf_counter() - t0) / 200 < 0.002  # a full scan would take ~20 ms
        ch.pin_release(src, NAME, drop=True)


def test_a_diff_needs_a_pinned_older_snapshot(tmp_path):
    with StorageEnvironment.open(tmp_path / "src") as src:
        src.put(b"a", b"1")
        a = ch.newest_entry(src)
        src.put(b"b", b"2")
        with pytest.raises(ValueError, match="not pinned"):
            ch.Diff(src, a, ch.newest_entry(src))
        with pytest.raises(ValueError, match="older"):
            ch.pin_create(src, NAME, 60, LINEAGE)
            ch.Diff(src, ch.newest_entry(src), a)
        ch.pin_release(src, NAME, drop=True)


def test_malformed_records_abort_the_transaction(tmp_path):
    with StorageEnvironment.open(tmp_path / "db") as env:
        t = env.begin_transaction(immediate=True)
        with pytest.raises(CorruptionError, match="malformed"):
            ch.apply_changes(t, b"\x04\x05\x00\xff\xff\xff\x00abc")
        assert t.closed
        env.put(b"still", b"writable")  # the write lock was released


def test_a_pin_holds_back_page_reuse_and_survives_its_holder(tmp_path):
    with StorageEnvironment.open(tmp_path / "db") as env:
        for i in range(200):
            env.put(b"k%03d" % (i % 20), os.urandom(100))
        ch.pin_create(env, NAME, 60, LINEAGE)
        pages = env.stats()["pages"]
        for i in range(2000):
            env.put(b"k%03d" % (i % 20), os.urandom(100))
        assert env.stats()["pages"] > pages + 100  # nothing freed since the pin reused
        ch.pin_release(env, NAME)  # orphaned: still standing for its grace period
        (pin,) = ch.pins(env)
        assert pin["pid"] == 0 and pin["orphaned_for"] is not None
        txn, lineage = ch.pin_claim(env, NAME, 0)
        assert txn == pin["txnid"] and lineage == LINEAGE
        ch.pin_release(env, NAME)  # orphaned with no grace: the next commit drops it
        time.sleep(0.01)
        env.put(b"x", b"y")
        assert ch.pins(env) == []
        assert ch.pin_claim(env, NAME, 60) == (0, None)


_HOLDER = textwrap.dedent(
    """
    import sys, time
    from toondb.storage import StorageEnvironment
    from toondb.storage import changes as ch
    env = StorageEnvironment.open(sys.argv[1])
    ch.pin_create(env, ch.pin_name("file:///test"), int(sys.argv[2]), bytes(16))
    print("pinned", flush=True)
    time.sleep(60)
    """
)


def test_a_live_holder_keeps_its_pin_and_a_dead_one_is_orphaned(tmp_path):
    path = str(tmp_path / "db")
    StorageEnvironment.open(path).close()
    with StorageEnvironment.open(path) as env:
        p = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, path, "600"], stdout=subprocess.PIPE, text=True
        )
        try:
            assert p.stdout.readline().strip() == "pinned"
            with pytest.raises(DatabaseLockedError, match="another replicator"):
                ch.pin_claim(env, NAME, 60)
        finally:
            p.kill()
            p.wait()
        env.put(b"a", b"b")  # a writer notices the dead holder (at most 20 times a second)
        for _ in range(100):
            env.put(b"a", b"b")
            if ch.pins(env) and ch.pins(env)[0]["pid"] == 0:
                break
            time.sleep(0.01)
        (pin,) = ch.pins(env)
        assert pin["pid"] == 0 and pin["grace"] == 600
        txn, _ = ch.pin_claim(env, NAME, 60)  # a replicator started again takes it over
        assert txn == pin["txnid"]
        ch.pin_release(env, NAME, drop=True)


def test_every_pin_in_use_is_an_error_naming_it(tmp_path):
    with StorageEnvironment.open(tmp_path / "db") as env:
        names = [ch.pin_name(f"file:///d{i}") for i in range(8)]
        for name in names:
            ch.pin_create(env, name, 60, LINEAGE)
        with pytest.raises(ToonDBError, match="every replication pin"):
            ch.pin_create(env, ch.pin_name("file:///nine"), 60, LINEAGE)
        for name in names:
            ch.pin_release(env, name, drop=True)


def test_the_ring_keeps_the_newest_16384_commits(tmp_path):
    with StorageEnvironment.open(tmp_path / "db", {"sync_mode": "off"}) as env:
        env.put(b"k", b"0")
        start = env.stats()["last_txn_id"]
        for i in range(17000):
            env.put(b"k", b"%d" % i)
        last = env.stats()["last_txn_id"]
        assert ch.ring_entries(env, start) == []  # overwritten
        got = ch.ring_entries(env, last - 16384, 20000)
        assert len(got) == 16384 and ch.entry_txn_id(got[-1]) == last
        assert ch.entry_time(got[-1]) > ch.entry_time(got[0]) - 1


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
    refuses to open it (it would miss the old one's commits), and changes nothing."""
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
