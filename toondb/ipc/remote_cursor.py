"""A scan served by toondb-server: RemoteCursor iterates (key, value) pairs that a
server-side cursor sends in batches (the batch frame is parsed by parse_batch),
asking for the next batch when the last is handed out, so memory stays flat on
both sides however many keys a scan covers."""

from __future__ import annotations

import struct
from typing import Any, Protocol

from toondb import errors
from toondb.ipc import protocol as P
from toondb.ipc.connection import ClientConnection, reply_error
from toondb.storage import _btree

__all__ = ["RemoteCursor", "parse_batch", "as_bytes", "TXN_CLOSED"]

FIRST_BATCH = 128  # items asked for in a scan's first batch; doubles up to MAX_BATCH
TXN_CLOSED = "this transaction was already committed or aborted; begin a new one"

_SCAN_HEAD = struct.Struct("<IBBII").pack
_BATCH_HEAD = P.BATCH_HEAD.unpack_from
_ITEM_HEAD = P.ITEM_HEAD.unpack_from
_BATCH_HEAD_SIZE = P.BATCH_HEAD.size
_OK = P.ST_OK


class ConnectionPool(Protocol):
    """What a scan needs of its client (IpcClient): connections to borrow and return."""

    _closed: bool

    def _take(self) -> ClientConnection: ...
    def _give(self, conn: ClientConnection) -> None: ...


class ScanTransaction(Protocol):
    """What a scan inside a transaction needs of it (IpcTransaction): its connection
    and a count of its writes (a write since the last batch repositions the scan)."""

    _conn: ClientConnection | None
    _mods: int

    def _conn_or_fail(self) -> ClientConnection: ...
    def _check_error(self, code: int, payload: bytes) -> None: ...


def as_bytes(obj: Any, what: str) -> bytes:
    if obj is None:
        raise TypeError(f"{what} must be bytes (or another bytes-like object), not NoneType")
    return _btree.as_bytes(obj, what)


def parse_batch(payload: bytes) -> tuple[bool, int, list[tuple[bytes, bytes]]]:
    if len(payload) < _BATCH_HEAD_SIZE:
        raise errors.ProtocolError("a scan batch shorter than its header")
    done, cid, count = _BATCH_HEAD(payload, 0)
    pos = _BATCH_HEAD_SIZE
    end = len(payload)
    items: list[tuple[bytes, bytes]] = []
    append = items.append
    for _ in range(count):
        if end - pos < 8:
            raise errors.ProtocolError("a scan batch cut short")
        klen, vlen = _ITEM_HEAD(payload, pos)
        k = pos + 8 + klen
        v = k + vlen
        if v > end:
            raise errors.ProtocolError("a scan batch item runs past the end of the frame")
        append((payload[pos + 8 : k], payload[k:v]))
        pos = v
    return bool(done), cid, items


