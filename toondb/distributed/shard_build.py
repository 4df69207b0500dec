"""The build of one shard: its spool in, its ``.hnsw`` page file out.

Runs in a worker (a process of the local backend, a Ray task of the ray
backend): maps the shard's spool (spool.py), builds the HNSW graph with the bulk
builder (``toondb.vector.bulk.bulk_build_index``: the kernel's parallel insertion, one
transaction, the file synced before it returns), then checksums the file for the
manifest. The spool is left in place: the driver removes every spool once the manifest
is written, so a retried task (Ray retries a task whose worker died) finds its input.
"""

from __future__ import annotations

import resource
from dataclasses import asdict, dataclass
from typing import Any

from toondb.distributed.location import StorageLocation
from toondb.distributed.manifest import file_sha256, shard_file_name
from toondb.distributed.spool import read_spool
from toondb.vector.bulk import bulk_build_index

__all__ = ["ShardBuildStats", "build_shard"]


@dataclass(frozen=True)
class ShardBuildStats:
    """What building one shard did. ``peak_rss_bytes`` is the worker's peak resident
    memory (what a machine serving or building this shard needs)."""

    shard: int
    file: str
    vectors: int
    bytes: int
    sha256: str
    seconds: float
    build_seconds: float
    write_seconds: float
    threads: int
    peak_rss_bytes: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_shard(
    location: StorageLocation,
    shard: int,
    dimension: int,
    metric: str,
    m: int,
    ef_construction: int,
    seed: int,
    threads: int,
) -> ShardBuildStats:
    """Build shard `shard` from its spool into ``shard-NNNNN.hnsw`` and publish it."""
    x, ids = read_spool(location, shard, dimension)
    name = shard_file_name(shard)
    out = location.staging_path(name)
    stats = bulk_build_index(
        x,
        out,
        m=m,
        ef_construction=ef_construction,
        metric=metric,
        ids=ids,
        threads=threads,
        progress=False,
        seed=seed + shard,
    )
    del x, ids
    sha = file_sha256(out)
    location.publish(name)
    return ShardBuildStats(
        shard=shard,
        file=name,
        vectors=stats.vectors,
        bytes=stats.index_bytes,
        sha256=sha,
        seconds=stats.seconds,
        build_seconds=stats.build_seconds,
        write_seconds=stats.write_seconds,
        threads=stats.threads,
        peak_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    )
