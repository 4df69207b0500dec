"""``Database`` and ``Transaction``: the Python face of the storage engine.

Both are thin subclasses of the Cython engine objects (``toondb._btree``):
``get``, ``put``, ``delete`` and scans run in C with no Python object per page
or per key. What is added here is the convenience a Python developer expects:
opening by path, the path API, prefix scans, context managers.

Layout on disk: ``Database.open("./my_database")`` makes a directory holding
``toondb.data`` (the page file: every key-value pair, SQL table and vector index)
and ``toondb.lock`` (the shared reader table and the write lock). A path that
names an existing page file (a ``.hnsw`` index built by ``toondb.bulk``, say)
opens that file directly, with its lock file beside it as ``<file>-lock``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Union

from toondb import _btree
from toondb.config import validate
from toondb.query import QueryMixin
from toondb.sql.api import SQLMixin
from toondb.vector_api import VectorMixin

__all__ = ["Database", "Transaction", "DATA_FILE", "LOCK_FILE"]

DATA_FILE = "toondb.data"
LOCK_FILE = "toondb.lock"

BytesLike = Union[bytes, bytearray, memoryview]
PathLike = Union[str, "os.PathLike[str]"]


def _boot_id() -> bytes | None:
    """This machine session's id: a reboot changes it (see sync_mode="normal")."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return uuid.UUID(f.read().strip()).bytes
    except (OSError, ValueError):
        return None


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key that starts with prefix (None: no bound)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


def _path_key(path: str) -> bytes:
    if not isinstance(path, str):
        raise TypeError(f"path must be a str like 'users/alice/email', not {type(path).__name__}")
    if not path or path.startswith("/") or path.endswith("/") or "//" in path:
        raise ValueError(
            f"invalid path {path!r}: a path is one or more non-empty segments separated by "
            "'/', with no leading or trailing '/'"
        )
    return path.encode("utf-8")


def _path_prefix(path: str) -> bytes:
    return b"" if path == "" else _path_key(path) + b"/"


class _KeyValueAPI:
    """Scans and the path API, shared by Database and Transaction. A path is the
    key's UTF-8 text, so put_path("a/b", v) and put(b"a/b", v) store the same entry."""

    def put_path(self, path: str, value: BytesLike) -> None:
        """Store value under a hierarchical path such as "users/alice/email"."""
        self.put(_path_key(path), value)

    def get_path(self, path: str) -> bytes | None:
        """The value stored under path, or None."""
        return self.get(_path_key(path))

    def delete_path(self, path: str) -> bool:
        """Delete the value stored under path (not its children); True if present."""
        return self.delete(_path_key(path))

    def scan_path(self, path: str = "") -> Iterator[tuple[str, bytes]]:
        """(path, value) for every path strictly below path, in order."""
        prefix = _path_prefix(path)
        for key, value in self.scan(prefix):
            yield key.decode("utf-8", "surrogateescape"), value

    def list_path(self, path: str = "") -> list[str]:
        """The names of path's immediate children, sorted (like listing a directory)."""
        prefix = _path_prefix(path)
        end = prefix_end(prefix) if prefix else None
        names: set[str] = set()
        start = prefix
        while True:
            item = next(self._scan(start, end, False), None)
            if item is None:
                break
            name, slash, _ = item[0][len(prefix) :].partition(b"/")
            names.add(name.decode("utf-8", "surrogateescape"))
            # skip the child's subtree: every prefix+name+"/..." sorts below prefix+name+"0"
            start = prefix + name + (b"0" if slash else b"\x00")
        return sorted(names)

    # ---- scans ----

    def scan(
        self, start: BytesLike = b"", end: BytesLike | None = None, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) in key order: with end, over [start, end); without, every
        key that starts with start (so scan(b"") is everything). reverse=True
        walks backwards. Memory stays flat however many keys the range holds."""
        if end is None:
            if not isinstance(start, bytes):
                start = _btree.as_bytes(start, "start")
            return self._scan(start, prefix_end(start), reverse)
        return self._scan(start, end, reverse)

    def scan_prefix(self, prefix: BytesLike) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) for every key that starts with prefix, in key order."""
        return self.scan(prefix)


class Transaction(_btree.Txn, _KeyValueAPI, SQLMixin, QueryMixin, VectorMixin):
    """A transaction: every write is applied atomically at ``commit()``, or not at all.

    Reads see the snapshot taken when the transaction began plus its own writes;
    a scan merges them in key order. Isolation is snapshot isolation with
    first-committer-wins: if another transaction committed a write to a key this
    one also wrote, after this one began, ``commit()`` raises
    ``TransactionConflictError`` and applies nothing (retry it). An
    ``immediate=True`` transaction takes the write lock when it begins and never
    conflicts. Used as a context manager it commits on success and aborts on an
    exception.
    """

    def __enter__(self) -> Transaction:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.closed:
            return
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"snapshot {self.txnid}"
        kind = "read-only" if self.read_only else "read-write"
        return f"<toondb Transaction {kind}, {state}>"


