"""A SIGKILL while SQL statements move an HNSW index leaves the index and its table
agreeing: a child process inserts, updates and deletes rows of a table with an HNSW
index, acknowledging each commit; the parent kills it at a random moment, then checks
the file, that the table holds exactly the state after the last acknowledged operation
(or the next one), and that the index holds exactly the table's vectors under their
rowids and answers a k-NN query as the exact scan does. The protocol is
tests/storage/test_crash.py's.

TOONDB_CRASH_SEED=<int> fixes the random delays; failure messages name the seed."""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time

import numpy as np

from toondb import Database

DIM = 16
BATCH = 40  # rows a batch operation inserts: the index's maintenance is most of a commit


def vector(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)


def ops_for(n: int) -> list[tuple[str, list]]:
    """Operation n (n >= 1): SQL statements run in one transaction."""
    r = n % 4
    if r == 0:  # a batch of new rows
        base = n * 1000
        rows = [(base + i, n % 7, vector(base + i)) for i in range(BATCH)]
        return [("INSERT INTO t VALUES (?, ?, ?)", rows)]
    if r == 1:  # move the vectors of an earlier batch's rows
        base = (n - 1) * 1000
        return [
            ("UPDATE t SET v = ? WHERE id = ?", [(vector(base + i + 7), base + i)])
            for i in range(0, BATCH, 3)
        ]
    if r == 2:  # delete part of an earlier batch, and insert one row
        base = (n - 2) * 1000
        return [
            ("DELETE FROM t WHERE id >= ? AND id < ?", [(base, base + BATCH // 2)]),
            ("INSERT INTO t VALUES (?, ?, ?)", [(n, 1, vector(n))]),
        ]
    return [("UPDATE t SET v = NULL WHERE id = ?", [((n - 3) * 1000 + BATCH - 1,)])]


class Model:
    """The table's exact contents (rowid -> vector bytes or None) after n operations."""

    def __init__(self) -> None:
        self.n = 0
        self.rows: dict[int, bytes | None] = {}

    def advance_to(self, n: int) -> None:
        while self.n < n:
            self.n += 1
            for sql, params in ops_for(self.n):
                for p in params:
                    if sql.startswith("INSERT"):
                        self.rows[p[0]] = p[2].tobytes()
                    elif sql.startswith("DELETE"):
                        for k in [k for k in self.rows if p[0] <= k < p[1]]:
                            del self.rows[k]
                    elif "NULL" in sql:
                        if p[0] in self.rows:
                            self.rows[p[0]] = None
                    elif p[1] in self.rows:
                        self.rows[p[1]] = p[0].tobytes()


def setup(path: str) -> None:
    with Database.open(path) as db:
        db.execute_sql("CREATE TABLE t(id INTEGER PRIMARY KEY, grp INT, v VECTOR(16))")
        db.execute_sql("CREATE INDEX tv ON t USING hnsw (v) WITH (metric = 'l2', m = 8)")


def child_main(path: str, start: int) -> None:
    db = Database.open(path)
    n = start
    stop = time.monotonic() + 60
    while time.monotonic() < stop:
        with db.transaction(immediate=n % 2 == 0) as txn:
            for sql, params in ops_for(n):
                txn.execute_sql(sql, params)  # a list of parameter sets: one batch
        os.write(1, b"ack %d\n" % n)
        n += 1
    sys.exit(3)  # never killed: the parent is broken


def state(path: str) -> tuple[dict[int, bytes | None], list[int], list[int]]:
    """The table's rows, the index's rowids (sorted), and one k-NN answer checked
    against the exact scan."""
    from toondb.sql import catalog
    from toondb.vector.sql_index import HNSW, rowids_of

    with Database.open(path, read_only=True) as db:
        db.check()
        rows = {
            i: (None if v is None else v.tobytes())
            for i, v in db.execute_sql("SELECT id, v FROM t").rows
        }
        with db.transaction(read_only=True) as txn:
            vx = catalog.load(txn).tables["t"].vector_indexes[0]
            s = HNSW._state(txn, vx)
            ids = rowids_of(s.labels).tolist()
            vecs = s.graph.vectors(np.asarray(s.lids, dtype=np.int64)) if len(ids) else []
        stored = {i: vecs[j].tobytes() for j, i in enumerate(ids)}
        assert stored == {i: v for i, v in rows.items() if v is not None}, "index != table"
        db.execute_sql("PRAGMA hnsw_ef_search = 2000")
        q = vector(123456)
        # (updates copy vectors between rows: ties, whose order is the plan's, so the
        # distances are compared)
        sql = "SELECT vec_distance_l2(v, ?) FROM t ORDER BY vec_distance_l2(v, ?) LIMIT 8"
        got = [r[0] for r in db.execute_sql(sql, [q, q]).rows]
        exact = [r[0] for r in db.execute_sql(sql.replace("?) LIMIT", "?) + 0 LIMIT"), [q, q]).rows]
    return rows, sorted(ids), got if got == exact else [-1]


if __name__ == "__main__":
    child_main(sys.argv[1], int(sys.argv[2]))
else:

    def test_sigkill_during_index_maintenance(tmp_path):
        seed = int(os.environ.get("TOONDB_CRASH_SEED") or random.randrange(2**32))
        rng = random.Random(seed)
        path = str(tmp_path / "db")
        setup(path)
        model = Model()
        done = 0
        for round_ in range(4):
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
            rows, _ids, knn = state(path)  # index == table, checked inside
            assert knn != [-1], f"[seed={seed}] round {round_}: k-NN differs from the exact scan"
            model.advance_to(last)
            if rows != model.rows:
                model.advance_to(last + 1)
                assert rows == model.rows, (
                    f"[seed={seed}] round {round_}: the table is neither the state after "
                    f"operation {last} nor after {last + 1}"
                )
                last += 1
            done = last
        assert done >= 4
