"""One client connection to toondb-server: a blocking Unix socket that sends a
request frame and reads its reply frame (toondb.ipc.protocol), with the failure
rules every request shares: a timeout or a lost socket closes the connection
and raises ServerConnectionError; a request interrupted between request and
reply (KeyboardInterrupt, say) poisons the connection, since its reply may
still be on the way. IpcClient pools these; a transaction or an unfinished
scan holds one."""

from __future__ import annotations

import socket
from typing import Any, Protocol

from toondb import errors
from toondb.ipc import protocol as P

__all__ = ["ClientConnection", "ConnectionOwner", "reply_error"]

RECV_SIZE = 65536
_U32 = P.U32.unpack_from


class ConnectionOwner(Protocol):
    """What a connection needs of the client that opened it (IpcClient)."""

    socket_path: str
    timeout: float | None
    _conns: Any  # the owner's set of open connections (a WeakSet)


class ClientConnection:
    """One connection: a blocking Unix socket with kernel-side send/receive timeouts
    (SO_RCVTIMEO / SO_SNDTIMEO, so the hot path makes no poll() call)."""

    __slots__ = ("sock", "client", "pending", "rbuf", "dead", "__weakref__")

    def __init__(self, client: ConnectionOwner, sock: socket.socket) -> None:
        self.sock: socket.socket | None = sock
        self.client = client
        self.pending: list[bytes] = []  # requests whose replies nobody waits for (SCAN_CLOSE)
        self.rbuf = b""
        self.dead: Exception | None = None

    def close(self, reason: Exception | None = None) -> None:
        sock = self.sock
        if sock is not None:
            self.sock = None
            self.dead = reason
            try:
                sock.close()
            except OSError:
                pass
        self.client._conns.discard(self)

    def _fail(self, exc: BaseException) -> Exception:
        """The connection is unusable after exc: close it, return what to raise."""
        if isinstance(exc, errors.ToonDBError):
            out: Exception = exc
        elif isinstance(exc, (BlockingIOError, TimeoutError)):
            out = errors.ServerConnectionError(
                f"the toondb server at {self.client.socket_path} did not answer within "
                f"{self.client.timeout:g} s"
            )
        else:
            out = errors.ServerConnectionError(
                f"lost the connection to the toondb server at {self.client.socket_path}: {exc}"
            )
        self.close(out)
        return out

    def _gone(self) -> Exception:
        if self.dead is not None:
            return type(self.dead)(*self.dead.args)
        return errors.ClosedError("this IpcClient was closed; connect again")

    def call(self, request: bytes) -> tuple[int, bytes]:
        """Send one request, return (status, payload) of its reply."""
        sock = self.sock
        if sock is None:
            raise self._gone()
        if self.pending:
            self._flush()
        try:
            sock.sendall(request)
            if not self.rbuf:
                data = sock.recv(RECV_SIZE)
                if len(data) > 4 and _U32(data, 0)[0] + 4 == len(data):
                    return data[4], data[5:]
                self.rbuf = data
                if not data:
                    raise self._eof()
            return self._read()
        except OSError as exc:
            raise self._fail(exc) from None
        except BaseException:
            # interrupted between request and reply (KeyboardInterrupt, say): a reply
            # may still be on its way, so this connection can never be used again
            self.close(_interrupted())
            raise

    def _flush(self) -> None:
        pending, self.pending = self.pending, []
        try:
            self.sock.sendall(b"".join(pending))  # type: ignore[union-attr]
            for _ in pending:
                self._read()
        except OSError as exc:
            raise self._fail(exc) from None
        except BaseException:
            self.close(_interrupted())
            raise

    def _eof(self) -> Exception:
        return errors.ServerConnectionError(
            f"the toondb server at {self.client.socket_path} closed the connection "
            "(it stopped or was killed)"
        )

    def _read(self) -> tuple[int, bytes]:
        """One reply frame, whatever the size, from rbuf and the socket."""
        sock = self.sock
        assert sock is not None
        buf = self.rbuf
        while len(buf) < 4:
            data = sock.recv(RECV_SIZE)
            if not data:
                raise self._eof()
            buf += data
        n = _U32(buf, 0)[0]
        if n == 0:
            raise self._fail(errors.ProtocolError("the server sent an empty frame"))
        if len(buf) >= n + 4:
            self.rbuf = buf[n + 4 :]
            return buf[4], buf[5 : n + 4]
        # a large reply: receive the rest straight into one buffer
        whole = bytearray(n + 4)
        whole[: len(buf)] = buf
        view = memoryview(whole)
        got = len(buf)
        while got < n + 4:
            k = sock.recv_into(view[got:])
            if k == 0:
                view.release()
                raise self._eof()
            got += k
        view.release()
        self.rbuf = b""
        return whole[4], bytes(memoryview(whole)[5:])


def _interrupted() -> Exception:
    return errors.ServerConnectionError(
        "a request on this connection was interrupted before its reply arrived; the "
        "connection was dropped (its transaction, if any, is aborted by the server)"
    )


def reply_error(code: int, payload: bytes) -> Exception:
    if code == P.ST_ERROR:
        return P.exception_from_error(payload)
    return errors.ProtocolError(f"unexpected reply status 0x{code:02x}")