class Database(_btree.Env, _KeyValueAPI, SQLMixin, QueryMixin, VectorMixin):
    """An open toondb database: key-value pairs, SQL tables and vector indexes in
    one crash-safe page file.

    Open it with ``Database.open(path)``, preferably as a context manager. Any
    number of threads and processes may open the same database; one writes at a
    time, all read concurrently from snapshots.
    """

    path: str
    config: dict[str, Any]

    def __init__(self) -> None:  # use Database.open()
        raise TypeError("use Database.open(path, config=None) to open a database")

    @classmethod
    def open(
        cls,
        path: PathLike,
        config: dict[str, Any] | None = None,
        *,
        read_only: bool | None = None,
    ) -> Database:
        """Open (or create) the database at path: a directory, or an existing page file.

        config: see docs/configuration.md. read_only=True (or config
        {"read_only": True}) never takes the write lock; writes raise ReadOnlyError.
        """
        cfg = validate(config)
        if read_only is not None:
            if not isinstance(read_only, bool):
                raise TypeError("read_only must be True or False")
            cfg["read_only"] = read_only
        path = os.fspath(path)
        if not isinstance(path, str):
            path = os.fsdecode(path)
        if os.path.isfile(path):
            return cls._open_page_file(path, cfg, config)
        else:
            if not os.path.isdir(path):
                if not cfg["create_if_missing"] or cfg["read_only"]:
                    raise FileNotFoundError(
                        f"no toondb database at {path!r} (create_if_missing is False"
                        + (" and the open is read-only)" if cfg["read_only"] else ")")
                    )
                os.makedirs(path, exist_ok=True)
            data_path = os.path.join(path, DATA_FILE)
            lock_path = os.path.join(path, LOCK_FILE)
            if not os.path.exists(data_path) and not cfg["create_if_missing"]:
                raise FileNotFoundError(
                    f"no toondb database in {path!r} (create_if_missing is False)"
                )
        return cls._open_at(path, data_path, lock_path, cfg, config)

    @classmethod
    def _open_page_file(
        cls, path: str, cfg: dict[str, Any], config: dict[str, Any] | None = None
    ) -> Database:
        """Open (or create) a database that is one page file at exactly `path`
        (a .hnsw index, say), with its lock file beside it as path + "-lock"."""
        return cls._open_at(path, path, path + "-lock", cfg, config)

    @classmethod
    def _open_at(
        cls,
        path: str,
        data_path: str,
        lock_path: str,
        cfg: dict[str, Any],
        config: dict[str, Any] | None,
    ) -> Database:
        boot = _boot_id()
        sync_mode = cfg["sync_mode"]
        if boot is None and sync_mode == "normal":
            # without a boot id a reboot cannot be told from a process crash,
            # so "normal" keeps its promise by syncing every commit
            sync_mode = "full"
        db = cls.__new__(cls)
        db._txn_class = Transaction
        db._open(
            data_path,
            lock_path,
            cfg["create_if_missing"],
            cfg["read_only"],
            cfg["page_size"] if config and "page_size" in config else 0,
            cfg["map_size"],
            sync_mode,
            cfg["memtable_size_bytes"],
            float(cfg["sync_interval"]),
            float(cfg["lock_timeout"]),
            cfg["max_readers"],
            boot or bytes(16),
        )
        db.path = path
        db.config = cfg
        db._data_path = data_path
        return db

    # ---- transactions ----

    def begin_transaction(self, *, read_only: bool = False, immediate: bool = False) -> Transaction:
        """A new transaction; finish it with commit() or abort().

        read_only=True: a snapshot for reads only. immediate=True: take the write
        lock now (waiting up to lock_timeout), so the commit can never conflict."""
        return self.begin(write=not read_only, immediate=immediate)

    def transaction(self, *, read_only: bool = False, immediate: bool = False) -> Transaction:
        """A transaction as a context manager: commits on success, aborts on an exception."""
        return self.begin(write=not read_only, immediate=immediate)

    # ---- maintenance ----

    def stats(self) -> dict[str, Any]:
        """Counts that describe the database now."""
        state, durable = self._state()
        free_runs, pending = self._freelist()
        free = sum(n for _, n in free_runs)
        pinned = sum(n for _, runs in pending for _, n in runs)
        readers = self._readers()
        return {
            "entries": state["kv"][2],
            "depth": state["kv"][1],
            "trees": state["catalog"][2],
            "page_size": self.page_size,
            "pages": state["page_count"],
            "pages_free": free,
            "pages_pending": pinned,
            "pages_used": state["page_count"] - free - pinned,
            "file_size": os.path.getsize(self._data_path),
            "last_txn_id": state["txnid"],
            "durable_txn_id": durable["txnid"] or None,
            "readers": len(readers),
            "oldest_reader_txn_id": min((t for _, t in readers), default=None),
            "sync_mode": self.config["sync_mode"],
            "map_size": self.config["map_size"],
            "max_key_size": self.max_key_size,
        }

    def check(self) -> dict[str, Any]:
        """Verify the whole file: every checksum, key order and separator, one leaf
        depth, every page reachable exactly once or free. Raises CorruptionError
        listing every problem (``.problems``); returns counts when all is well."""
        return self._check()

    def __enter__(self) -> Database:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<toondb Database {getattr(self, 'path', '?')!r} ({state})>"
