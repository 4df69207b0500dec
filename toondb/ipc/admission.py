"""Admitting connections to toondb-server: the HELLO handshake, read by the main thread.

A new connection costs the server a socket and a small buffer until its HELLO has
arrived: the main thread's selector loop (Server.serve_forever) reads it without
blocking, and only a connection whose HELLO is valid and that the server has room
for (``--max-clients``) gets a session thread (toondb.ipc.session).

Invariant (5 of the server; 1-4 are in toondb.ipc.server and toondb.ipc.session):

5. Connections that have not sent their HELLO are counted apart from the admitted
   ones: at most PENDING_HANDSHAKES wait at once (a new connection closes the one
   that has waited longest) and each waits at most ``hello_timeout`` seconds. So
   connections that never send a HELLO neither take the places of admitted clients
   nor keep out a client that sends its HELLO as it connects (as IpcClient does).
"""

from __future__ import annotations

import errno
import logging
import selectors
import socket
import struct
import time
from collections import OrderedDict
from typing import Protocol

from toondb import errors
from toondb.ipc import protocol as P
from toondb.ipc.limits import PENDING_HANDSHAKES, FailureLog

__all__ = ["Admission", "parse_hello", "HELLO_LIMIT"]

HELLO_LIMIT = 4096  # bytes of a HELLO frame (magic, versions and a client name)
ACCEPT_BATCH = 64  # connections accepted per wake-up of the main thread

log = logging.getLogger("toondb.server")


class AdmittingServer(Protocol):
    """What admission needs of the server (toondb.ipc.server.Server): its limits, its
    failure log, and admitting a connection (starting its session). Admission takes
    this rather than importing server.py, which uses it."""

    hello_timeout: float
    max_clients: int
    failures: FailureLog

    def admit(self, sock: socket.socket, peer: str) -> bool: ...


_PEERCRED = struct.Struct("3i")


def peer_name(sock: socket.socket) -> str:
    """ "pid N uid M" of the process at the other end (for the log)."""
    try:
        pid, uid, _gid = _PEERCRED.unpack(
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
        )
        return f"pid {pid} uid {uid}"
    except (OSError, AttributeError, struct.error):
        return "a client"


def parse_hello(buf: bytes) -> str | None:
    """The client name of the HELLO frame buf holds, None while it is incomplete;
    ProtocolError when it is not a HELLO this server can answer."""
    if len(buf) < 4:
        return None
    n = P.U32.unpack_from(buf, 0)[0]
    if n == 0 or n > HELLO_LIMIT:
        raise errors.ProtocolError(f"a handshake frame of {n} bytes (the limit is {HELLO_LIMIT})")
    if len(buf) < 4 + n:
        return None
    if len(buf) > 4 + n:
        raise errors.ProtocolError("a request was sent before the HELLO reply")
    if buf[4] != P.OP_HELLO or n - 1 < P.HELLO_HEAD.size:
        raise errors.ProtocolError("the first frame on a connection must be HELLO")
    magic, lo, hi = P.HELLO_HEAD.unpack_from(buf, 5)
    if magic != P.MAGIC:
        raise errors.ProtocolError("not a toondb IPC client (bad magic in HELLO)")
    if not lo <= P.VERSION <= hi:
        raise errors.ProtocolError(
            f"the client speaks protocol versions {lo}..{hi}; this server "
            f"speaks version {P.VERSION}"
        )
    return buf[5 + P.HELLO_HEAD.size :].decode("utf-8", "replace")[:200]


class _Pending:
    """A connection waiting for its HELLO."""

    __slots__ = ("sock", "peer", "deadline", "buf")

    def __init__(self, sock: socket.socket, peer: str, deadline: float) -> None:
        self.sock = sock
        self.peer = peer
        self.deadline = deadline
        self.buf = b""


class Admission:
    """The connections of a server that have not completed their HELLO (invariant 5),
    watched by the server's selector (their selector key's data is the _Pending)."""

    def __init__(self, server: AdmittingServer, sel: selectors.BaseSelector) -> None:
        self.server = server
        self.sel = sel
        self.waiting: OrderedDict[int, _Pending] = OrderedDict()  # fd -> oldest first

    def accept(self, listener: socket.socket) -> None:
        """Accept what the listener has (up to ACCEPT_BATCH connections)."""
        for _ in range(ACCEPT_BATCH):
            try:
                sock, _addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and friends: keep serving the others
                log.error("accept failed: %s", exc)
                if exc.errno in (errno.EMFILE, errno.ENFILE) and self.waiting:
                    self._close(next(iter(self.waiting.values())), None)  # make room
                return
            sock.setblocking(False)
            if len(self.waiting) >= PENDING_HANDSHAKES:
                oldest = next(iter(self.waiting.values()))
                self.server.failures.line(
                    logging.INFO,
                    f"closed connection {oldest.peer}: {PENDING_HANDSHAKES} connections were "
                    "waiting for their HELLO (a connect flood?); it waited longest",
                )
                self._close(oldest, None)
            pending = _Pending(sock, peer_name(sock), time.monotonic() + self.server.hello_timeout)
            self.waiting[sock.fileno()] = pending
            self.sel.register(sock, selectors.EVENT_READ, pending)

    def readable(self, pending: _Pending) -> None:
        """Read what arrived of pending's HELLO; admit it once complete."""
        try:
            data = pending.sock.recv(HELLO_LIMIT + 8)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(pending, None)
            return
        pending.buf += data
        try:
            name = parse_hello(pending.buf)
        except errors.ProtocolError as exc:
            self._refuse(pending, exc)
            return
        if name is None:
            return
        self._forget(pending)
        peer = f"{pending.peer}({name})" if name else pending.peer
        if not self.server.admit(pending.sock, peer):
            refusal = errors.ServerConnectionError(
                f"the toondb server already serves its maximum of {self.server.max_clients} "
                "clients (--max-clients); retry later"
            )
            self.server.failures.line(logging.INFO, f"refused connection {peer}: {refusal}")
            _send_quietly(pending.sock, P.error_frame(refusal))
            pending.sock.close()

    def expire(self, now: float) -> float | None:
        """Close the connections whose HELLO deadline passed; the seconds until the
        next deadline (None: nobody is waiting)."""
        while self.waiting:
            oldest = next(iter(self.waiting.values()))
            if oldest.deadline > now:
                return oldest.deadline - now
            self._refuse(
                oldest,
                errors.ProtocolError(
                    f"no HELLO within {self.server.hello_timeout:g} s of connecting"
                ),
            )
        return None

    def close_all(self) -> None:
        for pending in list(self.waiting.values()):
            self._close(pending, None)

    def _refuse(self, pending: _Pending, exc: errors.ProtocolError) -> None:
        self.server.failures.line(logging.INFO, f"refused connection {pending.peer}: {exc}")
        self._close(pending, P.error_frame(exc))

    def _forget(self, pending: _Pending) -> None:
        self.waiting.pop(pending.sock.fileno(), None)
        try:
            self.sel.unregister(pending.sock)
        except (KeyError, ValueError):
            pass

    def _close(self, pending: _Pending, reply: bytes | None) -> None:
        self._forget(pending)
        if reply is not None:
            _send_quietly(pending.sock, reply)
        pending.sock.close()


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    """A last small frame to a connection about to be closed, if its buffer takes it."""
    try:
        sock.send(data)
    except OSError:
        pass
