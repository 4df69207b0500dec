"""Helpers for the IPC tests (no tests here): a toondb-server in a subprocess that
is waited for by its "listening" line, never by a sleep, and stopped with a
timeout, so a hung server fails a test instead of hanging it."""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from toondb.ipc import protocol as P

START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0


def server_command() -> list[str]:
    """The installed toondb-server console script (beside this interpreter, else on PATH)."""
    bindir = os.path.dirname(sys.executable)
    exe = shutil.which("toondb-server", path=bindir + os.pathsep + os.environ.get("PATH", ""))
    if exe is None:
        raise RuntimeError(
            "the toondb-server command is not installed; reinstall the package (pip install -e .)"
        )
    return [exe]


MODULE_COMMAND = [sys.executable, "-m", "toondb.server"]


class ServerProcess:
    """toondb-server --db PATH [args...] as a subprocess; stderr goes to a log file."""

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        *args: str,
        command: list[str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        log_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.db_path = str(db_path)
        self.args = list(args)
        self.command = command or MODULE_COMMAND
        self.cwd = cwd
        self.log_path = Path(log_path or (str(Path(self.db_path).parent / "server") + ".log"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.line = ""
        self.socket_path = ""

    def start(self, timeout: float = START_TIMEOUT, expect_listening: bool = True) -> ServerProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [*self.command, "--db", self.db_path, *self.args],
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
                cwd=self.cwd,
            )
        finally:
            log.close()
        if expect_listening:
            self.line = self.read_line(timeout)
            if "listening on " not in self.line:
                self.kill()
                raise AssertionError(f"toondb-server did not start: {self.line!r}\n{self.log()}")
            rest = self.line.split("listening on ", 1)[1]
            self.socket_path = rest.split(" (", 1)[0]
        return self

    def read_line(self, timeout: float) -> str:
        """The server's first stdout line (or what there is at EOF), waiting at most timeout."""
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)
        buf = b""
        deadline = time.monotonic() + timeout
        try:
            while b"\n" not in buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.kill()
                    raise AssertionError(
                        f"toondb-server printed no line in {timeout} s\n{self.log()}"
                    )
                if not sel.select(left):
                    continue
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                buf += chunk
        finally:
            sel.close()
        return buf.decode("utf-8", "replace").split("\n", 1)[0]

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"toondb-server did not exit within {timeout} s\n{self.log()}"
            ) from None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc is not None else 0
        self.proc.send_signal(sig)
        code = self.wait(timeout)
        self._close_pipes()
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT)
        self._close_pipes()

    def _close_pipes(self) -> None:
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    def memory_kib(self, field: str = "RssAnon") -> int:
        """A /proc/<pid>/status field in KiB (RssAnon: heap and stacks, not the mmap'd file)."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise KeyError(field)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def read_line(fd: int, timeout: float) -> str:
    """Bytes from fd up to the first newline (or EOF), waiting at most timeout seconds.
    Reads the raw descriptor one chunk at a time, so nothing is left in a buffer."""
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)
    buf = b""
    deadline = time.monotonic() + timeout
    try:
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line within {timeout} s (got {buf!r})")
            if not sel.select(left):
                continue
            chunk = os.read(fd, 1)
            if not chunk:
                break
            buf += chunk
    finally:
        sel.close()
    return buf.decode("utf-8", "replace")


def raw_connect(path: str, hello: bool = True, timeout: float = 10.0) -> socket.socket:
    """A bare socket to the server (after a valid HELLO unless hello=False)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    if hello:
        s.sendall(P.frame(P.OP_HELLO, P.HELLO_HEAD.pack(P.MAGIC, 1, 1) + b"raw test"))
        code, _ = read_frame(s)
        assert code == P.ST_OK
    return s


def read_frame(s: socket.socket) -> tuple[int, bytes]:
    """One reply frame; (-1, b"") when the server closed the connection."""
    head = _read_exact(s, 4)
    if head is None:
        return -1, b""
    n = P.U32.unpack(head)[0]
    body = _read_exact(s, n)
    if body is None:
        return -1, b""
    return body[0], body[1:]


def _read_exact(s: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        try:
            chunk = s.recv(n - len(buf))
        except ConnectionResetError:
            return None
        if not chunk:
            return None
        buf += chunk
    return buf


def error_of(payload: bytes) -> tuple[str, str]:
    n = payload[0]
    return payload[1 : 1 + n].decode(), payload[1 + n :].decode("utf-8", "replace")
