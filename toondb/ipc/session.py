"""One client connection of toondb-server, served by one thread: the handshake, the
frame loop, and what the connection owns (its transaction and its open scans).

The session reads frames, dispatches each to the handler its opcode names
(the server's table, toondb.ipc.handlers.HANDLERS) and writes all the replies to what one ``recv`` brought
with one ``sendall``. It keeps invariants 1 and 2 of toondb.ipc.server: its transaction
and cursors die with it, and a frame is bounds-checked before anything reads it.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
from typing import Any, Callable, Protocol

from toondb import errors
from toondb.ipc import protocol as P

__all__ = ["Session", "FRAME_TIMEOUT", "HANDSHAKE_TIMEOUT", "SEND_TIMEOUT"]

RECV_SIZE = 65536
HANDSHAKE_TIMEOUT = 10.0  # seconds a new connection has to send its HELLO
FRAME_TIMEOUT = 10.0  # seconds the rest of a started frame may take to arrive
SEND_TIMEOUT = 30.0  # seconds a reply may wait for a client that does not read

log = logging.getLogger("toondb.server")

_HEADER = P.HEADER.pack
_U32 = P.U32.unpack_from
_TIMEVAL = struct.Struct("ll")


def _timeval(seconds: float) -> bytes:
    whole = int(seconds)
    return _TIMEVAL.pack(whole, int((seconds - whole) * 1e6))


class SessionHost(Protocol):
    """What a session needs of its server (toondb.ipc.server.Server): the database,
    the limits, the handler table, and admission. Sessions take this rather than
    importing server.py, which creates them."""

    db: Any
    info: dict[str, Any]
    max_clients: int
    max_frame: int
    handlers: list[Callable[[Any, Any, int, int], bytes]]

    @property
    def stopping(self) -> bool: ...

    def admit(self, session: Session) -> bool: ...

    def forget(self, session: Session) -> None: ...


class _Fatal(Exception):
    """Close the connection after replying with this error (ProtocolError)."""


class Session:
    """One client connection, served by one thread."""

    __slots__ = (
        "server", "db", "sock", "thread", "txn", "immediate", "cursors", "next_cursor", "peer",
    )  # fmt: skip

    def __init__(self, server: SessionHost, sock: socket.socket) -> None:
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
        if not self.server.admit(self):
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
        handlers = self.server.handlers
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
                if server.stopping:
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
        if len(self.cursors) >= P.MAX_CURSORS:
            raise errors.ToonDBError(
                f"this connection has {P.MAX_CURSORS} open scans; exhaust or close some"
            )
        cid = self.next_cursor
        self.next_cursor = cid + 1 if cid < 0xFFFFFFFF else 1
        while cid in self.cursors:
            cid = cid + 1 if cid < 0xFFFFFFFF else 1
        return cid
