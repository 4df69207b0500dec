"""The ``toondb`` command: an interactive shell and one-shot commands (docs/cli.md).

::

    toondb shell PATH                         SQL and key-value commands, interactively
    toondb sql PATH "SQL" [--format F]        table (default), toon, json, csv, line
    toondb get|put|delete|scan PATH ...       the key-value space
    toondb stats|check PATH                   counts; the full integrity check
    toondb backup PATH DEST                   a consistent copy, while the database is in use
    toondb compact PATH                       rewrite without free pages (needs exclusive access)
    toondb import|export PATH TABLE FILE      CSV or JSON lines
    toondb index build|query|info INDEX ...   vector index files (the bulk API)

Exit status: 0 on success; 1 when the command failed (a user's mistake, a SQL error, a
missing key, corruption found by ``check``), with one line on stderr that says why
(``check`` adds one line per damaged page); 2 for a malformed command line (argparse's
usage message). No traceback reaches the user unless ``TOONDB_DEBUG=1`` is set.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import csv
import json
import os
import shlex
import shutil
import struct
import sys
import tempfile
import time
import unicodedata
from collections.abc import Iterator, Sequence
from typing import IO, Any, Callable

import toondb
from toondb.database import DATA_FILE, LOCK_FILE, Database
from toondb.errors import CLIError, CorruptionError, ToonDBError
from toondb.toon.results import format_result

__all__ = ["main", "Shell", "render", "MODES"]

MODES = ("table", "toon", "json", "csv", "line")
EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


# ---------------------------------------------------------------------------------------
# Values as text
# ---------------------------------------------------------------------------------------


def show_bytes(b: bytes) -> str:
    """Bytes for a terminal line: UTF-8 where valid, \\xNN escapes elsewhere; the
    control characters that would break the line (and the backslash) escaped."""
    text = b.decode("utf-8", "backslashreplace")
    if any(c in text for c in "\n\r\t") or any(ord(c) < 32 or ord(c) == 127 for c in text):
        out = []
        for c in text:
            if c == "\n":
                out.append("\\n")
            elif c == "\r":
                out.append("\\r")
            elif c == "\t":
                out.append("\\t")
            elif ord(c) < 32 or ord(c) == 127:
                out.append(f"\\x{ord(c):02x}")
            else:
                out.append(c)
        text = "".join(out)
    return text


def _cell(v: Any) -> str:
    """A SQL value in the human modes (table, line)."""
    if v is None:
        return "NULL"
    if isinstance(v, (bytes, bytearray, memoryview)):
        return "x'" + bytes(v).hex() + "'"
    if isinstance(v, float):
        return repr(v)
    text = str(v)
    if "\n" in text or "\r" in text or "\t" in text:
        text = text.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return text


def _plain(v: Any) -> Any:
    """A SQL value for csv and JSON lines: BLOBs as base64 text."""
    if isinstance(v, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(v)).decode("ascii")
    return v


def _width(s: str) -> int:
    """Terminal columns of s: wide East Asian characters take two, combining marks none."""
    if s.isascii():
        return len(s)
    w = 0
    for c in s:
        if unicodedata.combining(c):
            continue
        w += 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1
    return w


def _pad(s: str, width: int, right: bool) -> str:
    fill = " " * (width - _width(s))
    return fill + s if right else s + fill


def render(result: Any, mode: str, out: IO[str]) -> None:
    """Write a SQL Result in one of MODES. A statement without result columns prints
    nothing in table, csv and line modes, and its rowcount document in toon and json."""
    if mode in ("toon", "json"):
        out.write(format_result(result, mode) + "\n")
        return
    columns = list(getattr(result, "columns", None) or [])
    if not columns:
        return
    rows = result.rows
    if mode == "csv":
        w = csv.writer(out, lineterminator="\n")
        w.writerow(columns)
        for r in rows:
            w.writerow(["" if v is None else _plain(v) for v in r])
        return
    if mode == "line":
        width = max(_width(c) for c in columns)
        for i, r in enumerate(rows):
            if i:
                out.write("\n")
            for c, v in zip(columns, r):
                out.write(f"{_pad(c, width, True)} = {_cell(v)}\n")
        return
    if mode != "table":
        raise CLIError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    cells = [[_cell(v) for v in r] for r in rows]
    numeric = [
        all(
            isinstance(r[i], (int, float)) and not isinstance(r[i], bool)
            for r in rows
            if r[i] is not None
        )
        for i in range(len(columns))
    ]
    widths = [_width(c) for c in columns]
    for r in cells:
        for i, s in enumerate(r):
            widths[i] = max(widths[i], _width(s))
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+\n"
    out.write(rule)
    out.write("| " + " | ".join(_pad(c, w, False) for c, w in zip(columns, widths)) + " |\n")
    out.write(rule)
    for r in cells:
        out.write("| " + " | ".join(_pad(s, w, n) for s, w, n in zip(r, widths, numeric)) + " |\n")
    if cells:
        out.write(rule)


# ---------------------------------------------------------------------------------------
# SQL text: where statements end
# ---------------------------------------------------------------------------------------


def split_sql(text: str) -> tuple[list[str], str]:
    """The complete statements in text (each ending with a ';' outside quotes and
    comments, without it) and the incomplete rest. Statements that are only comments
    or blanks are dropped."""
    stmts: list[str] = []
    start = 0
    i, n = 0, len(text)
    meaningful = False
    while i < n:
        c = text[i]
        if c in "'\"`[":
            close = "]" if c == "[" else c
            j = i + 1
            while j < n:
                if text[j] == close:
                    if close != "]" and j + 1 < n and text[j + 1] == close:
                        j += 2  # a doubled quote inside the quotes
                        continue
                    break
                j += 1
            if j >= n:
                return stmts, text[start:]  # an open quote: not complete
            meaningful = True
            i = j + 1
            continue
        if c == "-" and text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j < 0 else j + 1
            continue
        if c == "/" and text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                return stmts, text[start:]
            i = j + 2
            continue
        if c == ";":
            if meaningful:
                stmts.append(text[start:i].strip())
            start = i + 1
            meaningful = False
        elif not c.isspace():
            meaningful = True
        i += 1
    return stmts, text[start:] if meaningful else ""


def _is_blank_sql(text: str) -> bool:
    """True when text holds only whitespace and complete comments."""
    stmts, rest = split_sql(text + "\n;")
    return not stmts and not rest.strip()


# ---------------------------------------------------------------------------------------
# Opening databases
# ---------------------------------------------------------------------------------------


def _files(path: str) -> tuple[str, str]:
    """The page file and lock file of the database at path (a directory or a page file)."""
    if os.path.isfile(path):
        return path, path + "-lock"
    return os.path.join(path, DATA_FILE), os.path.join(path, LOCK_FILE)


def open_db(path: str, *, create: bool = False, read_only: bool = False) -> Database:
    """Open the database at path; without create, a missing one is a user's mistake."""
    if not create and not os.path.exists(_files(path)[0]):
        if os.path.isdir(path):
            raise CLIError(f"no toondb database in {path!r} (no {DATA_FILE} there)")
        raise CLIError(f"no toondb database at {path!r}")
    return Database.open(path, {"create_if_missing": create}, read_only=read_only)


