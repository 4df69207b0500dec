"""``toondb backup`` (a consistent copy of a database in use) and ``toondb compact``
(rewrite without free pages, with exclusive access). The functions below are moved
verbatim from the former cli/main.py; their mechanism is moving to
toondb/storage/maintenance.py."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import struct
import sys
import tempfile
import time
from typing import Any, Callable

from toondb.cli.common import EXIT_OK, open_db
from toondb.cli.common import database_files as _files
from toondb.database import DATA_FILE, LOCK_FILE, Database
from toondb.errors import CLIError

__all__ = ["cmd_backup", "cmd_compact", "copy_database"]

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
