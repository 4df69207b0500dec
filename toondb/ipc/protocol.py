"""The toondb IPC wire protocol: frames, opcodes, typed values and error frames.

docs/ipc-protocol.md is the specification; this module is its one implementation,
shared by the server and the client. Nothing here unpickles or evaluates: every
byte a peer sends is parsed by ``struct`` and bounds-checked against the frame it
came in, and a frame that does not parse raises ``ProtocolError``.

Frame (every message, both directions; little-endian)::

    offset  size  field
    0       4     n: length of what follows (code + payload), 1 <= n <= max frame
    4       1     code: an opcode (requests) or a status (replies)
    5       n-1   payload, laid out per opcode

A connection starts with one HELLO request, answered by OK (the server's info as
a typed map) or ERROR (then the server closes). After that every request gets
exactly one reply, in order; a client may pipeline.

Invariant: nothing in a payload is trusted. A length field is checked against the
bytes left in its frame before it is used, a typed value's nesting depth is
capped, and a count can never make the decoder allocate more than the frame holds.
"""

from __future__ import annotations

import os
import struct
from typing import Any

from toondb import errors

__all__ = [
    "MAGIC",
    "VERSION",
    "DEFAULT_MAX_FRAME",
    "encode_value",
    "decode_value",
    "error_payload",
    "exception_from_error",
]

MAGIC = b"\x89TDB\r\n\x1a\n"  # PNG-style: catches text-mode mangling and wrong peers
VERSION = 1
DEFAULT_MAX_FRAME = 8 << 20  # bytes of code + payload the server accepts in one request

# ---- request opcodes ---------------------------------------------------------------
OP_HELLO = 0x01  # MAGIC | u16 min version | u16 max version | client name (utf-8)
OP_PING = 0x02  # (empty)
OP_GET = 0x10  # key
OP_PUT = 0x11  # u32 key length | key | value
OP_DELETE = 0x12  # key
OP_SCAN = 0x13  # u8 flags | u32 limit | u32 start length | start | end (iff SCAN_HAS_END)
OP_SCAN_NEXT = 0x14  # u32 cursor | u32 limit
OP_SCAN_CLOSE = 0x15  # u32 cursor, repeated
OP_BEGIN = 0x20  # u8 flags: BEGIN_READ_ONLY, BEGIN_IMMEDIATE
OP_COMMIT = 0x21  # (empty)
OP_ABORT = 0x22  # (empty)
OP_CHECKPOINT = 0x30  # (empty)
OP_STATS = 0x31  # (empty)
OP_CHECK = 0x32  # (empty)
OP_SQL = 0x40  # typed list [sql text, params (None, list or map), many (bool, or "script")]
# GET, PUT, DELETE, SCAN and SQL with this bit set act in the connection's transaction
TXN = 0x80

SCAN_REVERSE = 0x01
SCAN_HAS_END = 0x02
SCAN_ONE_SHOT = 0x04  # return the first batch and keep no cursor

BEGIN_READ_ONLY = 0x01
BEGIN_IMMEDIATE = 0x02

# ---- reply statuses ----------------------------------------------------------------
ST_OK = 0x00  # payload per opcode
ST_NIL = 0x01  # GET: no such key
ST_ERROR = 0x02  # u8 class-name length | class name (ascii) | message (utf-8)

# scan batch: u8 done | u32 cursor (0 when done) | u32 count | count x (u32 klen | u32 vlen | key | value)
BATCH_HEAD = struct.Struct("<BII")
ITEM_HEAD = struct.Struct("<II")
HEADER = struct.Struct("<IB")
U16 = struct.Struct("<H")
U32 = struct.Struct("<I")
U64 = struct.Struct("<Q")
I64 = struct.Struct("<q")
F64 = struct.Struct("<d")
HELLO_HEAD = struct.Struct("<8sHH")
SCAN_HEAD = struct.Struct("<BII")
SCAN_NEXT_BODY = struct.Struct("<II")

MAX_BATCH = 4096  # items per scan batch
BATCH_BYTES = 256 << 10  # a batch stops growing once it holds this many bytes


def unix_address(path: str) -> tuple[str, int | None]:
    """An address bind()/connect() accept for path. A path longer than a Unix
    socket address can hold (107 bytes) is reached through /proc/self/fd of its
    directory; the caller closes the returned directory fd afterwards."""
    if len(os.fsencode(path)) < 100:
        return path, None
    fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY | os.O_DIRECTORY)
    return f"/proc/self/fd/{fd}/{os.path.basename(path)}", fd


