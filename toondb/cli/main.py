"""The ``toondb`` command: an interactive shell and one-shot commands (docs/cli.md).

::

    toondb shell PATH                         SQL and key-value commands, interactively
    toondb sql PATH "SQL" [--format F]        table (default), toon, json, csv, line
    toondb get|put|delete|scan PATH ...       the key-value space
    toondb stats|check PATH [--deep]          counts; the full integrity check
    toondb backup PATH DEST                   a consistent copy, while the database is in use
    toondb compact PATH                       rewrite without free pages (needs exclusive access)
    toondb import|export PATH TABLE FILE      CSV or JSON lines
    toondb index build|query|info INDEX ...   vector index files (the bulk API)
    toondb replicate DB URL                   ship every commit to s3:// or file:// (until stopped)
    toondb restore URL DEST [--txn N|--time T] a database as of a transaction, from a store
    toondb follow URL DEST                    keep a read replica up to date (until stopped)
    toondb replica-status URL | replicas list URL   what a store holds, and the lag

Exit status: 0 on success; 1 when the command failed (a user's mistake, a SQL error, a
missing key, corruption found by ``check``), with one line on stderr that says why
(``check`` adds one line per damaged page); 2 for a malformed command line (argparse's
usage message). No traceback reaches the user unless ``TOONDB_DEBUG=1`` is set.

This module holds the command line (``build_parser``) and the error reporting (``main``).
The commands live in commands.py (shell, sql and the key-value ones, stats, check),
maintenance.py (backup, compact), transfer.py (import, export), vectors.py (index) and
replication.py (replicate, restore, follow, replica-status, replicas);
the shell in shell.py; output modes and values as text in render.py; what they share
(exit statuses, opening PATH) in common.py.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from typing import Any, Callable

from toondb.cli.commands import (
    cmd_check,
    cmd_delete,
    cmd_get,
    cmd_put,
    cmd_scan,
    cmd_shell,
    cmd_sql,
    cmd_stats,
)
from toondb.cli.common import EXIT_ERROR, EXIT_OK, EXIT_USAGE, argparse_int, error_message
from toondb.cli.maintenance import cmd_backup, cmd_compact
from toondb.cli.render import MODES
from toondb.cli.replication import add_replication_commands
from toondb.cli.transfer import (
    EXPORT_DESCRIPTION,
    IMPORT_DESCRIPTION,
    cmd_dump,
    cmd_export,
    cmd_import,
)
from toondb.cli.vectors import add_index_commands
from toondb.errors import CLIError, NotADatabaseError, ToonDBError
from toondb.version import __version__

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="toondb",
        description="toondb: an embedded database for Python (key-value, SQL, vectors) -- "
        "the command line. See docs/cli.md.",
        epilog="Run 'toondb COMMAND --help' for a command's options. The server is "
        "'toondb-server --db PATH'.",
    )
    p.add_argument("--version", action="version", version=f"toondb {__version__}")
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
    sp.add_argument("sql", metavar="SQL", nargs="?",
                    help="the statements; without it (or '-'), a script is read from stdin "
                    "and run with executescript, as `sqlite3 DB < dump.sql`")  # fmt: skip
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
    sp.add_argument("key", metavar="KEY", help="the key, as UTF-8 text")
    sp.add_argument("value", metavar="VALUE", nargs="?",
                    help="the value, as UTF-8 text; omitted or '-': read from stdin as bytes")  # fmt: skip

    sp = add("delete", cmd_delete, "delete a key (exit 1 when it was not there)")
    sp.add_argument("key", metavar="KEY", help="the key, as UTF-8 text")

    sp = add("scan", cmd_scan, "list the keys (and values) that start with a prefix",
             "Print 'key<TAB>value' for every key that starts with PREFIX, in key order "
             "(non-UTF-8 bytes and control characters escaped).")  # fmt: skip
    sp.add_argument("prefix", metavar="PREFIX", nargs="?", default="",
                    help="list only keys that start with this UTF-8 text (default: every key)")  # fmt: skip
    sp.add_argument("--limit", type=argparse_int, default=None, help="at most this many keys")
    sp.add_argument("--keys-only", action="store_true", help="print the keys without their values")

    sp = add("stats", cmd_stats, "print counts that describe the database")
    sp.add_argument("--json", action="store_true", help="as one JSON object")

    sp = add("check", cmd_check, "verify the whole file; exit 1 naming every damaged page")
    sp.add_argument("--deep", action="store_true",
                    help="also decode every SQL row and index entry and match them "
                    "(a few times slower)")  # fmt: skip

    sp = add("backup", cmd_backup, "write a consistent copy of the database",
             "Copy one snapshot of the database to DEST (a new or empty directory), while "
             "the database is in use: readers and writers go on; the copy is what was "
             "committed when the backup began. The copy is checked before it is put in place.")  # fmt: skip
    sp.add_argument("dest", metavar="DEST", help="where the copy goes: a new or empty directory")

    sp = add("compact", cmd_compact, "rewrite the database without free pages",
             "Rewrite the page file without free pages and swap it in atomically. Needs "
             "exclusive access: refuses (exit 1) while any other process has the database "
             "open, and makes processes that try to open it meanwhile wait.")  # fmt: skip
    sp.add_argument("--wait", type=float, default=10.0, help=argparse.SUPPRESS)
    sp.add_argument("--pause", type=float, default=0.0, help=argparse.SUPPRESS)

    add("dump", cmd_dump, "write the whole database as SQL (as `sqlite3 DB .dump`)",
        "Write the SQL that makes the database again to stdout: its tables with their "
        "rows, indexes and views, in one transaction, in the form of sqlite3's .dump and "
        "iterdump(); `toondb sql NEW < FILE` (or sqlite3, for SQLite's features) loads it.")  # fmt: skip

    for name, func, what in (
        ("import", cmd_import, "load rows into a table from a CSV or JSON-lines file"),
        ("export", cmd_export, "write a table's rows to a CSV or JSON-lines file"),
    ):
        sp = add(name, func, what, IMPORT_DESCRIPTION if name == "import" else EXPORT_DESCRIPTION)
        sp.add_argument("table", metavar="TABLE",
                        help="the SQL table" + (" (created from the file's columns if missing)"
                                                if name == "import" else ""))  # fmt: skip
        sp.add_argument("file", metavar="FILE", help="the file ('-' for stdin/stdout)")
        formats = ("csv", "jsonl", "sql") if name == "export" else ("csv", "jsonl")
        sp.add_argument("--format", choices=formats,
                        help="default: from the file name (.csv; .jsonl, .ndjson, .json"
                        + ("; .sql" if name == "export" else "") + ")")  # fmt: skip

    add_index_commands(sub)

    sp = sub.add_parser(
        "bench-history",
        help="print the trend of stored benchmark runs",
        description="Print the trend of the pytest-benchmark runs stored by the toondb "
        "pytest plugin (--toondb-bench-store PATH) as a table; --image also draws it "
        "(needs matplotlib). See docs/testing.md.",
    )
    sp.set_defaults(func=cmd_bench_history)
    sp.add_argument("path", metavar="PATH", help="the run store (a toondb database)")
    sp.add_argument("--last", type=argparse_int, default=8, help="how many runs (default 8)")
    sp.add_argument("--image", metavar="FILE.png", help="also draw the trend to this PNG file")

    add_replication_commands(sub)
    return p


def cmd_bench_history(args: argparse.Namespace) -> int:
    from toondb.benchgate import bench_history

    return bench_history(args.path, last=args.last, image=args.image)


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
    except NotADatabaseError as e:
        if debug:
            raise
        sys.stderr.write(f"toondb: {error_message(e)}\n")
        return EXIT_USAGE
    except (CLIError, ToonDBError, OSError, ValueError, TypeError, KeyError) as e:
        if debug:
            raise
        sys.stderr.write(f"toondb: {error_message(e)}\n")
        return EXIT_ERROR
    except Exception as e:  # noqa: BLE001 - a bug: still no traceback without TOONDB_DEBUG
        if debug:
            raise
        sys.stderr.write(
            f"toondb: internal error: {type(e).__name__}: {error_message(e)} "
            "(set TOONDB_DEBUG=1 to see the traceback, and please report it)\n"
        )
        return EXIT_ERROR
