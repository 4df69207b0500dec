"""The one-shot commands on a database: shell, sql, get, put, delete, scan, stats, check.
Each is ``cmd_NAME(args) -> exit status``, called by toondb.cli.main with its parsed
command line."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from toondb.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    key_bytes,
    open_db,
    refuse_non_database,
    script_progress,
)
from toondb.cli.render import print_mapping, render, show_bytes, split_sql
from toondb.cli.shell import Shell
from toondb.errors import CLIError, CorruptionError, NotADatabaseError, ToonDBError

__all__ = [
    "cmd_shell", "cmd_sql", "cmd_get", "cmd_put", "cmd_delete", "cmd_scan", "cmd_stats",
    "cmd_check",
]  # fmt: skip


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
    if args.sql is None or args.sql == "-":
        if args.param:
            raise CLIError("--param binds to a single statement; a script takes none")
        if sys.stdin.isatty():
            sys.stderr.write("toondb: reading an SQL script from stdin (end it with Ctrl-D)\n")
        script = sys.stdin.read()
        progress, finish = script_progress(len(script))
        with open_db(args.path, create=True) as db:
            try:
                db.executescript(script, progress=progress)
            except ToonDBError as e:
                number, line = getattr(e, "statement", None), getattr(e, "line", None)
                if number is None:
                    raise
                first = str(e).splitlines()[0]
                raise CLIError(f"statement {number} (line {line}): {first}") from None
            finally:
                finish()
        return EXIT_OK
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
        value = db.get(key_bytes(args.key))
    if value is None:
        raise CLIError(f"key not found: {args.key}")
    sys.stdout.flush()
    sys.stdout.buffer.write(value if args.no_newline else value + b"\n")
    return EXIT_OK


def cmd_put(args: argparse.Namespace) -> int:
    refuse_non_database(args.path)  # before waiting for a value
    if args.value is None or args.value == "-":
        if sys.stdin.isatty():  # a silent wait would look like a hang
            sys.stderr.write(
                f"toondb: reading the value of {args.key!r} from stdin; end it with Ctrl-D "
                "(or give VALUE on the command line)\n"
            )
            sys.stderr.flush()
        value = sys.stdin.buffer.read()
    else:
        value = args.value.encode("utf-8", "surrogateescape")
    with open_db(args.path, create=True) as db:
        db.put(key_bytes(args.key), value)
    return EXIT_OK


def cmd_delete(args: argparse.Namespace) -> int:
    with open_db(args.path) as db:
        found = db.delete(key_bytes(args.key))
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
        print_mapping(stats, sys.stdout)
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    try:
        with open_db(args.path, read_only=True) as db:
            counts = db.check(deep=args.deep)
    except NotADatabaseError:
        raise  # not damage: main() reports it, exit status 2
    except CorruptionError as e:
        problems = getattr(e, "problems", None) or [str(e)]
        sys.stderr.write(f"toondb: {args.path} is damaged ({len(problems)} problem(s)):\n")
        for p in problems:
            sys.stderr.write(f"  {p}\n")
        return EXIT_ERROR
    sys.stdout.write("ok: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + "\n")
    return EXIT_OK
