"""toondb-server: one database served to many processes over a Unix socket.

::

    toondb-server --db ./my_database          # listens on ./my_database/toondb.sock

Shape: the main thread accepts connections; each connection gets a thread of
its own (a *session*) that reads frames, calls the embedded ``Database`` and
writes one reply per request with one ``sendall``. The embedded database does
all concurrency control: a session's transaction is an ordinary server-side
``Transaction`` owned by that session, so isolation over IPC is exactly the
embedded one. Why a thread per session rather than a selector loop feeding a
worker pool: a request that blocks (an immediate BEGIN or a commit waiting up to
lock_timeout for the write lock) blocks only its own connection; a session's
state needs no locking; and the request path is one ``recv`` in the thread that
serves it, with no hand-off between threads (the GIL serializes the Python part
of every request either way). Its cost is a thread per connection, bounded by
``--max-clients``.

Invariants:

1. A session's transaction and cursors belong to it alone and die with it: when
   the connection closes for any reason (client exit, protocol error, server
   shutdown), its transaction is aborted and its cursors are closed.
2. Nothing a peer sends is evaluated: frames are parsed with ``struct`` and
   bounds-checked (toondb.ipc.protocol). A malformed payload gets an error
   reply; a frame over ``max_frame_size`` or a bad handshake gets an error reply
   and the connection is closed. Either way the other sessions are unaffected.
3. At most one live server serves a database: the server holds an exclusive
   ``flock`` on ``toondb.server.lock`` beside the page file for its lifetime. The
   kernel drops the lock when the server dies, so a socket file found while
   holding the lock is stale (unless something else answers on it).
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import logging
import os
import selectors
import signal
import socket
import stat
import struct
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, Callable

import toondb
from toondb import errors
from toondb.database import Database
from toondb.ipc import protocol as P
from toondb.ipc.protocol import unix_address

__all__ = ["Server", "main", "SOCKET_NAME", "LOCK_NAME"]

SOCKET_NAME = "toondb.sock"
LOCK_NAME = "toondb.server.lock"
DEFAULT_MAX_CLIENTS = 256
PENDING_HANDSHAKES = 64  # connections beyond max_clients that may wait for their HELLO

RECV_SIZE = 65536
HANDSHAKE_TIMEOUT = 10.0  # seconds a new connection has to send its HELLO
FRAME_TIMEOUT = 10.0  # seconds the rest of a started frame may take to arrive
SEND_TIMEOUT = 30.0  # seconds a reply may wait for a client that does not read

log = logging.getLogger("toondb.server")

_OK = P.frame(P.ST_OK)
_NIL = P.frame(P.ST_NIL)
_HEADER = P.HEADER.pack
_U32 = P.U32.unpack_from
_TIMEVAL = struct.Struct("ll")


def _timeval(seconds: float) -> bytes:
    whole = int(seconds)
    return _TIMEVAL.pack(whole, int((seconds - whole) * 1e6))


class _Fatal(Exception):
    """Close the connection after replying with this error (ProtocolError)."""


# ---------------------------------------------------------------------------------
# Sessions
# ---------------------------------------------------------------------------------


class _Session:
    """One client connection, served by one thread."""

    __slots__ = (
        "server", "db", "sock", "thread", "txn", "immediate", "cursors", "next_cursor", "peer",
    )  # fmt: skip

    def __init__(self, server: Server, sock: socket.socket) -> None:
        self.server = server
        self.db = server.db
        self.sock = sock
        self.thread: threading.Thread | None = None
        self.txn: Any = None
        self.immediate = False  # self.txn holds the write lock
        # cursor id -> [iterator, in_transaction]
        self.cursors: dict[int, list[Any]] = {}
        self.next_cursor = 1
        self.peer = ""

    # ---- life ----

    def run(self) -> None:
        try:
            if self._handshake():
                self._serve()
        except Exception:  # a bug: log it, drop only this connection
            log.exception("session %s failed", self.peer)
        finally:
            self._cleanup()

    def wake(self) -> None:
        """Server shutdown: let the request in flight finish, then end the session."""
        try:
            self.sock.shutdown(socket.SHUT_RD)
        except OSError:
            pass

    def _cleanup(self) -> None:
        try:
            self._end_txn(abort=True)
            self.db.rollback()  # a transaction begun with SQL BEGIN in this session
            for cid in list(self.cursors):
                self._close_cursor(cid)
        except Exception:
            log.exception("cleaning up session %s", self.peer)
        try:
            self.sock.close()
        except OSError:
            pass
        self.server._forget(self)
        log.debug("session %s closed", self.peer)

    def _send(self, data: bytes) -> bool:
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    # ---- handshake ----

    def _read_small_frame(self, limit: int) -> bytes | None:
        buf = b""
        while True:
            if len(buf) >= 4:
                n = _U32(buf, 0)[0]
                if n == 0 or n > limit:
                    raise _Fatal(f"a handshake frame of {n} bytes (the limit is {limit})")
                if len(buf) >= 4 + n:
                    if len(buf) > 4 + n:
                        raise _Fatal("a request was sent before the HELLO reply")
                    return buf
            try:
                data = self.sock.recv(4096)
            except (BlockingIOError, TimeoutError):
                raise _Fatal(f"no HELLO within {HANDSHAKE_TIMEOUT:g} s of connecting") from None
            except OSError:
                return None
            if not data:
                return None
            buf += data

    def _handshake(self) -> bool:
        sock = self.sock
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(HANDSHAKE_TIMEOUT))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(SEND_TIMEOUT))
        try:
            buf = self._read_small_frame(4096)
            if buf is None:
                return False
            if buf[4] != P.OP_HELLO or len(buf) < 5 + P.HELLO_HEAD.size:
                raise _Fatal("the first frame on a connection must be HELLO")
            magic, lo, hi = P.HELLO_HEAD.unpack_from(buf, 5)
            if magic != P.MAGIC:
                raise _Fatal("not a toondb IPC client (bad magic in HELLO)")
            if not lo <= P.VERSION <= hi:
                raise _Fatal(
                    f"the client speaks protocol versions {lo}..{hi}; this server "
                    f"speaks version {P.VERSION}"
                )
            name = buf[5 + P.HELLO_HEAD.size :].decode("utf-8", "replace")[:200]
        except _Fatal as exc:
            log.info("refused connection %s: %s", self.peer, exc)
            self._send(P.error_frame(errors.ProtocolError(str(exc))))
            return False
        if not self.server._admit(self):
            self._send(
                P.error_frame(
                    errors.ServerConnectionError(
                        f"the toondb server already serves its maximum of "
                        f"{self.server.max_clients} clients (--max-clients); retry later"
                    )
                )
            )
            return False
        self.peer = f"{self.peer}({name})" if name else self.peer
        log.debug("session %s opened", self.peer)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(FRAME_TIMEOUT))
        return self._send(P.frame(P.ST_OK, P.encode_value(self.server.info)))

    # ---- the request loop ----

    def _serve(self) -> None:
        sock = self.sock
        recv = sock.recv
        sendall = sock.sendall
        max_frame = self.server.max_frame
        handlers = _HANDLERS
        server = self.server
        buf: bytes | bytearray = b""
        while True:
            try:
                data = recv(RECV_SIZE)
            except (BlockingIOError, TimeoutError):
                # SO_RCVTIMEO: idle connections just keep waiting, a half-sent frame is dropped
                if buf:
                    self._send(
                        P.error_frame(
                            errors.ProtocolError(
                                f"the rest of a frame did not arrive within {FRAME_TIMEOUT:g} s"
                            )
                        )
                    )
                    return
                if server._stopping:
                    return
                continue
            except OSError:
                return
            if not data:
                return
            if buf:
                buf += data
            else:
                buf = data
            n = len(buf)
            pos = 0
            replies: list[bytes] = []
            fatal = None
            while n - pos >= 4:
                flen = _U32(buf, pos)[0]
                if flen == 0 or flen > max_frame:
                    fatal = P.error_frame(
                        errors.ProtocolError(
                            f"a frame of {flen} bytes; this server accepts 1 to {max_frame} "
                            "(--max-frame-size); closing the connection"
                        )
                    )
                    break
                end = pos + 4 + flen
                if end > n:
                    break
                try:
                    replies.append(handlers[buf[pos + 4]](self, buf, pos + 5, end))
                except Exception as exc:
                    replies.append(self._error(exc))
                pos = end
            if fatal is not None:
                replies.append(fatal)
            if replies:
                try:
                    sendall(replies[0] if len(replies) == 1 else b"".join(replies))
                except OSError:
                    return
            if fatal is not None:
                return
            if pos == n:
                buf = b""
            elif pos or type(buf) is bytes:
                # keep the partial frame in a bytearray: appending stays linear
                buf = bytearray(memoryview(buf)[pos:])

    def _error(self, exc: Exception) -> bytes:
        if isinstance(exc, (errors.ToonDBError, ValueError, TypeError, KeyError)):
            if isinstance(exc, errors.ProtocolError):
                log.debug("session %s: %s", self.peer, exc)
            return P.error_frame(exc)
        if isinstance(exc, struct.error):
            return P.error_frame(errors.ProtocolError(f"malformed request payload: {exc}"))
        log.error("session %s: unexpected %r", self.peer, exc, exc_info=exc)
        return P.error_frame(exc)

    # ---- transactions and cursors ----

    def txn_or_fail(self) -> Any:
        txn = self.txn
        if txn is None:
            raise errors.TransactionClosedError(
                "this transaction was already committed or aborted; begin a new one"
            )
        return txn

    def no_lock_held(self) -> None:
        """A write outside this session's immediate transaction would wait for the
        lock that transaction holds until lock_timeout: fail at once instead."""
        if self.immediate:
            raise errors.DatabaseLockedError(
                "this connection's immediate transaction holds the write lock; write in "
                "that transaction, or commit or abort it first"
            )

    def _end_txn(self, abort: bool) -> None:
        txn = self.txn
        if txn is None:
            return
        self.txn = None
        self.immediate = False
        for cid in [c for c, entry in self.cursors.items() if entry[1]]:
            self._close_cursor(cid)
        if abort and not txn.closed:
            txn.abort()

    def _close_cursor(self, cid: int) -> None:
        entry = self.cursors.pop(cid, None)
        if entry is not None:
            close = getattr(entry[0], "close", None)
            if close is not None:
                close()

    def batch(self, cid: int, it: Any, limit: int, in_txn: bool) -> bytes:
        """Up to limit items of it (fewer once BATCH_BYTES are reached) as a batch reply;
        the cursor stays registered under cid unless the scan is done (cid 0: one shot)."""
        limit = max(1, min(limit, P.MAX_BATCH))
        parts: list[Any] = [b""]
        append = parts.append
        pack = P.ITEM_HEAD.pack
        count = 0
        size = 0
        budget = P.BATCH_BYTES
        done = True
        for key, value in it:
            append(pack(len(key), len(value)))
            append(key)
            append(value)
            count += 1
            size += 8 + len(key) + len(value)
            if count >= limit or size >= budget:
                done = False
                break
        if cid == 0 or done:
            if cid in self.cursors:
                self._close_cursor(cid)
            elif not done:
                close = getattr(it, "close", None)
                if close is not None:
                    close()
            done = True
            cid = 0
        elif cid not in self.cursors:
            self.cursors[cid] = [it, in_txn]
        parts[0] = _HEADER(size + 1 + P.BATCH_HEAD.size, P.ST_OK) + P.BATCH_HEAD.pack(
            done, cid, count
        )
        return b"".join(parts)

    def new_cursor_id(self) -> int:
        if len(self.cursors) >= P.MAX_CURSORS:
            raise errors.ToonDBError(
                f"this connection has {P.MAX_CURSORS} open scans; exhaust or close some"
            )
        cid = self.next_cursor
        self.next_cursor = cid + 1 if cid < 0xFFFFFFFF else 1
        while cid in self.cursors:
            cid = cid + 1 if cid < 0xFFFFFFFF else 1
        return cid


# ---------------------------------------------------------------------------------
# Request handlers: handler(session, buf, start, end) -> reply frame. buf[start:end]
# is the payload. Every length is checked before use (invariant 2).
# ---------------------------------------------------------------------------------


def _h_unknown(s: _Session, buf: Any, a: int, b: int) -> bytes:
    raise errors.ProtocolError(f"unknown opcode 0x{buf[a - 1]:02x}")


def _h_hello(s: _Session, buf: Any, a: int, b: int) -> bytes:
    raise errors.ProtocolError("HELLO was already received on this connection")


def _h_ping(s: _Session, buf: Any, a: int, b: int) -> bytes:
    return _OK


def _h_get(s: _Session, buf: Any, a: int, b: int) -> bytes:
    value = s.db.get(buf[a:b])
    if value is None:
        return _NIL
    return _HEADER(len(value) + 1, 0) + value


def _h_tget(s: _Session, buf: Any, a: int, b: int) -> bytes:
    value = s.txn_or_fail().get(buf[a:b])
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


def _h_put(s: _Session, buf: Any, a: int, b: int) -> bytes:
    key, value = _split_put(buf, a, b)
    if s.immediate:
        s.no_lock_held()
    s.db.put(key, value)
    return _OK


def _h_tput(s: _Session, buf: Any, a: int, b: int) -> bytes:
    key, value = _split_put(buf, a, b)
    txn = s.txn_or_fail()
    try:
        txn.put(key, value)
    finally:
        if txn.closed:
            s._end_txn(abort=False)
    return _OK


_DELETED = (P.frame(P.ST_OK, b"\x00"), P.frame(P.ST_OK, b"\x01"))


def _h_delete(s: _Session, buf: Any, a: int, b: int) -> bytes:
    if s.immediate:
        s.no_lock_held()
    return _DELETED[s.db.delete(buf[a:b])]


def _h_tdelete(s: _Session, buf: Any, a: int, b: int) -> bytes:
    txn = s.txn_or_fail()
    try:
        return _DELETED[txn.delete(buf[a:b])]
    finally:
        if txn.closed:
            s._end_txn(abort=False)


def _scan(s: _Session, buf: Any, a: int, b: int, in_txn: bool) -> bytes:
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


def _h_scan(s: _Session, buf: Any, a: int, b: int) -> bytes:
    return _scan(s, buf, a, b, False)


def _h_tscan(s: _Session, buf: Any, a: int, b: int) -> bytes:
    return _scan(s, buf, a, b, True)


def _h_scan_next(s: _Session, buf: Any, a: int, b: int) -> bytes:
    if b - a != P.SCAN_NEXT_BODY.size:
        raise errors.ProtocolError("a SCAN_NEXT payload is u32 cursor | u32 limit")
    cid, limit = P.SCAN_NEXT_BODY.unpack_from(buf, a)
    entry = s.cursors.get(cid)
    if entry is None:
        raise errors.ProtocolError(f"no open scan {cid} on this connection")
    if entry[1] and s.txn is None:
        s._close_cursor(cid)
        raise errors.TransactionClosedError(
            "this transaction was already committed or aborted; begin a new one"
        )
    try:
        return s.batch(cid, entry[0], limit, entry[1])
    except BaseException:
        s._close_cursor(cid)
        raise


def _h_scan_close(s: _Session, buf: Any, a: int, b: int) -> bytes:
    if (b - a) % 4:
        raise errors.ProtocolError("a SCAN_CLOSE payload is a sequence of u32 cursor ids")
    for i in range(a, b, 4):
        s._close_cursor(_U32(buf, i)[0])
    return _OK


def _h_begin(s: _Session, buf: Any, a: int, b: int) -> bytes:
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


def _h_commit(s: _Session, buf: Any, a: int, b: int) -> bytes:
    txn = s.txn_or_fail()
    try:
        txnid = txn.commit()
    finally:
        s._end_txn(abort=True)  # the transaction is over whatever commit() did
    return P.frame(P.ST_OK, P.U64.pack(txnid))


def _h_abort(s: _Session, buf: Any, a: int, b: int) -> bytes:
    s._end_txn(abort=True)
    return _OK


def _h_checkpoint(s: _Session, buf: Any, a: int, b: int) -> bytes:
    s.no_lock_held()
    s.db.checkpoint()
    return _OK


def _h_stats(s: _Session, buf: Any, a: int, b: int) -> bytes:
    return P.frame(P.ST_OK, P.encode_value(s.db.stats()))


def _h_check(s: _Session, buf: Any, a: int, b: int) -> bytes:
    return P.frame(P.ST_OK, P.encode_value(s.db.check()))


def _sql_txn_open(db: Any) -> bool:
    """Is a transaction opened with SQL BEGIN open in this thread (this session)?"""
    return bool(getattr(db, "in_transaction", False))


def _sql(s: _Session, buf: Any, a: int, b: int, in_txn: bool) -> bytes:
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


def _h_sql(s: _Session, buf: Any, a: int, b: int) -> bytes:
    return _sql(s, buf, a, b, False)


def _h_tsql(s: _Session, buf: Any, a: int, b: int) -> bytes:
    txn = s.txn_or_fail()
    try:
        return _sql(s, buf, a, b, True)
    finally:
        if txn.closed:
            s._end_txn(abort=False)


_HANDLERS: list[Callable[[_Session, Any, int, int], bytes]] = [_h_unknown] * 256
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
    _HANDLERS[_op] = _fn


def register_handler(op: int, handler: Callable[[_Session, Any, int, int], bytes]) -> None:
    """Add an opcode: handler(session, buf, start, end) returns the reply frame."""
    if _HANDLERS[op] is not _h_unknown:
        raise ValueError(f"opcode 0x{op:02x} is already taken")
    _HANDLERS[op] = handler


# ---------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------


class Server:
    """Serves one database on a Unix socket. ``start()`` takes the server lock,
    opens the database and binds the socket; ``serve_forever()`` accepts until
    ``stop()`` (safe from a signal handler or another thread), then shuts down:
    requests in flight finish, open transactions are aborted, the database is
    closed and the socket file removed."""

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        socket_path: str | os.PathLike[str] | None = None,
        *,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        read_only: bool = False,
        max_frame_size: int = P.DEFAULT_MAX_FRAME,
        config: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(max_clients, int) or max_clients < 1:
            raise ValueError("max_clients must be an integer >= 1")
        if not isinstance(max_frame_size, int) or not 1024 <= max_frame_size <= 0x7FFFFFFF:
            raise ValueError("max_frame_size must be an integer from 1024 to 2**31 - 1")
        self.db_path = os.path.abspath(os.fspath(db_path))
        is_file = os.path.isfile(self.db_path)
        if socket_path is None:
            socket_path = (
                self.db_path + ".sock" if is_file else os.path.join(self.db_path, SOCKET_NAME)
            )
        self.socket_path = os.path.abspath(os.fspath(socket_path))
        self.lock_path = (
            self.db_path + "-server.lock" if is_file else os.path.join(self.db_path, LOCK_NAME)
        )
        self.max_clients = max_clients
        self.read_only = read_only
        self.max_frame = max_frame_size
        self.config = config
        self.db: Database | None = None
        self.info: dict[str, Any] = {}
        self._lock_fd = -1
        self._listener: socket.socket | None = None
        self._socket_ino: tuple[int, int] | None = None
        self._sessions: set[_Session] = set()
        self._admitted: set[_Session] = set()  # sessions past their handshake
        self._mutex = threading.Lock()
        self._stopping = False
        self.stop_reason = "stop() called"
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        os.set_blocking(self._wake_r, False)

    # ---- start-up ----

    def start(self) -> None:
        """Take the server lock, open the database, bind and listen. Raises
        DatabaseLockedError when another live server holds the database."""
        try:
            self._take_lock()
            self.db = Database.open(self.db_path, self.config, read_only=self.read_only)
            self._bind()
        except BaseException:
            self._release()
            raise
        db = self.db
        self.info = {
            "server": "toondb-server",
            "version": toondb.__version__,
            "protocol": P.VERSION,
            "pid": os.getpid(),
            "database": self.db_path,
            "read_only": bool(db.read_only),
            "max_frame_size": self.max_frame,
            "max_key_size": db.max_key_size,
            "page_size": db.page_size,
        }
        os.ftruncate(self._lock_fd, 0)
        os.pwrite(self._lock_fd, f"{os.getpid()}\n{self.socket_path}\n".encode(), 0)

    def _take_lock(self) -> None:
        if not os.path.exists(self.db_path) and not self.read_only:
            os.makedirs(self.db_path, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                os.close(fd)
                raise
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").split("\n")
            os.close(fd)
            pid = holder[0] if holder and holder[0] else "?"
            where = holder[1] if len(holder) > 1 and holder[1] else "its socket"
            raise errors.DatabaseLockedError(
                f"another toondb server (pid {pid}) is already serving the database at "
                f"{self.db_path} on {where}; stop it first, or connect to it with IpcClient"
            ) from None
        self._lock_fd = fd

    def _bind(self) -> None:
        path = self.socket_path
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            st = None
        if st is not None:
            if not stat.S_ISSOCK(st.st_mode):
                raise errors.ToonDBError(
                    f"{path} exists and is not a socket; remove it or choose --socket"
                )
            if _answers(path):
                raise errors.DatabaseLockedError(
                    f"another live server is listening on {path}; choose another --socket"
                )
            log.info("removing the stale socket %s left by a server that died", path)
            os.unlink(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        address, dirfd = unix_address(path)
        old = os.umask(0o177)  # the socket is born owner-only (0600)
        try:
            sock.bind(address)
        except BaseException:
            sock.close()
            raise
        finally:
            os.umask(old)
            if dirfd is not None:
                os.close(dirfd)
        os.chmod(path, 0o600)
        sock.listen(min(socket.SOMAXCONN, 1024))
        sock.setblocking(False)
        st = os.stat(path)
        self._socket_ino = (st.st_dev, st.st_ino)
        self._listener = sock

    # ---- serving ----

    def serve_forever(self) -> None:
        """Accept connections until stop(), then shut down cleanly."""
        if self._listener is None:
            raise errors.ClosedError("call start() before serve_forever()")
        sel = selectors.DefaultSelector()
        sel.register(self._listener, selectors.EVENT_READ, "accept")
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        try:
            while not self._stopping:
                for key, _ in sel.select():
                    if self._stopping:
                        break
                    if key.data == "wake":
                        try:
                            while os.read(self._wake_r, 512):
                                pass
                        except BlockingIOError:
                            pass
                    else:
                        self._accept()
        finally:
            sel.close()
            log.info("shutting down (%s)", self.stop_reason)
            self._shutdown()

    def _accept(self) -> None:
        assert self._listener is not None
        for _ in range(64):
            try:
                sock, _addr = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and friends: keep serving the others
                log.error("accept failed: %s", exc)
                time.sleep(0.05)
                return
            with self._mutex:
                crowded = len(self._sessions) >= self.max_clients + PENDING_HANDSHAKES
            if crowded:  # a connect flood: do not spend a thread on each
                sock.close()
                continue
            sock.setblocking(True)
            session = _Session(self, sock)
            session.peer = _peer_name(sock)
            thread = threading.Thread(target=session.run, name="toondb-session", daemon=True)
            session.thread = thread
            with self._mutex:
                self._sessions.add(session)
            try:
                thread.start()
            except RuntimeError as exc:  # cannot start a thread: refuse this one
                log.error("cannot start a session thread: %s", exc)
                with self._mutex:
                    self._sessions.discard(session)
                sock.close()

    def _admit(self, session: _Session) -> bool:
        with self._mutex:
            if self._stopping or len(self._admitted) >= self.max_clients:
                return False
            self._admitted.add(session)
            return True

    def _forget(self, session: _Session) -> None:
        with self._mutex:
            self._sessions.discard(session)
            self._admitted.discard(session)

    @property
    def client_count(self) -> int:
        """Connections that completed their handshake and are still open."""
        with self._mutex:
            return len(self._admitted)

    def stop(self) -> None:
        """Ask serve_forever() to shut down (async-signal-safe enough: a flag and a write)."""
        self._stopping = True
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def _shutdown(self) -> None:
        self._stopping = True
        if self._listener is not None:
            self._listener.close()
            self._listener = None
            self._remove_socket()
        with self._mutex:
            sessions = list(self._sessions)
        for session in sessions:
            session.wake()
        lock_timeout = float(self.db.config.get("lock_timeout", 10.0)) if self.db else 10.0
        deadline = time.monotonic() + lock_timeout + 5.0
        for session in sessions:
            if session.thread is not None:
                session.thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [s for s in sessions if s.thread is not None and s.thread.is_alive()]
        if stuck:
            log.warning(
                "%d sessions did not finish in time; closing the database anyway", len(stuck)
            )
        self._release()

    def _remove_socket(self) -> None:
        try:
            st = os.stat(self.socket_path)
            if (st.st_dev, st.st_ino) == self._socket_ino:
                os.unlink(self.socket_path)
        except OSError:
            pass

    def _release(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
            self._remove_socket()
        if self.db is not None:
            try:
                self.db.close()
            except Exception:
                log.exception("closing the database")
            self.db = None
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = -1

    def close(self) -> None:
        """Release everything without serving (for a server that was started but
        never served)."""
        self._release()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass


def _answers(path: str) -> bool:
    """Does a live process accept connections on the socket at path?"""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    address, dirfd = unix_address(path)
    try:
        probe.connect(address)
        return True
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except OSError:  # EAGAIN: a full backlog is still a live listener
        return True
    finally:
        probe.close()
        if dirfd is not None:
            os.close(dirfd)


_PEERCRED = struct.Struct("3i")


def _peer_name(sock: socket.socket) -> str:
    try:
        pid, uid, _gid = _PEERCRED.unpack(
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
        )
        return f"pid {pid} uid {uid}"
    except (OSError, AttributeError, struct.error):
        return "a client"


# ---------------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------------


def _fewer_malloc_arenas() -> None:
    """glibc gives each new thread its own malloc arena (up to 8 per core), so a
    server with a thread per connection fragments into many partly used heaps
    and its memory creeps up for minutes. The GIL serializes the Python side of
    every request anyway: two arenas cost nothing and keep the memory flat."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="toondb-server",
        description="Serve a toondb database to many processes over a Unix socket "
        "(connect with toondb.IpcClient.connect(socket_path)).",
    )
    p.add_argument(
        "--db", required=True, metavar="PATH", help="the database directory (created if missing)"
    )
    p.add_argument(
        "--socket", metavar="PATH", help=f"the socket to listen on (default PATH/{SOCKET_NAME})"
    )
    p.add_argument(
        "--max-clients",
        type=int,
        default=DEFAULT_MAX_CLIENTS,
        metavar="N",
        help=f"connections served at once; more are refused (default {DEFAULT_MAX_CLIENTS})",
    )
    p.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="what to log on stderr (default info)",
    )
    p.add_argument(
        "--read-only", action="store_true", help="serve reads only; writes raise ReadOnlyError"
    )
    p.add_argument(
        "--max-frame-size",
        type=int,
        default=P.DEFAULT_MAX_FRAME,
        metavar="BYTES",
        help=f"largest request accepted, in bytes (default {P.DEFAULT_MAX_FRAME}); "
        "bounds the largest value a client can put",
    )
    p.add_argument(
        "--lock-timeout",
        type=float,
        metavar="SECONDS",
        help="how long a write waits for the write lock before DatabaseLockedError "
        "(default: the database default, 10)",
    )
    p.add_argument(
        "--sync-mode",
        choices=["full", "normal", "off"],
        help="the database's sync_mode (default: the database default, normal)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """toondb-server: serve until SIGINT or SIGTERM; exit status 0 after a clean stop,
    1 when the server cannot start (another server holds the database, say)."""
    args = _parser().parse_args(argv)
    _fewer_malloc_arenas()
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s toondb-server[%(process)d] %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    config: dict[str, Any] = {}
    if args.sync_mode:
        config["sync_mode"] = args.sync_mode
    if args.lock_timeout is not None:
        config["lock_timeout"] = args.lock_timeout
    try:
        server = Server(
            args.db,
            args.socket,
            max_clients=args.max_clients,
            read_only=args.read_only,
            max_frame_size=args.max_frame_size,
            config=config or None,
        )
        server.start()
    except (errors.ToonDBError, OSError, ValueError) as exc:
        print(f"toondb-server: cannot start: {exc}", file=sys.stderr, flush=True)
        return 1

    def on_signal(signum: int, _frame: Any) -> None:
        server.stop_reason = signal.Signals(signum).name
        server.stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print(
        f"toondb-server listening on {server.socket_path} "
        f"(database {server.db_path}, pid {os.getpid()}"
        f"{', read-only' if server.read_only else ''})",
        flush=True,
    )
    try:
        server.serve_forever()
    finally:
        server.close()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
