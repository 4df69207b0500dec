"""The binary row format of SQL tables (the value of each table-tree entry).

Row (byte offsets)::

    0   varint  number of values n (a row written before ALTER TABLE ADD COLUMN
                has fewer values than the table has columns: the rest are the
                columns' defaults)
    ..  n values, each a tag byte and its payload:

        tag  payload                     value
        0    -                           NULL
        1    -                           integer 0
        2    -                           integer 1
        3    1 byte, two's complement    integer in [-128, 127]
        4    2 bytes, little-endian      integer in 16 bits
        5    4 bytes, little-endian      integer in 32 bits
        6    8 bytes, little-endian      integer in 64 bits
        7    8 bytes, IEEE-754 LE        real
        8    varint length, UTF-8        text
        9    varint length, bytes        blob

Varints are unsigned LEB128 (7 bits a byte, low first). The rowid is not in the
row: it is the table key (``keycode.rowid_key``, 8 bytes).

A row or key that does not decode (truncated, a bad tag, text that is not UTF-8,
a table key that is not 8 bytes) raises ``RowFormatError``, a ``CorruptionError``,
in C and in Python alike.

The functions come from the C extension ``toondb.codec._rowcodec`` when it is built,
else from the Python versions below (same format, same results).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from toondb.errors import RowFormatError

__all__ = ["decode_row", "decode_values", "encode_row", "decode_scan", "NATIVE"]

_unpack_Q = struct.Struct(">Q").unpack
_pack_d = struct.Struct("<d").pack
_unpack_d = struct.Struct("<d").unpack_from
_INT_FORMATS = {3: ("<b", 1), 4: ("<h", 2), 5: ("<i", 4), 6: ("<q", 8)}


def _varint(v: int) -> bytes:
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    v = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise RowFormatError("truncated row")
        b = data[pos]
        pos += 1
        v |= (b & 0x7F) << shift
        if b < 0x80:
            return v, pos
        shift += 7


def py_encode_row(values: Sequence[Any]) -> bytes:
    out = [_varint(len(values))]
    for v in values:
        t = type(v)
        if v is None:
            out.append(b"\x00")
        elif t is int or t is bool:
            v = int(v)
            if v == 0:
                out.append(b"\x01")
            elif v == 1:
                out.append(b"\x02")
            elif -128 <= v <= 127:
                out.append(b"\x03" + struct.pack("<b", v))
            elif -32768 <= v <= 32767:
                out.append(b"\x04" + struct.pack("<h", v))
            elif -(1 << 31) <= v < (1 << 31):
                out.append(b"\x05" + struct.pack("<i", v))
            else:
                out.append(b"\x06" + struct.pack("<q", v))
        elif t is float:
            out.append(b"\x07" + _pack_d(v))
        elif t is str:
            b = v.encode("utf-8", "surrogatepass")
            out.append(b"\x08" + _varint(len(b)) + b)
        elif isinstance(v, (bytes, bytearray, memoryview)):
            b = bytes(v)
            out.append(b"\x09" + _varint(len(b)) + b)
        else:
            raise TypeError(f"cannot store a {t.__name__} in a row")
    return b"".join(out)


def _decode(data: bytes, pos: int) -> tuple[Any, int]:
    if pos >= len(data):
        raise RowFormatError("truncated row")
    tag = data[pos]
    pos += 1
    if tag == 0:
        return None, pos
    if tag == 1:
        return 0, pos
    if tag == 2:
        return 1, pos
    if tag in _INT_FORMATS:
        fmt, n = _INT_FORMATS[tag]
        if pos + n > len(data):
            raise RowFormatError("truncated row")
        return struct.unpack_from(fmt, data, pos)[0], pos + n
    if tag == 7:
        if pos + 8 > len(data):
            raise RowFormatError("truncated row")
        return _unpack_d(data, pos)[0], pos + 8
    if tag != 8 and tag != 9:
        raise RowFormatError(f"bad value tag {tag}")
    n, pos = _read_varint(data, pos)
    if n > len(data) - pos:
        raise RowFormatError("truncated row")
    raw = data[pos : pos + n]
    if tag == 9:
        return bytes(raw), pos + n
    try:
        return raw.decode("utf-8", "surrogatepass"), pos + n
    except UnicodeDecodeError:
        raise RowFormatError("a text value is not UTF-8") from None


def py_decode_values(data: bytes) -> tuple[Any, ...]:
    n, pos = _read_varint(data, 0)
    if n > len(data):
        raise RowFormatError("bad column count")
    out = []
    for _ in range(n):
        v, pos = _decode(data, pos)
        out.append(v)
    return tuple(out)


def py_decode_row(data: bytes, defaults: tuple[Any, ...], key: Any) -> tuple[Any, ...]:
    """The row's values padded with defaults (values past len(defaults) are not
    read, as in C), then the rowid of its 8-byte table key."""
    ncols, pos = _read_varint(data, 0)
    out = []
    for j in range(len(defaults)):
        if j < ncols:
            v, pos = _decode(data, pos)
        else:
            v = defaults[j]
        out.append(v)
    if type(key) is bytes:
        if len(key) != 8:
            raise RowFormatError(f"a table key is 8 bytes, not {len(key)}")
        out.append(_unpack_Q(key)[0] - (1 << 63))
    else:
        out.append(key)
    return tuple(out)


def py_decode_scan(
    it: Any, defaults: tuple[Any, ...], filter: Any = None
) -> Iterator[tuple[Any, ...]]:
    """Decoded rows of a tree scan's (key, value) pairs; with a filter
    (column, op, number, pred), only the rows pred accepts (the C version
    decides most rows from the one column without building them)."""
    pred = filter[3] if filter is not None else None
    for k, v in it:
        row = py_decode_row(v, defaults, k)
        if pred is None or pred(row):
            yield row


decode_scan: Callable[..., Iterator[tuple[Any, ...]]]
try:
    from toondb.codec._rowcodec import DecodeScan as _DecodeScan
    from toondb.codec._rowcodec import decode_row, decode_values, encode_row

    decode_scan = _DecodeScan
    NATIVE = True
except ImportError:  # the extension is not built: the same format in Python
    decode_row, decode_values, encode_row = py_decode_row, py_decode_values, py_encode_row
    decode_scan = py_decode_scan
    NATIVE = False
