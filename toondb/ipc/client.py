"""``IpcClient``: a toondb database served by ``toondb-server``, used like an embedded one.

::

    from toondb import IpcClient

    with IpcClient.connect("./my_database/toondb.sock") as client:
        client.put(b"key", b"value")
        print(client.get(b"key").decode())

The client has the interface of ``toondb.Database`` (put/get/delete, the path API,
scans, transactions, ``execute_sql``, ``query``, checkpoint, stats) and raises the
same exceptions; code
written against one runs against the other. Differences are only those of a
network: a request can fail with ``toondb.ServerConnectionError`` when the server dies
(if it was a write, it may or may not have been applied).

Connections: a client keeps a small pool of connections to the server. A request
outside a transaction borrows an idle one for one round trip, so one client can
be shared by many threads and each of them is served concurrently. A transaction
holds a connection of its own from begin to commit/abort (the server keeps the
transaction in that connection's session, so the isolation is exactly the
embedded one), and so does an unfinished scan outside a transaction (its
snapshot lives on the server). A client survives a server restart: the next
request opens new connections.

Scans are streamed: the server sends batches of at most a few thousand items or
256 KiB, the client asks for the next batch when it has handed out the last, so
memory stays flat on both sides however many keys a scan covers.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
import weakref
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Union

from toondb import errors
from toondb.ipc import protocol as P
from toondb.ipc.connection import ClientConnection, reply_error
from toondb.ipc.remote_cursor import TXN_CLOSED, RemoteCursor, as_bytes
from toondb.sql.result import Result
from toondb.storage.keyspace import KeyValueAPI, path_prefix, prefix_end
from toondb.toon.query import Prefix, Query
from toondb.toon.results import format_result

__all__ = ["IpcClient", "IpcTransaction"]

BytesLike = Union[bytes, bytearray, memoryview]
PathLike = Union[str, "os.PathLike[str]"]

MAX_IDLE = 16  # idle connections a client keeps; more are closed when returned

_HDR = P.HEADER.pack
_PUT_HEAD = struct.Struct("<IBI").pack
_TIMEVAL = struct.Struct("ll")
_OK = P.ST_OK
_NIL = P.ST_NIL
_PING = P.frame(P.OP_PING)
_COMMIT = P.frame(P.OP_COMMIT)
_ABORT = P.frame(P.OP_ABORT)
# error classes by which the server says a connection's transaction is over
_TXN_OVER = (b"TransactionClosedError", b"TransactionTimeoutError")

_clients: weakref.WeakSet[IpcClient] = weakref.WeakSet()


class _RemoteKeyValue:
    """get/put/delete over the wire, shared by IpcClient (each call a transaction
    of its own on the server) and IpcTransaction (in the connection's server-side
    transaction: the TXN bit of the opcode)."""

    _txn_bit = 0

    def _call(self, request: bytes) -> tuple[int, bytes]:  # pragma: no cover - overridden
        raise NotImplementedError

    def _note_write(self) -> None:
        """Called before every write (a transaction counts them for its cursors)."""

    def _put_request(self, op: int, key: bytes, value: bytes) -> bytes:  # pragma: no cover
        raise NotImplementedError

    def query(self, prefix: Prefix = "") -> Query:
        """A query builder over the JSON documents stored under prefix (see toondb.toon.query)."""
        return Query(self, prefix)

    def get(self, key: BytesLike) -> bytes | None:
        """The value stored under key (in a transaction: as it sees it), or None."""
        if type(key) is not bytes:
            key = as_bytes(key, "key")
        code, payload = self._call(_HDR(len(key) + 1, P.OP_GET | self._txn_bit) + key)
        if code == _OK:
            return payload
        if code == _NIL:
            return None
        raise reply_error(code, payload)

    def put(self, key: BytesLike, value: BytesLike) -> None:
        """Store value under key (a transaction of its own, or in the transaction)."""
        if type(key) is not bytes:
            key = as_bytes(key, "key")
        if type(value) is not bytes:
            value = as_bytes(value, "value")
        self._note_write()
        code, payload = self._call(self._put_request(P.OP_PUT | self._txn_bit, key, value))
        if code != _OK:
            raise reply_error(code, payload)

    def delete(self, key: BytesLike) -> bool:
        """Delete key; True if it was present."""
        if type(key) is not bytes:
            key = as_bytes(key, "key")
        self._note_write()
        code, payload = self._call(_HDR(len(key) + 1, P.OP_DELETE | self._txn_bit) + key)
        if code != _OK:
            raise reply_error(code, payload)
        return payload == b"\x01"


class IpcTransaction(_RemoteKeyValue, KeyValueAPI):
    """A transaction on the server, with the interface of ``toondb.Transaction``.

    It holds a connection of its own until ``commit()`` or ``abort()``; the server
    aborts it if that connection is lost. Used as a context manager it commits on
    success and aborts on an exception."""

    def __init__(
        self, client: IpcClient, conn: ClientConnection, txnid: int, read_only: bool
    ) -> None:
        self._client = client
        self._conn: ClientConnection | None = conn
        self._txnid = txnid
        self._read_only = read_only
        self._mods = 0

    # ---- state ----

    @property
    def txnid(self) -> int:
        """The id of the snapshot this transaction reads."""
        self._conn_or_fail()
        return self._txnid

    @property
    def read_only(self) -> bool:
        return self._read_only

    @property
    def closed(self) -> bool:
        return self._conn is None

    def _conn_or_fail(self) -> ClientConnection:
        conn = self._conn
        if conn is None:
            raise errors.TransactionClosedError(TXN_CLOSED)
        if conn.sock is None:
            self._conn = None
            raise conn._gone()
        return conn

    def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._client._give(conn)

    def _check_error(self, code: int, payload: bytes) -> None:
        """An error reply: if the server says the transaction is over, it is over here."""
        if code == P.ST_ERROR and payload[1 : 1 + payload[0]] in _TXN_OVER:
            self._release()

    def _call(self, request: bytes) -> tuple[int, bytes]:
        code, payload = self._conn_or_fail().call(request)
        if code == P.ST_ERROR:
            self._check_error(code, payload)
        return code, payload

    # ---- key-value ----

    _txn_bit = P.TXN

    def _note_write(self) -> None:
        self._mods += 1

    def _put_request(self, op: int, key: bytes, value: bytes) -> bytes:
        return self._client._put_frame(op, key, value)

    def _scan(self, start: Any, end: Any, reverse: bool) -> Iterator[tuple[bytes, bytes]]:
        self._conn_or_fail()
        return RemoteCursor(self._client, self, start, end, reverse)

    # ---- SQL ----

    def execute_sql(self, sql: str, params: Any = None, *, format: str | None = None) -> Any:
        """Run SQL inside this transaction, together with its key-value writes (see
        ``Transaction.execute_sql``); format="toon" / "json": the result as a document."""
        self._mods += 1
        code, payload = self._call(_sql_request(P.OP_SQL | P.TXN, sql, params, False))
        result = _sql_result(code, payload)[0]
        return result if format is None else format_result(result, format)

    execute = execute_sql

    def executemany(self, sql: str, seq_of_params: Any) -> Result:
        """Run one statement once per parameter set, in this transaction."""
        self._mods += 1
        code, payload = self._call(_sql_request(P.OP_SQL | P.TXN, sql, seq_of_params, True))
        return _sql_result(code, payload)[0]

    def executescript(self, sql: str) -> None:
        """Run the statements of a script in this transaction (see
        ``Transaction.executescript``)."""
        self._mods += 1
        code, payload = self._call(_sql_request(P.OP_SQL | P.TXN, sql, None, "script"))
        _sql_result(code, payload)

    def list_path(self, path: str = "") -> list[str]:
        """The names of path's immediate children, sorted (like listing a directory)."""
        return _list_path(self._client, self, path)

    # ---- the end ----

    def commit(self) -> int:
        """Apply every change atomically; returns the new transaction id.
        TransactionConflictError (nothing applied) if another commit changed a key
        this one wrote since it began. The transaction is over either way."""
        conn = self._conn_or_fail()
        try:
            code, payload = conn.call(_COMMIT)
        finally:
            self._release()
        if code != _OK:
            raise reply_error(code, payload)
        return int(P.U64.unpack(payload)[0])

    def abort(self) -> None:
        """Drop every change of this transaction. Idempotent."""
        conn = self._conn
        if conn is None:
            return
        if conn.sock is None:
            self._conn = None
            return
        try:
            code, payload = conn.call(_ABORT)
        finally:
            self._release()
        if code != _OK:
            raise reply_error(code, payload)

    def __enter__(self) -> IpcTransaction:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.closed:
            return
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def __del__(self) -> None:
        # abandoned while open: dropping the connection makes the server abort it
        conn = getattr(self, "_conn", None)
        if conn is not None:
            self._conn = None
            conn.close(errors.TransactionClosedError(TXN_CLOSED))

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"snapshot {self._txnid}"
        kind = "read-only" if self._read_only else "read-write"
        return f"<toondb IpcTransaction {kind}, {state}>"


