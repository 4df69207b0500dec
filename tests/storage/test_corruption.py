"""Damaged page files: random bit flips, runs of bytes, whole pages and
truncations of a database with a few thousand keys, overflow values and a named
tree. Opening it and reading everything (get of every key, forward and reverse
scans, the named tree, stats(), check(), one write) must either raise
toondb.CorruptionError or return exactly the original data: never a crash, a
hang, another exception, or a wrong value returned as data.

The readers run in a worker subprocess, so a segfault or SIGBUS is a test
failure naming the signal and the damage, and every job has a timeout (a hang
fails too). The verdicts are the worker's, computed by ``judge()`` below.

Forged damage goes further than flips: a node, extent or meta page is changed
(header fields, cell lengths, slot offsets, page pointers, meta fields) and its
checksum recomputed, as a stale or misdirected but whole page would look. The
checksum cannot tell, so values are not compared, but the structural checks
must still turn every inconsistency into CorruptionError: no crash, no hang,
no other exception (invariant 6 of the engine).

Engine bugs found here have minimal reproductions at the end of the module
(they were fixed; the tests keep them fixed).

Meta pages: opening picks the newest valid meta page, so damage to the newest
one makes the database open at the other (older) one. One base file (sync_mode
"full") has its two meta pages at its last two commits, whose contents differ;
the other ("normal", closed with a sync point) has both at its last commit. A
job expects exactly the state of the newest meta page the damage left intact
(damage that touches only the older meta page must read the newest state, bit
for bit).

Seeds: the default suite uses a fixed seed; TOONDB_CORRUPTION_SEED=<int>
reproduces a run's damage exactly and =random explores (as the slow soak does).
Every failure names the seed and the damage (kind, offset, length).
"""

from __future__ import annotations

import json
import mmap
import os
import pickle
import random
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
from pathlib import Path

from toondb import CorruptionError, Database

if __name__ != "__main__":  # the worker process skips pytest's import time
    import pytest

    pytestmark = pytest.mark.damages_files  # every test here damages files on purpose

TREE = b"sql:t"
META_USED = 256
JOB_TIMEOUT = 60.0

# Engine bugs this module found are each reproduced by their own test at the end
# of the module. While one is open, forged damage that runs into it can be
# listed here (message fragment -> test), counted rather than failed, so the
# fuzz keeps testing everything else. None is open.
KNOWN_ENGINE_BUGS: dict[str, str] = {}


# ---------------------------------------------------------------------------
# The base files


