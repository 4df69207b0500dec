"""What the command modules share: exit statuses, an error as the one line the user
sees, the database a PATH names, and keys and numbers as the user typed them."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from toondb.database import DATA_FILE, LOCK_FILE, Database
from toondb.errors import CLIError, NotADatabaseError
from toondb.storage.env import is_toondb_file

__all__ = [
    "EXIT_OK", "EXIT_ERROR", "EXIT_USAGE", "error_message", "database_files", "open_db",
    "refuse_non_database", "snapshot", "key_bytes", "whole_number", "argparse_int",
    "script_progress",
]  # fmt: skip

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def error_message(e: BaseException, one_line: bool = True) -> str:
    """What went wrong, for the user: an OSError's reason and file, a KeyError's key, by
    default only the first line."""
    if isinstance(e, OSError) and e.strerror and e.filename:
        msg = f"{e.strerror}: {e.filename}"
    else:
        msg = str(e) or type(e).__name__
    if isinstance(e, KeyError) and e.args:
        msg = str(e.args[0])
    if one_line:
        msg = msg.strip().splitlines()[0] if msg.strip() else msg
    return msg


def database_files(path: str) -> tuple[str, str]:
    """The page file and lock file of the database at path (a directory or a page file)."""
    if os.path.isfile(path):
        return path, path + "-lock"
    return os.path.join(path, DATA_FILE), os.path.join(path, LOCK_FILE)


def refuse_non_database(path: str) -> None:
    """A file at path that is not a toondb page file (a CSV given by mistake) is refused
    before anything is created beside it: NotADatabaseError, exit status 2."""
    if os.path.isfile(path) and not is_toondb_file(path):
        raise NotADatabaseError(
            f"{path} is not a toondb database (neither meta page has toondb's header)"
        )


def open_db(path: str, *, create: bool = False, read_only: bool = False) -> Database:
    """Open the database at path; without create, a missing one is a user's mistake."""
    refuse_non_database(path)
    if not create and not os.path.exists(database_files(path)[0]):
        if os.path.isdir(path):
            raise CLIError(f"no toondb database in {path!r} (no {DATA_FILE} there)")
        raise CLIError(f"no toondb database at {path!r}")
    return Database.open(path, {"create_if_missing": create}, read_only=read_only)


@contextlib.contextmanager
def snapshot(db: Database) -> Iterator[Any]:
    """A read-only transaction of db (what is committed now), aborted at the end."""
    txn = db.begin_transaction(read_only=True)
    try:
        yield txn
    finally:
        txn.abort()


def key_bytes(text: str) -> bytes:
    """A key as typed (UTF-8; undecodable bytes of the command line kept as they were)."""
    if not text:
        raise CLIError("a key cannot be empty")
    return text.encode("utf-8", "surrogateescape")


def whole_number(text: str, what: str) -> int:
    """A count typed in the shell (>= 0); what names it in the error."""
    try:
        n = int(text)
    except ValueError:
        raise CLIError(f"{what} must be a whole number, not {text!r}") from None
    if n < 0:
        raise CLIError(f"{what} must be >= 0")
    return n


def argparse_int(text: str) -> int:
    """An argparse type: a count on the command line (>= 0)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return n


PROGRESS_MIN_CHARS = 256 * 1024  # a script shorter than this runs without a bar


def script_progress(
    total: int, stream: TextIO | None = None
) -> tuple[Callable[[int, int], None] | None, Callable[[], None]]:
    """(progress, finish) for Database.executescript: a tqdm progress bar on the
    terminal for a long script, or (None, a no-op) when stream is not a terminal or
    the script is short."""
    out = sys.stderr if stream is None else stream
    if total < PROGRESS_MIN_CHARS or not out.isatty():
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(total=total, unit="B", unit_scale=True, desc="script", file=out, leave=False)

    def step(done: int, _total: int) -> None:
        bar.n = done  # called every few hundred statements: redraw each time
        bar.refresh()

    return step, bar.close
