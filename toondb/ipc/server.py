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

Modules: this one (the Server: bind, accept, admit, shut down; and the command line),
toondb.ipc.session (one connection: handshake, frame loop, its transaction and scans),
toondb.ipc.handlers (one function per request opcode), toondb.ipc.protocol (the bytes).

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
from typing import Any

from toondb import errors
from toondb.database import Database
from toondb.ipc import protocol as P
from toondb.ipc.handlers import HANDLERS, register_handler
from toondb.ipc.protocol import unix_address
from toondb.ipc.session import FRAME_TIMEOUT, Session
from toondb.version import __version__

__all__ = ["Server", "main", "SOCKET_NAME", "LOCK_NAME", "FRAME_TIMEOUT", "register_handler"]

SOCKET_NAME = "toondb.sock"
LOCK_NAME = "toondb.server.lock"
DEFAULT_MAX_CLIENTS = 256
PENDING_HANDSHAKES = 64  # connections beyond max_clients that may wait for their HELLO

log = logging.getLogger("toondb.server")


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
        self.handlers = HANDLERS  # the opcode table sessions dispatch through
        self.config = config
        self.db: Database | None = None
        self.info: dict[str, Any] = {}
        self._lock_fd = -1
        self._listener: socket.socket | None = None
        self._socket_ino: tuple[int, int] | None = None
        self._sessions: set[Session] = set()
        self._admitted: set[Session] = set()  # sessions past their handshake
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
            "version": __version__,
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
            session = Session(self, sock)
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

    # ---- what sessions ask of their server ----

    @property
    def stopping(self) -> bool:
        """True once stop() was called: sessions end after their request in flight."""
        return self._stopping

    def admit(self, session: Session) -> bool:
        """A session that completed its handshake asks to be served: False when the
        server already serves max_clients (or is stopping)."""
        with self._mutex:
            if self._stopping or len(self._admitted) >= self.max_clients:
                return False
            self._admitted.add(session)
            return True

    def forget(self, session: Session) -> None:
        """A session ended (its thread's last act)."""
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
