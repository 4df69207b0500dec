"""Fuzzing page files with structure-aware forgeries (slow suite).

test_corruption damages key-value files at random and forges node, extent and meta
fields. This target forges what it leaves out, with the checksum recomputed each time
(a whole page, as a stale, misdirected or deliberately forged page would look):

- meta pages: the key-value and catalog roots pointed at other pages (older trees
  still intact in the file among them), the root transactions recorded for them
  (M_ROOTS), depths and entry counts;
- SQL rows: the value tags, varint lengths, column counts and payload bytes of rows
  of a table (toondb.codec.rowcodec), and index entry keys and values;
- page flags (the catalog bit on a key-value leaf and the other way round), cell
  lengths and slot offsets of leaves holding SQL rows and catalog entries.

Each forged file is opened in a worker subprocess, which reads everything: every
key-value pair, the named tree, ``SELECT *`` of each SQL table and queries through
its indexes, ``stats()``, ``check()``, ``check(deep=True)`` and one write. Asserted:
no crash, no hang, and nothing raised but CorruptionError (RowFormatError included);
and when ``check(deep=True)`` passes, no read raised CorruptionError.

Bounded by ``TOONDB_FORGERY_CASES`` (default 1500 files) and seeded
(``TOONDB_FORGERY_SEED``; random by default); the summary line says how many files
ran and how they ended.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import struct
import subprocess
import sys
import traceback
from collections import Counter
from pathlib import Path

if __name__ != "__main__":  # the worker process skips pytest's import time
    import pytest

    pytestmark = [pytest.mark.slow, pytest.mark.damages_files]

CASES = int(os.environ.get("TOONDB_FORGERY_CASES", "1500"))
JOB_TIMEOUT = 60.0
PAGE_SIZE = 1024  # small pages: more of them, deeper trees


# ---------------------------------------------------------------------------
# The base file


def build_base(path: str) -> None:
    """Key-value pairs (overflow values among them), a named tree, and two SQL
    tables with indexes, written in several commits so older trees remain in the
    file; sync_mode="full" so both meta pages hold (different) recent commits."""
    from toondb import Database

    rng = random.Random(7)
    with Database.open(path, {"page_size": PAGE_SIZE, "sync_mode": "full"}) as db:
        for i in range(300):
            db.put(b"kv:%04d" % i, rng.randbytes(rng.randrange(0, 60)))
        db.put(b"kv:big", rng.randbytes(5000))
        with db.transaction() as t:
            tree = t.tree(b"named", create=True)
            for i in range(100):
                tree.put(b"n:%03d" % i, b"%d" % i)
        db.execute_sql(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE, n INT, r REAL, b)"
        )
        db.execute_sql("CREATE INDEX t_n ON t (n)")
        db.executemany(
            "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
            [(i, f"name{i}", i % 9, i / 3, rng.randbytes(i % 5) or None) for i in range(1, 200)],
        )
        db.execute_sql("CREATE TABLE u (a, b)")
        db.executemany("INSERT INTO u VALUES (?, ?)", [(i, "x" * (i % 30)) for i in range(80)])
        for i in range(0, 300, 4):  # a later commit: older trees stay behind in the file
            db.put(b"kv:%04d" % i, b"rewritten")
        db.execute_sql("UPDATE t SET n = n + 1 WHERE id % 3 = 0")
        db.put(b"kv:last", b"the last commit")


def pages(data: bytes) -> dict[str, list[int]]:
    """Page ids by kind: "leaf", "branch", "catalog" (leaves), "extent"."""
    out: dict[str, list[int]] = {"leaf": [], "branch": [], "catalog": [], "extent": []}
    for pg in range(2, len(data) // PAGE_SIZE):
        t = data[pg * PAGE_SIZE + 4]
        if t == 2:
            out["catalog" if data[pg * PAGE_SIZE + 5] & 1 else "leaf"].append(pg)
        elif t == 1:
            out["branch"].append(pg)
        elif t in (3, 4):
            out["extent"].append(pg)
    return out


def cells(data: bytes, pg: int) -> list[int]:
    p = pg * PAGE_SIZE
    n = struct.unpack_from("<H", data, p + 6)[0]
    return [p + struct.unpack_from("<H", data, p + 28 + 2 * i)[0] for i in range(n)]


def reseal(out: bytearray, pg: int) -> None:
    from forgery import reseal as _reseal

    _reseal(out, pg, PAGE_SIZE)


def forge(rng: random.Random, data: bytes, kinds: dict[str, list[int]]) -> tuple[bytes, str]:
    out = bytearray(data)
    kind = rng.choice(["meta", "meta", "row", "row", "row", "index", "flags", "cell"])
    nodes = kinds["leaf"] + kinds["branch"] + kinds["catalog"]
    if kind == "meta":
        slot = rng.randrange(2)
        b = slot * PAGE_SIZE
        fields = [
            ("kv_root", 48, 4), ("kv_depth", 52, 2), ("kv_entries", 56, 8), ("cat_root", 64, 4),
            ("cat_depth", 68, 2), ("kv_root_txn", 168, 8), ("cat_root_txn", 176, 8),
            ("durable_kv_root_txn", 184, 8),
        ]  # fmt: skip
        name, at, size = rng.choice(fields)
        old = int.from_bytes(out[b + at : b + at + size], "little")
        if name.endswith("_root"):
            new = rng.choice(nodes)
        else:
            new = rng.choice([0, 1, old - 1, old + 1, old + 2, rng.randrange(1 << (8 * size))])
        new %= 1 << (8 * size)
        out[b + at : b + at + size] = new.to_bytes(size, "little")
        reseal(out, slot)
        return bytes(out), f"meta slot {slot} {name} {old} -> {new}"
    if kind == "flags":
        pg = rng.choice(kinds["leaf"] + kinds["catalog"])
        out[pg * PAGE_SIZE + 5] ^= rng.choice([1, 2, 3, 0x80])
        reseal(out, pg)
        return bytes(out), f"page {pg} flags -> {out[pg * PAGE_SIZE + 5]}"
    pg = rng.choice(kinds["leaf"] or nodes)
    cs = cells(out, pg)
    if not cs:
        return forge(rng, data, kinds)
    c = rng.choice(cs)
    klen = struct.unpack_from("<H", out, c)[0]
    vlen = struct.unpack_from("<I", out, c + 2)[0]
    if kind == "cell" or vlen & 0x80000000:
        at, size = rng.choice([(c, 2), (c + 2, 4)])
        old = int.from_bytes(out[at : at + size], "little")
        new = rng.choice([0, old - 1, old + 1, 16, rng.randrange(1 << (8 * size))])
        new %= 1 << (8 * size)
        out[at : at + size] = new.to_bytes(size, "little")
        reseal(out, pg)
        return bytes(out), f"page {pg} cell +{c - pg * PAGE_SIZE} field +{at - c} {old} -> {new}"
    value = c + 6 + klen
    target = value if kind == "row" or vlen == 0 else c + 6  # index: its key bytes
    span = vlen if target == value else klen
    if span == 0:
        return forge(rng, data, kinds)
    for _ in range(rng.randint(1, 3)):
        at = target + rng.randrange(span)
        out[at] = rng.choice(
            [0, 1, 6, 7, 8, 9, 10, 0x7F, 0x80, 0xFF, out[at] ^ 0x01, rng.randrange(256)]
        )
    reseal(out, pg)
    return bytes(out), f"page {pg} cell +{c - pg * PAGE_SIZE}: {kind} bytes forged"


# ---------------------------------------------------------------------------
# The worker: open a forged file and read everything


def _each(fn, errors: list[str]):
    from toondb import CorruptionError

    try:
        return fn()
    except CorruptionError as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
        return None


def judge(path: str) -> dict:
    from toondb import CorruptionError, Database

    try:
        db = Database.open(path)
    except CorruptionError:
        return {"ok": True, "outcome": "open raised CorruptionError", "detail": ""}
    errors: list[str] = []
    deep_passed = False
    try:
        _each(db.stats, errors)
        _each(lambda: [db.get(b"kv:%04d" % i) for i in range(0, 300, 7)], errors)
        _each(lambda: list(db.scan(b"")), errors)
        _each(lambda: list(db.scan(b"", reverse=True)), errors)

        def named():
            with db.transaction(read_only=True) as t:
                return list(t.tree(b"named").scan()) if t.has_tree(b"named") else None

        _each(named, errors)
        for sql in (
            "SELECT * FROM t",
            "SELECT * FROM u",
            "SELECT id FROM t WHERE n = 4",
            "SELECT name FROM t WHERE name > 'name5' ORDER BY name",
            "SELECT count(*), sum(n), max(r) FROM t",
        ):
            _each(lambda sql=sql: db.execute_sql(sql).rows, errors)
        _each(db.check, errors)
        deep_passed = _each(lambda: db.check(deep=True), errors) is not None
        _each(lambda: db.put(b"zz:new", b"after the forgery"), errors)
        _each(lambda: db.execute_sql("INSERT INTO u VALUES (1000, 'after')"), errors)
    finally:
        try:
            db.close()
        except CorruptionError:
            pass
    if deep_passed and errors:
        return {
            "ok": False,
            "outcome": "check(deep=True) passed but a read raised CorruptionError",
            "detail": errors[0],
        }
    return {"ok": True, "outcome": "raised CorruptionError" if errors else "read", "detail": ""}


def worker_main() -> None:
    for line in sys.stdin:
        job = json.loads(line)
        try:
            verdict = judge(job["path"])
        except Exception as exc:  # anything but CorruptionError is a failure
            verdict = {
                "ok": False,
                "outcome": f"raised {type(exc).__name__}",
                "detail": f"{exc}\n" + "".join(traceback.format_tb(exc.__traceback__)[-8:]),
            }
        sys.stdout.write(json.dumps(verdict) + "\n")
        sys.stdout.flush()


class Worker:
    def __init__(self, log_path: Path) -> None:
        tests = str(Path(__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": tests + os.pathsep + os.environ.get("PYTHONPATH", "")}
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
            )
        self.buf = b""

    def run(self, path: str) -> dict:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"path": path}).encode() + b"\n")
        self.proc.stdin.flush()
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            ready, _, _ = select.select([fd], [], [], JOB_TIMEOUT)
            if not ready:
                self.proc.kill()
                self.proc.wait(30)
                return {"ok": False, "outcome": f"HANG (no verdict in {JOB_TIMEOUT:.0f} s)"}
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                rc = self.proc.wait(30)
                what = f"signal {signal.Signals(-rc).name}" if rc < 0 else f"exit status {rc}"
                return {"ok": False, "outcome": f"CRASH: the reader died by {what}"}
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)  # type: ignore[no-any-return]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.alive():
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(30)


if __name__ != "__main__":

    def test_fuzz_forged_page_files(tmp_path):
        seed = int(os.environ.get("TOONDB_FORGERY_SEED", "0")) or random.randrange(1, 1 << 31)
        rng = random.Random(seed)
        base = tmp_path / "base"
        build_base(str(base))
        data = (base / "toondb.data").read_bytes()
        kinds = pages(data)
        assert kinds["leaf"] and kinds["branch"] and kinds["catalog"]
        worker = Worker(tmp_path / "worker.log")
        outcomes: Counter[str] = Counter()
        failures: list[str] = []
        try:
            for j in range(CASES):
                forged, desc = forge(rng, data, kinds)
                d = tmp_path / "job"
                d.mkdir(exist_ok=True)
                for p in d.iterdir():
                    p.unlink()
                (d / "toondb.data").write_bytes(forged)
                verdict = worker.run(str(d))
                outcomes[verdict["outcome"]] += 1
                if not verdict["ok"]:
                    failures.append(
                        f"case {j}: {desc}: {verdict['outcome']} {verdict.get('detail', '')}"
                    )
                    if not worker.alive():
                        worker = Worker(tmp_path / "worker.log")
        finally:
            worker.close()
        print(f"\nforgery fuzz: seed {seed}, {CASES} files: {dict(outcomes)}")
        assert not failures, f"seed {seed}, {len(failures)} failures:\n" + "\n".join(failures[:20])


if __name__ == "__main__" and sys.argv[1:] == ["worker"]:
    worker_main()