def _key(text: str) -> bytes:
    if not text:
        raise CLIError("a key cannot be empty")
    return text.encode("utf-8", "surrogateescape")


# ---------------------------------------------------------------------------------------
# Schema text (.schema, .tables, .indexes) from the SQL catalog
# ---------------------------------------------------------------------------------------


def _catalog(db: Any) -> Any:
    from toondb.sql import catalog as C

    txn = db.begin_transaction(read_only=True)
    try:
        return C.load(txn)
    finally:
        txn.abort()


def _ident(name: str) -> str:
    if name.isidentifier() and name.isascii():
        return name
    return '"' + name.replace('"', '""') + '"'


def schema_sql(table: Any) -> list[str]:
    """CREATE TABLE (and CREATE INDEX) statements equivalent to a catalog TableInfo."""
    defs = []
    inline_pk = len(table.pk) == 1
    for c in table.columns:
        parts = [_ident(c.name)]
        if c.type_name.strip():
            parts.append(c.type_name.strip())
        if c.pk and inline_pk:
            parts.append("PRIMARY KEY")
            if table.autoincrement:
                parts.append("AUTOINCREMENT")
        if c.not_null:
            parts.append("NOT NULL")
        if c.default_sql is not None:
            parts.append(f"DEFAULT {c.default_sql}")
        if c.collation:
            parts.append(f"COLLATE {c.collation}")
        defs.append(" ".join(parts))
    if len(table.pk) > 1:
        defs.append("PRIMARY KEY (" + ", ".join(map(_ident, table.pk)) + ")")
    for ix in table.indexes:
        if ix.origin == "u":
            defs.append("UNIQUE (" + ", ".join(map(_ident, ix.columns)) + ")")
    for name, text in table.checks:
        defs.append((f"CONSTRAINT {_ident(name)} " if name else "") + f"CHECK ({text})")
    for fk in table.fks:
        ref = _ident(fk["table"])
        if fk.get("ref_columns"):
            ref += "(" + ", ".join(map(_ident, fk["ref_columns"])) + ")"
        s = "FOREIGN KEY (" + ", ".join(map(_ident, fk["columns"])) + f") REFERENCES {ref}"
        for what in ("on_delete", "on_update"):
            act = fk.get(what)
            if act and act != "NO ACTION":
                s += f" {what.replace('_', ' ').upper()} {act}"
        defs.append(s)
    out = [f"CREATE TABLE {_ident(table.name)} (\n  " + ",\n  ".join(defs) + "\n);"]
    for ix in table.indexes:
        if ix.origin == "c":
            unique = "UNIQUE " if ix.unique else ""
            cols = ", ".join(map(_ident, ix.columns))
            out.append(f"CREATE {unique}INDEX {_ident(ix.name)} ON {_ident(table.name)} ({cols});")
    return out


# ---------------------------------------------------------------------------------------
# The shell
# ---------------------------------------------------------------------------------------

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
  .help                    this text
  .quit                    leave (also .exit, or Ctrl-D)