def frame(code: int, payload: bytes = b"") -> bytes:
    """One frame: header and payload in one buffer (one sendall per message)."""
    return HEADER.pack(len(payload) + 1, code) + payload


# ---- typed values ----------------------------------------------------------------------
#
# tag  value
# 0    None
# 1    False
# 2    True
# 3    int in [-2**63, 2**63): i64
# 4    any other int: u32 n | n bytes two's complement, little-endian
# 5    float: f64
# 6    str: u32 n | n bytes UTF-8 (lone surrogates pass through)
# 7    bytes: u32 n | n bytes
# 8    list (or tuple): u32 count | count values
# 9    map: u32 count | count x (key value)
# 10   vector (a 1-D NumPy array, as SQL's VECTOR(n) values): u32 n | n x f32 little-endian
#      (any real dtype is sent as float32; decoded as a NumPy float32 array)

T_NONE, T_FALSE, T_TRUE, T_INT, T_BIGINT, T_FLOAT, T_STR, T_BYTES, T_LIST, T_MAP = range(10)
T_VECTOR = 10
MAX_DEPTH = 32


def encode_value(value: Any) -> bytes:
    """value as a typed value; TypeError for anything but None, bool, int, float,
    str, bytes-like, list/tuple and dict of those."""
    out: list[bytes] = []
    _encode(value, out, 0)
    return b"".join(out)


def _encode(value: Any, out: list[bytes], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"a value nested deeper than {MAX_DEPTH} levels cannot be sent")
    if value is None:
        out.append(b"\x00")
    elif value is False:
        out.append(b"\x01")
    elif value is True:
        out.append(b"\x02")
    elif isinstance(value, int):
        if -(1 << 63) <= value < (1 << 63):
            out.append(b"\x03" + I64.pack(value))
        else:
            raw = int(value).to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
            out.append(b"\x04" + U32.pack(len(raw)) + raw)
    elif isinstance(value, float):
        out.append(b"\x05" + F64.pack(value))
    elif isinstance(value, str):
        raw = value.encode("utf-8", "surrogatepass")
        out.append(b"\x06" + U32.pack(len(raw)) + raw)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        out.append(b"\x07" + U32.pack(len(raw)) + raw)
    elif isinstance(value, (list, tuple)):
        out.append(b"\x08" + U32.pack(len(value)))
        for item in value:
            _encode(item, out, depth + 1)
    elif isinstance(value, dict):
        out.append(b"\x09" + U32.pack(len(value)))
        for key, item in value.items():
            _encode(key, out, depth + 1)
            _encode(item, out, depth + 1)
    elif type(value).__module__ == "numpy":
        _encode_numpy(value, out, depth)
    else:
        raise TypeError(
            f"a {type(value).__name__} cannot be sent to a toondb server; values are "
            "None, bool, int, float, str, bytes, 1-D NumPy arrays (vectors), and lists "
            "and dicts of them"
        )


