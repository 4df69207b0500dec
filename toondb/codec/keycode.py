"""Order-preserving key encoding: the B+tree's memcmp order is the SQL order.

Keys of a table tree and of an index tree (byte offsets)::

    table row key      0  8  rowid + 2**63, big-endian (the sign bit flipped)

    index entry key    encoded column values, one after another, then the 8-byte
                       rowid key (so equal values stay distinct and in rowid order)

    one encoded value  0  1  class tag: 0x05 NULL, 0x10 number, 0x20 text, 0x30 blob
                       NULL: nothing more
                       number: 1  8  the value as an IEEE double, sign bit flipped
                                     when positive, every bit flipped when negative
                               9  1  0x80 when the double is the exact value; an
                                     integer that a double cannot hold exactly gets
                                     0x7F (below the double) or 0x81 (above), then
                                     8 bytes: the difference + 2**63, big-endian
                       text, blob: the bytes (UTF-8 for text) with every 0x00
                               written as 0x00 0xFF, then the terminator 0x00 0x01

Invariants (numbered; the tests check them on random values):

1. For values a, b: compare(a, b) < 0  <=>  encode(a) < encode(b) by memcmp, and
   compare(a, b) == 0  <=>  encode(a) == encode(b) (so 1 and 1.0 are one key,
   as SQLite's UNIQUE treats them).
2. No encoded value is a proper prefix of another: a tuple's encoding is the
   concatenation of its values' encodings, ordered column by column.
3. Integers and reals interleave by value (NULL < numbers < text < blob), which
   is SQLite's cross-type order.
"""

from __future__ import annotations

import struct
from typing import Any

from toondb.errors import RowFormatError
from toondb.storage.keyspace import prefix_end

__all__ = [
    "ROWID_BIAS",
    "rowid_key",
    "key_rowid",
    "encode_value",
    "encode_values",
    "prefix_end",
    "NULL_KEY",
]

ROWID_BIAS = 1 << 63
TAG_NULL, TAG_NUM, TAG_TEXT, TAG_BLOB = 0x05, 0x10, 0x20, 0x30
NULL_KEY = bytes([TAG_NULL])

_pack_d = struct.Struct(">d").pack
_pack_Q = struct.Struct(">Q").pack
_unpack_Q = struct.Struct(">Q").unpack
_M64 = (1 << 64) - 1
_EXACT = b"\x80"


def rowid_key(rowid: int) -> bytes:
    """The 8-byte key of a row: rowid with its sign bit flipped, big-endian."""
    return _pack_Q(rowid + ROWID_BIAS)


def key_rowid(key: bytes) -> int:
    """The rowid of an 8-byte row key (RowFormatError for anything else)."""
    if len(key) != 8:
        raise RowFormatError(f"a rowid key is 8 bytes, not {len(key)}")
    biased: int = _unpack_Q(key)[0]
    return biased - ROWID_BIAS


def _double(f: float) -> bytes:
    u = _unpack_Q(_pack_d(f + 0.0))[0]  # + 0.0 turns -0.0 into 0.0
    return _pack_Q(u ^ _M64 if u >> 63 else u | ROWID_BIAS)


def encode_value(v: Any) -> bytes:
    t = type(v)
    if t is int:
        f = float(v)
        if -9007199254740992 <= v <= 9007199254740992:
            return b"\x10" + _double(f) + _EXACT
        d = v - int(f)
        if d == 0:
            return b"\x10" + _double(f) + _EXACT
        return b"\x10" + _double(f) + (b"\x7f" if d < 0 else b"\x81") + _pack_Q(d + ROWID_BIAS)
    if t is float:
        if v != v:
            return NULL_KEY
        return b"\x10" + _double(v) + _EXACT
    if v is None:
        return NULL_KEY
    if t is str:
        text: str = v
        return (
            b"\x20"
            + text.encode("utf-8", "surrogatepass").replace(b"\x00", b"\x00\xff")
            + b"\x00\x01"
        )
    if t is bool:
        return encode_value(int(v))
    return b"\x30" + bytes(v).replace(b"\x00", b"\x00\xff") + b"\x00\x01"


def encode_values(values: Any) -> bytes:
    return b"".join([encode_value(v) for v in values])


def py_encode_values(values: Any) -> bytes:
    return b"".join([encode_value(v) for v in values])


try:  # the same encoding in C (toondb/codec/_rowcodec.pyx), when the extension is built
    from toondb.codec._rowcodec import encode_key as encode_values  # noqa: F811
    from toondb.codec._rowcodec import set_fallback_encoder

    set_fallback_encoder(encode_value)
except ImportError:  # pragma: no cover
    pass