Keys and values are UTF-8 text. Inside BEGIN ... COMMIT, .get/.put/.delete/.scan join
the open transaction."""

_DOT_COMMANDS = (
    ".get", ".put", ".delete", ".scan", ".tables", ".schema", ".indexes", ".stats",
    ".check", ".mode", ".timer", ".help", ".quit", ".exit",
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
            prompt = self.PROMPT if _is_blank_sql(self.buffer) else self.CONTINUE
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
        if self.interactive:
            self.out.write(
                f"toondb {toondb.__version__} shell on {self.db.path}\n"
                "Enter SQL ending with ';', or .help for commands.\n"
            )
        try:
            for line in self._lines():
                try:
                    self.feed(line)
                except _Quit:
                    break
                except KeyboardInterrupt:
                    self.out.write("^C\n")
                    self.buffer = ""
                if self.bail and self.errors:
                    break
            else:
                if self.buffer.strip() and not _is_blank_sql(self.buffer):
                    text, self.buffer = self.buffer, ""
                    self._run_sql(text)  # the last statement may lack its ';'
        finally:
            self._close_open_transaction()
            if history is not None:
                history()
        return EXIT_ERROR if self.errors and not self.interactive else EXIT_OK

    def feed(self, line: str) -> None:
        """One line of input."""
        if line.lstrip().startswith(".") and _is_blank_sql(self.buffer):
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
            self._error(_message(e, one_line=False))

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
        value = self._kv().get(_key(args[0]))
        if value is None:
            raise CLIError(f"key not found: {args[0]}")
        self.out.write(show_bytes(value) + "\n")

    def _cmd_put(self, args: list[str]) -> None:
        self._nargs(args, 2, 2, ".put KEY VALUE")
        self._kv().put(_key(args[0]), args[1].encode("utf-8", "surrogateescape"))

    def _cmd_delete(self, args: list[str]) -> None:
        self._nargs(args, 1, 1, ".delete KEY")
        if not self._kv().delete(_key(args[0])):
            raise CLIError(f"key not found: {args[0]}")

    def _cmd_scan(self, args: list[str]) -> None:
        self._nargs(args, 0, 2, ".scan [PREFIX] [LIMIT]")
        prefix = args[0].encode("utf-8", "surrogateescape") if args else b""
        limit = _int(args[1], "LIMIT") if len(args) > 1 else 100
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
        for t in sorted(_catalog(self.db).tables.values(), key=lambda t: t.name.lower()):
            self.out.write(t.name + "\n")

    def _cmd_schema(self, args: list[str]) -> None:
        self._nargs(args, 0, 1, ".schema [TABLE]")
        tables = _catalog(self.db).tables
        if args:
            t = tables.get(args[0].lower())
            if t is None:
                raise CLIError(f"no such table: {args[0]}")
            chosen = [t]
        else:
            chosen = sorted(tables.values(), key=lambda t: t.name.lower())
        for t in chosen:
            for stmt in schema_sql(t):
                self.out.write(stmt + "\n")

    def _cmd_indexes(self, args: list[str]) -> None:
        self._nargs(args, 0, 1, ".indexes [TABLE]")
        tables = _catalog(self.db).tables
        if args and args[0].lower() not in tables:
            raise CLIError(f"no such table: {args[0]}")
        for t in sorted(tables.values(), key=lambda t: t.name.lower()):
            if args and t.name.lower() != args[0].lower():
                continue
            for ix in t.indexes:
                kind = "UNIQUE " if ix.unique else ""
                self.out.write(f"{ix.name}  {kind}ON {t.name} ({', '.join(ix.columns)})\n")

    def _cmd_stats(self, args: list[str]) -> None:
        self._nargs(args, 0, 0, ".stats")
        _print_mapping(self.db.stats(), self.out)

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
                names = [t.name for t in _safe_tables(self.db)]
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


def _safe_tables(db: Any) -> list[Any]:
    try:
        return list(_catalog(db).tables.values())
    except Exception:  # noqa: BLE001 - completion must never fail the shell
        return []


# ---------------------------------------------------------------------------------------
# One-shot commands
# ---------------------------------------------------------------------------------------


def _int(text: str, what: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise CLIError(f"{what} must be a whole number, not {text!r}") from None
    if n < 0:
        raise CLIError(f"{what} must be >= 0")
    return n


def _print_mapping(d: dict[str, Any], out: IO[str]) -> None:
    width = max((len(k) for k in d), default=0)
    for k, v in d.items():
        out.write(f"{k:<{width}}  {'-' if v is None else v}\n")


def _param(text: str) -> Any:
    """A --param value: JSON when it is a JSON number, string, true/false/null; else text."""
    try:
        v = json.loads(text)
    except ValueError:
        return text
    return v if not isinstance(v, (list, dict)) else text


def cmd_shell(args: argparse.Namespace) -> int:
    interactive = sys.stdin.isatty() if args.interactive is None else args.interactive
    with open_db(args.path, create=True) as db:
        return Shell(db, interactive=interactive, mode=args.mode, bail=args.bail).run()


def cmd_sql(args: argparse.Namespace) -> int:
    stmts, rest = split_sql(args.sql)
    if rest.strip():
        stmts.append(rest.strip())
    if not stmts:
        raise CLIError("no SQL statement given")
    params = [_param(p) for p in args.param] if args.param else None
    if params and len(stmts) > 1:
        raise CLIError("--param binds to a single statement; give one")
    with open_db(args.path, create=True) as db:
        for s in stmts:
            result = db.execute_sql(s, params)
            render(result, args.format, sys.stdout)
    return EXIT_OK


def cmd_get(args: argparse.Namespace) -> int:
    with open_db(args.path, read_only=True) as db:
        value = db.get(_key(args.key))
    if value is None:
        raise CLIError(f"key not found: {args.key}")
    sys.stdout.flush()
    sys.stdout.buffer.write(value if args.no_newline else value + b"\n")
    return EXIT_OK


def cmd_put(args: argparse.Namespace) -> int:
    if args.value is None or args.value == "-":
        value = sys.stdin.buffer.read()
    else:
        value = args.value.encode("utf-8", "surrogateescape")
    with open_db(args.path, create=True) as db:
        db.put(_key(args.key), value)
    return EXIT_OK


def cmd_delete(args: argparse.Namespace) -> int:
    with open_db(args.path) as db:
        found = db.delete(_key(args.key))
    if not found:
        raise CLIError(f"key not found: {args.key}")
    return EXIT_OK


def cmd_scan(args: argparse.Namespace) -> int:
    out = sys.stdout
    with open_db(args.path, read_only=True) as db:
        it = db.scan(args.prefix.encode("utf-8", "surrogateescape"))
        try:
            for n, (k, v) in enumerate(it):
                if args.limit is not None and n >= args.limit:
                    break
                out.write(show_bytes(k) + ("\n" if args.keys_only else "\t" + show_bytes(v) + "\n"))
        finally:
            it.close()
    return EXIT_OK


def cmd_stats(args: argparse.Namespace) -> int:
    with open_db(args.path, read_only=True) as db:
        stats = db.stats()
    if args.json:
        sys.stdout.write(json.dumps(stats, indent=2) + "\n")
    else:
        _print_mapping(stats, sys.stdout)
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    try:
        with open_db(args.path, read_only=True) as db:
            counts = db.check()
    except CorruptionError as e:
        problems = getattr(e, "problems", None) or [str(e)]
        sys.stderr.write(f"toondb: {args.path} is damaged ({len(problems)} problem(s)):\n")
        for p in problems:
            sys.stderr.write(f"  {p}\n")
        return EXIT_ERROR
    sys.stdout.write("ok: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + "\n")
    return EXIT_OK


# ---- backup and compact ------------------------------------------------------------------

COPY_CHUNK = 32 << 20  # bytes of keys and values per commit while copying


class _Copier:
    """Writes into a new database in commits of about COPY_CHUNK bytes (a copy that
    is not yet in place needs no atomicity, and a bounded commit bounds the memory)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.txn = db.begin_transaction(immediate=True)
        self.trees: dict[bytes, Any] = {}
        self.pending = 0
        self.entries: dict[bytes | None, int] = {}

    def tree(self, name: bytes) -> Any:
        t = self.trees.get(name)
        if t is None:
            t = self.trees[name] = self.txn.tree(name, create=True)
        return t

    def put(self, name: bytes | None, key: bytes, value: bytes) -> None:
        (self.txn if name is None else self.tree(name)).put(key, value)
        self.entries[name] = self.entries.get(name, 0) + 1
        self.pending += len(key) + len(value) + 16
        if self.pending >= COPY_CHUNK:
            self.txn.commit()
            self.txn = self.db.begin_transaction(immediate=True)
            self.trees = {}
            self.pending = 0

    def finish(self) -> None:
        self.txn.commit()


