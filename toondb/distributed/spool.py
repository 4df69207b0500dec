"""The spool of a build: each shard's vectors and ids, appended batch by batch as the
input streams in, read back (mapped) by the one worker that builds that shard.

So no process ever holds the whole input: the caller's process holds one batch at a
time (split by owner and appended here), and the worker of shard s maps only shard
s's spool (about 1/shards of the input) while it builds.

Two files per shard in the index's location, headerless (the dimension is the build's,
the count follows from the sizes), removed when the build has written the manifest:

| file | contents |
| --- | --- |
| ``shard-00003.vectors.spool`` | n x dimension float32, little-endian, row after row |
| ``shard-00003.ids.spool`` | n uint64, little-endian, the id of each row |
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from toondb.distributed.location import StorageLocation
from toondb.distributed.partition import split_by_shard
from toondb.vector.checks import as_ids, as_vectors

__all__ = ["SpoolWriter", "read_spool", "spool_names", "batches_of"]

_F32 = np.dtype("<f4")
_U64 = np.dtype("<u8")


def spool_names(shard: int) -> tuple[str, str]:
    return f"shard-{shard:05d}.vectors.spool", f"shard-{shard:05d}.ids.spool"


class SpoolWriter:
    """Splits batches by owning shard and appends each part to its shard's spool."""

    def __init__(self, location: StorageLocation, shards: int) -> None:
        self.location = location
        self.shards = shards
        self.dimension: int | None = None
        self.counts = [0] * shards
        self._files: list[tuple[Any, Any]] = []
        for s in range(shards):
            vname, iname = spool_names(s)
            self._files.append(
                (open(location.staging_path(vname), "wb"), open(location.staging_path(iname), "wb"))
            )

    @property
    def vectors(self) -> int:
        return sum(self.counts)

    def append(self, vectors: Any, ids: np.ndarray) -> None:
        """vectors (n, dimension) float32 and their ids (uint64, checked by as_ids)."""
        x = as_vectors(vectors, self.dimension, "vectors", 2)
        if self.dimension is None:
            if x.shape[1] < 1:
                raise ValueError("vectors must have at least one dimension")
            self.dimension = int(x.shape[1])
        if ids.size != x.shape[0]:
            raise ValueError(f"a batch of {x.shape[0]} vectors but {ids.size} ids")
        for s, rows in enumerate(split_by_shard(ids, self.shards)):
            if rows.size:
                vf, idf = self._files[s]
                vf.write(x[rows].astype(_F32, copy=False).tobytes())
                idf.write(ids[rows].astype(_U64, copy=False).tobytes())
                self.counts[s] += int(rows.size)

    def close(self) -> None:
        """Flush and sync every spool file, then publish it."""
        for s, pair in enumerate(self._files):
            for f in pair:
                if not f.closed:
                    f.flush()
                    os.fsync(f.fileno())
                    f.close()
            for name in spool_names(s):
                self.location.publish(name)

    def abort(self) -> None:
        for s, pair in enumerate(self._files):
            for f in pair:
                if not f.closed:
                    f.close()
            for name in spool_names(s):
                self.location.remove(name)


def read_spool(
    location: StorageLocation, shard: int, dimension: int
) -> tuple[np.ndarray, np.ndarray]:
    """Shard s's spooled (vectors (n, dimension) float32, ids uint64), mapped read-only
    (an empty shard gives empty arrays)."""
    vname, iname = spool_names(shard)
    vpath, ipath = location.local_path(vname), location.local_path(iname)
    n = os.path.getsize(ipath) // _U64.itemsize
    if os.path.getsize(vpath) != n * dimension * _F32.itemsize:
        raise ValueError(f"spool of shard {shard}: {vpath!r} does not hold {n} vectors")
    if n == 0:
        return np.empty((0, dimension), np.float32), np.empty(0, np.uint64)
    x = np.memmap(vpath, dtype=_F32, mode="r", shape=(n, dimension))
    ids = np.memmap(ipath, dtype=_U64, mode="r", shape=(n,))
    return x, np.asarray(ids)


def batches_of(vectors: Any, ids: Any, batch: int = 65536) -> Iterator[tuple[Any, np.ndarray]]:
    """The input of a build as (vectors, ids uint64) batches.

    vectors: a 2-D array (sliced into batches; ids None means 0 .. n-1), or an iterable
    of batches, each a 2-D array (ids numbered on from 0 across batches) or a pair
    (vectors, ids). ids with an iterable of batches is a TypeError: give them in the
    batches. An array's shape and ids are checked here, before the first batch."""
    if isinstance(vectors, np.ndarray) or _array_like(vectors):
        x = vectors if isinstance(vectors, np.ndarray) else np.asarray(vectors)
        if x.ndim != 2:
            raise ValueError(f"vectors must be a 2-D array (n, dimension), got shape {x.shape}")
        n = x.shape[0]
        labels = np.arange(n, dtype=np.uint64) if ids is None else as_ids(ids)
        if labels.size != n:
            raise ValueError(f"{n} vectors but {labels.size} ids")
        return ((x[i : i + batch], labels[i : i + batch]) for i in range(0, n, batch))
    if ids is not None:
        raise TypeError("with an iterable of batches, give ids in the batches: (vectors, ids)")
    if not isinstance(vectors, Iterable):
        raise TypeError(
            f"vectors must be a 2-D array or an iterable of batches, not {type(vectors).__name__}"
        )
    return _numbered(vectors)


def _numbered(batches: Iterable[Any]) -> Iterator[tuple[Any, np.ndarray]]:
    next_id = 0
    for b in batches:
        if isinstance(b, tuple) and len(b) == 2:
            xb, ib = b
            yield xb, as_ids(ib)
        else:
            xb = b if isinstance(b, np.ndarray) else np.asarray(b)
            n = xb.shape[0] if xb.ndim >= 1 else 0
            yield xb, np.arange(next_id, next_id + n, dtype=np.uint64)
            next_id += n


def _array_like(v: Any) -> bool:
    """A list of rows (or other sequence NumPy makes a 2-D array of), not a generator."""
    if not isinstance(v, (list, tuple)):
        return False
    if not v:
        return True
    first = v[0]
    return not (isinstance(first, tuple) or (isinstance(first, np.ndarray) and first.ndim == 2))
