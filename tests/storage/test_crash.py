"""Process crashes: a child process commits in a loop and is killed with SIGKILL
at a random moment; the parent then opens the database and verifies it.

What a kill may leave behind is fixed by the durability contract: in every
sync_mode a commit that returned is in the OS page cache, so it must survive the
death of the process. The workloads are deterministic functions of an operation
counter n, so the parent can compute the exact state after any number of
operations and demand that the file holds exactly the state after the last
acknowledged operation (or after the next one, when the child was killed after
commit() returned but before its acknowledgement reached the pipe). That single
equality proves both halves: every acknowledged commit is present, and no
transaction is partially present. check() must pass after every kill, and a new
child then continues on the same file.

Seeds: TOONDB_CRASH_SEED=<int> fixes the random delays of a run (the exact kill
moments still depend on timing); every failure message names the seed.
"""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time

from toondb import Database

if __name__ != "__main__":  # the child process skips pytest's import time
    import pytest

# ---------------------------------------------------------------------------
# The workloads: operation n (n >= 1) is a list of ("put", key, value) and
# ("del", key) applied atomically (one transaction), or one autocommit op.

LARGE = 50_000  # with 4096-byte pages: a 13-page overflow extent


def _small_value(n: int, tag: bytes) -> bytes:
    # 40..240 bytes, different for every (n, tag)
    body = b"%s:%d;" % (tag, n)
    return (body * (1 + (n * 7 + len(tag)) % 24))[: 40 + (n * 13) % 200]


def _large_value(n: int, tag: bytes) -> bytes:
    return random.Random(n * 31 + sum(tag)).randbytes(LARGE)


def txn_key(n: int, part: bytes) -> bytes:
    return b"t:%08d:%s" % (n, part)


def ops_for(workload: str, n: int) -> list[tuple]:
    if workload in ("txn", "large"):
        # three keys that must appear together, a counter, and the deletion (in
        # the same transaction) of the triple written `window` operations ago
        window = 200 if workload == "txn" else 6
        make = _small_value if workload == "txn" else _large_value
        ops: list[tuple] = [("put", txn_key(n, p), make(n, b"abc")) for p in (b"a", b"b", b"c")]
        ops.append(("put", b"counter", b"%d" % n))
        if n > window:
            ops += [("del", txn_key(n - window, p)) for p in (b"a", b"b", b"c")]
        return ops
    if workload == "auto":
        # one autocommit put or delete per operation: a new key, a 50 KB value
        # (n % 8 == 1, deleted 11 operations later), an overwrite of one hot key,
        # and deletes of keys written 11 operations earlier
        r = n % 4
        if r == 0:
            return [("del", b"a:%08d" % (n - 11))] if n > 11 else [("del", b"a:none")]
        if r == 1:
            make = _large_value if n % 8 == 1 else _small_value
            return [("put", b"a:%08d" % n, make(n, b"auto"))]
        if r == 2:
            return [("put", b"a:%08d" % n, _small_value(n, b"auto"))]
        return [("put", b"hot", _small_value(n, b"hot"))]
    raise ValueError(workload)


def config_for(mode: str, workload: str) -> dict:
    cfg = {
        "sync_mode": mode,
        "page_size": 1024 if workload == "txn" else 4096,
        "lock_timeout": 20.0,
    }
    if mode == "normal":
        # sync points also happen while the child runs (and get killed)
        cfg.update(memtable_size_bytes=256 * 1024, sync_interval=0.02)
    return cfg


class Model:
    """The exact database contents after n operations, advanced monotonically."""

    def __init__(self, workload: str):
        self.workload = workload
        self.n = 0
        self.state: dict[bytes, bytes] = {}

    def advance_to(self, n: int) -> None:
        assert n >= self.n
        while self.n < n:
            self.n += 1
            for op in ops_for(self.workload, self.n):
                if op[0] == "put":
                    self.state[op[1]] = op[2]
                else:
                    self.state.pop(op[1], None)


# ---------------------------------------------------------------------------
# The child: python tests/storage/test_crash.py child <path> <mode> <workload> <start>


def child_main(path: str, mode: str, workload: str, start: int) -> None:
    db = Database.open(path, config_for(mode, workload))
    n = start
    stop = time.monotonic() + 60
    while time.monotonic() < stop:
        if n % 50 == 0:
            # kills also land in close() (a sync point in "normal") and in open()
            db.close()
            db = Database.open(path, config_for(mode, workload))
        elif n % 20 == 0:
            db.checkpoint()
        ops = ops_for(workload, n)
        if workload == "auto":
            (op,) = ops
            if op[0] == "put":
                db.put(op[1], op[2])
            else:
                db.delete(op[1])
        else:
            with db.transaction(immediate=n % 3 == 0) as t:
                for op in ops:
                    if op[0] == "put":
                        t.put(op[1], op[2])
                    else:
                        t.delete(op[1])
        # acknowledged: the commit returned
        os.write(1, b"ack %d\n" % n)
        n += 1
    sys.exit(3)  # never killed: the parent is broken or hung


# ---------------------------------------------------------------------------
# The parent


