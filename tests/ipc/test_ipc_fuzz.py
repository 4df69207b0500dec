"""Fuzzing toondb-server with structure-aware frames (slow suite).

test_ipc_robustness fuzzes with random payloads; this target knows each request's
layout (docs/ipc-protocol.md) and mutates its fields one at a time toward their edges:
length fields at 0, exact, one short, one long, 2**31 and 2**32 - 1; scan flags,
limits and cursor ids (ids the server really handed out, closed ones, unknown ones);
transaction flags in every state; typed values built by a generator that knows the
tags (nesting to the depth limit and past it, bigints at the 4096-byte limit, counts
and lengths that run past the frame, invalid UTF-8, unhashable map keys); SQL text
and parameters; HELLO again; unknown opcodes. Frames go over three connections,
pipelined in batches, sometimes split into random pieces, sometimes with large values
(GETs of them exercise the reply buffer limit).

Asserted: every frame gets exactly one reply, in order, with a known status and (for
ERROR) a class the client can rebuild; only a frame with a bad length closes its
connection; the server stays up with bounded memory, logs no traceback and nothing
"unexpected" (an untyped error); afterwards the database passes check(deep=True).

Bounded by ``TOONDB_IPC_FUZZ_CASES`` (default 30,000 frames) and seeded
(``TOONDB_IPC_FUZZ_SEED``; random by default); the summary line says how many frames
ran and how they were answered.
"""

from __future__ import annotations

import os
import random
import struct
import threading
from collections import Counter

import pytest
from ipc_harness import ServerProcess, error_of, raw_connect, read_frame

from toondb import Database, IpcClient
from toondb.ipc import protocol as P
from toondb.ipc.protocol import ERROR_CLASSES

pytestmark = pytest.mark.slow

CASES = int(os.environ.get("TOONDB_IPC_FUZZ_CASES", "30000"))
MAX_FRAME = 2 << 20
EDGE_U32 = [0, 1, 2, 7, 255, 4096, 4097, 1 << 16, 1 << 31, (1 << 32) - 1]


class Values:
    """Typed values (the "Typed values" table of docs/ipc-protocol.md), valid or broken."""

    def __init__(self, rnd: random.Random) -> None:
        self.r = rnd

    def valid(self, depth: int = 0) -> object:
        r = self.r
        k = r.randrange(12 if depth < 6 else 8)
        if k == 0:
            return None
        if k == 1:
            return r.random() < 0.5
        if k == 2:
            return r.choice([0, -1, 1 << 62, -(1 << 63), (1 << 63) - 1, r.randrange(-99, 99)])
        if k == 3:
            return r.choice([1 << 63, -(1 << 63) - 1, 1 << 200, -(1 << 1000)])  # bigints
        if k == 4:
            return r.choice([0.0, -0.0, 1.5, float("inf"), float("nan"), 1e308])
        if k == 5:
            return r.choice(["", "x", "\ud800", "é" * r.randrange(0, 50), "SELECT 1"])
        if k in (6, 7):
            return r.randbytes(r.randrange(0, 40))
        if k in (8, 9):
            return [self.valid(depth + 1) for _ in range(r.randrange(0, 4))]
        return {
            r.choice(["a", "b", 1, None, 2.5, b"k"]): self.valid(depth + 1)
            for _ in range(r.randrange(0, 3))
        }

    def deep(self, levels: int) -> bytes:
        """A list nested `levels` deep (the limit is 32)."""
        return b"\x08\x01\x00\x00\x00" * levels + b"\x00"

    def broken(self) -> bytes:
        r = self.r
        k = r.randrange(9)
        if k == 0:
            return bytes([r.randrange(10, 256)])  # unknown tag
        if k == 1:
            return self.deep(r.choice([31, 32, 33, 40, 200]))
        if k == 2:  # a bigint at and past the 4096-byte limit
            n = r.choice([4096, 4097, 1 << 20])
            return b"\x04" + struct.pack("<I", n) + b"\x01" * min(n, 5000)
        if k == 3:  # a length that runs past the frame
            return bytes([r.choice([4, 6, 7])]) + struct.pack("<I", r.choice(EDGE_U32)) + b"ab"
        if k == 4:  # a count that runs past the frame
            return bytes([r.choice([8, 9])]) + struct.pack("<I", r.choice(EDGE_U32)) + b"\x00"
        if k == 5:
            return b"\x06\x02\x00\x00\x00\xff\xfe"  # invalid UTF-8
        if k == 6:
            return b"\x09\x01\x00\x00\x00\x08\x00\x00\x00\x00\x00"  # a map keyed by a list
        if k == 7:
            return P.encode_value(self.valid()) + r.randbytes(r.randrange(1, 4))  # stray bytes
        return P.encode_value(self.valid())[: r.randrange(0, 3)]  # truncated


