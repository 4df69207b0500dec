"""What toondb-server allows one client, and how it reports what clients get wrong.

Every limit of the server in one place (docs/ipc-protocol.md, "Limits", states them
for users). A limit protects the other clients, the server's memory or other
processes' readers from one connection, however hostile:

=========================  =========================  =========================================
limit                      default (option)           what a client gets past it
=========================  =========================  =========================================
request frame size         8 MiB (--max-frame-size)   ProtocolError, connection closed
admitted connections       256 (--max-clients)        ServerConnectionError at HELLO, closed
connections awaiting       128 (fixed)                the oldest waiting one is closed
  their HELLO
HELLO deadline             2 s (--hello-timeout)      ProtocolError, connection closed
rest of a started frame    10 s of silence            ProtocolError, connection closed
a reply not read           30 s                       connection closed
unsent reply bytes         16 MiB                     the server stops reading that
                           (--max-reply-buffer)       connection's requests until its
                                                      replies are read
open scans (cursors)       64 (--max-cursors)         CursorLimitError
reader slots of the        all but a reserve of       ReadersFullError
  shared table             min(64, max_readers / 4)
                           (--reader-reserve)
idle transaction holding   off                        the transaction is aborted;
  the write lock           (--idle-transaction-       TransactionTimeoutError on the
                           timeout)                   connection's next request
=========================  =========================  =========================================

Failed requests are logged one line each (error class, message, client), at most
``LOG_RATE`` lines a second after a burst of ``LOG_BURST`` (FailureLog); tracebacks
only at debug level.
"""

from __future__ import annotations

import logging
import threading
import time

__all__ = [
    "DEFAULT_MAX_CLIENTS",
    "PENDING_HANDSHAKES",
    "HELLO_TIMEOUT",
    "FRAME_TIMEOUT",
    "SEND_TIMEOUT",
    "DEFAULT_MAX_REPLY_BUFFER",
    "DEFAULT_MAX_CURSORS",
    "DEFAULT_READER_RESERVE",
    "reader_reserve",
    "FailureLog",
]

DEFAULT_MAX_CLIENTS = 256  # connections past their HELLO served at once
PENDING_HANDSHAKES = 128  # connections waiting for their HELLO (counted apart)
HELLO_TIMEOUT = 2.0  # seconds a new connection has to send its HELLO
FRAME_TIMEOUT = 10.0  # seconds of silence allowed in the middle of a frame
SEND_TIMEOUT = 30.0  # seconds a reply may wait for a client that does not read
DEFAULT_MAX_REPLY_BUFFER = 16 << 20  # unsent reply bytes held for one connection
DEFAULT_MAX_CURSORS = 64  # open scans per connection
DEFAULT_READER_RESERVE = 64  # reader slots the server leaves to other processes

LOG_RATE = 10.0  # failed-request lines a second, after a burst of
LOG_BURST = 50
LINE_LIMIT = 300  # characters of an error message in one log line


def reader_reserve(slots: int, asked: int | None) -> int:
    """The reader slots (of the shared table's `slots`) the server leaves to
    other processes: `asked`, or by default min(64, slots // 4)."""
    if asked is None:
        return min(DEFAULT_READER_RESERVE, slots // 4)
    if not 0 <= asked < slots:
        raise ValueError(
            f"--reader-reserve must be from 0 to {slots - 1} (the reader table has {slots} "
            "slots; the database's max_readers)"
        )
    return asked


class FailureLog:
    """One log line per failed request, rate limited across the whole server.

    A typed error (a toondb error, or ValueError/TypeError/KeyError: the client's
    business) is logged at INFO as "request failed"; anything else is a server
    bug and is logged at WARNING as "unexpected", with its traceback only when
    the logger is at DEBUG. Past the rate, lines are counted and the count is
    logged with the next line that gets through."""

    def __init__(self, log: logging.Logger, rate: float = LOG_RATE, burst: int = LOG_BURST):
        self.log = log
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._stamp = time.monotonic()
        self._dropped = 0
        self._mutex = threading.Lock()

    def failed(self, who: str, exc: BaseException, typed: bool) -> None:
        """A request of the client `who` failed with exc."""
        level = logging.INFO if typed else logging.WARNING
        if not self.log.isEnabledFor(level):
            return
        name = type(exc).__name__
        what = "request failed" if typed else "unexpected"
        self.line(level, f"session {who}: {what}: {name}: {exc}", exc if not typed else None)

    def line(self, level: int, text: str, exc: BaseException | None = None) -> None:
        """Log text as one line (newlines escaped, long messages cut), if the rate allows."""
        if not self.log.isEnabledFor(level):
            return
        with self._mutex:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens < 1.0:
                self._dropped += 1
                return
            self._tokens -= 1.0
            dropped, self._dropped = self._dropped, 0
        text = text.replace("\r", "\\r").replace("\n", "\\n")
        if len(text) > LINE_LIMIT:
            text = text[:LINE_LIMIT] + f"... ({len(text) - LINE_LIMIT} more characters)"
        if dropped:
            text += f" [{dropped} earlier lines not logged: rate limit]"
        trace = exc if exc is not None and self.log.isEnabledFor(logging.DEBUG) else None
        self.log.log(level, "%s", text, exc_info=trace)
