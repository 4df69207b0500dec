"""The storage engine's Python face: open a database by path, transactions as
context managers, scans and the path API, ``stats()`` and ``check()``.

``StorageEnvironment`` and ``StorageTransaction`` are thin subclasses of the Cython
engine objects (``toondb.storage._btree``): ``get``, ``put``, ``delete`` and scans
run in C with no Python object per page or per key. They know nothing of SQL,
vectors or TOON; ``toondb.database`` builds the public ``Database`` and
``Transaction`` on them.

Layout on disk: opening the directory ``./my_database`` makes it hold
``toondb.data`` (the page file: every key-value pair, SQL table and vector index)
and ``toondb.lock`` (the shared reader table and the write lock). A path that
names an existing page file (a ``.hnsw`` index built by ``toondb.bulk``, say)
opens that file directly, with its lock file beside it as ``<file>-lock``.
"""

from __future__ import annotations

import os
import uuid
from types import TracebackType
from typing import Any, TypeVar, Union

from toondb.config import validate
from toondb.storage import _btree
from toondb.storage.keyspace import KeyValueAPI

__all__ = [
    "StorageEnvironment",
    "StorageTransaction",
    "DATA_FILE",
    "LOCK_FILE",
    "files_of",
    "boot_id",
]

DATA_FILE = "toondb.data"
LOCK_FILE = "toondb.lock"

PathLike = Union[str, "os.PathLike[str]"]
_E = TypeVar("_E", bound="StorageEnvironment")


def boot_id() -> bytes | None:
    """This machine session's id: a reboot changes it (see sync_mode="normal")."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return uuid.UUID(f.read().strip()).bytes
    except (OSError, ValueError):
        return None


def files_of(path: str) -> tuple[str, str]:
    """(page file, lock file) of the database at path: a directory's toondb.data and
    toondb.lock, or an existing page file and <file>-lock beside it."""
    if os.path.isfile(path):
        return path, path + "-lock"
    return os.path.join(path, DATA_FILE), os.path.join(path, LOCK_FILE)


class StorageTransaction(_btree.Txn, KeyValueAPI):
    """A transaction of the storage engine: every write is applied atomically at
    ``commit()``, or not at all; a context manager that commits on success and
    aborts on an exception (see ``toondb.Transaction`` for the isolation rules)."""

    def __enter__(self: Any) -> Any:
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


class StorageEnvironment(_btree.Env, KeyValueAPI):
    """An open page file: key-value pairs and named trees, with snapshot transactions.
    Open it with ``open(path)``; ``transaction_class`` is the class of the
    transactions it begins."""

    path: str
    config: dict[str, Any]
    sync_mode: str
    _data_path: str
    transaction_class: type[StorageTransaction] = StorageTransaction

    def __init__(self) -> None:  # use .open()
        raise TypeError(f"use {type(self).__name__}.open(path, config=None) to open a database")

    @classmethod
    def open(
        cls: type[_E],
        path: PathLike,
        config: dict[str, Any] | None = None,
        *,
        read_only: bool | None = None,
    ) -> _E:
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
        if not os.path.isfile(path):
            if not os.path.isdir(path):
                if not cfg["create_if_missing"] or cfg["read_only"]:
                    raise FileNotFoundError(
                        f"no toondb database at {path!r} (create_if_missing is False"
                        + (" and the open is read-only)" if cfg["read_only"] else ")")
                    )
                os.makedirs(path, exist_ok=True)
            if not os.path.exists(os.path.join(path, DATA_FILE)) and not cfg["create_if_missing"]:
                raise FileNotFoundError(
                    f"no toondb database in {path!r} (create_if_missing is False)"
                )
        data_path, lock_path = files_of(path)
        return cls.open_files(path, data_path, lock_path, cfg, config)

    @classmethod
    def open_files(
        cls: type[_E],
        path: str,
        data_path: str,
        lock_path: str,
        cfg: dict[str, Any],
        config: dict[str, Any] | None = None,
    ) -> _E:
        """Open the page file data_path with its lock file lock_path; cfg is a
        validated configuration (config the one given, to tell a page size asked
        for from the default)."""
        boot = boot_id()
        sync_mode = cfg["sync_mode"]
        if boot is None and sync_mode == "normal":
            # without a boot id a reboot cannot be told from a process crash,
            # so "normal" keeps its promise by syncing every commit
            sync_mode = "full"
        env = cls.__new__(cls)
        env._txn_class = cls.transaction_class
        env._open(
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
            cfg["file_mode"],
        )
        env.path = path
        env.config = cfg
        env.sync_mode = sync_mode
        env._data_path = data_path
        return env

    # ---- transactions ----

    def begin_transaction(self, *, read_only: bool = False, immediate: bool = False) -> Any:
        """A new transaction; finish it with commit() or abort().

        read_only=True: a snapshot for reads only. immediate=True: take the write
        lock now (waiting up to lock_timeout), so the commit can never conflict."""
        return self.begin(write=not read_only, immediate=immediate)

    def transaction(self, *, read_only: bool = False, immediate: bool = False) -> Any:
        """A transaction as a context manager: commits on success, aborts on an exception."""
        return self.begin(write=not read_only, immediate=immediate)

    # ---- maintenance ----

    def stats(self) -> dict[str, Any]:
        """Counts that describe the database now. ``sync_mode`` is the mode in force,
        which is "full" where "normal" was asked for on a machine without a boot id."""
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
            "sync_mode": self.sync_mode,
            "map_size": self.config["map_size"],
            "max_key_size": self.max_key_size,
        }

    def check(self) -> dict[str, Any]:
        """Verify the whole file: every checksum, key order and separator, one leaf
        depth, every page reachable exactly once or free. Raises CorruptionError
        listing every problem (``.problems``); returns counts when all is well."""
        return self._check()

    def __enter__(self: _E) -> _E:
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
