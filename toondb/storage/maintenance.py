"""Maintenance by the engine: a consistent backup of a database in use, and the
compaction of one that nobody has open.

Both copy one snapshot into a new page file (``copy_database``): the key-value space
and every named tree (SQL tables and indexes, vector indexes), written in commits of
about ``COPY_CHUNK`` bytes (a copy that is not yet in place needs no atomicity, and a
bounded commit bounds the memory), then ``check()`` the copy and compare its counts
with what was copied. A copy holds no free pages.

``backup(path, dest)``: the source stays in use (a snapshot is consistent, and
writers do not wait for it). The copy is written into a temporary directory beside
``dest``, renamed to ``dest`` when complete, and the rename is fsynced: ``dest`` is a
whole backup or absent.

``compact(path)``: rewrites the page file without its free pages. It takes the
database's lock file exclusively (``exclusive_access`` of the engine: its init and
presence bytes, see ``_openlock.pxi``), so it refuses while any handle has the
database open (``DatabaseLockedError``) and, while it runs, every opener waits before
it opens the page file; it then copies through a second name of the page file, puts
the copy in place with one rename and fsyncs the directory. An opener that waited
opens the compacted file. A page file can be opened by two names (a directory's
``toondb.data``, locked through ``toondb.lock``, and the file itself, locked through
``toondb.data-lock``): compaction holds both lock files.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import time
from typing import Any, Union

from toondb.errors import ToonDBError
from toondb.storage import _btree
from toondb.storage.env import DATA_FILE, LOCK_FILE, StorageEnvironment, files_of

__all__ = ["COPY_CHUNK", "backup", "compact", "copy_database"]

COPY_CHUNK = 32 << 20  # bytes of keys and values per commit while copying

PathLike = Union[str, "os.PathLike[str]"]


class _Copier:
    """Writes into a new database in commits of about COPY_CHUNK bytes."""

    def __init__(self, env: StorageEnvironment) -> None:
        self.env = env
        self.txn = env.begin_transaction(immediate=True)
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
            self.txn = self.env.begin_transaction(immediate=True)
            self.trees = {}
            self.pending = 0

    def finish(self) -> None:
        self.txn.commit()


def copy_database(
    src_env: StorageEnvironment,
    dest_dir: str,
    file_mode: int | None = None,
    snapshot: Any = None,
) -> dict[str, int]:
    """Copy one snapshot of src_env (the key-value space and every named tree) into a
    new database in the directory dest_dir, with the same page size, then check the
    copy and make it durable. src_env may be in use meanwhile. The copy's files get
    file_mode (default: the permission bits of src_env's page file). snapshot: a
    read-only transaction of src_env to copy (the caller's, left open); by default the
    newest snapshot.

    Returns {"keys": entries of the key-value space, "trees": named trees,
    "entries": all entries copied, "txn_id": the snapshot copied}."""
    if os.path.exists(os.path.join(dest_dir, DATA_FILE)):
        raise FileExistsError(f"{dest_dir!r} already holds a database; copy into a new directory")
    snap = snapshot if snapshot is not None else src_env.begin_transaction(read_only=True)
    try:
        if file_mode is None:
            file_mode = stat.S_IMODE(os.stat(src_env._data_path).st_mode)
        config = {
            "page_size": src_env.page_size,
            "create_if_missing": True,
            "file_mode": file_mode,
        }
        with StorageEnvironment.open(dest_dir, config) as out:
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
                    raise ToonDBError(
                        "internal error: the copy does not hold every key (a bug: please report it)"
                    )
                for name in names:
                    if check.tree(name).count() != copier.entries.get(name, 0):
                        raise ToonDBError(
                            f"internal error: the copy of tree {name!r} is incomplete "
                            "(a bug: please report it)"
                        )
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
        if snapshot is None:
            snap.abort()


def _fsync_dir(path: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def backup(path: PathLike, dest: PathLike) -> dict[str, int]:
    """Write a consistent copy of the database at path (a directory, or a page file)
    to the new directory dest (which may exist if empty), while the database stays in
    use. dest ends up holding the whole backup, or is left as it was.

    Raises FileExistsError when dest is a file or a non-empty directory,
    FileNotFoundError when its parent directory or the database is missing. Returns
    the counts of ``copy_database``."""
    given = os.fspath(dest)
    target = os.path.abspath(given)
    if os.path.exists(target) and not (os.path.isdir(target) and not os.listdir(target)):
        raise FileExistsError(f"{given!r} already exists; give a new (or empty) directory")
    parent = os.path.dirname(target)
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"no directory {parent!r} to put the backup in")
    with StorageEnvironment.open(path, {"create_if_missing": False}, read_only=True) as src:
        tmp = tempfile.mkdtemp(prefix=".toondb-backup-", dir=parent)
        try:
            counts = copy_database(src, tmp)
            if os.path.isdir(target):
                os.rmdir(target)  # empty: replaced by the finished copy
            os.rename(tmp, target)
            _fsync_dir(parent)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return counts


def compact(path: PathLike, *, wait: float = 10.0, pause: float = 0.0) -> dict[str, int]:
    """Rewrite the page file of the database at path (a directory, or a page file)
    without its free pages, replacing it atomically.

    Refuses (DatabaseLockedError) when a handle in any process (this one included,
    on Linux) has the database open; waits up to ``wait`` seconds for handles that are being
    opened. Openers that arrive meanwhile wait, then open the compacted file.
    ``pause`` (seconds, for tests) holds the locks that long before copying.

    The file is never grown: when the rewritten copy would not be smaller (a file
    with no free pages), it is dropped and the page file left as it was.

    Returns the counts of ``copy_database`` and "bytes_before", "bytes_after": the
    size of the page file before and after; "bytes_rewritten": the size of the copy;
    "compacted": whether the copy replaced the file."""
    path = os.fspath(path)
    # a missing database raises the usual FileNotFoundError; a database whose newest
    # commit was never synced before a reboot is recovered by this open
    StorageEnvironment.open(path, {"create_if_missing": False}).close()
    data, lock = files_of(path)
    before = os.path.getsize(data)
    directory = os.path.dirname(os.path.abspath(data))
    # the page file's lock file under either name it can be opened by; the one of
    # the name given exists (the open above made it), the other only if ever used
    lock_paths = [lock]
    if os.path.basename(data) == DATA_FILE:
        lock_paths = [os.path.join(directory, LOCK_FILE), data + "-lock"]
    with contextlib.ExitStack() as held:
        for lock_path in lock_paths:
            if lock_path != lock and not os.path.exists(lock_path):
                continue
            held.enter_context(_btree.exclusive_access(lock_path, wait, path))
        tmp = tempfile.mkdtemp(prefix=".toondb-compact-", dir=directory)
        try:
            if pause:
                time.sleep(pause)  # tests: hold the locks a while, openers must wait
            # read through a second name of the page file, whose lock file is in tmp:
            # the database's own lock file is held here
            source = os.path.join(tmp, "source")
            os.link(data, source)
            with StorageEnvironment.open(source, read_only=True) as src:
                counts = copy_database(src, os.path.join(tmp, "copy"))
            copy = os.path.join(tmp, "copy", DATA_FILE)
            rewritten = os.path.getsize(copy)
            # compaction never grows the file: a copy no smaller (a file with no free
            # pages, copied in several commits) is dropped and the file left alone
            compacted = rewritten < before
            if compacted:
                os.replace(copy, data)
                _fsync_dir(directory)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    # leaving the with block closed the lock files: waiting openers open the new file
    return {
        **counts,
        "bytes_before": before,
        "bytes_after": os.path.getsize(data),
        "bytes_rewritten": rewritten,
        "compacted": compacted,
    }