class RemoteCursor:
    """An iterator of (key, value) over [start, end), fed in batches by a server-side
    cursor. Outside a transaction it reads the snapshot taken when the scan began
    (the scan holds a connection until it is exhausted or closed); inside one it
    sees the transaction's own writes, also those made while iterating."""

    __slots__ = (
        "client", "txn", "conn", "start", "end", "reverse", "items", "pos", "cid",
        "limit", "done", "stamp", "last", "__weakref__",
    )  # fmt: skip

    def __init__(
        self,
        client: ConnectionPool,
        txn: ScanTransaction | None,
        start: Any,
        end: Any,
        reverse: bool,
        one_shot: bool = False,
    ) -> None:
        self.client = client
        self.txn = txn
        self.conn: ClientConnection | None = None
        self.start = as_bytes(start if start is not None else b"", "start")
        self.end = None if end is None else as_bytes(end, "end")
        self.reverse = bool(reverse)
        self.items: list[tuple[bytes, bytes]] = []
        self.pos = 0
        self.cid = 0
        self.limit = 1 if one_shot else FIRST_BATCH
        self.done = False
        self.stamp = 0
        self.last: bytes | None = None
        if self.end is not None and self.end <= self.start:
            self.done = True
            return
        self._open(self.start, self.end, one_shot)

    def _open(self, start: bytes, end: bytes | None, one_shot: bool = False) -> None:
        txn = self.txn
        flags = (P.SCAN_REVERSE if self.reverse else 0) | (0 if end is None else P.SCAN_HAS_END)
        if one_shot:
            flags |= P.SCAN_ONE_SHOT
        op = P.OP_SCAN
        if txn is not None:
            conn = txn._conn_or_fail()
            op |= P.TXN
            self.stamp = txn._mods
        else:
            conn = self.client._take()
        tail = start if end is None else start + end
        request = _SCAN_HEAD(len(tail) + 10, op, flags, self.limit, len(start)) + tail
        try:
            code, payload = conn.call(request)
        except BaseException:
            if txn is None:
                self.client._give(conn)
            raise
        if code != _OK:
            if txn is None:
                self.client._give(conn)
            else:
                txn._check_error(code, payload)
            raise reply_error(code, payload)
        self._take_batch(payload)
        if txn is None:
            if self.cid:
                self.conn = conn  # the server cursor lives on this connection
            else:
                self.client._give(conn)

    def _take_batch(self, payload: bytes) -> None:
        done, self.cid, self.items = parse_batch(payload)
        self.pos = 0
        self.limit = min(self.limit * 2, P.MAX_BATCH)
        if done:
            self.cid = 0

    def __iter__(self) -> RemoteCursor:
        return self

    def __next__(self) -> tuple[bytes, bytes]:
        if self.done:
            raise StopIteration
        txn = self.txn
        if txn is not None:
            if txn._conn is None:
                raise errors.TransactionClosedError(TXN_CLOSED)
            if txn._mods != self.stamp and self.last is not None:
                self._reposition()
        elif self.client._closed:
            raise errors.ClosedError("this IpcClient was closed; connect again")
        pos = self.pos
        items = self.items
        if pos == len(items):
            if not self.cid:
                self._finish()
            self._fetch()
            pos = 0
            items = self.items
            if not items:
                self._finish()
        item = items[pos]
        self.pos = pos + 1
        if txn is not None:
            self.last = item[0]
        return item

    def _fetch(self) -> None:
        txn = self.txn
        conn = txn._conn_or_fail() if txn is not None else self.conn
        if conn is None:
            raise errors.ClosedError("this IpcClient was closed; connect again")
        code, payload = conn.call(
            P.frame(P.OP_SCAN_NEXT, P.SCAN_NEXT_BODY.pack(self.cid, self.limit))
        )
        if code != _OK:
            self.cid = 0
            if txn is not None:
                txn._check_error(code, payload)
            raise reply_error(code, payload)
        self._take_batch(payload)
        if not self.cid and txn is None and self.conn is not None:
            conn, self.conn = self.conn, None
            self.client._give(conn)

    def _reposition(self) -> None:
        """The transaction wrote since the batch was fetched: drop what is buffered
        and continue after the last key returned, as the transaction sees it now."""
        assert self.txn is not None and self.last is not None
        self._drop_server_cursor()
        self.limit = FIRST_BATCH
        if self.reverse:
            self._open(self.start, self.last)
        else:
            self._open(self.last + b"\x00", self.end)

    def _finish(self) -> None:
        self.close()
        raise StopIteration

    def _drop_server_cursor(self) -> None:
        cid, self.cid = self.cid, 0
        self.items = []
        self.pos = 0
        if cid:
            conn = self.txn._conn if self.txn is not None else self.conn
            if conn is not None:
                conn.pending.append(P.frame(P.OP_SCAN_CLOSE, P.U32.pack(cid)))

    def close(self) -> None:
        """Stop the scan now and release its snapshot on the server."""
        self.done = True
        self._drop_server_cursor()
        conn, self.conn = self.conn, None
        if conn is not None:
            self.client._give(conn)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