def copy_database(
    src: Database, dest: str, *, progress: Callable[[int], None] | None = None
) -> dict[str, int]:
    """Copy one snapshot of src (the key-value space and every named tree: SQL tables
    and indexes, vector indexes) into a new database at dest, then check the copy.
    Returns counts. The snapshot is consistent; src may be in use meanwhile."""
    snap = src.begin_transaction(read_only=True)
    try:
        with Database.open(dest, {"page_size": src.page_size, "create_if_missing": True}) as out:
            copier = _Copier(out)
            try:
                n = 0
                for k, v in snap.scan(b""):
                    copier.put(None, k, v)
                    n += 1
                names = snap.tree_names()
                for name in names:
                    copier.tree(name)
                    for k, v in snap.tree(name).scan():
                        copier.put(name, k, v)
                        n += 1
                copier.finish()
            except BaseException:
                if not copier.txn.closed:
                    copier.txn.abort()
                raise
            out.check()
            check = out.begin_transaction(read_only=True)
            try:
                got_kv = sum(1 for _ in check.scan(b""))
                if got_kv != copier.entries.get(None, 0):
                    raise CLIError("the copy does not hold every key (a bug: please report it)")
                for name in names:
                    if check.tree(name).count() != copier.entries.get(name, 0):
                        raise CLIError(f"the copy of tree {name!r} is incomplete (a bug)")
            finally:
                check.abort()
            out.checkpoint()
        return {
            "keys": copier.entries.get(None, 0),
            "trees": len(names),
            "entries": n,
            "txn_id": snap.txnid,
        }
    finally:
        snap.abort()


