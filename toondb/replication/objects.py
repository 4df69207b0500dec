"""What a replica store holds: object names, the object format, batch frames and the
manifest. Every object carries its own checksums; a damaged one is reported as a
``CorruptionError`` naming it, never read as something else.

Names, under the URL's prefix::

    manifest                                          the newest position (JSON),
                                                      replaced after every upload
    generations/G/snapshots/T.snap                    the database as of transaction T
    generations/G/batches/B.batch                     the transactions after B, up to
                                                      the object's "last" (the next
                                                      batch is named by that)

G is 8 digits, T and B 20. A *generation* is one unbroken history: a snapshot, then
batches chained by name. A replicator starts a new one when it cannot continue the
old one exactly (the primary's change log no longer holds what it had not shipped:
every process closed the database, its host restarted, or it fell a whole ring
behind). Readers find the newest state by following names
from the manifest (a GET of a name derived from the last object read), never by
listing.

Object header (HEADER_SIZE = 96 bytes, little-endian), then the payload::

    offset  size  field
    0       8     magic b"toonrpl\\x00"
    8       4     CRC-32C of header bytes [12, 96)
    12      2     format version = 1
    14      1     kind: 1 snapshot, 2 batch, 3 manifest
    15      1     payload encoding: 1 zlib
    16      8     generation
    24      8     base: the transaction the object starts from (a batch: the state
                  its first change applies to; a snapshot: its own transaction)
    32      8     last: the transaction of the state after it
    40      8     commit time of the batch's first transaction (microseconds since
                  the Unix epoch; a snapshot: of its transaction)
    48      8     commit time of "last"
    56      4     transactions in the batch (0 for the other kinds)
    60      4     CRC-32C of the payload as stored
    64      8     payload length as stored
    72      8     payload length decoded
    80      16    lineage: random, drawn when the generation began
    96      ..    payload

Payloads, once decoded: a snapshot is the page file of a compact copy
(``copy_database``); a manifest is UTF-8 JSON; a batch is frames, in transaction
order, one per transaction (as toondb.storage.changes.frames gives them; a reader
accepts several, the last flagged)::

    0   8   transaction id
    8   8   commit time, microseconds since the Unix epoch
    16  4   flags: 1 = the transaction's last frame
    20  4   length of the records
    24  ..  change records (the format at the top of toondb/storage/_diff.pxi): the
            transaction's changes, as its commit logged them
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from toondb.errors import CorruptionError
from toondb.replication.store import spool
from toondb.storage._btree import _crc32c

__all__ = [
    "HEADER_SIZE",
    "SNAPSHOT",
    "BATCH",
    "MANIFEST",
    "Header",
    "Frame",
    "ObjectWriter",
    "read_object",
    "iter_frames",
    "snapshot_key",
    "batch_key",
    "generation_prefix",
    "parse_key",
    "Manifest",
    "MANIFEST_KEY",
]

MAGIC = b"toonrpl\x00"
VERSION = 1
HEADER_SIZE = 96
SNAPSHOT, BATCH, MANIFEST = 1, 2, 3
ZLIB = 1
FRAME_LAST = 1
MANIFEST_KEY = "manifest"
_KIND_NAMES = {SNAPSHOT: "snapshot", BATCH: "batch", MANIFEST: "manifest"}

_HEADER = struct.Struct("<8sIHBBQQQQQIIQQ16s")
_FRAME = struct.Struct("<QQII")  # the frame header, as changes.frames writes it
assert _HEADER.size == HEADER_SIZE and _FRAME.size == 24


def generation_prefix(generation: int) -> str:
    return f"generations/{generation:08d}/"


def snapshot_key(generation: int, txn: int) -> str:
    return f"{generation_prefix(generation)}snapshots/{txn:020d}.snap"


def batch_key(generation: int, base: int) -> str:
    return f"{generation_prefix(generation)}batches/{base:020d}.batch"


def parse_key(key: str) -> tuple[int, str, int] | None:
    """(generation, "snapshots" | "batches", transaction) of an object key, or None."""
    parts = key.split("/")
    if len(parts) != 4 or parts[0] != "generations" or parts[2] not in ("snapshots", "batches"):
        return None
    stem, _, ext = parts[3].partition(".")
    if ext not in ("snap", "batch") or not stem.isdigit() or not parts[1].isdigit():
        return None
    return int(parts[1]), parts[2], int(stem)


@dataclass
class Header:
    kind: int
    generation: int
    base: int
    last: int
    first_time_us: int = 0
    last_time_us: int = 0
    count: int = 0
    payload_crc: int = 0
    stored_len: int = 0
    raw_len: int = 0
    lineage: bytes = bytes(16)

    def pack(self) -> bytes:
        body = _HEADER.pack(
            MAGIC, 0, VERSION, self.kind, ZLIB, self.generation, self.base, self.last,
            self.first_time_us, self.last_time_us, self.count, self.payload_crc,
            self.stored_len, self.raw_len, self.lineage,
        )  # fmt: skip
        return body[:8] + struct.pack("<I", _crc32c(body[12:])) + body[12:]

    @classmethod
    def unpack(cls, data: bytes, name: str) -> Header:
        if len(data) < HEADER_SIZE:
            raise CorruptionError(f"replica object {name} is damaged: truncated header")
        fields = _HEADER.unpack_from(data)
        if fields[0] != MAGIC:
            raise CorruptionError(f"replica object {name} is damaged: not a toondb replica object")
        if fields[1] != _crc32c(data[12:HEADER_SIZE]):
            raise CorruptionError(f"replica object {name} is damaged: header checksum mismatch")
        if fields[2] != VERSION or fields[4] != ZLIB:
            raise CorruptionError(
                f"replica object {name} has format version {fields[2]}, encoding {fields[4]}: "
                "written by another toondb version"
            )
        return cls(*fields[3:4], *fields[5:])


class ObjectWriter:
    """Builds one object: the payload is compressed into a spool as it is written;
    ``finish`` gives the file (header + payload) to upload."""

    def __init__(self, header: Header, level: int = 1) -> None:
        self.header = header
        self.out = spool()
        self.out.write(bytes(HEADER_SIZE))
        self._z = zlib.compressobj(level)
        self._crc = 0
        self.raw_len = 0
        self.stored_len = 0

    def _emit(self, data: bytes) -> None:
        if data:
            self.out.write(data)
            self._crc = _crc32c(data, self._crc)
            self.stored_len += len(data)

    def write(self, data: bytes | memoryview) -> None:
        self.raw_len += len(data)
        self._emit(self._z.compress(data))

    def finish(self) -> IO[bytes]:
        self._emit(self._z.flush())
        h = self.header
        h.payload_crc, h.stored_len, h.raw_len = self._crc, self.stored_len, self.raw_len
        self.out.seek(0)
        self.out.write(h.pack())
        self.out.seek(0)
        return self.out


def read_object(f: IO[bytes], name: str, kind: int) -> Header:
    """Check an object's header and payload checksum (reading it through once);
    leaves f at the payload. CorruptionError naming the object when damaged."""
    f.seek(0)
    h = Header.unpack(f.read(HEADER_SIZE), name)
    if h.kind != kind:
        raise CorruptionError(
            f"replica object {name} is damaged: a {_KIND_NAMES.get(h.kind, h.kind)} "
            f"where a {_KIND_NAMES[kind]} belongs"
        )
    crc = 0
    n = 0
    while True:
        chunk = f.read(1 << 20)
        if not chunk:
            break
        crc = _crc32c(chunk, crc)
        n += len(chunk)
    if n != h.stored_len or crc != h.payload_crc:
        raise CorruptionError(
            f"replica object {name} is damaged: its payload is {n} bytes with checksum "
            f"{crc:08x}, its header says {h.stored_len} bytes with {h.payload_crc:08x}"
        )
    f.seek(HEADER_SIZE)
    return h


def iter_payload(f: IO[bytes], h: Header, name: str, chunk: int = 1 << 20) -> Iterator[bytes]:
    """The decoded payload of a checked object (f at the payload), in pieces."""
    z = zlib.decompressobj()
    total = 0
    try:
        while True:
            data = f.read(chunk)
            if not data:
                break
            out = z.decompress(data)
            total += len(out)
            if out:
                yield out
        out = z.flush()
    except zlib.error as e:
        raise CorruptionError(f"replica object {name} is damaged: {e}") from None
    total += len(out)
    if out:
        yield out
    if total != h.raw_len or not z.eof:
        raise CorruptionError(
            f"replica object {name} is damaged: {total} bytes decoded, {h.raw_len} expected"
        )


@dataclass
class Frame:
    txn: int
    time_us: int
    last: bool
    records: bytes


def iter_frames(f: IO[bytes], h: Header, name: str) -> Iterator[Frame]:
    """The frames of a checked batch (f at the payload)."""
    buf = bytearray()
    at = 0
    for piece in iter_payload(f, h, name):
        buf += piece
        while True:
            if len(buf) - at < 24:
                break
            txn, time_us, flags, n = _FRAME.unpack_from(buf, at)
            if len(buf) - at < 24 + n:
                break
            yield Frame(txn, time_us, bool(flags & FRAME_LAST), bytes(buf[at + 24 : at + 24 + n]))
            at += 24 + n
        if at > (1 << 20):
            del buf[:at]
            at = 0
    if at != len(buf):
        raise CorruptionError(f"replica object {name} is damaged: a truncated frame")


@dataclass
class Manifest:
    """The newest position of a store, and the snapshots of each generation. Written
    by the replicator after every upload (and as a heartbeat); a hint for readers,
    who follow batch names from it to the true end."""

    lineage: str
    generation: int
    last_txn: int
    last_time: float
    primary_txn: int = 0
    updated: float = 0.0
    interval: float = 1.0
    generations: list[dict[str, Any]] = field(default_factory=list)

    def generation_info(self, generation: int) -> dict[str, Any] | None:
        for g in self.generations:
            if g["generation"] == generation:
                return g
        return None

    def encode(self) -> IO[bytes]:
        body = json.dumps(self.__dict__, sort_keys=True).encode()
        w = ObjectWriter(
            Header(MANIFEST, self.generation, self.last_txn, self.last_txn,
                   lineage=bytes.fromhex(self.lineage))
        )  # fmt: skip
        w.write(body)
        return w.finish()

    @classmethod
    def decode(cls, f: IO[bytes]) -> Manifest:
        h = read_object(f, MANIFEST_KEY, MANIFEST)
        data = b"".join(iter_payload(f, h, MANIFEST_KEY))
        try:
            return cls(**json.loads(data))
        except (ValueError, TypeError) as e:
            raise CorruptionError(f"replica object {MANIFEST_KEY} is damaged: {e}") from None
