"""Which shard owns an id: the partition rule of a sharded index.

toondb offers one rule, ``id-hash``: shard = splitmix64(id) mod shards. splitmix64 is
the finalizer of Steele, Lea & Flood's SplitMix64 generator (the one Java's
``SplittableRandom`` and xoshiro's seeding use): a bijection of 64-bit words whose
output bits each depend on every input bit, so consecutive ids, ids with a common
stride and ids a client chose spread evenly over the shards.

Why a hash and not k-means routing: a search fans out to every shard and merges
exactly (merge.py), so nothing is gained by putting near vectors together, while a hash
gives (1) shards of equal size whatever the data's clusters (equal memory, equal
search time: the slowest shard sets a query's latency), (2) an owner computed from the
id alone, so ``add``/``upsert``/``delete`` route without a directory of ids, and (3) a
build that streams: each batch is split as it arrives, with no clustering pass first.
Routed search (visiting only the shards whose centroids are nearest) would trade
recall for fan-out and is not offered.

The rule is part of the manifest (``"partition": {"scheme": "id-hash", "hash":
"splitmix64"}``): an index built with it is always routed with it (invariant 1 of
manifest.py).
"""

from __future__ import annotations

import numpy as np

__all__ = ["SCHEME", "HASH", "shard_of", "split_by_shard"]

SCHEME = "id-hash"
HASH = "splitmix64"

_C1 = np.uint64(0x9E3779B97F4A7C15)
_C2 = np.uint64(0xBF58476D1CE4E5B9)
_C3 = np.uint64(0x94D049BB133111EB)


def splitmix64(ids: np.ndarray) -> np.ndarray:
    """The SplitMix64 finalizer of each uint64 (arithmetic modulo 2**64)."""
    z = np.asarray(ids, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = z + _C1
        z = (z ^ (z >> np.uint64(30))) * _C2
        z = (z ^ (z >> np.uint64(27))) * _C3
    return z ^ (z >> np.uint64(31))  # type: ignore[no-any-return]


def shard_of(ids: np.ndarray, shards: int) -> np.ndarray:
    """The owning shard (int64, 0 .. shards-1) of each id (a uint64 array)."""
    if shards < 1:
        raise ValueError(f"shards must be >= 1, got {shards}")
    shard: np.ndarray = (splitmix64(ids) % np.uint64(shards)).astype(np.int64)
    return shard


def split_by_shard(ids: np.ndarray, shards: int) -> list[np.ndarray]:
    """For each shard, the positions in ids of the ids it owns (ascending: a stable
    split keeps each shard's part in the caller's order)."""
    owner = shard_of(ids, shards)
    order = np.argsort(owner, kind="stable")
    bounds = np.searchsorted(owner[order], np.arange(shards + 1))
    return [order[bounds[s] : bounds[s + 1]] for s in range(shards)]
