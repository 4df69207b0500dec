"""toondb-server: one database served to many processes over a Unix socket.

::

    toondb-server --db ./my_database          # listens on ./my_database/toondb.sock
    toondb-server --db ./my_database --replicate s3://bucket/prefix   # and ships every commit

Shape: the main thread accepts connections and reads each one's HELLO without
blocking (toondb.ipc.admission); each admitted connection gets a thread of its
own (a *session*) that reads frames, calls the embedded ``Database`` and writes
the replies. The embedded database does
all concurrency control: a session's transaction is an ordinary server-side
``Transaction`` owned by that session, so isolation over IPC is exactly the
embedded one. Why a thread per session rather than a selector loop feeding a
worker pool: a request that blocks (an immediate BEGIN or a commit waiting up to
lock_timeout for the write lock) blocks only its own connection; a session's
state needs no locking; and the request path is one ``recv`` in the thread that
serves it, with no hand-off between threads (the GIL serializes the Python part
of every request either way). Its cost is a thread per admitted connection,
bounded by ``--max-clients``; a connection that has not sent its HELLO costs no
thread.

Modules: this one (the Server: bind, serve, admit, shut down; and the command line),
toondb.ipc.admission (connections until their HELLO), toondb.ipc.session (one admitted
connection: frame loop, its transaction and scans), toondb.ipc.handlers (one function
per request opcode), toondb.ipc.protocol (the bytes), toondb.ipc.limits (every limit
the server enforces, and the rate-limited log of failed requests).

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

(4 and 5 are in toondb.ipc.session and toondb.ipc.admission.) Other processes'
embedded readers are never starved by IPC clients: the server's database handle
may own all but ``reader_reserve`` slots of the shared reader table
(``Env._limit_readers``), and each connection at most ``max_cursors`` open scans.
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
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from toondb import errors
from toondb.database import Database
from toondb.ipc import protocol as P
from toondb.ipc.admission import Admission
from toondb.ipc.handlers import HANDLERS, register_handler
from toondb.ipc.limits import (
    DEFAULT_MAX_CLIENTS,
    DEFAULT_MAX_CURSORS,
    DEFAULT_MAX_REPLY_BUFFER,
    FRAME_TIMEOUT,
    HELLO_TIMEOUT,
    FailureLog,
    reader_reserve,
)
from toondb.ipc.protocol import unix_address
from toondb.ipc.session import Session
from toondb.version import __version__

__all__ = ["Server", "main", "SOCKET_NAME", "LOCK_NAME", "FRAME_TIMEOUT", "register_handler"]

SOCKET_NAME = "toondb.sock"
LOCK_NAME = "toondb.server.lock"
SERVER_FILE_MODE = 0o600  # the page and lock files a server creates (unless config says)

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
        max_cursors: int = DEFAULT_MAX_CURSORS,
        max_reply_buffer: int = DEFAULT_MAX_REPLY_BUFFER,
        hello_timeout: float = HELLO_TIMEOUT,
        idle_transaction_timeout: float | None = None,
        reader_reserve: int | None = None,
        replicate: str | None = None,
        replicate_interval: float = 1.0,
    ) -> None:
        """config: the database's (docs/configuration.md); its file_mode defaults to
        0o600 here. The other limits: toondb.ipc.limits (and docs/ipc-protocol.md)."""
        if not isinstance(max_clients, int) or max_clients < 1:
            raise ValueError("max_clients must be an integer >= 1")
        if not isinstance(max_frame_size, int) or not 1024 <= max_frame_size <= 0x7FFFFFFF:
            raise ValueError("max_frame_size must be an integer from 1024 to 2**31 - 1")
        if not isinstance(max_cursors, int) or max_cursors < 1:
            raise ValueError("max_cursors must be an integer >= 1")
        if not isinstance(max_reply_buffer, int) or max_reply_buffer < 1:
            raise ValueError("max_reply_buffer must be an integer >= 1 (bytes)")
        if not hello_timeout > 0:
            raise ValueError("hello_timeout must be a number of seconds > 0")
        if idle_transaction_timeout is not None and not idle_transaction_timeout > 0:
            raise ValueError("idle_transaction_timeout must be a number of seconds > 0 (or None)")
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
        self.max_cursors = max_cursors
        self.max_reply_buffer = max_reply_buffer
        self.hello_timeout = float(hello_timeout)
        self.idle_transaction_timeout = (
            None if idle_transaction_timeout is None else float(idle_transaction_timeout)
        )
        self.reader_reserve = reader_reserve
        self.config = {"file_mode": SERVER_FILE_MODE, **(config or {})}
        self.db: Database | None = None
        self.replicate = replicate
        self.replicate_interval = replicate_interval
        self._replicator: Any = None  # toondb.replication.Replicator, in its own thread
        self._replicator_thread: threading.Thread | None = None
        self.info: dict[str, Any] = {}
        self.failures = FailureLog(log)
        self._lock_fd = -1
        self._listener: socket.socket | None = None
        self._socket_ino: tuple[int, int] | None = None
        self._sessions: set[Session] = set()  # admitted connections, each with its thread
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
            slots = self.db._reader_slots
            self.reader_reserve = reader_reserve(slots, self.reader_reserve)
            self.db._limit_readers(slots - self.reader_reserve)
            self._bind()
            if self.replicate:
                self._start_replicator()
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
            "max_cursors": self.max_cursors,
        }
        os.ftruncate(self._lock_fd, 0)
        os.pwrite(self._lock_fd, f"{os.getpid()}\n{self.socket_path}\n".encode(), 0)

    def _start_replicator(self) -> None:
        """--replicate URL: ship every commit to URL from a thread of this process,
        with handles of its own (toondb.replication.Replicator)."""
        from toondb.replication import Replicator

        assert self.replicate is not None  # started only with --replicate
        self._replicator = Replicator(
            self.db_path, self.replicate, interval=self.replicate_interval
        )
        self._replicator_thread = threading.Thread(
            target=self._replicator.run, name="toondb-replicate", daemon=True
        )
        self._replicator_thread.start()

    def _stop_replicator(self) -> None:
        """Ship what was committed, then stop the replicator (before the database closes)."""
        if self._replicator is None:
            return
        self._replicator.stopping.set()
        if self._replicator_thread is not None:
            self._replicator_thread.join(30.0)
        self._replicator = None
        self._replicator_thread = None

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
        admission = Admission(self, sel)
        try:
            while not self._stopping:
                timeout = admission.expire(time.monotonic())
                for key, _ in sel.select(timeout):
                    if self._stopping:
                        break
                    if key.data == "wake":
                        try:
                            while os.read(self._wake_r, 512):
                                pass
                        except BlockingIOError:
                            pass
                    elif key.data == "accept":
                        admission.accept(self._listener)
                    else:
                        admission.readable(key.data)
        finally:
            admission.close_all()
            sel.close()
            log.info("shutting down (%s)", self.stop_reason)
            self._shutdown()

    # ---- what sessions ask of their server ----

    @property
    def stopping(self) -> bool:
        """True once stop() was called: sessions end after their request in flight."""
        return self._stopping

    def admit(self, sock: socket.socket, peer: str) -> bool:
        """Serve a connection whose HELLO arrived (in a session thread of its own):
        False when the server already serves max_clients (or is stopping, or cannot
        start a thread); the caller then refuses it."""
        with self._mutex:
            if self._stopping or len(self._sessions) >= self.max_clients:
                return False
            session = Session(self, sock, peer)
            self._sessions.add(session)
        thread = threading.Thread(target=session.run, name="toondb-session", daemon=True)
        session.thread = thread
        try:
            thread.start()
        except RuntimeError as exc:  # cannot start a thread: refuse this one
            log.error("cannot start a session thread: %s", exc)
            with self._mutex:
                self._sessions.discard(session)
            return False
        return True

    def forget(self, session: Session) -> None:
        """A session ended (its thread's last act)."""
        with self._mutex:
            self._sessions.discard(session)

    @property
    def client_count(self) -> int:
        """Connections that completed their handshake and are still open."""
        with self._mutex:
            return len(self._sessions)

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
        self._stop_replicator()
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
        "--replicate",
        metavar="URL",
        help="also ship every committed transaction to URL (s3://bucket/prefix or "
        "file:///dir), as 'toondb replicate' does (docs/replication.md)",
    )
    p.add_argument(
        "--replicate-interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="with --replicate: ship what committed within this many seconds together (default 1)",
    )
    p.add_argument(
        "--sync-mode",
        choices=["full", "normal", "off"],
        help="the database's sync_mode (default: the database default, normal)",
    )
    p.add_argument(
        "--file-mode",
        type=_octal,
        default=SERVER_FILE_MODE,
        metavar="MODE",
        help="permission bits (octal) of the page and lock files when the server creates "
        f"them (default {SERVER_FILE_MODE:o}: owner only; 644 lets everyone read the data)",
    )
    p.add_argument(
        "--max-cursors",
        type=int,
        default=DEFAULT_MAX_CURSORS,
        metavar="N",
        help=f"open scans one connection may hold; past it CursorLimitError "
        f"(default {DEFAULT_MAX_CURSORS})",
    )
    p.add_argument(
        "--max-reply-buffer",
        type=int,
        default=DEFAULT_MAX_REPLY_BUFFER,
        metavar="BYTES",
        help="unsent reply bytes held for one connection; past it the server reads no more "
        f"of its requests until the client reads its replies (default {DEFAULT_MAX_REPLY_BUFFER})",
    )
    p.add_argument(
        "--hello-timeout",
        type=float,
        default=HELLO_TIMEOUT,
        metavar="SECONDS",
        help=f"how long a new connection may take to send its HELLO (default {HELLO_TIMEOUT:g})",
    )
    p.add_argument(
        "--idle-transaction-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="abort a transaction that holds the write lock when its connection sends no "
        "request for this long; its next request gets TransactionTimeoutError "
        "(default: off, such a transaction is never aborted)",
    )
    p.add_argument(
        "--reader-reserve",
        type=int,
        default=None,
        metavar="N",
        help="slots of the shared reader table the server never uses, kept for embedded "
        "readers in other processes (default: min(64, max_readers / 4))",
    )
    return p


