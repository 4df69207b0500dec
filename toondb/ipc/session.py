"""One admitted client connection of toondb-server, served by one thread: the frame
loop, and what the connection owns (its transaction and its open scans).

The server's main thread reads a connection's HELLO (toondb.ipc.admission) and
starts a session only for a connection it admits. The session answers the HELLO,
then reads frames, dispatches each to the handler its opcode names
(toondb.ipc.handlers.HANDLERS) and writes the replies of what one ``recv`` brought
with as few ``send`` calls as it can. It keeps invariants 1 and 2 of
toondb.ipc.server (its transaction and cursors die with it; a frame is
bounds-checked before anything reads it) and these:

3. Replies are bounded per connection: once the replies not yet sent reach
   ``max_reply_buffer`` bytes, the session sends them (blocking until the client
   reads) before it answers another request, so a client that pipelines requests
   for large values and does not read holds at most that much server memory (plus
   one reply), and slows only its own connection.
4. An idle transaction that holds the write lock is aborted after
   ``idle_transaction_timeout`` seconds without a request (when set); the
   connection's next request gets TransactionTimeoutError and is not run.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from typing import Any, Callable, Protocol

from toondb import errors
from toondb.ipc import protocol as P
from toondb.ipc.limits import FRAME_TIMEOUT, SEND_TIMEOUT, FailureLog

__all__ = ["Session", "FRAME_TIMEOUT", "SEND_TIMEOUT"]

RECV_SIZE = 65536
JOIN_LIMIT = 256 << 10  # replies are joined into one send up to this many bytes

log = logging.getLogger("toondb.server")

_HEADER = P.HEADER.pack
_U32 = P.U32.unpack_from
_TIMEVAL = struct.Struct("ll")
_TYPED = (errors.ToonDBError, ValueError, TypeError, KeyError)


def _timeval(seconds: float) -> bytes:
    whole = int(seconds)
    return _TIMEVAL.pack(whole, int((seconds - whole) * 1e6))


class SessionHost(Protocol):
    """What a session needs of its server (toondb.ipc.server.Server): the database,
    the limits, the handler table, the failure log and leaving. Sessions take this
    rather than importing server.py, which creates them."""

    db: Any
    info: dict[str, Any]
    max_frame: int
    max_reply_buffer: int
    max_cursors: int
    idle_transaction_timeout: float | None
    handlers: list[Callable[[Any, Any, int, int], bytes]]
    failures: FailureLog

    @property
    def stopping(self) -> bool: ...

    def forget(self, session: Session) -> None: ...


class Session:
    """One admitted client connection, served by one thread."""

    __slots__ = (
        "server", "db", "sock", "thread", "txn", "immediate", "cursors", "next_cursor", "peer",
        "expired",
    )  # fmt: skip

    def __init__(self, server: SessionHost, sock: socket.socket, peer: str) -> None:
        self.server = server
        self.db = server.db
        self.sock = sock
        self.thread: threading.Thread | None = None
        self.txn: Any = None
        self.immediate = False  # self.txn holds the write lock
        # cursor id -> [iterator, in_transaction]
        self.cursors: dict[int, list[Any]] = {}
        self.next_cursor = 1
        self.peer = peer
        # why the transaction was aborted by the server, for the next request (invariant 4)
        self.expired: str | None = None

    # ---- life ----

    def run(self) -> None:
        """The session thread: answer the HELLO, then serve until the connection ends."""
        try:
            sock = self.sock
            sock.setblocking(True)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(SEND_TIMEOUT))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(self._recv_timeout()))
            log.debug("session %s opened", self.peer)
            if self._send(P.frame(P.ST_OK, P.encode_value(self.server.info))):
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
            self.end_txn(abort=True)
            self.db.rollback()  # a transaction begun with SQL BEGIN in this session
            for cid in list(self.cursors):
                self.close_cursor(cid)
        except Exception:
            log.exception("cleaning up session %s", self.peer)
        try:
            self.sock.close()
        except OSError:
            pass
        self.server.forget(self)
        log.debug("session %s closed", self.peer)

    def _send(self, data: bytes) -> bool:
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def _recv_timeout(self) -> float:
        """How long one recv waits: FRAME_TIMEOUT, or less when idle transactions
        are timed out (then recv wakes often enough to notice one in time)."""
        idle = self.server.idle_transaction_timeout
        if idle is None:
            return FRAME_TIMEOUT
        return max(0.01, min(FRAME_TIMEOUT, idle / 4))

    # ---- the request loop ----

    def _serve(self) -> None:
        sock = self.sock
        recv = sock.recv
        max_frame = self.server.max_frame
        max_pending = self.server.max_reply_buffer
        handlers = self.server.handlers
        server = self.server
        idle_limit = server.idle_transaction_timeout
        buf: bytes | bytearray = b""
        last_data = last_request = time.monotonic()
        while True:
            try:
                data = recv(RECV_SIZE)
            except (BlockingIOError, TimeoutError):
                # SO_RCVTIMEO: idle connections just keep waiting, a half-sent frame is dropped
                now = time.monotonic()
                if buf:
                    if now - last_data < FRAME_TIMEOUT:
                        continue
                    self._send(
                        self._error(
                            errors.ProtocolError(
                                f"the rest of a frame did not arrive within {FRAME_TIMEOUT:g} s"
                            )
                        )
                    )
                    return
                if server.stopping:
                    return
                if idle_limit is not None and now - last_request >= idle_limit:
                    self._expire_idle_transaction(now - last_request)
                continue
            except OSError:
                return
            if not data:
                return
            last_data = time.monotonic()
            if buf:
                buf += data
            else:
                buf = data
            n = len(buf)
            pos = 0
            replies: list[bytes] = []
            pending = 0
            fatal = None
            while n - pos >= 4:
                flen = _U32(buf, pos)[0]
                if flen == 0 or flen > max_frame:
                    fatal = self._error(
                        errors.ProtocolError(
                            f"a frame of {flen} bytes; this server accepts 1 to {max_frame} "
                            "(--max-frame-size); closing the connection"
                        )
                    )
                    break
                end = pos + 4 + flen
                if end > n:
                    break
                if self.expired is not None:
                    reply = self._expired_reply(buf[pos + 4])
                else:
                    try:
                        reply = handlers[buf[pos + 4]](self, buf, pos + 5, end)
                    except Exception as exc:
                        reply = self._error(exc)
                replies.append(reply)
                pending += len(reply)
                pos = end
                if pending >= max_pending:  # invariant 3: send before answering more
                    if not self._flush(replies, pending):
                        return
                    replies = []
                    pending = 0
            last_request = time.monotonic()
            if fatal is not None:
                replies.append(fatal)
                pending += len(fatal)
            if replies and not self._flush(replies, pending):
                return
            if fatal is not None:
                return
            if pos == n:
                buf = b""
            elif pos or type(buf) is bytes:
                # keep the partial frame in a bytearray: appending stays linear
                buf = bytearray(memoryview(buf)[pos:])

    def _flush(self, replies: list[bytes], size: int) -> bool:
        """Send replies in order: small ones joined into one send, large ones as they are
        (no copy of a large value). False when the connection is gone."""
        try:
            if len(replies) == 1:
                self.sock.sendall(replies[0])
            elif size <= JOIN_LIMIT:
                self.sock.sendall(b"".join(replies))
            else:
                for reply in replies:
                    self.sock.sendall(reply)
            return True
        except OSError:
            return False

    def _error(self, exc: Exception) -> bytes:
        """The ERROR reply for a failed request, and its one log line (rate limited)."""
        self.server.failures.failed(self.peer, exc, isinstance(exc, _TYPED))
        return P.error_frame(exc)

    # ---- idle transactions (invariant 4) ----

    def holds_write_lock(self) -> bool:
        if self.txn is not None and self.immediate:
            return True
        sql_txn = self.db.current_transaction()  # SQL BEGIN IMMEDIATE in this session
        return sql_txn is not None and bool(sql_txn.immediate)

    def _expire_idle_transaction(self, idle: float) -> None:
        if not self.holds_write_lock():
            return
        self.end_txn(abort=True)
        self.db.rollback()
        limit = self.server.idle_transaction_timeout
        self.expired = (
            f"the server aborted this connection's transaction: it held the write lock and "
            f"sent no request for {idle:.1f} s (--idle-transaction-timeout {limit:g}); "
            "nothing of it was applied, begin a new one"
        )
        self.server.failures.line(logging.INFO, f"session {self.peer}: {self.expired}")

    def _expired_reply(self, op: int) -> bytes:
        """The reply to the first request after the server aborted the transaction:
        ABORT is answered OK (the client wanted it over: it is), anything else gets
        TransactionTimeoutError and is not run."""
        message, self.expired = self.expired, None
        if op == P.OP_ABORT:
            return P.frame(P.ST_OK)
        return P.error_frame(errors.TransactionTimeoutError(message))

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

    def end_txn(self, abort: bool) -> None:
        txn = self.txn
        if txn is None:
            return
        self.txn = None
        self.immediate = False
        for cid in [c for c, entry in self.cursors.items() if entry[1]]:
            self.close_cursor(cid)
        if abort and not txn.closed:
            txn.abort()

    def close_cursor(self, cid: int) -> None:
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
                self.close_cursor(cid)
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
        limit = self.server.max_cursors
        if len(self.cursors) >= limit:
            raise errors.CursorLimitError(
                f"this connection has {limit} open scans, as many as the server allows one "
                "connection (--max-cursors); exhaust or close some"
            )
        cid = self.next_cursor
        self.next_cursor = cid + 1 if cid < 0xFFFFFFFF else 1
        while cid in self.cursors:
            cid = cid + 1 if cid < 0xFFFFFFFF else 1
        return cid