def _sql_request(op: int, sql: str, params: Any, many: bool | str) -> bytes:
    """many: True for executemany, "script" for executescript."""
    if not isinstance(sql, str):
        raise TypeError(f"sql must be a str, not {type(sql).__name__}")
    return P.frame(op, P.encode_value([sql, params, many]))


def _sql_result(code: int, payload: bytes) -> tuple[Result, bool]:
    """The Result of an SQL reply, and whether an SQL BEGIN left a transaction open."""
    if code != _OK:
        raise reply_error(code, payload)
    reply = P.decode_value(payload)
    if not isinstance(reply, dict):
        raise errors.ProtocolError("an SQL reply that is not a map")
    columns = reply.get("columns")
    rows = reply.get("rows")
    result = Result(
        columns,
        [tuple(row) for row in rows] if columns is not None and rows is not None else None,
        reply.get("rowcount", -1),
        reply.get("lastrowid"),
    )
    return result, bool(reply.get("in_transaction"))


def _list_path(client: IpcClient, txn: IpcTransaction | None, path: str) -> list[str]:
    prefix = path_prefix(path)
    end = prefix_end(prefix) if prefix else None
    names: set[str] = set()
    start = prefix
    while True:
        cur = RemoteCursor(client, txn, start, end, False, one_shot=True)
        if not cur.items:
            break
        name, slash, _ = cur.items[0][0][len(prefix) :].partition(b"/")
        names.add(name.decode("utf-8", "surrogateescape"))
        # skip the child's subtree: every prefix+name+"/..." sorts below prefix+name+"0"
        start = prefix + name + (b"0" if slash else b"\x00")
    return sorted(names)


