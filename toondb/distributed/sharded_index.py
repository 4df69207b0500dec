"""A vector index split into shards, each served by its own worker (a local process or
a Ray actor), searched by fanning a query out to every shard and merging exactly.

::

    from toondb.distributed import ShardedIndex

    ShardedIndex.build(vectors, path="idx/", shards=4, metric="cosine")
    with ShardedIndex.open("idx/") as index:                 # backend="ray" on a cluster
        ids, distances = index.search_arrays(queries, k=10, ef_search=64)

The directory holds one ``.hnsw`` file per shard and a manifest (manifest.py). Ids are
owned by shard ``splitmix64(id) mod shards`` (partition.py); a search asks every shard
for its k best and keeps the k best of their answers (merge.py: the same ids and
distances as one search over all the shards' candidates). docs/distributed.md is the
guide.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from toondb.distributed.backend import Outcome, ShardPool, unavailable
from toondb.distributed.backends import open_pool
from toondb.distributed.build import Progress, ShardedBuildStats, build_sharded
from toondb.distributed.location import StorageLocation, resolve_location
from toondb.distributed.manifest import Manifest, ShardEntry
from toondb.distributed.merge import merge_top_k
from toondb.distributed.partition import SCHEME, shard_of, split_by_shard
from toondb.distributed.results import ShardedArrays, ShardedNeighbors
from toondb.errors import ClosedError, ReadOnlyError, ShardedIndexError, VectorIndexError
from toondb.vector._hnsw import neighbors
from toondb.vector.checks import _unique_or_raise, as_ids, as_vectors, check_search
from toondb.vector.index import IndexInfo
from toondb.vector.store import DEFAULT_SEED

__all__ = ["ShardedIndex", "ShardedIndexInfo"]

DEFAULT_TIMEOUT = 30.0
DEFAULT_OPEN_TIMEOUT = 120.0


@dataclass(frozen=True)
class ShardedIndexInfo:
    """What a sharded index holds (``ShardedIndex.info()``): the totals over its shards
    and each shard's own IndexInfo (``shard_info``), read from the shards' workers."""

    path: str
    backend: str
    shards: int
    partition: str
    vectors: int
    dimension: int
    metric: str
    m: int
    ef_construction: int
    deleted: int
    bytes: int
    file_bytes: int
    shard_info: tuple[IndexInfo, ...]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ShardedIndex:
    """A sharded vector index, opened: one worker per shard (see the module docstring).

    Thread-safe: any thread may search or write; calls to a local backend's workers
    are made one at a time, a Ray backend's concurrently; writes one at a time."""

    def __init__(self, location: StorageLocation, manifest: Manifest, pool: ShardPool,
                 *, read_only: bool, timeout: float) -> None:  # fmt: skip
        self._location = location
        self._manifest = manifest
        self._pool: ShardPool | None = pool
        self._read_only = read_only
        self._timeout = timeout
        self._written: set[int] = set()
        self._write_lock = threading.Lock()  # one write (and its manifest update) at a time

    # -- build and open ---------------------------------------------------------------

    @staticmethod
    def build(
        vectors: Any,
        ids: npt.ArrayLike | None = None,
        *,
        path: Any,
        shards: int,
        metric: str = "cosine",
        m: int = 16,
        ef_construction: int = 100,
        backend: str = "local",
        progress: Progress = None,
        seed: int = DEFAULT_SEED,
        threads: int | None = None,
        build_options: Mapping[str, Any] | None = None,
        batch_size: int = 65536,
    ) -> ShardedBuildStats:
        """Build a sharded index into the directory `path` (new or empty).

        vectors: a 2-D array (n, dimension), with ids (n distinct integers in
        0..2**63-1; default 0..n-1); or an iterable of batches (a generator, for input
        larger than memory), each a 2-D array (numbered on from 0) or a pair
        ``(vectors, ids)``. The input is streamed to per-shard spools (this process
        holds one batch, of at most batch_size rows of an array, at a time), then each
        shard is built by the bulk builder on a worker, in parallel: local processes
        (backend="local") or Ray tasks (backend="ray"; build_options are the task's
        Ray options, default ``num_cpus=1``). threads: build threads per shard
        (default: the cores divided among the parallel builds, or the task's
        num_cpus). metric, m, ef_construction, seed: as bulk_build_index (shard i
        uses seed + i). progress: as bulk_build_index, counted in finished shards.

        Returns ShardedBuildStats. Open the index with ``ShardedIndex.open(path)``."""
        return build_sharded(
            vectors, ids, path=path, shards=shards, metric=metric, m=m,
            ef_construction=ef_construction, backend=backend, progress=progress, seed=seed,
            threads=threads, build_options=build_options, batch_size=batch_size,
        )  # fmt: skip

    @classmethod
    def open(
        cls,
        path: Any,
        *,
        backend: str = "local",
        read_only: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        open_timeout: float = DEFAULT_OPEN_TIMEOUT,
        threads: int | None = None,
        verify: bool = False,
        options: Mapping[str, Any] | None = None,
    ) -> ShardedIndex:
        """Open the sharded index in `path`: start one worker per shard (a local
        process, or a Ray actor on the cluster) that maps its shard file, and wait
        until every shard is open (at most open_timeout seconds).

        read_only=False allows add/upsert/delete. timeout: the default deadline of each
        call, in seconds. threads: search threads per shard (default: local, the cores
        divided by the shards; ray, the actor's num_cpus, or every core of its node
        when it reserves none). verify=True checks every shard file against the
        manifest's SHA-256 first (reads every byte). options: the backend's: local
        ``{"max_restarts": 3}``; ray, the actor options (ray_backend.py), e.g.
        ``{"num_cpus": 8, "memory": 40 << 30}``."""
        if not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError(f"timeout must be a number of seconds > 0, got {timeout!r}")
        location = resolve_location(path)
        manifest = Manifest.read(location)
        _check_files(location, manifest)
        pool = open_pool(backend, location, manifest, read_only=read_only, threads=threads,
                         verify=verify, open_timeout=open_timeout, options=options)  # fmt: skip
        return cls(location, manifest, pool, read_only=read_only, timeout=float(timeout))

    # -- description ------------------------------------------------------------------

    @property
    def path(self) -> str:
        return self._location.url

    @property
    def backend(self) -> str:
        return self._live().backend

    @property
    def shards(self) -> int:
        return len(self._manifest.shards)

    @property
    def dimension(self) -> int:
        return self._manifest.dimension

    @property
    def metric(self) -> str:
        return self._manifest.metric

    @property
    def manifest(self) -> Manifest:
        return self._manifest

    @property
    def closed(self) -> bool:
        return self._pool is None

    def shard_of(self, ids: npt.ArrayLike) -> np.ndarray:
        """The shard that owns each id (int64 array)."""
        return shard_of(as_ids(ids), self.shards)

    def worker(self, shard: int) -> Any:
        """Shard `shard`'s worker: a multiprocessing.Process (local) or a Ray actor
        handle (ray): to watch it, or kill it and see it replaced."""
        return self._live().worker_handle(shard)

    def workers(self, *, timeout: float | None = None) -> list[dict[str, Any]]:
        """Where each shard is served: ``{"shard", "pid", "host", "vectors"}`` each."""
        out = self._call("ping", {s: () for s in range(self.shards)}, timeout)
        return [{"shard": s, **out.answers[s]} for s in range(self.shards)]

    def _inject_stall(self, shard: int, seconds: float) -> None:
        """Fault injection for tests: shard's next search sleeps `seconds` (at most
        shard_server.MAX_STALL) before answering, as a hung shard would."""
        self._call("stall", {shard: (float(seconds),)}, None)

    def info(self, *, timeout: float | None = None) -> ShardedIndexInfo:
        """The shards' IndexInfo and their totals (asks every shard)."""
        out = self._call("info", {s: () for s in range(self.shards)}, timeout)
        infos = tuple(out.answers[s] for s in range(self.shards))
        mf = self._manifest
        return ShardedIndexInfo(
            path=self.path,
            backend=self.backend,
            shards=self.shards,
            partition=SCHEME,
            vectors=sum(i.vectors for i in infos),
            dimension=mf.dimension,
            metric=mf.metric,
            m=mf.m,
            ef_construction=mf.ef_construction,
            deleted=sum(i.deleted for i in infos),
            bytes=sum(i.bytes for i in infos),
            file_bytes=sum(i.file_bytes for i in infos),
            shard_info=infos,
        )

    def __len__(self) -> int:
        return self.info().vectors

    def __repr__(self) -> str:
        state = "closed" if self.closed else self.backend
        mf = self._manifest
        return (
            f"<toondb ShardedIndex {self.path!r} ({self.shards} shards, "
            f"{mf.dimension}-d {mf.metric}, {state})>"
        )

    # -- search -------------------------------------------------------------------------

    def search(
        self,
        query: npt.ArrayLike,
        k: int = 10,
        ef_search: int = 64,
        *,
        timeout: float | None = None,
        allow_partial: bool = False,
    ) -> ShardedNeighbors:
        """The k nearest vectors to query over all shards, nearest first, as
        ``Neighbor(id, distance)`` (one query (dimension,) gives a list; a batch
        (n, dimension) a list per row). Every shard searches with ef_search; the
        merge is exact over their answers (docs/distributed.md).

        A shard that does not answer within timeout seconds (default: the open's)
        raises ShardUnavailableError naming it; with allow_partial=True the other
        shards' merged answer is returned instead, with ``.partial`` True and
        ``.missing_shards`` naming the absent ones."""
        qs, one = self._queries(query)
        ids, dists, missing = self._search(qs, k, ef_search, timeout, allow_partial)
        rows = [neighbors(i.view(np.uint64), d) for i, d in zip(ids, dists)]
        return ShardedNeighbors(rows[0] if one else rows, missing)

    def search_arrays(
        self,
        queries: npt.ArrayLike,
        k: int = 10,
        ef_search: int = 64,
        *,
        timeout: float | None = None,
        allow_partial: bool = False,
    ) -> ShardedArrays:
        """search() as NumPy arrays: ``(ids int64, distances float32)``, (n, k) for a
        batch (padded with -1 / inf), 1-D with the results found for one query. The
        result also has ``.partial`` and ``.missing_shards``."""
        qs, one = self._queries(queries)
        ids, dists, missing = self._search(qs, k, ef_search, timeout, allow_partial)
        if one:
            found = int((ids[0] >= 0).sum())
            return ShardedArrays(ids[0, :found].copy(), dists[0, :found].copy(), missing)
        return ShardedArrays(ids, dists, missing)

    def shard_results(
        self, queries: npt.ArrayLike, k: int = 10, ef_search: int = 64, *,
        timeout: float | None = None,
    ) -> list[tuple[np.ndarray, np.ndarray]]:  # fmt: skip
        """Each shard's own answer to a batch, before the merge: a list, by shard, of
        ``(ids (n, k) int64, distances (n, k) float32)``. For checking the merge and
        finding a slow or odd shard."""
        qs, _ = self._queries(queries)
        check_search(k, ef_search)
        out = self._call(
            "search_arrays", {s: (qs, k, ef_search) for s in range(self.shards)}, timeout
        )
        return [out.answers[s] for s in range(self.shards)]

    def _queries(self, q: npt.ArrayLike) -> tuple[np.ndarray, bool]:
        a = q if isinstance(q, np.ndarray) else np.asarray(q)
        if a.ndim == 1:
            return as_vectors(a, self.dimension, "query", 1).reshape(1, -1), True
        return as_vectors(a, self.dimension, "queries", 2), False

    def _search(
        self, qs: np.ndarray, k: int, ef: int, timeout: float | None, allow_partial: bool
    ) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
        check_search(k, ef)
        args = {s: (qs, k, ef) for s in range(self.shards)}
        out = self._call("search_arrays", args, timeout, allow_missing=allow_partial)
        parts = [out.answers[s] for s in sorted(out.answers)]
        ids, dists = merge_top_k(parts, k, len(qs))
        return ids, dists, tuple(sorted(out.missing))

    def _call(
        self, method: str, args: Mapping[int, tuple[Any, ...]], timeout: float | None,
        *, allow_missing: bool = False,
    ) -> Outcome:  # fmt: skip
        """pool.call, raising what a shard raised, and ShardUnavailableError for shards
        that did not answer unless allow_missing."""
        t = self._timeout if timeout is None else timeout
        if not isinstance(t, (int, float)) or t <= 0:
            raise ValueError(f"timeout must be a number of seconds > 0, got {t!r}")
        out = self._live().call(method, args, float(t))
        if out.raised:
            raise out.raised[min(out.raised)]
        if out.missing and not allow_missing:
            raise unavailable(out.missing, self._manifest)
        return out

    # -- writes -------------------------------------------------------------------------

    def add(
        self, ids: npt.ArrayLike, vectors: npt.ArrayLike, *, timeout: float | None = None
    ) -> int:
        """Insert vectors under ids (none of which may be in the index: VectorIndexError,
        and nothing is written), each into the shard that owns its id. Each shard's
        part is one atomic commit; the parts of different shards are separate commits
        (a shard that fails leaves the others' parts written: ShardUnavailableError
        says which shards had not answered; upsert is the safe retry)."""
        return self._write("add", ids, vectors, timeout)

    def upsert(
        self, ids: npt.ArrayLike, vectors: npt.ArrayLike, *, timeout: float | None = None
    ) -> int:
        """add(), replacing the vector of an id already in the index. Returns the number
        of vectors written."""
        return self._write("upsert", ids, vectors, timeout)

    def delete(self, ids: npt.ArrayLike, *, timeout: float | None = None) -> int:
        """Delete ids (absent ones are ignored) from their shards; returns how many were
        deleted."""
        return self._write("delete", ids, None, timeout)

    def _write(self, op: str, ids: npt.ArrayLike, vectors: npt.ArrayLike | None,
               timeout: float | None) -> int:  # fmt: skip
        with self._write_lock:
            return self._write_locked(op, ids, vectors, timeout)

    def _write_locked(self, op: str, ids: npt.ArrayLike, vectors: npt.ArrayLike | None,
                      timeout: float | None) -> int:  # fmt: skip
        self._live()
        if self._read_only:
            raise ReadOnlyError(
                f"{self.path!r} was opened read-only; open it with read_only=False to {op}"
            )
        labels = as_ids(ids)
        x = None
        if vectors is not None:
            v = vectors if isinstance(vectors, np.ndarray) else np.asarray(vectors)
            if v.ndim == 1 and labels.size == 1:
                v = v.reshape(1, -1)
            x = as_vectors(v, self.dimension, "vectors", 2)
            if labels.size != len(x):
                raise ValueError(f"{len(x)} vectors but {labels.size} ids")
            _unique_or_raise(labels)
        parts = {s: rows for s, rows in enumerate(split_by_shard(labels, self.shards)) if rows.size}
        if not parts:
            return 0
        if op == "add":
            held = self._call("contains", {s: (labels[r],) for s, r in parts.items()}, timeout)
            for s, r in parts.items():
                if held.answers[s].any():
                    dup = int(labels[r][np.flatnonzero(held.answers[s])[0]])
                    raise VectorIndexError(
                        f"id {dup} is already in the index (shard {s}); use upsert() to "
                        "replace its vector"
                    )
            op = "upsert"  # the same effect now, and safe for Ray to retry after a restart
        args: dict[int, tuple[Any, ...]]
        if x is None:
            args = {s: (labels[r],) for s, r in parts.items()}
        else:
            args = {s: (labels[r], x[r]) for s, r in parts.items()}
        self._mark_written(parts)
        out = self._call(op, args, timeout)
        return int(sum(out.answers.values()))

    def _mark_written(self, shards: Mapping[int, Any]) -> None:
        """Invariant 3 of manifest.py: a shard's checksum is cleared in the manifest
        before its file is first written."""
        new = [s for s in shards if s not in self._written]
        if not new:
            return
        mf = self._manifest
        for s in new:
            e = mf.shards[s]
            mf = mf.with_shard(ShardEntry(e.shard, e.file, e.vectors, None, None))
        mf.write(self._location)
        self._manifest = mf
        self._written.update(new)

    # -- the end ------------------------------------------------------------------------

    def _live(self) -> ShardPool:
        pool = self._pool
        if pool is None:
            raise ClosedError(f"the sharded index {self.path!r} is closed")
        return pool

    def close(self, *, timeout: float | None = None) -> None:
        """Close every shard and end its worker (one that does not answer within timeout
        is killed). A writer records the new checksums and counts of the shards it
        wrote in the manifest. Idempotent."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        out = pool.close(self._timeout if timeout is None else timeout)
        if self._written:
            mf = self._manifest
            for s in sorted(self._written):
                got = out.answers.get(s)
                if got:
                    e = mf.shards[s]
                    mf = mf.with_shard(
                        ShardEntry(e.shard, e.file, got["vectors"], got["bytes"], got["sha256"])
                    )
            mf.write(self._location)
            self._manifest = mf

    def __enter__(self) -> ShardedIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_files(location: StorageLocation, manifest: Manifest) -> None:
    """Every shard file is there, and those with a checksum have the recorded size."""
    for e in manifest.shards:
        if not location.exists(e.file):
            raise ShardedIndexError(f"{location.url!r}: shard {e.shard}'s file {e.file} is missing")
        if e.bytes is not None:
            size = location.size(e.file)
            if size != e.bytes:
                raise ShardedIndexError(
                    f"{location.url!r}: shard {e.shard}'s file {e.file} has {size} bytes, the "
                    f"manifest records {e.bytes} (not the file that was built)"
                )