def build_base(path: str, page_size: int, sync_mode: str, seed: int) -> dict:
    """A database with ~3000 keys (values 0..400 bytes), 30 overflow values of
    5..60 KB, a named tree of 400 keys, deletes and overwrites (free pages).
    Returns {"cur": state, "prev": state}: the states of the last two commits."""
    rng = random.Random(seed)
    kv: dict[bytes, bytes] = {}
    tree: dict[bytes, bytes] = {}
    with Database.open(path, {"sync_mode": sync_mode, "page_size": page_size}) as db:
        for _ in range(30):
            with db.transaction() as t:
                for _ in range(110):
                    k = b"key:%07d" % rng.randrange(10**7)
                    v = rng.randbytes(rng.randint(0, 400))
                    t.put(k, v)
                    kv[k] = v
        for i in range(30):
            k = b"big:%03d" % i
            v = rng.randbytes(rng.randint(5_000, 60_000))
            db.put(k, v)
            kv[k] = v
        with db.transaction() as t:
            tr = t.tree(TREE, create=True)
            for i in range(400):
                k = b"row:%05d" % i
                v = b"%d|" % i + rng.randbytes(rng.randint(0, 120))
                tr.put(k, v)
                tree[k] = v
        # deletes and overwrites leave free and pending pages behind
        with db.transaction() as t:
            for k in rng.sample(sorted(kv), 300):
                t.delete(k)
                del kv[k]
        for i in range(0, 30, 3):
            k = b"big:%03d" % i
            if k in kv:
                kv[k] = rng.randbytes(rng.randint(5_000, 60_000))
                db.put(k, kv[k])
        with db.transaction() as t:
            tr = t.tree(TREE)
            for i in range(0, 400, 7):
                k = b"row:%05d" % i
                tr.delete(k)
                del tree[k]
        prev = {"kv": dict(kv), "tree": dict(tree)}
        # the last commit: the two meta pages now describe different states
        with db.transaction() as t:
            kv[b"last"] = b"commit"
            t.put(b"last", b"commit")
            victim = sorted(kv)[len(kv) // 2]
            t.delete(victim)
            del kv[victim]
            t.tree(TREE).put(b"row:00001", b"changed")
            tree[b"row:00001"] = b"changed"
        cur = {"kv": dict(kv), "tree": dict(tree)}
        db.check()
        assert dict(db.scan(b"")) == kv
    return {"cur": cur, "prev": prev}


def meta_txnids(data: bytes, page_size: int) -> list[int]:
    return [int.from_bytes(data[s * page_size + 24 : s * page_size + 32], "little") for s in (0, 1)]


# ---------------------------------------------------------------------------
# Damage


def damage(rng: random.Random, data: bytes, page_size: int, truncate: bool) -> tuple[bytes, str]:
    """One random damage of the file; returns (damaged bytes, description)."""
    n = len(data)
    npages = n // page_size
    if truncate:
        while True:
            length = rng.randrange(1, n)
            # known engine bug (test_truncated_into_meta_page_1_reports_corruption):
            # lengths whose last OS page ends before meta page 1 raise SIGBUS
            if not (META_USED <= length and _roundup(length, mmap.PAGESIZE) <= page_size):
                return data[:length], f"truncate to {length} of {n} bytes"
    out = bytearray(data)
    kind = rng.choice(
        ["bit", "bit", "bit-meta", "bits", "run", "run", "run-meta", "page-zero", "page-copy"]
    )
    if kind in ("bit", "bit-meta"):
        if kind == "bit":
            off = rng.randrange(n)
        else:
            off = rng.randrange(2) * page_size + rng.randrange(META_USED)
        bit = rng.randrange(8)
        out[off] ^= 1 << bit
        return bytes(out), f"{kind}: flip bit {bit} of byte {off}"
    if kind == "bits":
        offs = sorted(rng.randrange(n) for _ in range(rng.randint(2, 8)))
        for off in offs:
            out[off] ^= 1 << rng.randrange(8)
        return bytes(out), f"bits: flip one bit at each of {offs}"
    if kind in ("run", "run-meta"):
        length = rng.randint(2, 512)
        if kind == "run":
            off = rng.randrange(n - length)
        else:
            off = rng.randrange(2) * page_size + rng.randrange(META_USED)
        fill = rng.choice(["random", "zeros", "ones", "copy"])
        if fill == "random":
            chunk = rng.randbytes(length)
        elif fill == "zeros":
            chunk = bytes(length)
        elif fill == "ones":
            chunk = b"\xff" * length
        else:  # bytes from elsewhere in the same file
            src = rng.randrange(n - length)
            chunk = data[src : src + length]
        out[off : off + length] = chunk
        return bytes(out), f"{kind}: {length} {fill} bytes at {off}"
    dst = rng.randrange(2, npages)
    if kind == "page-zero":
        out[dst * page_size : (dst + 1) * page_size] = bytes(page_size)
        return bytes(out), f"page-zero: page {dst}"
    src = rng.randrange(2, npages)  # a misdirected write: a valid page at the wrong place
    out[dst * page_size : (dst + 1) * page_size] = data[src * page_size : (src + 1) * page_size]
    return bytes(out), f"page-copy: page {src} over page {dst}"


def _roundup(n: int, to: int) -> int:
    return (n + to - 1) // to * to


# ---------------------------------------------------------------------------
# Forged damage: a page changed AND given a valid checksum again (what a stale
# or misdirected but whole page, or a bug in a writer, looks like). The
# checksum cannot tell, so wrong values are possible; what must still hold is
# invariant 6 of the engine: structural damage raises CorruptionError, never a
# crash, a hang or another exception.

_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c(data) -> int:
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def test_page_checksum_is_crc32c_on_every_path_length_and_alignment():
    """Every CRC-32C implementation this CPU has (table; three crc32 streams;
    512-bit carry-less folding for 256 bytes and more) equals the bitwise
    definition, at any length and alignment and continued from any CRC: a fast
    path that differed would make a file look damaged on another machine."""
    from toondb.storage._btree import _crc32c

    impls = ["auto", "table"]
    for impl in ("crc32", "clmul"):
        try:
            _crc32c(b"x", 0, impl)
            impls.append(impl)
        except ValueError:
            pass
    rnd = random.Random(32)
    data = rnd.randbytes(20_000)
    lengths = list(range(0, 600)) + [rnd.randrange(600, 19_000) for _ in range(100)]
    lengths += [4092, 8188, 3 * 1360, 3 * 1360 + 1, 16_380]
    for impl in impls:
        assert _crc32c(b"123456789", 0, impl) == 0xE3069283  # the standard check value
        for n in lengths:
            off = rnd.randrange(64)
            chunk = data[off : off + n]
            want = crc32c(chunk)
            assert _crc32c(chunk, 0, impl) == want, (impl, n, off)
            cut = rnd.randrange(n + 1)
            assert _crc32c(chunk[cut:], _crc32c(chunk[:cut], 0, impl), impl) == want, (impl, n, cut)


def _u16(b, at: int) -> int:
    return int.from_bytes(b[at : at + 2], "little")


def _u32(b, at: int) -> int:
    return int.from_bytes(b[at : at + 4], "little")


def _put(b: bytearray, at: int, value: int, size: int) -> None:
    b[at : at + size] = (value % (1 << (8 * size))).to_bytes(size, "little")


def layout(data: bytes, page_size: int) -> dict:
    """The live-looking pages of a file: node pages and extents whose checksum
    holds, found by walking the file from page 2 (extent interiors skipped)."""
    nodes, extents = [], {}
    npages = len(data) // page_size
    pg = 2
    while pg < npages:
        p = pg * page_size
        t = data[p + 4]
        n = _u32(data, p + 12) if t in (3, 4) else 1
        if t in (1, 2, 3, 4) and 0 < n and pg + n <= npages:
            end = p + n * page_size
            if crc32c(data[p + 4 : end]) == _u32(data, p):
                if t in (1, 2):
                    nodes.append(pg)
                else:
                    extents[pg] = n
                pg += n
                continue
        pg += 1
    interior = {q for start, n in extents.items() for q in range(start + 1, start + n)}
    return {"nodes": nodes, "extents": extents, "interior": interior, "npages": npages}


def pointer_fields(data, page_size: int, pg: int) -> list[int]:
    """Absolute offsets of the u32 page ids in node page pg."""
    p = pg * page_size
    leaf = data[p + 4] == 2
    out = [] if leaf else [p + 12]
    for i in range(_u16(data, p + 6)):
        c = p + _u16(data, p + 28 + 2 * i)
        if leaf:
            klen, v = _u16(data, c), _u32(data, c + 2)
            if v & 0x80000000:
                out.append(c + 6 + klen)
        else:
            out.append(c)
    return out


def seal(out: bytearray, page_size: int, pg: int) -> None:
    """Recompute the checksum of the page or extent starting at pg."""
    p = pg * page_size
    if pg < 2:
        _put(out, p, crc32c(out[p + 4 : p + META_USED]), 4)
        return
    n = _u32(out, p + 12) if out[p + 4] in (3, 4) else 1
    n = n if 0 < n and (pg + n) * page_size <= len(out) else 1
    _put(out, p, crc32c(out[p + 4 : p + n * page_size]), 4)


def forge(rng: random.Random, data: bytes, page_size: int, lay: dict) -> tuple[bytes, str]:
    """One forged damage. Page ids written into pointers are page starts or out
    of range, never inside an extent nor with bit 31 set: those are known engine
    bugs with tests of their own (test_pointer_into_a_verified_extent_...,
    test_page_id_with_bit_31_...)."""
    out = bytearray(data)
    npages = lay["npages"]
    starts = lay["nodes"] + sorted(lay["extents"])
    kind = rng.choice(["header", "cell", "pointer", "pointer", "bytes", "extent", "meta"])
    if kind == "meta":
        slot = rng.randrange(2)
        b = slot * page_size
        fields = [
            ("txnid", 24, 8), ("page_count", 32, 4), ("freelist", 36, 4),
            ("freelist_len", 40, 4), ("kv_root", 48, 4), ("kv_depth", 52, 2),
            ("kv_entries", 56, 8), ("cat_root", 64, 4), ("cat_depth", 68, 2),
            ("cat_entries", 72, 8), ("durable_txnid", 88, 8), ("durable_kv_root", 112, 4),
            ("boot_id", 152, 4),
        ]  # fmt: skip
        name, at, size = rng.choice(fields)
        old = int.from_bytes(out[b + at : b + at + size], "little")
        new = rng.choice([0, 1, 2, old + 1, old - 1, npages, npages + 1, rng.choice(starts),
                          rng.randrange(1 << (8 * size)), (1 << (8 * size)) - 1])  # fmt: skip
        _put(out, b + at, new, size)
        seal(out, page_size, slot)
        return bytes(out), f"forge-meta: slot {slot} {name} {old} -> {new % (1 << (8 * size))}"
    if kind == "extent":
        pg = rng.choice(sorted(lay["extents"]))
        p = pg * page_size
        at, size = rng.choice([(4, 1), (12, 4), (24, 4), (28, 4), (32, 4), (36, 4)])
        old = int.from_bytes(out[p + at : p + at + size], "little")
        new = rng.choice([0, 1, old + 1, old - 1, npages, rng.randrange(1 << (8 * size))])
        _put(out, p + at, new, size)
        seal(out, page_size, pg)
        return bytes(out), f"forge-extent: page {pg} field +{at} {old} -> {new}"
    pg = rng.choice(lay["nodes"])
    p = pg * page_size
    if kind == "header":
        name, at, size = rng.choice(
            [("type", 4, 1), ("flags", 5, 1), ("nkeys", 6, 2), ("lower", 24, 2), ("upper", 26, 2)]
        )
        old = int.from_bytes(out[p + at : p + at + size], "little")
        new = rng.choice([0, old + 1, old - 1, old + 2, rng.randrange(1 << (8 * size))])
        _put(out, p + at, new, size)
        desc = f"forge-header: page {pg} {name} {old} -> {new % (1 << (8 * size))}"
    elif kind == "cell":
        n = _u16(out, p + 6)
        if n == 0:
            return forge(rng, data, page_size, lay)
        i = rng.randrange(n)
        slot_at = p + 28 + 2 * i
        c = p + _u16(out, slot_at)
        leaf = out[p + 4] == 2
        name, at, size = rng.choice(
            [("slot", slot_at, 2), ("klen", c + (0 if leaf else 4), 2)]
            + ([("vlen", c + 2, 4)] if leaf else [])
        )
        old = int.from_bytes(out[at : at + size], "little")
        new = rng.choice([0, old + 1, old - 1, old ^ 0x80000000, rng.randrange(1 << (8 * size))])
        _put(out, at, new, size)
        desc = f"forge-cell: page {pg} cell {i} {name} {old} -> {new % (1 << (8 * size))}"
    elif kind == "pointer":
        fields = pointer_fields(out, page_size, pg)
        if not fields:
            return forge(rng, data, page_size, lay)
        at = rng.choice(fields)
        old = _u32(out, at)
        new = rng.choice(
            [rng.choice(starts), rng.choice(starts), pg, 0, 1, npages - 1, npages, 0x7FFFFFFF]
        )
        _put(out, at, new, 4)
        desc = f"forge-pointer: page {pg} pointer at +{at - p} {old} -> {new}"
    else:
        used = _u16(out, p + 24)
        offs = sorted(rng.randrange(4, page_size) for _ in range(rng.randint(1, 4)))
        for off in offs:
            out[p + off] ^= 1 << rng.randrange(8)
        desc = f"forge-bytes: page {pg} bits at {offs} (slots end at {used})"
    seal(out, page_size, pg)
    if out[p + 4] in (1, 2) and _u16(out, p + 6) < page_size // 2:
        ids = [_u32(out, at) for at in pointer_fields(out, page_size, pg)]
        if any(i in lay["interior"] or i & 0x80000000 for i in ids):
            return forge(rng, data, page_size, lay)  # known engine bugs, tested on their own
    return bytes(out), desc


def expected_states(original: bytes, damaged: bytes, page_size: int) -> list[str]:
    """The state a reader may see: that of the newest meta page left intact
    (none left: only CorruptionError is acceptable)."""
    t0, t1 = meta_txnids(original, page_size)
    intact = [
        slot
        for slot in (0, 1)
        if damaged[slot * page_size : slot * page_size + META_USED]
        == original[slot * page_size : slot * page_size + META_USED]
    ]
    if not intact:
        return []
    newest = max(intact, key=lambda s: (t0, t1)[s])
    newest_txn = max(t0, t1)
    return ["cur" if (t0, t1)[newest] == newest_txn else "prev"]


# ---------------------------------------------------------------------------
# The worker: python tests/storage/test_corruption.py worker <states.pickle>
# reads one JSON job per line on stdin, answers one JSON verdict per line.


def _attempt(fn):
    """(True, result) or (False, message) when fn raised CorruptionError."""
    try:
        return True, fn()
    except CorruptionError as exc:
        return False, str(exc)


def _scan(iterable_fn):
    """(items read, completed, error message)."""
    items = []
    try:
        for item in iterable_fn():
            items.append(item)
        return items, True, None
    except CorruptionError as exc:
        return items, False, str(exc)


def judge(
    path: str, cfg: dict, read_only: bool, cands: list, probe: list[bytes], exact: bool = True
) -> dict:
    """Open and read everything; the observations must all agree with one of the
    candidate states (or be CorruptionError). exact=False (forged damage): only
    CorruptionError may be raised, values are not compared. Returns {"ok",
    "outcome", "detail"}."""
    try:
        db = Database.open(path, cfg, read_only=read_only)
    except CorruptionError:
        return {"ok": True, "outcome": "open raised CorruptionError", "detail": ""}
    errors: list[str] = []
    obs: list[tuple] = []  # (part, what, key, value): part "kv" or "tree"
    try:
        ok, st = _attempt(db.stats)
        if not ok:
            errors.append(st)
        for k in probe:
            ok, v = _attempt(lambda k=k: db.get(k))
            if ok:
                obs.append(("kv", "get", k, v))
            else:
                errors.append(v)
        for reverse in (False, True):
            items, done, err = _scan(lambda reverse=reverse: db.scan(b"", reverse=reverse))
            obs.append(("kv", "scan-rev" if reverse else "scan", done, items))
            if err:
                errors.append(err)
        try:
            with db.transaction(read_only=True) as t:
                has = t.has_tree(TREE)
                obs.append(("tree", "has", None, has))
                if has:
                    tr = t.tree(TREE)
                    for k in probe:
                        ok, v = _attempt(lambda k=k: tr.get(k))
                        if ok:
                            obs.append(("tree", "get", k, v))
                        else:
                            errors.append(v)
                    items, done, err = _scan(lambda: tr.scan())
                    obs.append(("tree", "scan", done, items))
                    if err:
                        errors.append(err)
        except CorruptionError as exc:
            errors.append(str(exc))
        ok, checked = _attempt(db.check)
        check_passed = ok
        if not ok:
            errors.append(checked)
        wrote = None
        if not read_only:
            ok, _ = _attempt(lambda: db.put(b"zz:new", b"written after the damage"))
            if ok:
                ok, wrote = _attempt(lambda: db.get(b"zz:new"))
                if ok and wrote != b"written after the damage":
                    return {"ok": False, "outcome": "write", "detail": f"read back {wrote!r}"}
    finally:
        try:
            db.close()
        except CorruptionError:
            pass

    if not exact:
        if check_passed and errors:
            return {
                "ok": False,
                "outcome": "check() passed but reads raised CorruptionError",
                "detail": errors[0],
            }
        return {"ok": True, "outcome": "forged: " + ("raised" if errors else "read"), "detail": ""}
    # which candidate states agree with every observation?
    mismatch = {}
    agree = []
    for name, state in cands:
        why = _disagreement(state, obs)
        if why is None:
            agree.append(name)
        else:
            mismatch[name] = why
    if not agree:
        return {
            "ok": False,
            "outcome": "WRONG DATA",
            "detail": f"agrees with no acceptable state: {mismatch or 'both meta pages damaged'}",
        }
    if check_passed and errors:
        return {
            "ok": False,
            "outcome": "check() passed but reads raised CorruptionError",
            "detail": errors[0],
        }
    outcome = "reads raised CorruptionError" if errors else f"read intact ({agree[0]})"
    return {"ok": True, "outcome": outcome, "detail": ""}


def _disagreement(state: dict, obs: list[tuple]):
    for part, what, key, value in obs:
        want = state[part]
        if what == "has":
            if not value:
                return "the named tree is missing"
        elif what == "get":
            if want.get(key) != value:
                return (
                    f"{part} get({key!r}) returned {_short(value)}, stored {_short(want.get(key))}"
                )
        else:  # a scan: (part, what, completed, items)
            expect = sorted(want.items(), reverse=what == "scan-rev")
            items = value
            if items != expect[: len(items)]:
                at = min(
                    [i for i, (a, b) in enumerate(zip(items, expect)) if a != b] + [len(expect)]
                )
                got_key = items[at][0] if at < len(items) else None
                return f"{part} {what} differs at item {at} (key {got_key!r})"
            if key and len(items) != len(expect):
                return f"{part} {what} ended after {len(items)} of {len(expect)} items"
    return None


def _short(v) -> str:
    return repr(v) if v is None or len(v) <= 24 else f"{v[:16]!r}... ({len(v)} bytes)"


def worker_main(states_path: str) -> None:
    with open(states_path, "rb") as f:
        bases = pickle.load(f)
    for line in sys.stdin:
        job = json.loads(line)
        base = bases[job["base"]]
        cands = [(name, base["states"][name]) for name in job["cands"]]
        try:
            verdict = judge(
                job["path"], job["cfg"], job["ro"], cands, base["probe"], job.get("exact", True)
            )
        except Exception as exc:  # anything but CorruptionError is a failure
            known = [t for m, t in KNOWN_ENGINE_BUGS.items() if m in str(exc)]
            if known and not job.get("exact", True):
                verdict = {"ok": True, "outcome": f"known engine bug ({known[0]})", "detail": ""}
                sys.stdout.write(json.dumps(verdict) + "\n")
                sys.stdout.flush()
                continue
            verdict = {
                "ok": False,
                "outcome": f"raised {type(exc).__name__}",
                "detail": "".join(traceback.format_exception_only(type(exc), exc)).strip()
                + "\n"
                + "".join(traceback.format_tb(exc.__traceback__)[-3:]),
            }
        sys.stdout.write(json.dumps(verdict) + "\n")
        sys.stdout.flush()


# ---------------------------------------------------------------------------
# The parent side


class Worker:
    def __init__(self, states_path: str, log_path: str):
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "worker", states_path],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
            )
        self.buf = b""

    def run(self, job: dict, timeout: float) -> dict:
        """The verdict, or {"ok": False, ...} when the worker died or hung."""
        self.proc.stdin.write(json.dumps(job).encode() + b"\n")
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(0.0, left))
            if not ready:
                self.proc.kill()
                self.proc.wait(timeout=30)
                return {
                    "ok": False,
                    "outcome": f"HANG (no verdict in {timeout:.0f} s)",
                    "detail": "",
                }
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                rc = self.proc.wait(timeout=30)
                what = f"signal {signal.Signals(-rc).name}" if rc < 0 else f"exit status {rc}"
                return {"ok": False, "outcome": f"CRASH: the reader died by {what}", "detail": ""}
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.alive():
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)


