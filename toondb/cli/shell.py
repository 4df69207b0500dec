"""The interactive shell (``toondb shell PATH``): SQL over several lines ending with ';',
dot commands (.help lists them), line editing, history and completion on a terminal."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import IO, Any, Callable

from toondb.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    error_message,
    key_bytes,
    script_progress,
    snapshot,
    whole_number,
)
from toondb.cli.render import MODES, is_blank_sql, print_mapping, render, show_bytes, split_sql
from toondb.database import Database
from toondb.errors import CLIError, CorruptionError, ToonDBError
from toondb.version import __version__

__all__ = ["Shell", "HELP"]

HELP = """\
Enter SQL statements ending with ';' (they may span lines), or a command:
  .get KEY                 print the value stored under KEY
  .put KEY VALUE           store VALUE under KEY (quote words with spaces)
  .delete KEY              delete KEY
  .scan [PREFIX] [LIMIT]   keys and values that start with PREFIX (at most LIMIT, default 100)
  .tables                  the SQL tables
  .schema [TABLE]          CREATE statements of every table, or of one
  .indexes [TABLE]         the SQL indexes
  .stats                   counts that describe the database
  .check                   verify the whole file (checksums, tree structure, free pages)
  .mode [MODE]             show results as table (default), toon, json, csv or line
  .timer on|off            print how long each statement took
  .read FILE               run the SQL script in FILE (executescript: a dump loads in one go)
  .dump                    the whole database as SQL (as sqlite3's .dump)
  .help                    this text
  .quit                    leave (also .exit, or Ctrl-D)
Keys and values are UTF-8 text. Inside BEGIN ... COMMIT, .get/.put/.delete/.scan join
the open transaction."""

_DOT_COMMANDS = (
    ".get", ".put", ".delete", ".scan", ".tables", ".schema", ".indexes", ".stats",
    ".check", ".mode", ".timer", ".read", ".dump", ".help", ".quit", ".exit",
)  # fmt: skip


class _Quit(Exception):
    pass


class Shell:
    """The interactive shell: reads SQL (multi-line, ending with ';') and dot commands.

    Interactive on a terminal (prompts, readline editing and history); otherwise it
    reads a script from its input without prompts. In a script, an error is reported
    and the script goes on (or stops with bail=True); the exit status is then 1.
    """

    PROMPT = "toondb> "
    CONTINUE = "   ...> "

    def __init__(
        self,
        db: Database,
        *,
        out: IO[str] | None = None,
        err: IO[str] | None = None,
        interactive: bool = False,
        mode: str = "table",
        bail: bool = False,
    ) -> None:
        self.db = db
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.interactive = interactive
        self.mode = mode
        self.bail = bail
        self.timer = False
        self.errors = 0
        self.buffer = ""
        self._lines_in_buffer = 0
        self._readline: Any = None

    # ---- input

    def _lines(self) -> Iterator[str]:
        if not self.interactive:
            for line in sys.stdin:
                yield line.rstrip("\n")
            return
        while True:
            prompt = self.PROMPT if is_blank_sql(self.buffer) else self.CONTINUE
            try:
                yield input(prompt)
            except KeyboardInterrupt:
                self.out.write("^C\n")
                self.buffer = ""
                self._lines_in_buffer = 0
            except EOFError:
                self.out.write("\n")
                return

    def run(self) -> int:
        """Run until .quit or end of input; the exit status."""
        history = self._start_readline() if self.interactive else None
        if self.interactive and threading.current_thread() is threading.main_thread():
            # Ctrl-C interrupts the statement or the line being typed, even when the
            # shell was started with SIGINT ignored (as a background job's children
            # are): the terminal's user asked for it
            signal.signal(signal.SIGINT, signal.default_int_handler)
        if self.interactive:
            self.out.write(
                f"toondb {__version__} shell on {self.db.path}\n"
                "Enter SQL ending with ';', or .help for commands.\n"
            )
        try:
            for line in self._lines():
                try:
                    self.feed(line)
                except _Quit:
                    break
                except KeyboardInterrupt:  # Ctrl-C while a statement ran: say so, as sqlite3
                    self.out.write("^C\n")
                    self.out.flush()
                    self.buffer = ""
                    self._error("interrupted")
                if self.bail and self.errors:
                    break
            else:
                if self.buffer.strip() and not is_blank_sql(self.buffer):
                    text, self.buffer = self.buffer, ""
                    self._run_sql(text)  # the last statement may lack its ';'
        finally:
            self._close_open_transaction()
            if history is not None:
                history()
        return EXIT_ERROR if self.errors and not self.interactive else EXIT_OK

    def feed(self, line: str) -> None:
        """One line of input."""
        if line.lstrip().startswith(".") and is_blank_sql(self.buffer):
            self.buffer = ""
            self._guard(self.command, line.strip())
            return
        self.buffer += line + "\n"
        self._lines_in_buffer += 1
        stmts, rest = split_sql(self.buffer)
        if stmts:
            self._merge_history(self.buffer[: len(self.buffer) - len(rest)])
            self._lines_in_buffer = 1 if rest else 0
        self.buffer = rest
        for s in stmts:
            self._run_sql(s)
            if self.bail and self.errors:
                return

    def _merge_history(self, text: str) -> None:
        """A statement typed over several lines becomes one history entry (so Ctrl-P /
        up-arrow recalls all of it), with its lines joined by spaces."""
        rl = self._readline
        n = self._lines_in_buffer
        if rl is None or n < 2 or "--" in text:
            return
        length = rl.get_current_history_length()
        if length < n:
            return
        for _ in range(n):
            rl.remove_history_item(rl.get_current_history_length() - 1)
        rl.add_history(" ".join(part.strip() for part in text.splitlines() if part.strip()))

    def _guard(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except _Quit:
            raise
        except KeyboardInterrupt:
            raise
        except CLIError as e:
            self._error(str(e))
        except (ToonDBError, ValueError, TypeError, OSError, KeyError) as e:
            self._error(error_message(e, one_line=False))

    def _error(self, msg: str) -> None:
        self.errors += 1
        self.err.write(f"Error: {msg}\n")
        self.err.flush()

    def _run_sql(self, sql: str) -> None:
        def run() -> None:
            t0 = time.perf_counter()
            result = self.db.execute_sql(sql)
            elapsed = time.perf_counter() - t0
            render(result, self.mode, self.out)
            if self.timer:
                self.out.write(f"Run Time: {elapsed:.6f} s\n")
            self.out.flush()

        self._guard(run)

    # ---- dot commands

    def command(self, line: str) -> None:
        try:
            words = shlex.split(line)
        except ValueError as e:
            raise CLIError(f"{e} in {line!r}") from None
        name, args = words[0].lower(), words[1:]
        handler = getattr(self, "_cmd_" + name[1:], None) if name in _DOT_COMMANDS else None
        if handler is None:
            raise CLIError(f"unknown command {words[0]}; .help lists the commands")
        handler(args)
        self.out.flush()

    def _nargs(self, args: list[str], lo: int, hi: int, usage: str) -> None:
        if not lo <= len(args) <= hi:
            raise CLIError(f"usage: {usage}")

    def _kv(self) -> Any:
        """The open SQL transaction (BEGIN ...) if there is one, else the database."""
        current = getattr(self.db, "current_transaction", None)
        txn = current() if current is not None else None
        return txn if txn is not None else self.db

    def _cmd_get(self, args: list[str]) -> None:
        self._nargs(args, 1, 1, ".get KEY")
        value = self._kv().get(key_bytes(args[0]))
        if value is None:
            raise CLIError(f"key not found: {args[0]}")
        self.out.write(show_bytes(value) + "\n")

    def _cmd_put(self, args: list[str]) -> None:
        self._nargs(args, 2, 2, ".put KEY VALUE")
        self._kv().put(key_bytes(args[0]), args[1].encode("utf-8", "surrogateescape"))

    def _cmd_delete(self, args: list[str]) -> None:
        self._nargs(args, 1, 1, ".delete KEY")
        if not self._kv().delete(key_bytes(args[0])):
            raise CLIError(f"key not found: {args[0]}")

    def _cmd_scan(self, args: list[str]) -> None:
        self._nargs(args, 0, 2, ".scan [PREFIX] [LIMIT]")
        prefix = args[0].encode("utf-8", "surrogateescape") if args else b""
        limit = whole_number(args[1], "LIMIT") if len(args) > 1 else 100
        n = 0
        it = self._kv().scan(prefix)
        try:
            for k, v in it:
                if n == limit:
                    self.out.write(
                        f"... (more; .scan {shlex.quote(args[0] if args else '')} N for more)\n"
                    )
                    break
                self.out.write(f"{show_bytes(k)}\t{show_bytes(v)}\n")
                n += 1
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    def _cmd_tables(self, args: list[str]) -> None:
        self._nargs(args, 0, 0, ".tables")
        for name in _table_names(self.db):
            self.out.write(name + "\n")

    def _cmd_schema(self, args: list[str]) -> None:
        self._nargs(args, 0, 1, ".schema [TABLE]")
        for t in self._tables(args):
            for stmt in t.create_sql:
                self.out.write(stmt + "\n")

    def _cmd_indexes(self, args: list[str]) -> None:
        self._nargs(args, 0, 1, ".indexes [TABLE]")
        for t in self._tables(args):
            for ix in t.indexes:
                kind = "UNIQUE " if ix.unique else ""
                using = f"USING {ix.method} " if ix.method != "btree" else ""
                self.out.write(f"{ix.name}  {kind}ON {t.name} {using}({', '.join(ix.columns)})\n")

    def _tables(self, args: list[str]) -> list[Any]:
        """The table args names, or every table (toondb.sql.schema.Table values)."""
        from toondb.sql import schema  # imported when used: most commands need no SQL

        with snapshot(self.db) as txn:
            if not args:
                return schema.tables(txn)
            t = schema.table(txn, args[0])
        if t is None:
            raise CLIError(f"no such table: {args[0]}")
        return [t]

    def _cmd_stats(self, args: list[str]) -> None:
        self._nargs(args, 0, 0, ".stats")
        print_mapping(self.db.stats(), self.out)

    def _cmd_check(self, args: list[str]) -> None:
        self._nargs(args, 0, 0, ".check")
        try:
            counts = self.db.check()
        except CorruptionError as e:
            problems = getattr(e, "problems", None) or [str(e)]
            raise CLIError("the database is damaged:\n  " + "\n  ".join(problems)) from None
        self.out.write("ok: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + "\n")

    def _cmd_mode(self, args: list[str]) -> None:
        self._nargs(args, 0, 1, ".mode [" + "|".join(MODES) + "]")
        if not args:
            self.out.write(self.mode + "\n")
            return
        if args[0] not in MODES:
            raise CLIError(f"unknown mode {args[0]!r}; use one of {', '.join(MODES)}")
        self.mode = args[0]

    def _cmd_read(self, args: list[str]) -> None:
        self._nargs(args, 1, 1, ".read FILE")
        try:
            with open(args[0], encoding="utf-8") as f:
                script = f.read()
        except OSError as e:
            raise CLIError(f"cannot open {args[0]!r}: {e.strerror}") from None
        progress, finish = script_progress(len(script))
        try:
            self.db.executescript(script, progress=progress)
        finally:
            finish()

    def _cmd_dump(self, args: list[str]) -> None:
        self._nargs(args, 0, 0, ".dump")
        txn = self.db.current_transaction()
        for line in txn.iterdump() if txn is not None else self.db.iterdump():
            self.out.write(line + "\n")

    def _cmd_timer(self, args: list[str]) -> None:
        self._nargs(args, 1, 1, ".timer on|off")
        if args[0].lower() not in ("on", "off"):
            raise CLIError("usage: .timer on|off")
        self.timer = args[0].lower() == "on"

    def _cmd_help(self, args: list[str]) -> None:
        self.out.write(HELP + "\n")

    def _cmd_quit(self, args: list[str]) -> None:
        raise _Quit

    _cmd_exit = _cmd_quit

    # ---- the terminal

    def _close_open_transaction(self) -> None:
        rollback = getattr(self.db, "rollback", None)
        if rollback is not None and rollback():
            self.err.write("Warning: the open transaction was rolled back\n")

    def _start_readline(self) -> Callable[[], None] | None:
        """Line editing and history (~/.toondb_history, or $TOONDB_HISTORY; an empty
        TOONDB_HISTORY keeps no file). Returns the function that saves the history."""
        try:
            import readline
        except ImportError:
            return None
        self._readline = readline
        path = os.environ.get("TOONDB_HISTORY")
        if path is None:
            path = os.path.join(os.path.expanduser("~"), ".toondb_history")
        words = [*_DOT_COMMANDS, *_SQL_WORDS]

        def complete(text: str, state: int) -> str | None:
            if text.startswith("."):
                options = [w for w in _DOT_COMMANDS if w.startswith(text.lower())]
            else:
                names = _safe_table_names(self.db)
                low = text.lower()
                options = [w for w in names + words if w.lower().startswith(low)]
                if text.islower():
                    options = [w.lower() if w in _SQL_WORDS else w for w in options]
            return options[state] if state < len(options) else None

        readline.set_completer(complete)
        readline.set_completer_delims(" \t\n;,()=<>'\"")
        if "libedit" in (readline.__doc__ or ""):
            readline.parse_and_bind("bind ^I rl_complete")
        else:
            readline.parse_and_bind("tab: complete")
        if not path:
            return None
        with contextlib.suppress(OSError):
            readline.read_history_file(path)
        readline.set_history_length(1000)

        def save() -> None:
            with contextlib.suppress(OSError):
                readline.write_history_file(path)

        return save


_SQL_WORDS = (
    "SELECT", "FROM", "WHERE", "INSERT", "INTO", "VALUES", "UPDATE", "SET", "DELETE",
    "CREATE", "TABLE", "INDEX", "DROP", "ORDER", "BY", "GROUP", "HAVING", "LIMIT", "OFFSET",
    "JOIN", "LEFT", "ON", "AND", "OR", "NOT", "NULL", "PRIMARY", "KEY", "BEGIN", "COMMIT",
    "ROLLBACK", "EXPLAIN", "PRAGMA", "DISTINCT", "COUNT", "INTEGER", "TEXT", "REAL", "BLOB",
)  # fmt: skip


def _table_names(db: Database) -> list[str]:
    from toondb.sql import schema  # imported when used: most commands need no SQL

    with snapshot(db) as txn:
        return schema.table_names(txn)


def _safe_table_names(db: Database) -> list[str]:
    try:
        return _table_names(db)
    except Exception:  # noqa: BLE001 - completion must never fail the shell
        return []