def _encode_numpy(value: Any, out: list[bytes], depth: int) -> None:
    import numpy as np

    if isinstance(value, np.generic) and type(value.item()) in (bool, int, float):
        _encode(value.item(), out, depth)
        return
    if (
        not isinstance(value, np.ndarray)
        or value.ndim != 1
        or value.dtype == np.bool_
        or value.dtype.kind not in "fiu"
    ):
        raise TypeError(
            f"a NumPy {type(value).__name__} of {getattr(value, 'shape', '?')} "
            "cannot be sent: a vector is a 1-D array of real numbers"
        )
    with np.errstate(over="ignore", invalid="ignore"):
        raw = np.ascontiguousarray(value, dtype="<f4").tobytes()
    out.append(b"\x0a" + U32.pack(len(raw) // 4) + raw)


def decode_value(buf: bytes | bytearray | memoryview, pos: int = 0, end: int | None = None) -> Any:
    """The typed value at buf[pos:end], which it must fill exactly (ProtocolError if not)."""
    if end is None:
        end = len(buf)
    value, pos = _decode(buf, pos, end, 0)
    if pos != end:
        raise errors.ProtocolError(f"{end - pos} stray bytes after a typed value")
    return value


def _need(pos: int, n: int, end: int) -> None:
    if n > end - pos:
        raise errors.ProtocolError("a typed value runs past the end of its frame")


def _decode(buf: Any, pos: int, end: int, depth: int) -> tuple[Any, int]:
    if depth > MAX_DEPTH:
        raise errors.ProtocolError(f"typed value nested deeper than {MAX_DEPTH} levels")
    _need(pos, 1, end)
    tag = buf[pos]
    pos += 1
    if tag == T_NONE:
        return None, pos
    if tag == T_FALSE:
        return False, pos
    if tag == T_TRUE:
        return True, pos
    if tag == T_INT:
        _need(pos, 8, end)
        return I64.unpack_from(buf, pos)[0], pos + 8
    if tag == T_FLOAT:
        _need(pos, 8, end)
        return F64.unpack_from(buf, pos)[0], pos + 8
    if tag in (T_BIGINT, T_STR, T_BYTES):
        _need(pos, 4, end)
        n = U32.unpack_from(buf, pos)[0]
        pos += 4
        _need(pos, n, end)
        raw = bytes(buf[pos : pos + n])
        pos += n
        if tag == T_BYTES:
            return raw, pos
        if tag == T_STR:
            try:
                return raw.decode("utf-8", "surrogatepass"), pos
            except UnicodeDecodeError as exc:
                raise errors.ProtocolError(f"a str value is not UTF-8: {exc}") from None
        if n > 4096:
            raise errors.ProtocolError("an integer value longer than 4096 bytes")
        return int.from_bytes(raw, "little", signed=True), pos
    if tag == T_VECTOR:
        _need(pos, 4, end)
        n = U32.unpack_from(buf, pos)[0]
        pos += 4
        _need(pos, 4 * n, end)
        import numpy as np

        vec = np.frombuffer(bytes(buf[pos : pos + 4 * n]), dtype="<f4").astype(np.float32)
        return vec, pos + 4 * n
    if tag == T_LIST or tag == T_MAP:
        _need(pos, 4, end)
        count = U32.unpack_from(buf, pos)[0]
        pos += 4
        # every item takes at least one byte: a hostile count cannot outgrow the frame
        _need(pos, count * (2 if tag == T_MAP else 1), end)
        if tag == T_LIST:
            items = []
            for _ in range(count):
                item, pos = _decode(buf, pos, end, depth + 1)
                items.append(item)
            return items, pos
        mapping = {}
        for _ in range(count):
            key, pos = _decode(buf, pos, end, depth + 1)
            item, pos = _decode(buf, pos, end, depth + 1)
            try:
                mapping[key] = item
            except TypeError:
                raise errors.ProtocolError("a map key that is a list or a map") from None
        return mapping, pos
    raise errors.ProtocolError(f"unknown typed-value tag {tag}")


# ---- error frames ------------------------------------------------------------------
#
# An error crosses the wire as its class name and message. The client raises the
# toondb.errors class of that name (or ValueError, TypeError, KeyError); any other
# name becomes ToonDBError. Nothing else about the exception is sent or rebuilt.

_BUILTIN_ERRORS: dict[str, type[Exception]] = {
    "ValueError": ValueError,
    "TypeError": TypeError,
    "KeyError": KeyError,
}
ERROR_CLASSES: dict[str, type[Exception]] = {
    **{name: getattr(errors, name) for name in errors.__all__},
    **_BUILTIN_ERRORS,
}


def _wire_class(exc: BaseException) -> str:
    """The nearest class of exc (itself or an ancestor) that the client can rebuild."""
    for cls in type(exc).__mro__:
        if ERROR_CLASSES.get(cls.__name__) is cls:
            return cls.__name__
    return "ToonDBError"


def error_payload(exc: BaseException, message: str | None = None) -> bytes:
    """The payload of an ERROR reply describing exc."""
    name = _wire_class(exc).encode("ascii")
    if message is None:
        args = exc.args
        message = args[0] if len(args) == 1 and isinstance(args[0], str) else str(exc)
        if name not in (b"ValueError", b"TypeError", b"KeyError") and not isinstance(
            exc, errors.ToonDBError
        ):
            message = f"{type(exc).__name__}: {message}"
    return bytes([len(name)]) + name + message.encode("utf-8", "surrogatepass")


def error_frame(exc: BaseException, message: str | None = None) -> bytes:
    return frame(ST_ERROR, error_payload(exc, message))


def exception_from_error(payload: bytes | bytearray | memoryview) -> Exception:
    """The exception an ERROR reply's payload describes (never raises itself)."""
    if not payload or payload[0] + 1 > len(payload):
        return errors.ProtocolError("a malformed error frame")
    n = payload[0]
    name = bytes(payload[1 : 1 + n]).decode("ascii", "replace")
    message = bytes(payload[1 + n :]).decode("utf-8", "replace")
    cls = ERROR_CLASSES.get(name, errors.ToonDBError)
    return cls(message)