class IpcClient(_RemoteKeyValue, KeyValueAPI):
    """A connection to a toondb server, with the interface of ``toondb.Database``.

    Connect with ``IpcClient.connect(socket_path)``, preferably as a context
    manager. ``timeout`` is how long to wait to connect and for each reply (None:
    forever); a server that dies or stops answering raises ``toondb.ServerConnectionError``
    (a ``ToonDBError`` and a builtin ``ConnectionError``). A client may be shared
    by threads; it is not inherited across ``os.fork()`` (the child opens new
    connections; transactions and scans begun before the fork are unusable there).
    """

    socket_path: str
    timeout: float | None
    info: dict[str, Any]

    def __init__(self, socket_path: PathLike, timeout: float | None = 30.0) -> None:
        path = os.fspath(socket_path)
        if not isinstance(path, str):
            path = os.fsdecode(path)
        if timeout is not None:
            if (
                isinstance(timeout, bool)
                or not isinstance(timeout, (int, float))
                or not timeout > 0
            ):
                raise ValueError("timeout must be a number of seconds > 0, or None")
            timeout = float(timeout)
        self.socket_path = os.path.abspath(path)
        self.timeout = timeout
        self._idle: list[ClientConnection] = []
        self._conns: weakref.WeakSet[ClientConnection] = weakref.WeakSet()  # every open connection
        self._sql_pins = threading.local()  # .conn: the session of this thread's SQL BEGIN
        self._closed = False
        self._pid = os.getpid()
        self.info = {}
        self._max_request = P.DEFAULT_MAX_FRAME
        conn = self._connect()
        self._idle.append(conn)
        _clients.add(self)

    @classmethod
    def connect(cls, socket_path: PathLike, timeout: float | None = 30.0) -> IpcClient:
        """Connect to the toondb server listening on socket_path (a server started
        with ``toondb-server --db PATH`` listens on ``PATH/toondb.sock``)."""
        return cls(socket_path, timeout)

    # ---- connections ----

    def _connect(self) -> ClientConnection:
        if self._closed:
            raise errors.ClosedError("this IpcClient was closed; connect again")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        address, dirfd = P.unix_address(self.socket_path)
        try:
            sock.settimeout(self.timeout)
            sock.connect(address)
            sock.settimeout(None)
            if self.timeout is not None:
                whole = int(self.timeout)
                tv = _TIMEVAL.pack(whole, int((self.timeout - whole) * 1e6))
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
        except OSError as exc:
            sock.close()
            if isinstance(exc, (FileNotFoundError, ConnectionRefusedError)):
                why = "no toondb server is listening there (start one with toondb-server --db PATH)"
            elif isinstance(exc, (TimeoutError, BlockingIOError)):
                why = f"the server did not accept within {self.timeout:g} s"
            else:
                why = str(exc)
            raise errors.ServerConnectionError(
                f"cannot connect to the toondb server at {self.socket_path}: {why}"
            ) from None
        finally:
            if dirfd is not None:
                os.close(dirfd)
        conn = ClientConnection(self, sock)
        hello = P.HELLO_HEAD.pack(P.MAGIC, P.VERSION, P.VERSION) + f"pid {os.getpid()}".encode()
        code, payload = conn.call(P.frame(P.OP_HELLO, hello))
        if code != _OK:
            conn.close()
            refusal = reply_error(code, payload)
            if not isinstance(refusal, errors.ServerConnectionError):
                refusal = errors.ServerConnectionError(
                    f"the toondb server at {self.socket_path} refused the connection: {refusal}"
                )
            raise refusal
        info = P.decode_value(payload)
        if not isinstance(info, dict):
            conn.close()
            raise errors.ProtocolError("the server's HELLO reply is not a map")
        self.info = info
        self._max_request = int(info.get("max_frame_size", P.DEFAULT_MAX_FRAME))
        self._conns.add(conn)
        if self._closed:  # closed by another thread meanwhile
            conn.close()
            raise errors.ClosedError("this IpcClient was closed; connect again")
        return conn

    def _take(self) -> ClientConnection:
        try:
            return self._idle.pop()
        except IndexError:
            return self._connect()

    def _give(self, conn: ClientConnection) -> None:
        if conn.sock is None:
            return
        if self._closed or len(self._idle) >= MAX_IDLE:
            conn.close()
        else:
            self._idle.append(conn)

    def _call(self, request: bytes) -> tuple[int, bytes]:
        try:
            conn = self._idle.pop()
        except IndexError:
            conn = self._connect()
        try:
            return conn.call(request)
        finally:
            if conn.sock is not None:
                if self._closed or len(self._idle) >= MAX_IDLE:
                    conn.close()
                else:
                    self._idle.append(conn)

    def _put_frame(self, op: int, key: bytes, value: bytes) -> bytes:
        n = len(key) + len(value) + 5
        if n > self._max_request:
            raise ValueError(
                f"a put of {len(value)} bytes does not fit in one request to this server "
                f"(its limit is {self._max_request} bytes; start it with a larger "
                "--max-frame-size)"
            )
        if len(value) < 65536:
            return _PUT_HEAD(n, op, len(key)) + key + value
        return b"".join((_PUT_HEAD(n, op, len(key)), key, value))

    # ---- state ----

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def read_only(self) -> bool:
        """True when the server serves the database read-only (--read-only)."""
        return bool(self.info.get("read_only", False))

    @property
    def path(self) -> str:
        """The database the server serves (its path on the server's machine)."""
        return str(self.info.get("database", ""))

    @property
    def page_size(self) -> int:
        return int(self.info["page_size"])

    @property
    def max_key_size(self) -> int:
        return int(self.info["max_key_size"])

    def ping(self) -> float:
        """One round trip to the server; returns its duration in seconds."""
        t0 = time.perf_counter()
        code, payload = self._call(_PING)
        elapsed = time.perf_counter() - t0
        if code != _OK:
            raise reply_error(code, payload)
        return elapsed

    # ---- key-value operations, each its own transaction on the server ----

    _put_request = _put_frame

    def _scan(self, start: Any, end: Any, reverse: bool) -> Iterator[tuple[bytes, bytes]]:
        if self._closed:
            raise errors.ClosedError("this IpcClient was closed; connect again")
        return RemoteCursor(self, None, start, end, reverse)

    # ---- SQL ----

    def execute_sql(self, sql: str, params: Any = None, *, format: str | None = None) -> Any:
        """Run SQL on the server (see ``Database.execute_sql``): its own transaction,
        or the one an SQL ``BEGIN`` of this thread opened. params: a sequence for
        ``?``, a dict for ``:name``, a list of those to run it once per item. The
        Result has the same columns, rows and value types as embedded;
        format="toon" / "json" returns it as a TOON / JSON document instead."""
        result = self._sql(sql, params, False)
        return result if format is None else format_result(result, format)

    execute = execute_sql

    def executemany(self, sql: str, seq_of_params: Any) -> Result:
        """Run one statement once per parameter set (parsed and planned once; atomic)."""
        return self._sql(sql, seq_of_params, True)

    def executescript(self, sql: str) -> None:
        """Run the statements of a script on the server (see ``Database.executescript``)."""
        self._sql(sql, None, "script")

    def _sql(self, sql: str, params: Any, many: bool | str) -> Result:
        request = _sql_request(P.OP_SQL, sql, params, many)
        # An SQL BEGIN opens a transaction in the server session that ran it; the
        # statements this thread runs until COMMIT/ROLLBACK must go to that same
        # session, as embedded they go to the thread's transaction.
        pinned = getattr(self._sql_pins, "conn", None)
        if pinned is not None and pinned.sock is None:
            self._sql_pins.conn = None
            raise pinned._gone()
        conn = pinned if pinned is not None else self._take()
        try:
            code, payload = conn.call(request)
            result, open_txn = _sql_result(code, payload)
        except BaseException as exc:
            if pinned is None:
                self._give(conn)
            elif conn.sock is None:
                self._sql_pins.conn = None
            elif isinstance(exc, errors.TransactionTimeoutError):
                self._sql_pins.conn = None  # the server aborted the SQL BEGIN transaction
                self._give(conn)
            raise
        if open_txn:
            self._sql_pins.conn = conn
        else:
            self._sql_pins.conn = None
            self._give(conn)
        return result

    def list_path(self, path: str = "") -> list[str]:
        """The names of path's immediate children, sorted (like listing a directory)."""
        return _list_path(self, None, path)

    # ---- transactions ----

    def begin_transaction(
        self, *, read_only: bool = False, immediate: bool = False
    ) -> IpcTransaction:
        """A new transaction on the server; finish it with commit() or abort().

        read_only=True: a snapshot for reads only. immediate=True: take the write
        lock now (waiting up to the server's lock_timeout), so the commit can never
        conflict."""
        flags = (P.BEGIN_READ_ONLY if read_only else 0) | (P.BEGIN_IMMEDIATE if immediate else 0)
        conn = self._take()
        try:
            code, payload = conn.call(P.frame(P.OP_BEGIN, bytes([flags])))
        except BaseException:
            self._give(conn)
            raise
        if code != _OK:
            self._give(conn)
            raise reply_error(code, payload)
        return IpcTransaction(self, conn, P.U64.unpack(payload)[0], bool(read_only))

    def transaction(self, *, read_only: bool = False, immediate: bool = False) -> IpcTransaction:
        """A transaction as a context manager: commits on success, aborts on an exception."""
        return self.begin_transaction(read_only=read_only, immediate=immediate)

    # ---- maintenance ----

    def checkpoint(self) -> None:
        """Make every committed transaction durable now (fsync), whatever the sync_mode."""
        code, payload = self._call(P.frame(P.OP_CHECKPOINT))
        if code != _OK:
            raise reply_error(code, payload)

    def stats(self) -> dict[str, Any]:
        """Counts that describe the database now (the keys of Database.stats())."""
        code, payload = self._call(P.frame(P.OP_STATS))
        if code != _OK:
            raise reply_error(code, payload)
        value = P.decode_value(payload)
        if not isinstance(value, dict):
            raise errors.ProtocolError("the server's STATS reply is not a map")
        return value

    def check(self) -> dict[str, Any]:
        """Verify the whole file on the server (see ``Database.check``); raises
        CorruptionError listing the problems, returns counts when all is well."""
        code, payload = self._call(P.frame(P.OP_CHECK))
        if code != _OK:
            raise reply_error(code, payload)
        value = P.decode_value(payload)
        if not isinstance(value, dict):
            raise errors.ProtocolError("the server's CHECK reply is not a map")
        return value

    # ---- the end ----

    def close(self) -> None:
        """Close every connection; the server aborts this client's open transactions.
        Idempotent."""
        if self._closed:
            return
        self._closed = True
        closed = errors.ClosedError("this IpcClient was closed; connect again")
        for conn in list(self._conns):
            conn.close(closed)
        self._idle.clear()

    def _after_fork(self) -> None:
        # the parent's sockets must not be used by the child: forget them (closing
        # the child's copies leaves the parent's connections intact)
        forked = errors.ForkedHandleError(
            "this transaction or scan was begun before os.fork(); begin it again in the child"
        )
        for conn in list(self._conns):
            conn.close(forked)
        self._idle.clear()
        self._pid = os.getpid()

    def __enter__(self) -> IpcClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if not self._closed:
                for conn in list(self._conns):
                    conn.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<toondb IpcClient {self.socket_path!r} ({state})>"


def _after_fork_in_child() -> None:
    for client in list(_clients):
        client._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
