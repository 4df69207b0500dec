"""Many processes on one database: readers in every process read snapshots
while one process writes; processes killed with SIGKILL block nobody; the file
stays bounded while readers come and go; a forked child cannot use its
parent's handle by accident."""

from __future__ import annotations

import multiprocessing
import os
import random
import select
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

import toondb
from toondb import Database

ACCOUNTS = 20
TOTAL = 1_000_000


def _key(i: int) -> bytes:
    return b"acct:%03d" % i


def _setup(path) -> None:
    with Database.open(path) as db:
        with db.transaction() as t:
            for i in range(ACCOUNTS):
                t.put(_key(i), b"%d" % (TOTAL // ACCOUNTS))
            t.put(b"commits", b"0")


def _writer(path, seed, ack_fd, stop):
    """Moves money between accounts; every transaction keeps the sum constant and
    pads values so some live in overflow pages. Reports each acknowledged commit
    as an 8-byte record on its pipe (atomic: shorter than PIPE_BUF), 0 first."""
    rnd = random.Random(seed)
    db = Database.open(path, {"lock_timeout": 30})
    os.write(ack_fd, struct.pack("<Q", 0))
    while not stop.value:
        a, b = rnd.sample(range(ACCOUNTS), 2)
        amount = rnd.randrange(1, 100)
        with db.transaction(immediate=True) as t:
            va = int(t.get(_key(a)).split(b"|")[0])
            vb = int(t.get(_key(b)).split(b"|")[0])
            pad = b"|" + b"p" * rnd.choice([0, 10, 3000])
            t.put(_key(a), b"%d" % (va - amount) + pad)
            t.put(_key(b), b"%d" % (vb + amount) + pad)
            n = int(t.get(b"commits")) + 1
            t.put(b"commits", b"%d" % n)
        os.write(ack_fd, struct.pack("<Q", n))
    os._exit(0)


def _reader(path, stop, err_fd):
    """Checks the invariant on every snapshot it reads; reports a problem on its
    pipe and exits 3."""
    try:
        db = Database.open(path)
        done = 0
        while not stop.value:
            if done % 2:
                with db.transaction(read_only=True) as t:
                    vals = [t.get(_key(i)) for i in range(ACCOUNTS)]
            else:
                vals = [v for k, v in db.scan(b"acct:")]
            if len(vals) != ACCOUNTS or sum(int(v.split(b"|")[0]) for v in vals) != TOTAL:
                os.write(err_fd, f"broken invariant: {vals!r}"[:500].encode())
                os._exit(3)
            done += 1
    except BaseException as exc:  # any error in a reader is a failure
        os.write(err_fd, f"{type(exc).__name__}: {exc}"[:500].encode())
        os._exit(3)
    os._exit(0)


def _spawn(target, *args):
    pid = os.fork()
    if pid == 0:
        try:
            target(*args)
        finally:
            os._exit(1)
    return pid


def _acks(fd, timeout):
    """The acknowledged commit ids waiting on the pipe (blocks up to timeout for the first)."""
    ready, _, _ = select.select([fd], [], [], timeout)
    if not ready:
        return []
    data = os.read(fd, 1 << 16)
    data = data[: len(data) // 8 * 8]
    return [v for (v,) in struct.iter_unpack("<Q", data)]


def test_readers_see_consistent_snapshots_while_processes_are_killed(db_path):
    """8 reader processes and a writer; readers and the writer are killed with
    SIGKILL at random and replaced; no reader ever sees a broken invariant or an
    error, and no acknowledged commit is lost."""
    _setup(db_path)
    seed = int(os.environ.get("TOONDB_TEST_SEED", random.randrange(1 << 30)))
    rnd = random.Random(seed)
    stop = multiprocessing.RawValue("i", 0)
    err_r, err_w = os.pipe()
    ack_r, ack_w = os.pipe()
    readers = [_spawn(_reader, str(db_path), stop, err_w) for _ in range(8)]
    writer = _spawn(_writer, str(db_path), 0, ack_w, stop)
    assert _acks(ack_r, 30), f"the writer did not start (seed {seed})"
    acked = 0
    kills = 0
    deadline = time.monotonic() + 12
    try:
        while time.monotonic() < deadline:
            got = _acks(ack_r, 10)
            assert got, f"the writer made no progress for 10 s (seed {seed})"
            acked = max(acked, *got)
            time.sleep(rnd.uniform(0, 0.1))
            victim = rnd.randrange(9)
            if victim == 8:
                os.kill(writer, signal.SIGKILL)
                os.waitpid(writer, 0)
                acked = max([acked, *_acks(ack_r, 0)])
                writer = _spawn(_writer, str(db_path), kills + 1, ack_w, stop)
            else:
                os.kill(readers[victim], signal.SIGKILL)
                os.waitpid(readers[victim], 0)
                readers[victim] = _spawn(_reader, str(db_path), stop, err_w)
            kills += 1
            ready, _, _ = select.select([err_r], [], [], 0)
            assert not ready, f"{os.read(err_r, 4096).decode()} (seed {seed})"
    finally:
        stop.value = 1
        statuses = {}
        for pid in [*readers, writer]:
            for _ in range(300):
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    statuses[pid] = status
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
    while True:
        more = _acks(ack_r, 0)
        if not more:
            break
        acked = max(acked, *more)
    ready, _, _ = select.select([err_r], [], [], 0)
    assert not ready, f"{os.read(err_r, 4096).decode()} (seed {seed})"
    assert all(os.waitstatus_to_exitcode(s) == 0 for s in statuses.values()), (statuses, seed)
    assert kills >= 20
    with Database.open(db_path) as db:
        db.check()
        assert int(db.get(b"commits")) >= acked, seed
        values = [int(db.get(_key(i)).split(b"|")[0]) for i in range(ACCOUNTS)]
        assert sum(values) == TOTAL, seed


def test_sigkilled_writer_releases_the_write_lock(db_path):
    _setup(db_path)
    code = textwrap.dedent(
        f"""
        import sys, time
        from toondb import Database
        db = Database.open({str(db_path)!r})
        t = db.begin_transaction(immediate=True)
        t.put(b"half", b"done")
        print("locked", flush=True)
        time.sleep(60)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        with Database.open(db_path, {"lock_timeout": 0.2}) as db:
            with pytest.raises(toondb.DatabaseLockedError):
                db.put(b"k", b"v")
            child.send_signal(signal.SIGKILL)
            child.wait(10)
            db.config  # noqa: B018
            with Database.open(db_path, {"lock_timeout": 10}) as again:
                again.put(b"k", b"v")
                assert again.get(b"half") is None
                assert again.get(b"k") == b"v"
                again.check()
    finally:
        child.kill()
        child.wait(10)


def _hold_reader(path, ready):
    db = Database.open(path)
    it = db.scan(b"")
    next(it)
    ready.set()
    time.sleep(600)


def test_dead_readers_do_not_pin_pages_forever(db_path):
    """A reader killed while holding a snapshot leaves a stale slot; the writer
    detects it by pid, and the file stays bounded."""
    with Database.open(db_path) as db:
        with db.transaction() as t:
            for i in range(2000):
                t.put(b"k%05d" % i, b"v" * 100)
        ctx = multiprocessing.get_context("fork")
        ready = ctx.Event()
        holder = ctx.Process(target=_hold_reader, args=(str(db_path), ready))
        holder.start()
        assert ready.wait(30)
        assert db.stats()["readers"] == 1
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(10)
        sizes = []
        for r in range(40):
            with db.transaction() as t:
                for i in range(0, 2000, 2):
                    t.put(b"k%05d" % i, b"%d" % r * 10)
            sizes.append(db.stats()["file_size"])
        assert db.stats()["readers"] == 0
        assert sizes[-1] <= sizes[5] * 1.1, sizes
        db.check()


def test_long_reader_keeps_its_snapshot_and_is_shown_in_stats(db_path):
    with Database.open(db_path) as db:
        db.put(b"k", b"old")
        snap = db.begin_transaction(read_only=True)
        first = snap.txnid
        for i in range(200):
            db.put(b"k", b"new %d" % i)
        assert snap.get(b"k") == b"old"
        s = db.stats()
        assert s["oldest_reader_txn_id"] == first
        assert s["readers"] == 1
        snap.commit()
        assert db.stats()["oldest_reader_txn_id"] is None


def test_commits_of_another_process_are_seen_by_the_next_read(db_path):
    _setup(db_path)
    with Database.open(db_path) as reader:
        before = reader.get(b"commits")
        code = f"from toondb import Database\nwith Database.open({str(db_path)!r}) as db: db.put(b'commits', b'999')"
        subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
        assert before == b"0"
        assert reader.get(b"commits") == b"999"
        assert dict(reader.scan(b"commits")) == {b"commits": b"999"}


def test_forked_child_cannot_use_the_parents_handle(db_path):
    with Database.open(db_path) as db:
        db.put(b"k", b"v")
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child
            try:
                try:
                    db.get(b"k")
                    msg = b"no error"
                except toondb.ForkedHandleError as exc:
                    ok = "open the database again" in str(exc)
                    with Database.open(db_path) as mine:  # reopening works
                        ok = ok and mine.get(b"k") == b"v"
                    msg = b"ok" if ok else b"bad message"
                os.write(w, msg)
            finally:
                os._exit(0)
        os.close(w)
        got = os.read(r, 100)
        os.waitpid(pid, 0)
        assert got == b"ok"
        # the child's exit released nothing of the parent's
        assert db.get(b"k") == b"v"
        db.put(b"k2", b"v2")
        it = db.scan(b"")
        next(it)
        assert db.stats()["readers"] == 1


def test_read_only_open_of_a_file_the_user_may_not_write(tmp_path):
    base = tempfile.mkdtemp(prefix="toondb-ro-")
    try:
        os.chmod(base, 0o755)
        path = os.path.join(base, "db")
        with Database.open(path) as db:
            db.put(b"k", b"v")
        for name in os.listdir(path):
            os.chmod(os.path.join(path, name), 0o444)
        os.chmod(path, 0o555)
        code = textwrap.dedent(
            f"""
            import os, toondb
            if os.getuid() == 0:
                os.setgid(65534); os.setuid(65534)
            with toondb.Database.open({path!r}, read_only=True) as db:
                assert db.get(b"k") == b"v"
                try:
                    db.put(b"k", b"w")
                except toondb.ReadOnlyError:
                    print("read-only ok")
            try:
                toondb.Database.open({path!r})
            except (PermissionError, OSError):
                print("write open refused")
            """
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
        )
        assert out.stdout.split() == ["read-only", "ok", "write", "open", "refused"], out.stderr
    finally:
        for root, dirs, _files in os.walk(base):
            for d in dirs:
                os.chmod(os.path.join(root, d), stat.S_IRWXU)
        subprocess.run(["rm", "-rf", base], check=False)
