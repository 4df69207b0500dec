"""One shard, served: the object that lives in a shard's worker (a process of the
local backend, a Ray actor of the ray backend) and answers the index's calls.

It opens its shard file through the mapping (``toondb.bulk.open_index``: nothing is
read or rebuilt; the pages are searched in place), read-only unless the sharded index
was opened for writing. It is made in the worker, never handed across a fork: a
toondb handle belongs to the process that opened it (docs/concurrency.md), which is
why the local backend forks its workers from a server that never opened one (or
spawns them), and why a Ray actor restarted after a death opens the file again in
its constructor.

Every method takes and returns plain data (NumPy arrays, ints, dicts, IndexInfo), so
the same object serves both backends.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from typing import Any

import numpy as np

from toondb.distributed.location import StorageLocation
from toondb.distributed.manifest import file_sha256
from toondb.errors import ClosedError, ShardChecksumError
from toondb.vector.bulk import open_index
from toondb.vector.index import (
    IndexInfo,
    VectorIndex,
    _DbIndex,
)  # _DbIndex: what open_index returns

__all__ = ["ShardServer", "MAX_STALL"]

# the longest stall() a test may inject (seconds): a bound, so a mistake cannot hang a
# worker for good
MAX_STALL = 60.0


class ShardServer:
    """Shard `shard` of a sharded index, opened from `file` in `location`.

    threads: search/insert threads of this shard (None: the CPUs Ray assigned to the
    actor, else every core of the machine). sha256: when given, the file is checked
    against it before it is opened (ShardChecksumError).

    The constructor never raises: a failure to verify or open the file is kept and
    raised by every method, ``ping`` first (the open's probe), with the shard named. A
    Ray actor whose constructor raised would die with the error flattened to text; this
    way the caller gets the original class (CorruptionError, FileNotFoundError, ...)."""

    def __init__(
        self,
        location: StorageLocation,
        shard: int,
        file: str,
        *,
        read_only: bool = True,
        threads: int | None = None,
        sha256: str | None = None,
    ) -> None:
        self.shard = shard
        self.file = file
        self.location = location
        self.threads = threads if threads is not None else _default_threads()
        self.written = False
        self._stall = 0.0
        self._index: _DbIndex | None = None
        self._error: BaseException | None = None
        try:
            self.path = location.local_path(file)
            if not read_only:  # written in place, published by close()
                self.path = location.staging_path(file)
            if sha256 is not None:
                self._verify(sha256)
            self._index = open_index(self.path, read_only=read_only)
        except Exception as e:  # noqa: BLE001 - kept for the caller (see the docstring)
            self._error = _naming(e, shard, file)

    @property
    def index(self) -> VectorIndex:
        if self._index is None:
            assert self._error is not None
            raise self._error
        return self._index

    def _verify(self, sha256: str) -> None:
        got = file_sha256(self.path)
        if got != sha256:
            raise ShardChecksumError(
                f"shard {self.shard} ({self.file}): SHA-256 {got[:16]}... but the manifest "
                f"records {sha256[:16]}... (the file was damaged or replaced)",
                self.shard,
                self.file,
            )

    # -- reads --------------------------------------------------------------------------

    def ping(self) -> dict[str, Any]:
        """Who serves this shard: pid, host, vectors (the open's and a test's probe)."""
        return {"pid": os.getpid(), "host": socket.gethostname(), "vectors": self.index.count}

    def search_arrays(
        self, queries: np.ndarray, k: int, ef_search: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The shard's k best of each query: (ids (n, k) int64, distances (n, k)
        float32), padded with -1 / inf."""
        if self._stall:
            seconds, self._stall = self._stall, 0.0
            time.sleep(seconds)  # an injected hang (stall()): the call answers late
        return self.index.search_arrays(queries, k, ef_search, threads=self.threads)

    def contains(self, ids: np.ndarray) -> np.ndarray:
        """Which of ids (uint64) the shard holds (bool array)."""
        index = self.index
        return np.fromiter((int(i) in index for i in ids), dtype=bool, count=len(ids))

    def info(self) -> IndexInfo:
        return self.index.info()

    # -- writes (each an atomic commit to the shard file) ---------------------------------

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> int:
        index = self.index
        self.written = True
        return index.add(ids, vectors, threads=self.threads)

    def upsert(self, ids: np.ndarray, vectors: np.ndarray) -> int:
        index = self.index
        self.written = True
        return index.upsert(ids, vectors, threads=self.threads)

    def delete(self, ids: np.ndarray) -> int:
        index = self.index
        self.written = True
        return index.delete(ids)

    # -- fault injection and the end ------------------------------------------------------

    def stall(self, seconds: float) -> None:
        """Make the next search sleep `seconds` (at most MAX_STALL) before it answers:
        how tests simulate a hung or slow shard. A worker restarted after a death
        forgets it."""
        self._stall = min(max(float(seconds), 0.0), MAX_STALL)

    def close(self) -> dict[str, Any]:
        """Close the shard file. A shard that was written returns its new size,
        checksum and count for the manifest (invariant 3 of manifest.py); any other
        returns {}."""
        if self._index is None:
            return {}
        vectors = self._index.count
        self._index.close()
        self._index = None
        self._error = ClosedError(f"shard {self.shard} ({self.file}) is closed")
        if not self.written:
            return {}
        self.location.publish(self.file)  # an object store uploads the rewritten shard
        return {
            "vectors": vectors,
            "bytes": os.path.getsize(self.path),
            "sha256": file_sha256(self.path),
        }


def _naming(e: Exception, shard: int, file: str) -> Exception:
    """e with the shard named in its message, as the same class where that class can
    be made from a message alone (toondb's errors, OSError's kin); else e."""
    prefix = f"shard {shard} ({file}): "
    if str(e).startswith(prefix[:-2]):
        return e
    try:
        named = type(e)(prefix + str(e))
    except Exception:  # noqa: BLE001 - a class with another constructor
        return e
    named.__cause__ = e
    return named


def _default_threads() -> int:
    """The CPUs Ray assigned to this actor, if it is one and got some; else every core
    this process may use."""
    try:
        if "ray" in sys.modules:
            import ray

            if ray.is_initialized():
                context: Any = ray.get_runtime_context()  # ray has no type hints
                cpus = context.get_assigned_resources().get("CPU", 0)
                if cpus >= 1:
                    return int(cpus)
    except Exception:  # noqa: BLE001 - not in a Ray worker: the machine's cores
        pass
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)