def _octal(text: str) -> int:
    try:
        mode = int(text, 8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an octal mode such as 600") from None
    if not 0 <= mode <= 0o777:
        raise argparse.ArgumentTypeError(f"{text!r} is not a mode from 000 to 777")
    return mode


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
    config: dict[str, Any] = {"file_mode": args.file_mode}
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
            config=config,
            max_cursors=args.max_cursors,
            max_reply_buffer=args.max_reply_buffer,
            hello_timeout=args.hello_timeout,
            idle_transaction_timeout=args.idle_transaction_timeout,
            reader_reserve=args.reader_reserve,
            replicate=args.replicate,
            replicate_interval=args.replicate_interval,
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
    # A signal may land on a session thread while the main thread sleeps in
    # select(): Python runs on_signal only once the main thread wakes, so the
    # C-level handler must wake it by writing to the wake pipe itself.
    signal.set_wakeup_fd(server._wake_w, warn_on_full_buffer=False)
    print(
        f"toondb-server listening on {server.socket_path} "
        f"(database {server.db_path}, pid {os.getpid()}"
        f"{', read-only' if server.read_only else ''})",
        flush=True,
    )
    try:
        server.serve_forever()
    finally:
        signal.set_wakeup_fd(-1)  # before close() closes the pipe
        server.close()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