SQL = [
    "SELECT ?",
    "SELECT :a, :b",
    "CREATE TABLE IF NOT EXISTS fz (k INTEGER PRIMARY KEY, v TEXT UNIQUE, n)",
    "CREATE INDEX IF NOT EXISTS fz_n ON fz (n)",
    "INSERT INTO fz (k, v, n) VALUES (?, ?, ?)",
    "INSERT OR REPLACE INTO fz VALUES (?, ?, ?)",
    "UPDATE fz SET n = ? WHERE k = ?",
    "DELETE FROM fz WHERE k > ?",
    "SELECT * FROM fz WHERE n = ? ORDER BY k LIMIT 5",
    "SELECT count(*), sum(n) FROM fz",
    "BEGIN",
    "BEGIN IMMEDIATE",
    "COMMIT",
    "ROLLBACK",
    "SELECT " + "(" * 20 + "1" + ")" * 20,  # deeper: test_ipc_limits (a known RecursionError)
    "SELECT zeroblob(?)",
    "SELEKT",
    "",
]


class Fuzzer:
    def __init__(self, rnd: random.Random) -> None:
        self.r = rnd
        self.values = Values(rnd)
        self.cursors: list[int] = []  # ids the server handed out (some since closed)

    def key(self) -> bytes:
        r = self.r
        k = r.randrange(10)
        if k == 0:
            return b""
        if k == 1:
            return b"k" * r.choice([992, 993, 5000])
        if k == 2:
            return b"big%d" % r.randrange(3)
        return b"key%d" % r.randrange(50)

    def u32(self, exact: int) -> int:
        """A length field: usually exact, else an edge."""
        r = self.r
        if r.random() < 0.7:
            return exact
        return r.choice([0, max(0, exact - 1), exact + 1, *EDGE_U32])

    def frame(self) -> bytes:
        r = self.r
        op = r.choice(
            [P.OP_GET, P.OP_PUT, P.OP_DELETE, P.OP_SCAN, P.OP_SCAN_NEXT, P.OP_SCAN_CLOSE,
             P.OP_BEGIN, P.OP_COMMIT, P.OP_ABORT, P.OP_SQL, P.OP_SQL, P.OP_SQL, P.OP_PING,
             P.OP_STATS, P.OP_CHECK, P.OP_CHECKPOINT, P.OP_HELLO, r.randrange(256)]
        )  # fmt: skip
        base = op
        if op in (P.OP_GET, P.OP_PUT, P.OP_DELETE, P.OP_SCAN, P.OP_SQL) and r.random() < 0.4:
            op |= P.TXN
        if base == P.OP_GET or base == P.OP_DELETE:
            return P.frame(op, self.key())
        if base == P.OP_PUT:
            key = self.key()
            size = r.choice([0, 1, 100, 3000, 70_000]) if r.random() < 0.95 else 600_000
            value = r.randbytes(min(size, 256)) * (size // 256 + 1)
            return P.frame(op, struct.pack("<I", self.u32(len(key))) + key + value[:size])
        if base == P.OP_SCAN:
            start = self.key()[:8]
            flags = r.randrange(8) if r.random() < 0.9 else r.randrange(256)
            limit = r.choice([0, 1, 2, 100, 4096, 4097, (1 << 32) - 1])
            end = self.key()[:8] if flags & P.SCAN_HAS_END else b""
            return P.frame(
                op, struct.pack("<BII", flags, limit, self.u32(len(start))) + start + end
            )
        if base == P.OP_SCAN_NEXT:
            cid = (
                r.choice(self.cursors) if self.cursors and r.random() < 0.8 else r.choice(EDGE_U32)
            )
            body = struct.pack("<II", cid, r.choice([0, 1, 3, 5000]))
            return P.frame(op, body if r.random() < 0.9 else body[: r.randrange(8)])
        if base == P.OP_SCAN_CLOSE:
            ids = [r.choice(self.cursors or [1]) for _ in range(r.randrange(0, 4))]
            body = b"".join(struct.pack("<I", i) for i in ids)
            return P.frame(op, body if r.random() < 0.9 else body + b"\x01")
        if base == P.OP_BEGIN:
            flags = r.choice([0, 1, 2, 3]) if r.random() < 0.9 else r.randrange(256)
            return P.frame(op, bytes([flags]) if r.random() < 0.95 else b"")
        if base == P.OP_SQL:
            if r.random() < 0.2:
                return P.frame(op, self.values.broken())
            sql = r.choice(SQL)
            nparams = sql.count("?") + sql.count(":")
            params = r.choice(
                [
                    None,
                    [self.values.valid() for _ in range(nparams)],
                    {"a": self.values.valid(), "b": 1},
                    [[r.randrange(-5, 5), f"v{r.randrange(9)}", None]] * r.randrange(1, 3),
                    self.values.valid(),
                ]
            )
            request = [sql, params, r.random() < 0.15]
            if r.random() < 0.1:
                request = r.choice([[sql], [sql, params], request + [1], {"sql": sql}])
            return P.frame(op, P.encode_value(request))
        if base == P.OP_HELLO:
            return P.frame(op, P.HELLO_HEAD.pack(P.MAGIC, 1, 1))
        return P.frame(op, r.randbytes(r.randrange(0, 16)))

    def bad_length(self) -> bytes:
        r = self.r
        n = r.choice([0, MAX_FRAME + 1, (1 << 32) - 1])
        return struct.pack("<IB", n, P.OP_PUT) + r.randbytes(r.randrange(0, 20))


def _send(rnd: random.Random, s, data: bytes) -> threading.Thread:
    """Send data from another thread (joined after the replies are read): with
    large replies the server stops reading until this client reads, so one thread
    that sent a big batch before reading would wait for itself."""
    pieces = [data]
    if rnd.random() < 0.2:  # in random pieces
        pieces, pos = [], 0
        while pos < len(data):
            n = rnd.randrange(1, 5000)
            pieces.append(data[pos : pos + n])
            pos += n

    def send() -> None:
        try:
            for piece in pieces:
                s.sendall(piece)
        except OSError:
            pass  # the reader sees the closed connection

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def test_fuzz_structured_frames(tmp_path):
    seed = int(os.environ.get("TOONDB_IPC_FUZZ_SEED", "0")) or random.randrange(1, 1 << 31)
    rnd = random.Random(seed)
    srv = ServerProcess(
        tmp_path / "db",
        "--lock-timeout", "0.05",
        "--max-frame-size", str(MAX_FRAME),
        "--max-cursors", "8",
        "--max-reply-buffer", str(1 << 20),
        "--idle-transaction-timeout", "0.2",
    ).start()  # fmt: skip
    statuses: Counter[str] = Counter()
    sent = closes = 0
    try:
        with IpcClient.connect(srv.socket_path) as client:
            for i in range(3):
                client.put(b"big%d" % i, rnd.randbytes(1 << 18) * 4)  # 1 MiB each
        base = srv.memory_kib()
        peak = base
        fuzz = Fuzzer(rnd)
        conns = [raw_connect(srv.socket_path, timeout=60) for _ in range(3)]
        while sent < CASES:
            c = rnd.randrange(len(conns))
            s = conns[c]
            batch = [fuzz.frame() for _ in range(rnd.randrange(1, 30))]
            fatal = rnd.random() < 0.01
            sender = _send(rnd, s, b"".join(batch) + (fuzz.bad_length() if fatal else b""))
            sent += len(batch)
            answers: list[tuple[int, bytes]] = []
            for request in batch:
                code, payload = read_frame(s)
                assert code in (P.ST_OK, P.ST_NIL, P.ST_ERROR), (
                    f"seed {seed}, frame {sent}: no reply to {request[:40]!r} (server exit "
                    f"status {srv.proc.poll()}); the batch's replies so far: {answers[-3:]!r}"
                )
                answers.append((code, payload[:200]))
                if code == P.ST_ERROR:
                    name, message = error_of(payload)
                    assert name in ERROR_CLASSES, (seed, name, message)
                    assert not message.startswith("a frame of"), (seed, sent, request[:60], message)
                    statuses[name] += 1
                else:
                    statuses["OK" if code == P.ST_OK else "NIL"] += 1
                    if request[4] & ~P.TXN == P.OP_SCAN and len(payload) >= 9:
                        done, cid, _count = P.BATCH_HEAD.unpack_from(payload)
                        if not done:
                            fuzz.cursors = (fuzz.cursors + [cid])[-20:]
            if fatal:
                sender.join(60)
                code, payload = read_frame(s)
                assert code == P.ST_ERROR and error_of(payload)[0] == "ProtocolError"
                assert read_frame(s) == (-1, b"")  # closed: only a bad length does that
                closes += 1
                s.close()
                conns[c] = raw_connect(srv.socket_path, timeout=60)
            sender.join(60)
            assert not sender.is_alive(), (seed, sent)
            if sent % 1000 < 30:
                peak = max(peak, srv.memory_kib())
        for s in conns:
            s.close()
        with IpcClient.connect(srv.socket_path) as client:
            client.put(b"canary", b"alive")
            assert client.get(b"canary") == b"alive"
        assert srv.alive()
        peak = max(peak, srv.memory_kib())
        assert peak - base < 256 * 1024, f"server memory grew by {(peak - base) / 1024:.0f} MiB"
    finally:
        code = srv.stop()
    log = srv.log()
    assert code == 0, log[-3000:]
    assert "Traceback" not in log and "unexpected" not in log, log[-3000:]
    with Database.open(tmp_path / "db") as db:
        db.check(deep=True)
    print(
        f"\nIPC fuzz: seed {seed}, {sent} frames, {closes} connections closed by bad lengths, "
        f"replies {dict(statuses.most_common())}"
    )
    assert sent >= CASES