def _fsync_dir(path: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def cmd_backup(args: argparse.Namespace) -> int:
    dest = os.path.abspath(args.dest)
    if os.path.exists(dest) and not (os.path.isdir(dest) and not os.listdir(dest)):
        raise CLIError(f"{args.dest!r} already exists; give a new (or empty) directory")
    parent = os.path.dirname(dest)
    if not os.path.isdir(parent):
        raise CLIError(f"no directory {parent!r} to put the backup in")
    with open_db(args.path, read_only=True) as src:
        tmp = tempfile.mkdtemp(prefix=".toondb-backup-", dir=parent)
        try:
            counts = copy_database(src, tmp)
            if os.path.isdir(dest):
                os.rmdir(dest)  # empty: replaced by the finished copy
            os.rename(tmp, dest)
            _fsync_dir(parent)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    sys.stdout.write(
        f"backup of {args.path} (snapshot of transaction {counts['txn_id']}) written to "
        f"{args.dest}: {counts['keys']} keys, {counts['trees']} named trees\n"
    )
    return EXIT_OK


# Byte offsets of the engine's locks in the lock file (toondb/_btree.pyx: LOCK_INIT,
# LOCK_PRESENCE). Every open handle holds a shared open-file-description lock on the
# presence byte for its whole life; an open takes the init byte exclusively while it
# opens the page file. Holding both exclusively means: no handle is open anywhere, and
# none can open (openers wait at the init byte, before they touch the page file).
LOCK_INIT, LOCK_PRESENCE = 1, 2
_FLOCK = struct.Struct("@hhqqi4x")


def _ofd_lock(fd: int, kind: int, at: int) -> bool:
    import fcntl

    cmd = getattr(fcntl, "F_OFD_SETLK", None)
    if cmd is None:
        raise CLIError("compact needs open-file-description locks (Linux 3.15 or later)")
    try:
        fcntl.fcntl(fd, cmd, _FLOCK.pack(kind, os.SEEK_SET, at, 1, 0))
    except OSError as e:
        if e.errno in (11, 13):  # EAGAIN / EACCES: held by another
            return False
        raise
    return True


def cmd_compact(args: argparse.Namespace) -> int:
    import fcntl

    data, lock = _files(args.path)
    if not os.path.exists(data):
        open_db(args.path)  # raises the usual "no toondb database" error
    Database.open(args.path, {"create_if_missing": False}).close()  # recovery, if needed
    before = os.path.getsize(data)
    # A page file can be opened by two names: as a directory's toondb.data (locked through
    # toondb.lock) and as a file (locked through toondb.data-lock). Hold both.
    locks = [lock]
    directory = os.path.dirname(os.path.abspath(data))
    if os.path.basename(data) == DATA_FILE:
        locks = [os.path.join(directory, LOCK_FILE), data + "-lock"]
    fds = []
    try:
        for path in locks:
            if path != lock and not os.path.exists(path):
                continue
            fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
            fds.append(fd)
            deadline = time.monotonic() + args.wait
            while not _ofd_lock(fd, fcntl.F_WRLCK, LOCK_INIT):
                if time.monotonic() > deadline:
                    raise CLIError("another process kept opening the database; try again")
                time.sleep(0.01)
            if not _ofd_lock(fd, fcntl.F_WRLCK, LOCK_PRESENCE):
                raise CLIError(
                    f"{args.path} is open in another process; close it first "
                    "(toondb backup copies a database that is in use)"
                )
        tmp = tempfile.mkdtemp(prefix=".toondb-compact-", dir=directory)
        if args.pause:
            time.sleep(args.pause)  # tests: hold the locks a while, openers must wait
        try:
            # read through a second name of the page file, whose lock file is in tmp:
            # the database's own lock file is held by us
            source = os.path.join(tmp, "source")
            os.link(data, source)
            with Database.open(source, read_only=True) as src:
                counts = copy_database(src, os.path.join(tmp, "copy"))
            os.replace(os.path.join(tmp, "copy", DATA_FILE), data)
            _fsync_dir(directory)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        for fd in fds:
            os.close(fd)  # releases the locks: waiting openers open the new file
    after = os.path.getsize(data)
    sys.stdout.write(
        f"compacted {args.path}: {before} -> {after} bytes, {counts['keys']} keys, "
        f"{counts['trees']} named trees\n"
    )
    return EXIT_OK


# ---- import and export -------------------------------------------------------------------

IMPORT_BATCH = 1000


def _format_of(path: str, given: str | None) -> str:
    if given:
        return given
    low = path.lower()
    if low.endswith(".csv"):
        return "csv"
    if low.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    raise CLIError(f"cannot tell the format of {path!r} from its name; give --format csv|jsonl")


def _open_text(path: str, mode: str) -> Any:
    if path == "-":
        stream = sys.stdin if mode == "r" else sys.stdout
        return contextlib.nullcontext(stream)
    try:
        return open(path, mode, newline="", encoding="utf-8")
    except OSError as e:
        raise CLIError(f"cannot open {path!r}: {e.strerror}") from None


def _records(f: IO[str], fmt: str, name: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) of a CSV file (a header row, then rows) or JSON lines."""
    if fmt == "csv":
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            return
        if len(set(header)) != len(header) or not all(header):
            raise CLIError(f"{name}: the header row needs distinct, non-empty column names")
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                raise CLIError(
                    f"{name}:{reader.line_num}: {len(row)} fields where the header has {len(header)}"
                )
            yield reader.line_num, dict(zip(header, row))
        return
    for n, line in enumerate(f, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError as e:
            raise CLIError(f"{name}:{n}: not JSON ({e})") from None
        if not isinstance(rec, dict):
            raise CLIError(f"{name}:{n}: a line must hold a JSON object")
        yield n, rec


def _sql_value(v: Any) -> Any:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"), ensure_ascii=False)
    return v


def _infer_type(values: list[Any], fmt: str) -> str:
    seen = [v for v in values if v is not None and v != ""]
    if not seen:
        return "TEXT"
    if fmt == "jsonl":
        if all(isinstance(v, (bool, int)) for v in seen):
            return "INTEGER"
        if all(isinstance(v, (bool, int, float)) for v in seen):
            return "REAL"
        return "TEXT"
    for kind, conv in (("INTEGER", int), ("REAL", float)):
        try:
            for v in seen:
                conv(v)
        except ValueError:
            continue
        return kind
    return "TEXT"


def cmd_import(args: argparse.Namespace) -> int:
    from itertools import chain, islice

    from toondb.sql import catalog as C

    fmt = _format_of(args.file, args.format)
    name = "stdin" if args.file == "-" else args.file
    with _open_text(args.file, "r") as f, open_db(args.path, create=True) as db:
        records = _records(f, fmt, name)
        head = list(islice(records, IMPORT_BATCH))
        txn = db.begin_transaction(immediate=True)
        try:
            table = C.load(txn).tables.get(args.table.lower())
            if table is None:
                if not head:
                    raise CLIError(f"{name} holds no rows to make table {args.table} from")
                cols: list[str] = []
                for _, rec in head:
                    cols += [k for k in rec if k not in cols]
                types = [_infer_type([rec.get(c) for _, rec in head], fmt) for c in cols]
                txn.execute_sql(
                    f"CREATE TABLE {_ident(args.table)} ("
                    + ", ".join(f"{_ident(c)} {t}" for c, t in zip(cols, types))
                    + ")"
                )
                table = C.load(txn).table(args.table)
            affinity = {c.name.lower(): c.affinity for c in table.columns}
            total = 0
            batch: list[list[Any]] = []
            batch_cols: tuple[str, ...] | None = None

            def flush() -> None:
                nonlocal batch
                if batch:
                    assert batch_cols is not None
                    sql = (
                        f"INSERT INTO {_ident(table.name)} ("
                        + ", ".join(map(_ident, batch_cols))
                        + ") VALUES ("
                        + ", ".join("?" * len(batch_cols))
                        + ")"
                    )
                    txn.executemany(sql, batch)
                    batch = []

            for line, rec in chain(head, records):
                cols_here = tuple(rec)
                for c in cols_here:
                    if c.lower() not in affinity:
                        raise CLIError(f"{name}:{line}: {c!r} is not a column of {table.name}")
                if cols_here != batch_cols or len(batch) >= IMPORT_BATCH:
                    flush()
                    batch_cols = cols_here
                values = []
                for c, v in rec.items():
                    if fmt == "csv" and v == "" and affinity[c.lower()] != "TEXT":
                        v = None  # an empty CSV field of a number column is NULL
                    values.append(_sql_value(v))
                batch.append(values)
                total += 1
            flush()
        except BaseException:
            txn.abort()
            raise
        txn.commit()
    sys.stdout.write(f"imported {total} rows into {args.table}\n")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    fmt = _format_of(args.file, args.format)
    with open_db(args.path, read_only=True) as db:
        result = db.execute_sql(f"SELECT * FROM {_ident(args.table)}")
    with _open_text(args.file, "w") as f:
        if fmt == "csv":
            render(result, "csv", f)
        else:
            for row in result:
                f.write(
                    json.dumps({k: _plain(v) for k, v in row.items()}, ensure_ascii=False) + "\n"
                )
    if args.file != "-":
        sys.stderr.write(f"exported {len(result)} rows of {args.table} to {args.file}\n")
    return EXIT_OK


# ---- vector indexes (toondb.vector.bulk) ---------------------------------------------------------

VECTOR_FORMATS = ".npy (a NumPy array), .fvecs (float32 rows), .csv/.tsv/.txt (one vector per line)"


def _load_array(path: str, what: str, *, ints: bool = False) -> Any:
    """A NumPy array from a .npy, .fvecs or text file ('-': text on stdin)."""
    import numpy as np

    ext = os.path.splitext(path)[1].lower() if path != "-" else ".txt"
    if path != "-" and not os.path.isfile(path):
        raise CLIError(f"no {what} file {path!r}")
    try:
        if ext == ".npy":
            return np.load(path, allow_pickle=False)
        if ext == ".fvecs" and not ints:
            raw = np.fromfile(path, dtype=np.int32)
            if raw.size == 0:
                return np.empty((0, 0), np.float32)
            dim = int(raw[0])
            if dim <= 0 or raw.size % (dim + 1) or (raw.reshape(-1, dim + 1)[:, 0] != dim).any():
                raise CLIError(f"{path}: not an .fvecs file (each row: int32 dim, dim float32)")
            return raw.reshape(-1, dim + 1)[:, 1:].view(np.float32)
        if ext in (".csv", ".tsv", ".txt", ".text", ""):
            text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
            rows = [line.replace(",", " ").replace("\t", " ").split() for line in text.splitlines()]
            rows = [r for r in rows if r and not r[0].startswith("#")]
            conv = int if ints else float
            try:
                return np.array([[conv(v) for v in r] for r in rows])
            except ValueError as e:
                raise CLIError(f"{path}: {e}") from None
    except CLIError:
        raise
    except (OSError, ValueError) as e:
        raise CLIError(f"{path}: cannot read {what} ({_message(e)})") from None
    raise CLIError(f"{path}: unknown {what} format {ext!r}; use {VECTOR_FORMATS}")


def _query_vectors(text: str) -> Any:
    """QUERY: a file, or one vector written inline as numbers separated by commas."""
    import numpy as np

    if text != "-" and not os.path.exists(text):
        parts = [p for p in text.replace(",", " ").split() if p]
        try:
            return np.array([float(p) for p in parts], dtype=np.float32)
        except ValueError:
            raise CLIError(
                f"no query file {text!r} (and it is not a vector like '0.1,0.2,0.3')"
            ) from None
    q = _load_array(text, "query")
    return q[0] if q.ndim == 2 and len(q) == 1 else q


def cmd_index_build(args: argparse.Namespace) -> int:
    from toondb.vector.bulk import bulk_build_index

    vectors = _load_array(args.vectors, "vectors")
    ids = None
    if args.ids:
        ids = _load_array(args.ids, "ids", ints=True)
        ids = ids.reshape(-1) if ids.ndim == 2 and 1 in ids.shape else ids
    progress = False if args.no_progress else (True if args.progress else None)
    stats = bulk_build_index(
        vectors,
        args.index,
        m=args.m,
        ef_construction=args.ef_construction,
        metric=args.metric,
        ids=ids,
        threads=args.threads,
        progress=progress,
        name=args.name,
    )
    sys.stdout.write(
        f"built {stats.vectors} vectors ({stats.dimension}-d, {stats.metric}) at "
        f"{stats.rate:.0f} vec/s in {stats.seconds:.1f} s with {stats.threads} thread(s): "
        f"{args.index} ({stats.index_bytes / 1e6:.1f} MB)\n"
    )
    return EXIT_OK


def cmd_index_query(args: argparse.Namespace) -> int:
    from toondb.vector.bulk import open_index

    q = _query_vectors(args.query)
    with open_index(args.index, args.name) as idx:
        if q.ndim == 1:
            rows = [idx.search(q, args.k, args.ef_search)]
        else:
            rows = idx.search(q, args.k, args.ef_search, threads=args.threads)
    out = sys.stdout
    if args.format == "json":
        data = [[{"id": n.id, "distance": n.distance} for n in r] for r in rows]
        out.write(json.dumps(data[0] if q.ndim == 1 else data) + "\n")
    elif args.format == "csv":
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["query", "rank", "id", "distance"])
        for qi, r in enumerate(rows):
            for rank, n in enumerate(r, 1):
                w.writerow([qi, rank, n.id, repr(n.distance)])
    else:  # the product guide's lines
        for qi, r in enumerate(rows):
            if q.ndim == 2:
                out.write(f"query {qi}:\n")
            for rank, n in enumerate(r, 1):
                out.write(f"{rank}. ID: {n.id}, Distance: {n.distance:.4f}\n")
    return EXIT_OK


def cmd_index_info(args: argparse.Namespace) -> int:
    from toondb.vector.bulk import bulk_info, open_index

    with open_index(args.index, args.name) as idx:
        info = bulk_info(idx).as_dict()
    if args.json:
        sys.stdout.write(json.dumps(info, indent=2) + "\n")
    else:
        _print_mapping(info, sys.stdout)
    return EXIT_OK


def _add_index_commands(sub: Any) -> None:
    """toondb index build|query|info INDEX ...: the bulk vector API (toondb.vector.bulk)."""
    ip = sub.add_parser(
        "index",
        help="build, query and describe a vector index file (.hnsw)",
        description="The bulk vector API on the command line. INDEX is an index file "
        "(a toondb page file holding one vector index, e.g. my_index.hnsw) or a database "
        "directory. Run 'toondb index ACTION --help' for an action's options.",
    )
    isub = ip.add_subparsers(dest="index_command", metavar="ACTION")
    isub.required = True

    def action(name: str, func: Callable[[argparse.Namespace], int], help: str, desc: str) -> Any:
        sp = isub.add_parser(name, help=help, description=desc)
        sp.set_defaults(func=func)
        sp.add_argument("index", metavar="INDEX", help="the index file (or database directory)")
        return sp

    sp = action(
        "build",
        cmd_index_build,
        "build an HNSW index from a file of vectors",
        "Build an HNSW index over the rows of VECTORS on every core and write INDEX "
        "(replacing its index atomically when it exists: a crash leaves the previous one). "
        f"VECTORS: {VECTOR_FORMATS}. A progress bar is shown on a terminal for builds "
        "longer than a few seconds.",
    )
    sp.add_argument("vectors", metavar="VECTORS", help="the vectors, one per row")
    sp.add_argument("--metric", choices=("cosine", "l2", "ip"), default="cosine",
                    help="cosine (default): 1 - cosine similarity; l2: squared Euclidean; "
                    "ip: 1 - inner product")  # fmt: skip
    sp.add_argument("-m", type=_argparse_int, default=16, help="links per node (16)")
    sp.add_argument("--ef-construction", type=_argparse_int, default=100,
                    help="candidate list size while building (100)")  # fmt: skip
    sp.add_argument("--ids", metavar="FILE",
                    help="one integer id per vector (.npy or text); default 0..n-1")  # fmt: skip
    sp.add_argument("--threads", type=_argparse_int, default=None,
                    help="build threads (default: every core)")  # fmt: skip
    sp.add_argument("--name", default="default", help=argparse.SUPPRESS)
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    g.add_argument("--progress", action="store_true", help="always show a progress bar")

    sp = action(
        "query",
        cmd_index_query,
        "print the nearest neighbours of query vectors",
        "Print the K nearest vectors of QUERY in INDEX, nearest first, as '1. ID: 3421, "
        "Distance: 0.1234' lines (--format json or csv for programs). QUERY is one vector "
        "written inline ('0.1,0.2,...'), or a file of one or more vectors "
        f"({VECTOR_FORMATS}); several are searched in parallel.",
    )
    sp.add_argument("query", metavar="QUERY")
    sp.add_argument("-k", type=_argparse_int, default=10, help="neighbours per query (10)")
    sp.add_argument("--ef-search", type=_argparse_int, default=64,
                    help="candidate list size: higher is more accurate and slower (64)")  # fmt: skip
    sp.add_argument("--format", "-f", choices=("text", "json", "csv"), default="text")
    sp.add_argument("--threads", type=_argparse_int, default=None, help=argparse.SUPPRESS)
    sp.add_argument("--name", default="default", help=argparse.SUPPRESS)

    sp = action(
        "info",
        cmd_index_info,
        "describe an index: vectors, dimension, metric, m, levels, bytes",
        "Print what INDEX holds and how it was built: vectors, dimension, metric, m, "
        "ef_construction, levels, bytes (of the index) and file_bytes.",
    )
    sp.add_argument("--json", action="store_true", help="as one JSON object")
    sp.add_argument("--name", default="default", help=argparse.SUPPRESS)


# ---------------------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="toondb",
        description="toondb: an embedded database for Python (key-value, SQL, vectors) -- "
        "the command line. See docs/cli.md.",
        epilog="Run 'toondb COMMAND --help' for a command's options. The server is "
        "'toondb-server --db PATH'.",
    )
    p.add_argument("--version", action="version", version=f"toondb {toondb.__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def add(name: str, func: Callable[[argparse.Namespace], int], help: str, desc: str = "") -> Any:
        sp = sub.add_parser(name, help=help, description=desc or help)
        sp.set_defaults(func=func)
        sp.add_argument("path", metavar="PATH", help="the database directory (or page file)")
        return sp

    sp = add(
        "shell",
        cmd_shell,
        "an interactive shell for SQL and key-value commands",
        "An interactive shell: SQL statements ending with ';' (over several lines if you "
        "like) and dot commands (.help lists them). Reads a script from stdin when stdin "
        "is not a terminal. Creates the database if it does not exist.",
    )
    sp.add_argument("--mode", choices=MODES, default="table", help="how results are shown")
    sp.add_argument("--bail", action="store_true", help="stop a script at its first error")
    sp.add_argument(
        "--interactive",
        choices=("yes", "no"),
        default=None,
        help="force prompts and line editing on or off (default: on when stdin is a terminal)",
    )

    sp = add("sql", cmd_sql, "run SQL and print the result",
             "Run one or more SQL statements (separated by ';') and print each result. "
             "Creates the database if it does not exist.")  # fmt: skip
    sp.add_argument("sql", metavar="SQL")
    sp.add_argument("--format", "-f", choices=MODES, default="table", help="output format")
    sp.add_argument(
        "--param", "-p", action="append", metavar="VALUE",
        help="bind a ? parameter (repeat in order); JSON numbers, strings, true/false/null "
        "are taken as such, anything else as text",
    )  # fmt: skip

    sp = add("get", cmd_get, "print the value stored under a key")
    sp.add_argument("key", metavar="KEY", help="the key, as UTF-8 text")
    sp.add_argument("-n", "--no-newline", action="store_true",
                    help="write the value's bytes exactly, without a newline")  # fmt: skip

    sp = add("put", cmd_put, "store a value under a key",
             "Store VALUE under KEY (both UTF-8 text); without VALUE (or with '-') the value "
             "is read from stdin as bytes. Creates the database if it does not exist.")  # fmt: skip
    sp.add_argument("key", metavar="KEY")
    sp.add_argument("value", metavar="VALUE", nargs="?")

    sp = add("delete", cmd_delete, "delete a key (exit 1 when it was not there)")
    sp.add_argument("key", metavar="KEY")

    sp = add("scan", cmd_scan, "list the keys (and values) that start with a prefix",
             "Print 'key<TAB>value' for every key that starts with PREFIX, in key order "
             "(non-UTF-8 bytes and control characters escaped).")  # fmt: skip
    sp.add_argument("prefix", metavar="PREFIX", nargs="?", default="")
    sp.add_argument("--limit", type=_argparse_int, default=None, help="at most this many keys")
    sp.add_argument("--keys-only", action="store_true")

    sp = add("stats", cmd_stats, "print counts that describe the database")
    sp.add_argument("--json", action="store_true", help="as one JSON object")

    add("check", cmd_check, "verify the whole file; exit 1 naming every damaged page")

    sp = add("backup", cmd_backup, "write a consistent copy of the database",
             "Copy one snapshot of the database to DEST (a new or empty directory), while "
             "the database is in use: readers and writers go on; the copy is what was "
             "committed when the backup began. The copy is checked before it is put in place.")  # fmt: skip
    sp.add_argument("dest", metavar="DEST")

    sp = add("compact", cmd_compact, "rewrite the database without free pages",
             "Rewrite the page file without free pages and swap it in atomically. Needs "
             "exclusive access: refuses (exit 1) while any other process has the database "
             "open, and makes processes that try to open it meanwhile wait.")  # fmt: skip
    sp.add_argument("--wait", type=float, default=10.0, help=argparse.SUPPRESS)
    sp.add_argument("--pause", type=float, default=0.0, help=argparse.SUPPRESS)

    for name, func, what in (
        ("import", cmd_import, "load rows into a table from a CSV or JSON-lines file"),
        ("export", cmd_export, "write a table's rows to a CSV or JSON-lines file"),
    ):
        sp = add(name, func, what, _IMPORT_DESC if name == "import" else _EXPORT_DESC)
        sp.add_argument("table", metavar="TABLE")
        sp.add_argument("file", metavar="FILE", help="the file ('-' for stdin/stdout)")
        sp.add_argument("--format", choices=("csv", "jsonl"),
                        help="default: from the file name (.csv; .jsonl, .ndjson, .json)")  # fmt: skip

    _add_index_commands(sub)
    return p


_IMPORT_DESC = (
    "Insert the rows of FILE into TABLE in one transaction (all or nothing). CSV: a header "
    "row of column names, then rows; an empty field of a number column is NULL. JSON "
    "lines: one object per line; nested values are stored as JSON text. A missing table "
    "is created, with column types inferred from the first 1000 rows."
)
_EXPORT_DESC = (
    "Write every row of TABLE to FILE: CSV with a header row (NULL as an empty field), or "
    "JSON lines. BLOBs are written as base64 text."
)


def _argparse_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return n


def _message(e: BaseException, one_line: bool = True) -> str:
    if isinstance(e, OSError) and e.strerror and e.filename:
        msg = f"{e.strerror}: {e.filename}"
    else:
        msg = str(e) or type(e).__name__
    if isinstance(e, KeyError) and e.args:
        msg = str(e.args[0])
    if one_line:
        msg = msg.strip().splitlines()[0] if msg.strip() else msg
    return msg


def main(argv: Sequence[str] | None = None) -> int:
    """The toondb command; returns the exit status."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "interactive", None) is not None:
        args.interactive = args.interactive == "yes"
    debug = bool(os.environ.get("TOONDB_DEBUG"))
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        # the reader went away (toondb scan ... | head): not an error of ours
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        sys.stderr.write("toondb: interrupted\n")
        return 130
    except (CLIError, ToonDBError, OSError, ValueError, TypeError, KeyError) as e:
        if debug:
            raise
        sys.stderr.write(f"toondb: {_message(e)}\n")
        return EXIT_ERROR
    except Exception as e:  # noqa: BLE001 - a bug: still no traceback without TOONDB_DEBUG
        if debug:
            raise
        sys.stderr.write(
            f"toondb: internal error: {type(e).__name__}: {_message(e)} "
            "(set TOONDB_DEBUG=1 to see the traceback, and please report it)\n"
        )
        return EXIT_ERROR
