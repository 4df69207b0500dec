"""The request handlers of toondb-server and the opcode table that names them.

A handler is ``handler(session, buf, start, end) -> reply frame``: ``buf[start:end]`` is
the request's payload (after the opcode byte). Every length is checked before use
(invariant 2 of toondb.ipc.server); an error is raised as a toondb exception, and the
session turns it into an ERROR reply. ``register_handler`` adds an opcode (see "Adding
an opcode" in docs/ipc-protocol.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from toondb import errors
from toondb.ipc import protocol as P

if TYPE_CHECKING:
    from toondb.ipc.session import Session

__all__ = ["HANDLERS", "Handler", "register_handler"]

Handler = Callable[["Session", Any, int, int], bytes]

_OK = P.frame(P.ST_OK)
_NIL = P.frame(P.ST_NIL)
_HEADER = P.HEADER.pack
_U32 = P.U32.unpack_from


def _h_unknown(s: Session, buf: Any, a: int, b: int) -> bytes:
    raise errors.ProtocolError(f"unknown opcode 0x{buf[a - 1]:02x}")


def _h_hello(s: Session, buf: Any, a: int, b: int) -> bytes:
    raise errors.ProtocolError("HELLO was already received on this connection")


def _h_ping(s: Session, buf: Any, a: int, b: int) -> bytes:
    return _OK


def _h_get(s: Session, buf: Any, a: int, b: int) -> bytes:
    value: bytes | None = s.db.get(buf[a:b])
    if value is None:
        return _NIL
    return _HEADER(len(value) + 1, 0) + value


def _h_tget(s: Session, buf: Any, a: int, b: int) -> bytes:
    value: bytes | None = s.txn_or_fail().get(buf[a:b])
    if value is None:
        return _NIL
    return _HEADER(len(value) + 1, 0) + value


def _split_put(buf: Any, a: int, b: int) -> tuple[Any, Any]:
    if b - a < 4:
        raise errors.ProtocolError("a PUT payload shorter than its key-length field")
    k = a + 4 + _U32(buf, a)[0]
    if k > b:
        raise errors.ProtocolError("a PUT key length that runs past the end of the frame")
    return buf[a + 4 : k], buf[k:b]


def _h_put(s: Session, buf: Any, a: int, b: int) -> bytes:
    key, value = _split_put(buf, a, b)
    if s.immediate:
        s.no_lock_held()
    s.db.put(key, value)
    return _OK


def _h_tput(s: Session, buf: Any, a: int, b: int) -> bytes:
    key, value = _split_put(buf, a, b)
    txn = s.txn_or_fail()
    try:
        txn.put(key, value)
    finally:
        if txn.closed:
            s.end_txn(abort=False)
    return _OK


_DELETED = (P.frame(P.ST_OK, b"\x00"), P.frame(P.ST_OK, b"\x01"))


def _h_delete(s: Session, buf: Any, a: int, b: int) -> bytes:
    if s.immediate:
        s.no_lock_held()
    return _DELETED[s.db.delete(buf[a:b])]


def _h_tdelete(s: Session, buf: Any, a: int, b: int) -> bytes:
    txn = s.txn_or_fail()
    try:
        return _DELETED[txn.delete(buf[a:b])]
    finally:
        if txn.closed:
            s.end_txn(abort=False)


def _scan(s: Session, buf: Any, a: int, b: int, in_txn: bool) -> bytes:
    if b - a < P.SCAN_HEAD.size:
        raise errors.ProtocolError("a SCAN payload shorter than its header")
    flags, limit, slen = P.SCAN_HEAD.unpack_from(buf, a)
    k = a + P.SCAN_HEAD.size + slen
    if k > b:
        raise errors.ProtocolError("a SCAN start length that runs past the end of the frame")
    start = bytes(buf[a + P.SCAN_HEAD.size : k])
    end = bytes(buf[k:b]) if flags & P.SCAN_HAS_END else None
    if end is None and k != b:
        raise errors.ProtocolError("stray bytes after a SCAN start key")
    target = s.txn_or_fail() if in_txn else s.db
    one_shot = bool(flags & P.SCAN_ONE_SHOT)
    cid = 0 if one_shot else s.new_cursor_id()
    it = target._scan(start, end, bool(flags & P.SCAN_REVERSE))
    return s.batch(cid, it, limit, in_txn)


def _h_scan(s: Session, buf: Any, a: int, b: int) -> bytes:
    return _scan(s, buf, a, b, False)


def _h_tscan(s: Session, buf: Any, a: int, b: int) -> bytes:
    return _scan(s, buf, a, b, True)


def _h_scan_next(s: Session, buf: Any, a: int, b: int) -> bytes:
    if b - a != P.SCAN_NEXT_BODY.size:
        raise errors.ProtocolError("a SCAN_NEXT payload is u32 cursor | u32 limit")
    cid, limit = P.SCAN_NEXT_BODY.unpack_from(buf, a)
    entry = s.cursors.get(cid)
    if entry is None:
        raise errors.ProtocolError(f"no open scan {cid} on this connection")
    if entry[1] and s.txn is None:
        s.close_cursor(cid)
        raise errors.TransactionClosedError(
            "this transaction was already committed or aborted; begin a new one"
        )
    try:
        return s.batch(cid, entry[0], limit, entry[1])
    except BaseException:
        s.close_cursor(cid)
        raise


def _h_scan_close(s: Session, buf: Any, a: int, b: int) -> bytes:
    if (b - a) % 4:
        raise errors.ProtocolError("a SCAN_CLOSE payload is a sequence of u32 cursor ids")
    for i in range(a, b, 4):
        s.close_cursor(_U32(buf, i)[0])
    return _OK


def _h_begin(s: Session, buf: Any, a: int, b: int) -> bytes:
    if b - a != 1:
        raise errors.ProtocolError("a BEGIN payload is one flags byte")
    if s.txn is not None:
        raise errors.TransactionError(
            "this connection already has an open transaction (one per connection)"
        )
    flags = buf[a]
    txn = s.db.begin_transaction(
        read_only=bool(flags & P.BEGIN_READ_ONLY), immediate=bool(flags & P.BEGIN_IMMEDIATE)
    )
    s.txn = txn
    s.immediate = bool(flags & P.BEGIN_IMMEDIATE)
    return P.frame(P.ST_OK, P.U64.pack(txn.txnid))


def _h_commit(s: Session, buf: Any, a: int, b: int) -> bytes:
    txn = s.txn_or_fail()
    try:
        txnid = txn.commit()
    finally:
        s.end_txn(abort=True)  # the transaction is over whatever commit() did
    return P.frame(P.ST_OK, P.U64.pack(txnid))


def _h_abort(s: Session, buf: Any, a: int, b: int) -> bytes:
    s.end_txn(abort=True)
    return _OK


def _h_checkpoint(s: Session, buf: Any, a: int, b: int) -> bytes:
    s.no_lock_held()
    s.db.checkpoint()
    return _OK


def _h_stats(s: Session, buf: Any, a: int, b: int) -> bytes:
    return P.frame(P.ST_OK, P.encode_value(s.db.stats()))


def _h_check(s: Session, buf: Any, a: int, b: int) -> bytes:
    return P.frame(P.ST_OK, P.encode_value(s.db.check()))


def _sql_txn_open(db: Any) -> bool:
    """Is a transaction opened with SQL BEGIN open in this thread (this session)?"""
    return bool(getattr(db, "in_transaction", False))


def _sql(s: Session, buf: Any, a: int, b: int, in_txn: bool) -> bytes:
    request = P.decode_value(buf, a, b)
    if (
        not isinstance(request, list)
        or len(request) != 3
        or not isinstance(request[0], str)
        or not isinstance(request[2], bool)
    ):
        raise errors.ProtocolError("an SQL payload is a typed list [sql text, params, many]")
    sql, params, many = request
    target = s.txn_or_fail() if in_txn else s.db
    if not hasattr(target, "execute_sql"):
        raise errors.ProtocolError("this server has no SQL engine")
    result = target.executemany(sql, params) if many else target.execute_sql(sql, params)
    reply = {
        "columns": result.columns or None,
        "rows": result.rows if result.columns else None,
        "rowcount": result.rowcount,
        "lastrowid": result.lastrowid,
        "in_transaction": False if in_txn else _sql_txn_open(s.db),
    }
    return P.frame(P.ST_OK, P.encode_value(reply))


def _h_sql(s: Session, buf: Any, a: int, b: int) -> bytes:
    return _sql(s, buf, a, b, False)


def _h_tsql(s: Session, buf: Any, a: int, b: int) -> bytes:
    txn = s.txn_or_fail()
    try:
        return _sql(s, buf, a, b, True)
    finally:
        if txn.closed:
            s.end_txn(abort=False)


HANDLERS: list[Handler] = [_h_unknown] * 256
"""The opcode table: the handler of each opcode byte (the request's first byte)."""
for _op, _fn in {
    P.OP_HELLO: _h_hello,
    P.OP_PING: _h_ping,
    P.OP_GET: _h_get,
    P.OP_GET | P.TXN: _h_tget,
    P.OP_PUT: _h_put,
    P.OP_PUT | P.TXN: _h_tput,
    P.OP_DELETE: _h_delete,
    P.OP_DELETE | P.TXN: _h_tdelete,
    P.OP_SCAN: _h_scan,
    P.OP_SCAN | P.TXN: _h_tscan,
    P.OP_SCAN_NEXT: _h_scan_next,
    P.OP_SCAN_CLOSE: _h_scan_close,
    P.OP_BEGIN: _h_begin,
    P.OP_COMMIT: _h_commit,
    P.OP_ABORT: _h_abort,
    P.OP_CHECKPOINT: _h_checkpoint,
    P.OP_STATS: _h_stats,
    P.OP_CHECK: _h_check,
    P.OP_SQL: _h_sql,
    P.OP_SQL | P.TXN: _h_tsql,
}.items():
    HANDLERS[_op] = _fn


def register_handler(op: int, handler: Handler) -> None:
    """Add an opcode: handler(session, buf, start, end) returns the reply frame."""
    if HANDLERS[op] is not _h_unknown:
        raise ValueError(f"opcode 0x{op:02x} is already taken")
    HANDLERS[op] = handler