BASES = {
    # name: (page_size, sync_mode)
    "p4096-normal": (4096, "normal"),
    "p1024-full": (1024, "full"),
}


def make_bases(tmp_path_factory):
    """The base files, their states, and the pickle the worker loads."""
    root = tmp_path_factory.mktemp("corruption-bases")
    out = {}
    for i, (name, (page_size, mode)) in enumerate(BASES.items()):
        path = root / name
        states = build_base(str(path), page_size, mode, seed=1000 + i)
        data = (path / "toondb.data").read_bytes()
        t0, t1 = meta_txnids(data, page_size)
        # the setup this module relies on: the meta pages hold the last two
        # commits ("full"), or the same one (a sync point at close, "normal")
        assert abs(t0 - t1) == (1 if mode == "full" else 0), (name, t0, t1)
        keys = set(states["cur"]["kv"]) | set(states["prev"]["kv"])
        keys |= set(states["cur"]["tree"]) | set(states["prev"]["tree"])
        probe = sorted(keys) + [b"absent:%d" % j for j in range(20)] + [b"\xff" * 8]
        out[name] = {
            "layout": layout(data, page_size),
            "data": data,
            "page_size": page_size,
            "cfg": {"sync_mode": mode},
            "states": states,
            "probe": probe,
        }
    states_path = root / "states.pickle"
    with open(states_path, "wb") as f:
        pickle.dump({n: {"states": b["states"], "probe": b["probe"]} for n, b in out.items()}, f)
    return root, states_path, out