class Child:
    """A child process whose stdout is read without ever blocking past a deadline."""

    def __init__(self, args: list[str], stderr_path: str):
        self.stderr_path = stderr_path
        with open(stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), *args],
                stdout=subprocess.PIPE,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )
        self.fd = self.proc.stdout.fileno()
        self.buf = b""
        self.acks: list[int] = []
        self.eof = False

    def pump(self, timeout: float) -> None:
        """Read what arrives within timeout seconds (returns early on data)."""
        if self.eof:
            return
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not ready:
            return
        chunk = os.read(self.fd, 1 << 16)
        if not chunk:
            self.eof = True
            return
        self.buf += chunk
        *lines, self.buf = self.buf.split(b"\n")
        for line in lines:
            word, _, num = line.partition(b" ")
            assert word == b"ack", f"unexpected line from the child: {line!r}"
            self.acks.append(int(num))

    def stderr(self) -> str:
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")[-3000:]

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def drain(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("the child's pipe stayed open after it was killed")
            self.pump(left)
        self.proc.stdout.close()


def _diff(got: dict, want: dict) -> str:
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    changed = sorted(k for k in set(got) & set(want) if got[k] != want[k])
    return (
        f"missing {len(missing)} {missing[:6]}, unexpected {len(extra)} {extra[:6]}, "
        f"different value {len(changed)} {changed[:6]}"
    )


def run_kills(
    tmp_path, mode: str, workload: str, kills: int, max_delay: float, seed: int
) -> dict[str, int]:
    """Start, kill and verify `kills` children on one database; returns counts."""
    rng = random.Random(seed)
    path = str(tmp_path / "db")
    cfg = config_for(mode, workload)
    model = Model(workload)
    done = 0  # operations known to be in the file
    where = f"[mode={mode} workload={workload} seed={seed}]"
    stats = {"kills": 0, "unacked_commit_found": 0, "acks": 0}
    for round_ in range(kills):
        child = Child(
            ["child", path, mode, workload, str(done + 1)], str(tmp_path / f"stderr{round_}")
        )
        try:
            deadline = time.monotonic() + 30
            while not child.acks and not child.eof:
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"{where} round {round_}: no commit acknowledged within 30 s"
                    )
                child.pump(deadline - time.monotonic())
            # the child has committed; kill it at a random moment from now
            kill_at = time.monotonic() + rng.uniform(0, max_delay)
            while not child.eof and time.monotonic() < kill_at:
                child.pump(kill_at - time.monotonic())
            assert not child.eof, (
                f"{where} round {round_}: the child exited before it was killed "
                f"(rc={child.proc.poll()}):\n{child.stderr()}"
            )
            child.kill()
            child.drain(30)
        finally:
            if child.proc.poll() is None:
                child.proc.kill()
                child.proc.wait(timeout=30)
        assert child.proc.returncode == -signal.SIGKILL, (
            f"{where} round {round_}: child ended with {child.proc.returncode}, not SIGKILL:\n"
            f"{child.stderr()}"
        )
        acks = child.acks
        assert acks == list(range(done + 1, done + 1 + len(acks))), (
            f"{where} round {round_}: acknowledgements out of sequence: {acks[:5]}..."
        )
        last = acks[-1]
        stats["kills"] += 1
        stats["acks"] += len(acks)

        # verify: check(), then the exact state after `last` or `last + 1` operations
        read_only = round_ % 2 == 1
        with Database.open(path, cfg, read_only=read_only) as db:
            db.check()
            got = dict(db.scan(b""))
            sample = [k for k in list(got)[:: max(1, len(got) // 20)]]
            gets = {k: db.get(k) for k in sample}
        assert gets == {k: got[k] for k in sample}, f"{where} round {round_}: get() != scan()"
        model.advance_to(last)
        if got == model.state:
            done = last
        else:
            at_last = dict(model.state)
            model.advance_to(last + 1)
            assert got == model.state, (
                f"{where} round {round_}: after the kill the database is neither the state after "
                f"the last acknowledged operation {last} ({_diff(got, at_last)}) nor after the "
                f"next one ({_diff(got, model.state)})"
            )
            done = last + 1
            stats["unacked_commit_found"] += 1
    # a last, clean open: the file is still usable for writes
    with Database.open(path, cfg) as db:
        db.put(b"after", b"kills")
        db.check()
        assert db.get(b"after") == b"kills"
    return stats


MODES = ["full", "normal", "off"]
WORKLOADS = ["txn", "auto", "large"]


def _seed() -> int:
    env = os.environ.get("TOONDB_CRASH_SEED")
    return int(env) if env else random.randrange(2**32)


if __name__ != "__main__":

    @pytest.mark.parametrize("workload", WORKLOADS)
    @pytest.mark.parametrize("mode", MODES)
    def test_sigkill(tmp_path, mode, workload):
        """5 kills per (sync_mode, workload): 45 in the default suite."""
        stats = run_kills(tmp_path, mode, workload, kills=5, max_delay=0.05, seed=_seed())
        assert stats["kills"] == 5

    @pytest.mark.slow
    @pytest.mark.timeout(1800)
    @pytest.mark.parametrize("workload", WORKLOADS)
    @pytest.mark.parametrize("mode", MODES)
    def test_sigkill_soak(tmp_path, mode, workload):
        """60 kills per (sync_mode, workload), delays from 0 to 200 ms."""
        stats = run_kills(tmp_path, mode, workload, kills=60, max_delay=0.2, seed=_seed())
        assert stats["kills"] == 60

    def test_sigkill_immediately_after_first_ack(tmp_path):
        """Kills with no delay at all: the database holds one or two operations."""
        seed = _seed()
        for mode in MODES:
            sub = tmp_path / mode
            sub.mkdir()
            stats = run_kills(sub, mode, "txn", kills=2, max_delay=0.0, seed=seed)
            assert stats["kills"] == 2


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "child":
        child_main(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        sys.exit(f"usage: {sys.argv[0]} child <path> <mode> <workload> <start>")
