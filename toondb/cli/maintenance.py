"""``toondb backup`` (a consistent copy of a database in use) and ``toondb compact``
(rewrite without free pages, with exclusive access): the command line over the
engine's ``toondb.storage.maintenance``, which does the work and keeps the lock
protocol."""

from __future__ import annotations

import argparse
import os
import sys

from toondb.cli.common import EXIT_OK, open_db
from toondb.cli.common import database_files as _files
from toondb.errors import CLIError
from toondb.storage import maintenance

__all__ = ["cmd_backup", "cmd_compact"]


def cmd_backup(args: argparse.Namespace) -> int:
    open_db(args.path, read_only=True).close()  # a missing database: the usual message
    try:
        counts = maintenance.backup(args.path, args.dest)
    except (FileExistsError, FileNotFoundError) as e:
        raise CLIError(str(e)) from None
    sys.stdout.write(
        f"backup of {args.path} (snapshot of transaction {counts['txn_id']}) written to "
        f"{args.dest}: {counts['keys']} keys, {counts['trees']} named trees\n"
    )
    return EXIT_OK


def cmd_compact(args: argparse.Namespace) -> int:
    if not os.path.exists(_files(args.path)[0]):
        open_db(args.path)  # raises the usual "no toondb database" error
    counts = maintenance.compact(args.path, wait=args.wait, pause=args.pause)
    if not counts["compacted"]:
        sys.stdout.write(
            f"{args.path} is already compact: {counts['bytes_before']} bytes (a rewrite would "
            f"take {counts['bytes_rewritten']}); left unchanged\n"
        )
        return EXIT_OK
    sys.stdout.write(
        f"compacted {args.path}: {counts['bytes_before']} -> {counts['bytes_after']} bytes, "
        f"{counts['keys']} keys, {counts['trees']} named trees\n"
    )
    return EXIT_OK