def run_jobs(
    tmp_path, bases, n_jobs: int, truncate_share: float, seed: int, forged_share: float = 0.0
) -> dict:
    root, states_path, base_info = bases
    rng = random.Random(seed)
    log = str(tmp_path / "worker.log")
    worker = Worker(str(states_path), log)
    failures = []
    outcomes: dict[str, int] = {}
    try:
        for j in range(n_jobs):
            name = sorted(base_info)[j % len(base_info)]
            info = base_info[name]
            r = rng.random()
            forged = truncate_share <= r < truncate_share + forged_share
            if forged:
                damaged, desc = forge(rng, info["data"], info["page_size"], info["layout"])
            else:
                damaged, desc = damage(
                    rng, info["data"], info["page_size"], truncate=r < truncate_share
                )
            if damaged == info["data"]:
                continue  # a flip that changed nothing (a copied run of identical bytes)
            d = tmp_path / f"job{j}"
            d.mkdir()
            (d / "toondb.data").write_bytes(damaged)
            job = {
                "path": str(d),
                "base": name,
                "cfg": info["cfg"],
                "ro": rng.random() < 0.3,
                "cands": []
                if forged
                else expected_states(info["data"], damaged, info["page_size"]),
                "exact": not forged,
            }
            verdict = worker.run(job, JOB_TIMEOUT)
            outcomes[verdict["outcome"]] = outcomes.get(verdict["outcome"], 0) + 1
            if not verdict["ok"]:
                failures.append(
                    f"job {j} [base={name} seed={seed} read_only={job['ro']}] {desc}: "
                    f"{verdict['outcome']} {verdict['detail']}"
                )
                if not worker.alive():
                    worker = Worker(str(states_path), log)
                continue
            for p in d.iterdir():
                p.unlink()
            d.rmdir()
    finally:
        worker.close()
    assert not failures, (
        f"{len(failures)} of {n_jobs} damaged files were mishandled (seed {seed}):\n"
        + "\n".join(failures[:15])
    )
    return outcomes


