"""A SIGKILL while SQL statements write a full-text table leaves the index and the
table's content agreeing: a child process inserts, updates and deletes rows of an
fts5 table in transactions, acknowledging each commit; the parent kills it at a
random moment, then checks the file, that the content is the state after the last
acknowledged operation (or the next one), and that FTS5's 'integrity-check' (the
index holds exactly the content's tokens) passes and a MATCH finds exactly the
rows holding a word. The protocol is tests/storage/test_crash.py's.

TOONDB_CRASH_SEED=<int> fixes the random delays; failure messages name the seed."""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time

from toondb import Database

BATCH = 30
WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima".split()


def text(seed: int) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(rng.randrange(3, 40)))


def ops_for(n: int) -> list[tuple[str, list]]:
    """Operation n (n >= 1): SQL statements run in one transaction."""
    r = n % 3
    if r == 0:
        base = n * 1000
        return [
            (
                "INSERT INTO t(rowid, a) VALUES (?, ?)",
                [(base + i, text(base + i)) for i in range(BATCH)],
            )
        ]
    if r == 1:
        base = (n - 1) * 1000
        return [
            (
                "UPDATE t SET a = ? WHERE rowid = ?",
                [(text(base + i + 7), base + i) for i in range(0, BATCH, 3)],
            )
        ]
    base = (n - 2) * 1000
    return [
        ("DELETE FROM t WHERE rowid >= ? AND rowid < ?", [(base, base + BATCH // 2)]),
        ("INSERT INTO t(rowid, a) VALUES (?, ?)", [(n, text(n))]),
    ]


class Model:
    def __init__(self) -> None:
        self.n = 0
        self.rows: dict[int, str] = {}

    def advance_to(self, n: int) -> None:
        while self.n < n:
            self.n += 1
            for sql, params in ops_for(self.n):
                for p in params:
                    if sql.startswith("INSERT"):
                        self.rows[p[0]] = p[1]
                    elif sql.startswith("DELETE"):
                        for k in [k for k in self.rows if p[0] <= k < p[1]]:
                            del self.rows[k]
                    elif p[1] in self.rows:
                        self.rows[p[1]] = p[0]


def child_main(path: str, start: int) -> None:
    db = Database.open(path)
    n = start
    stop = time.monotonic() + 60
    while time.monotonic() < stop:
        with db.transaction(immediate=n % 2 == 0) as txn:
            for sql, params in ops_for(n):
                txn.execute_sql(sql, params)
        os.write(1, b"ack %d\n" % n)
        n += 1
    sys.exit(3)


def state(path: str) -> dict[int, str]:
    with Database.open(path) as db:
        db.check()
        rows = dict(db.execute_sql("SELECT rowid, a FROM t").rows)
        db.execute_sql("INSERT INTO t(t) VALUES ('integrity-check')")
        for w in ("alpha", "kilo"):
            got = sorted(
                r[0] for r in db.execute_sql("SELECT rowid FROM t WHERE t MATCH ?", [w]).rows
            )
            assert got == sorted(k for k, v in rows.items() if w in v.split()), w
    return rows


if __name__ == "__main__":
    child_main(sys.argv[1], int(sys.argv[2]))
else:

    def test_sigkill_during_fulltext_writes(tmp_path):
        seed = int(os.environ.get("TOONDB_CRASH_SEED") or random.randrange(2**32))
        rng = random.Random(seed)
        path = str(tmp_path / "db")
        with Database.open(path) as db:
            db.execute_sql("CREATE VIRTUAL TABLE t USING fts5(a, prefix='2')")
        model = Model()
        done = 0
        for round_ in range(3):
            err = open(tmp_path / f"stderr{round_}", "wb")
            proc = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), path, str(done + 1)],
                stdout=subprocess.PIPE,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )
            acks: list[int] = []
            buf = b""
            try:
                deadline = time.monotonic() + 60
                kill_at = None
                while True:
                    now = time.monotonic()
                    if kill_at is None and acks:
                        kill_at = now + rng.uniform(0, 0.4)
                    if kill_at is not None and now >= kill_at:
                        break
                    assert now < deadline, f"[seed={seed}] no progress in round {round_}"
                    ready, _, _ = select.select([proc.stdout], [], [], 0.01)
                    if ready:
                        chunk = os.read(proc.stdout.fileno(), 1 << 16)
                        assert chunk, f"[seed={seed}] the child died: {open(err.name).read()}"
                        buf += chunk
                        *lines, buf = buf.split(b"\n")
                        acks += [int(line.split()[1]) for line in lines]
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
                rest = proc.stdout.read()
                acks += [int(line.split()[1]) for line in (buf + rest).split(b"\n") if line]
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=30)
                proc.stdout.close()
                err.close()
            assert proc.returncode == -signal.SIGKILL, f"[seed={seed}] rc {proc.returncode}"
            last = acks[-1]
            rows = state(path)
            model.advance_to(last)
            if rows != model.rows:
                model.advance_to(last + 1)
                assert rows == model.rows, (
                    f"[seed={seed}] round {round_}: content is not acknowledged"
                )
                last += 1
            done = last
        assert done >= 3
