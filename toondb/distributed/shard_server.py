"""One shard, served: the object that lives in a shard's worker (a process of the
local backend, a Ray actor of the ray backend) and answers the index's calls.

It opens its shard file through the mapping (``toondb.bulk.open_index``: nothing is
read or rebuilt; the pages are searched in place), read-only unless the sharded index
was opened for writing. It is made in the worker, never handed across a fork: a
toondb handle belongs to the process that opened it (docs/concurrency.md), which is
why the local backend starts its processes with the spawn context and a Ray actor
restarted after a death opens the file again in its constructor.

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
from toondb.errors import ShardChecksumError
from toondb.vector.bulk import open_index
from toondb.vector.index import IndexInfo

__all__ = ["ShardServer", "MAX_STALL"]

# the longest stall() a test may inject (seconds): a bound, so a mistake cannot hang a
# worker for good
MAX_STALL = 60.0


class ShardServer:
    """Shard `shard` of a sharded index, opened from `file` in `location`.

    threads: search/insert threads of this shard (None: the CPUs Ray assigned to the
    actor, else every core of the machine)."""

    def __init__(
        self,
        location: StorageLocation,
        shard: int,
        file: str,
        *,
        read_only: bool = True,
        threads: int | None = None,
    ) -> None:
        self.shard = shard
        self.file = file
        self.path = location.local_path(file)
        self.index = open_index(self.path, read_only=read_only)
        self.threads = threads if threads is not None else _default_threads()
        self.written = False
        self._stall = 0.0

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
        return np.fromiter((int(i) in self.index for i in ids), dtype=bool, count=len(ids))

    def info(self) -> IndexInfo:
        return self.index.info()

    def verify(self, sha256: str) -> None:
        """Raise ShardChecksumError unless the file's SHA-256 is sha256 (reads it all)."""
        got = file_sha256(self.path)
        if got != sha256:
            raise ShardChecksumError(
                f"shard {self.shard} ({self.file}): SHA-256 {got[:16]}... but the manifest "
                f"records {sha256[:16]}... (the file was damaged or replaced)",
                self.shard,
                self.file,
            )

    # -- writes (each an atomic commit to the shard file) ---------------------------------

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> int:
        self.written = True
        return self.index.add(ids, vectors, threads=self.threads)

    def upsert(self, ids: np.ndarray, vectors: np.ndarray) -> int:
        self.written = True
        return self.index.upsert(ids, vectors, threads=self.threads)

    def delete(self, ids: np.ndarray) -> int:
        self.written = True
        return self.index.delete(ids)

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
        vectors = self.index.count
        self.index.close()
        if not self.written:
            return {}
        return {
            "vectors": vectors,
            "bytes": os.path.getsize(self.path),
            "sha256": file_sha256(self.path),
        }


def _default_threads() -> int:
    """The CPUs Ray assigned to this actor, if it is one and got some; else every core
    this process may use."""
    try:
        if "ray" in sys.modules:
            import ray

            if ray.is_initialized():
                cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 0)
                if cpus >= 1:
                    return int(cpus)
    except Exception:  # noqa: BLE001 - not in a Ray worker: the machine's cores
        pass
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)