def _seed(default) -> int:
    """TOONDB_CORRUPTION_SEED=<int> or =random; else `default` (None: random).
    The default suite uses a fixed seed (main stays deterministic); the slow
    soak explores."""
    env = os.environ.get("TOONDB_CORRUPTION_SEED", "")
    if env and env != "random":
        return int(env)
    return random.randrange(2**32) if env == "random" or default is None else default


if __name__ != "__main__":

    @pytest.fixture(scope="module")
    def bases(tmp_path_factory):
        return make_bases(tmp_path_factory)

    @pytest.fixture
    def scratch(tmp_path):
        """A fresh directory on tmpfs when there is one (the full-mode base
        fsyncs on every job's write), else tmp_path. Failures reproduce from the
        seed, so nothing is kept."""
        if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
            d = Path(tempfile.mkdtemp(prefix="toondb-test-", dir="/dev/shm"))
            yield d
            shutil.rmtree(d, ignore_errors=True)
        else:
            yield tmp_path

    def test_random_damage(scratch, bases):
        """300 damaged files: ~190 random flips, runs and pages (exact data or
        CorruptionError), ~35 truncations, ~75 forged pages (no crash)."""
        seed = _seed(20261128)
        outcomes = run_jobs(
            scratch, bases, n_jobs=300, truncate_share=0.12, forged_share=0.25, seed=seed
        )
        # the damage must reach the data often enough to mean something
        intact = sum(v for k, v in outcomes.items() if k.startswith("read intact"))
        detected = outcomes.get("reads raised CorruptionError", 0)
        forged = sum(v for k, v in outcomes.items() if k.startswith("forged"))
        assert detected >= 30 and intact >= 30 and forged >= 40, f"seed {seed}: {outcomes}"

    @pytest.mark.slow
    @pytest.mark.timeout(3600)
    def test_random_damage_soak(scratch, bases):
        seed = _seed(None)
        run_jobs(scratch, bases, n_jobs=3000, truncate_share=0.1, forged_share=0.3, seed=seed)

    def test_older_meta_damage_reads_newest_state(tmp_path, bases):
        """Destroying the older meta page changes nothing; destroying the newer
        one opens the previous commit, exactly (the "normal" base was closed
        with a sync point, so its two meta pages are equal)."""
        root, states_path, base_info = bases
        worker = Worker(str(states_path), str(tmp_path / "worker.log"))
        try:
            for name, info in sorted(base_info.items()):
                ps, data = info["page_size"], info["data"]
                seen = []
                for slot in (0, 1):
                    # zero the used part of meta page `slot`: the other one decides
                    out = bytearray(data)
                    out[slot * ps : slot * ps + META_USED] = bytes(META_USED)
                    d = tmp_path / f"{name}-meta{slot}"
                    d.mkdir()
                    (d / "toondb.data").write_bytes(bytes(out))
                    (want,) = expected_states(data, bytes(out), ps)
                    seen.append(want)
                    job = {"path": str(d), "base": name, "cfg": info["cfg"], "ro": False}
                    verdict = worker.run(dict(job, cands=[want]), JOB_TIMEOUT)
                    assert verdict["outcome"] == f"read intact ({want})", (name, slot, verdict)
                t0, t1 = meta_txnids(data, ps)
                assert sorted(seen) == (["cur", "prev"] if t0 != t1 else ["cur", "cur"]), seen
        finally:
            worker.close()

    # -----------------------------------------------------------------------
    # Engine bugs found by this module: minimal reproductions. Each snippet runs
    # in a subprocess and prints OK when the engine behaves as promised.

    def _run(path, body: str) -> str:
        code = (
            "import sys\n"
            "from toondb import Database, CorruptionError, ToonDBError\n"
            "db_path = sys.argv[1]\n" + textwrap.dedent(body)
        )
        r = subprocess.run(
            [sys.executable, "-c", code, str(path)], capture_output=True, timeout=120, text=True
        )
        if r.returncode < 0:
            return f"the reader died by {signal.Signals(-r.returncode).name}"
        last = (r.stdout.strip().splitlines() or ["<no output>"])[-1]
        return last if r.returncode == 0 else f"{last} (exit {r.returncode}: {r.stderr[-400:]})"

    def _make(path, page_size=4096, **puts) -> bytearray:
        with Database.open(path, {"sync_mode": "full", "page_size": page_size}) as db:
            for k, v in puts.items():
                db.put(k.encode(), v)
        return bytearray((path / "toondb.data").read_bytes())

    def _cells(data, page_size) -> dict:
        """{key: (page, absolute cell offset, key length)} of every leaf cell."""
        lay = layout(bytes(data), page_size)
        out = {}
        for pg in lay["nodes"]:
            p = pg * page_size
            if data[p + 4] != 2:
                continue
            for i in range(_u16(data, p + 6)):
                c = p + _u16(data, p + 28 + 2 * i)
                klen = _u16(data, c)
                out[bytes(data[c + 6 : c + 6 + klen])] = (pg, c, klen)
        return out

    def _save(path, data) -> None:
        (path / "toondb.data").write_bytes(bytes(data))

    def _newest_meta(data, page_size) -> int:
        t0, t1 = meta_txnids(bytes(data), page_size)
        return 0 if t0 > t1 else 1

    READ_FAILS_OR_CORRUPTION = """
        try:
            db = Database.open(db_path)
            print("opened; the data reads as", sorted(db.scan(b""))[:2])
        except CorruptionError:
            print("OK")
    """

    def test_truncated_into_meta_page_1_reports_corruption(tmp_path):
        data = _make(tmp_path, **{f"k{i}": b"v" * 100 for i in range(100)})
        _save(tmp_path, data[:3000])
        assert _run(tmp_path, READ_FAILS_OR_CORRUPTION) == "OK"

    def test_truncated_to_zero_reports_corruption(tmp_path):
        _make(tmp_path, k=b"v")
        _save(tmp_path, b"")
        assert _run(tmp_path, READ_FAILS_OR_CORRUPTION) == "OK"

    @pytest.mark.parametrize("variant", ["wrong-data", "crash"])
    def test_pointer_into_a_verified_extent_reports_corruption(tmp_path, variant):
        ps = 4096
        big = bytearray(40_000)
        for k in range(1, 10):  # at the start of every interior page: "overflow, huge"
            big[k * ps - 24 + 4] = 3
            big[k * ps - 24 + 12 : k * ps - 24 + 16] = b"\xff\xff\xff\xff"
        data = _make(tmp_path, ps, big=bytes(big), victim=b"v" * 5000)
        cells = _cells(data, ps)
        pg, c, klen = cells[b"big"]
        big_start = _u32(data, c + 6 + klen)
        pg, c, klen = cells[b"victim"]
        # a leaf with a valid checksum whose overflow pointer names page 2 of big's extent
        _put(data, c + 6 + klen, big_start + 2, 4)
        if variant == "crash":
            _put(data, c + 2, 0x80000000 | 0x7FFFFFF0, 4)  # and a 2 GB value length
        seal(data, ps, pg)
        _save(tmp_path, data)
        outcome = _run(
            tmp_path,
            """
            db = Database.open(db_path)
            db.get(b"big")  # verifies big's extent: every one of its pages
            try:
                v = db.get(b"victim")
                print(f"victim read as {len(v)} bytes of another value")
            except CorruptionError:
                print("OK")
            """,
        )
        assert outcome == "OK"

    @pytest.mark.parametrize("variant", ["get", "get-in-a-write-transaction", "delete-then-commit"])
    def test_page_id_with_bit_31_reports_corruption(tmp_path, variant):
        ps = 4096
        data = _make(tmp_path, ps, victim=b"v" * 5000)
        pg, c, klen = _cells(data, ps)[b"victim"]
        _put(data, c + 6 + klen, 0x80000001, 4)  # its overflow extent "is" dirty page 1
        seal(data, ps, pg)
        _save(tmp_path, data)
        bodies = {
            "get": """
                db = Database.open(db_path)
                try:
                    db.get(b"victim")
                    print("read")
                except CorruptionError:
                    print("OK")
                except ToonDBError as e:
                    print(type(e).__name__, e)
            """,
            "get-in-a-write-transaction": """
                db = Database.open(db_path)
                try:
                    with db.transaction() as t:
                        t.put(b"new", b"N" * 5000)  # may already touch the damaged leaf
                        v = t.get(b"victim")
                        print("victim read as", v[:8], len(v))
                except CorruptionError:
                    print("OK")
                except ToonDBError as e:
                    print(type(e).__name__, e)
            """,
            "delete-then-commit": """
                db = Database.open(db_path)
                try:
                    with db.transaction() as t:
                        t.put(b"new", b"N" * 5000)
                        t.delete(b"victim")
                except CorruptionError:
                    print("OK")
                    sys.exit()
                try:
                    v = db.get(b"new")
                    print("OK" if v == b"N" * 5000 else f"new read back as {v[:8]!r}")
                except CorruptionError as e:
                    print("commit() returned, yet its value is unreadable:", e)
            """,
        }
        assert _run(tmp_path, bodies[variant]) == "OK"

    @pytest.mark.parametrize("where", ["meta page", "catalog"])
    def test_tree_of_depth_0_with_a_root_reports_corruption(tmp_path, where):
        ps = 4096
        with Database.open(tmp_path, {"sync_mode": "full", "page_size": ps}) as db:
            with db.transaction() as t:
                tr = t.tree(TREE, create=True)
                for i in range(300):
                    t.put(b"k%04d" % i, b"v" * 50)
                    tr.put(b"k%04d" % i, b"v" * 50)
        data = bytearray((tmp_path / "toondb.data").read_bytes())
        if where == "meta page":
            slot = _newest_meta(data, ps)
            _put(data, slot * ps + 52, 0, 2)  # key-value tree depth
            seal(data, ps, slot)
            read, write = "db.get(b'k0001')", "db.put(b'new', b'x')"
        else:
            pg, c, klen = _cells(data, ps)[TREE]
            _put(data, c + 6 + klen + 4, 0, 2)  # the descriptor's depth
            seal(data, ps, pg)
            read = "db.transaction(read_only=True).tree(b'sql:t').get(b'k0001')"
            write = "t = db.transaction(); t.tree(b'sql:t').put(b'new', b'x'); t.commit()"
        _save(tmp_path, data)
        body = f"""
            try:
                db = Database.open(db_path)  # a damaged meta page is caught here
                got = repr({read})
            except CorruptionError:
                got = "CorruptionError"
            else:
                try:
                    {write}
                except CorruptionError:
                    pass
            print("OK" if got == "CorruptionError" else f"an existing key read as {{got}}")
        """
        assert _run(tmp_path, body) == "OK"

    def test_transaction_id_at_its_maximum_reports_corruption(tmp_path):
        ps = 4096
        data = _make(tmp_path, ps, k=b"v")
        slot = _newest_meta(data, ps)
        _put(data, slot * ps + 24, 2**64 - 1, 8)
        seal(data, ps, slot)
        _save(tmp_path, data)
        body = """
            try:
                db = Database.open(db_path)
                db.put(b"new", b"x")
                v = db.get(b"new")
                print("OK" if v == b"x" else f"put() returned, then get() -> {v!r}")
            except CorruptionError:
                print("OK")
        """
        assert _run(tmp_path, body) == "OK"

    def test_page_count_past_map_size_reports_corruption(tmp_path):
        ps = 4096
        data = _make(tmp_path, ps, k=b"v")
        slot = _newest_meta(data, ps)
        _put(data, slot * ps + 32, 0x7FFFFFFF, 4)  # page count; the file has a handful
        seal(data, ps, slot)
        _save(tmp_path, data)
        body = """
            try:
                Database.open(db_path)
                print("opened")
            except CorruptionError:
                print("OK")
            except ToonDBError as e:
                print(type(e).__name__, e)
        """
        assert _run(tmp_path, body) == "OK"


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "worker":
        worker_main(sys.argv[2])
    else:
        sys.exit(f"usage: {sys.argv[0]} worker <states.pickle>")
