"""The build of a sharded index (``ShardedIndex.build``), as this process drives it.

1. Stream the input, batch by batch, into per-shard spools (spool.py), split by the
   id-hash partition (partition.py). This process holds one batch at a time.
2. Build every shard in parallel on the backend's workers (shard_build.py: each maps
   only its own spool, builds with the bulk builder, syncs and checksums its file).
3. Write the manifest (manifest.py), last: only then is the directory a sharded index
   (invariant 2 of manifest.py). Then remove the spools.

A failure at any step removes the spools and writes no manifest; the shard files
already built stay (remove the directory before building into it again).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Union

from toondb.distributed.backend import check_backend
from toondb.distributed.backends import run_builds
from toondb.distributed.location import resolve_location
from toondb.distributed.manifest import Manifest, ShardEntry
from toondb.distributed.shard_build import ShardBuildStats, build_shard
from toondb.distributed.spool import SpoolWriter, batches_of
from toondb.vector.checks import check_metric, check_params
from toondb.vector.store import DEFAULT_SEED

__all__ = ["ShardedBuildStats", "build_sharded"]

Progress = Union[None, bool, Callable[[int, int], Any]]
MAX_SHARDS = 100_000  # shard-NNNNN file names have five digits


@dataclass(frozen=True)
class ShardedBuildStats:
    """What ``ShardedIndex.build`` did. ``seconds`` is the whole call and ``rate`` is
    ``vectors / seconds``; ``spool_seconds`` (splitting the input) and
    ``build_seconds`` (the shards' parallel builds, up to the manifest) split it.
    ``index_bytes`` is the shard files' total size; ``shard_stats`` has each shard's
    ShardBuildStats (its count, size, checksum, time and peak memory)."""

    path: str
    backend: str
    shards: int
    vectors: int
    dimension: int
    metric: str
    seconds: float
    rate: float
    spool_seconds: float
    build_seconds: float
    index_bytes: int
    shard_stats: tuple[ShardBuildStats, ...]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_sharded(
    vectors: Any,
    ids: Any = None,
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
    """See ShardedIndex.build."""
    t0 = time.perf_counter()
    check_backend(backend)
    if not isinstance(shards, int) or isinstance(shards, bool) or not 1 <= shards <= MAX_SHARDS:
        raise ValueError(f"shards must be an integer in 1..{MAX_SHARDS}, got {shards!r}")
    check_metric(metric)
    check_params(1, m, ef_construction)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise TypeError("seed must be an integer >= 0")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError("batch_size must be an integer >= 1")
    if not (progress is None or isinstance(progress, bool) or callable(progress)):
        raise TypeError("progress must be None, True, False or a callable(done, total)")
    location = resolve_location(path)
    batches = batches_of(vectors, ids, batch_size)  # an array's shape is checked here
    location.prepare()

    writer = SpoolWriter(location, shards)
    try:
        for xb, ib in batches:
            writer.append(xb, ib)
        writer.close()
        if writer.dimension is None or writer.vectors == 0:
            raise ValueError("no vectors: a sharded index is built from at least one")
        dim = writer.dimension
        check_params(dim, m, ef_construction)
        t_spooled = time.perf_counter()

        bar = _Bar(progress, writer.vectors)
        jobs = [(location, s, dim, metric, int(m), int(ef_construction), int(seed))
                for s in range(shards)]  # fmt: skip
        try:
            results: list[ShardBuildStats] = run_builds(
                backend, build_shard, jobs, threads=threads, options=build_options,
                on_done=bar.shard_done,
            )  # fmt: skip
        finally:
            bar.close()
        manifest = Manifest(
            metric=metric,
            dimension=dim,
            m=int(m),
            ef_construction=int(ef_construction),
            seed=int(seed),
            shards=tuple(
                ShardEntry(r.shard, r.file, r.vectors, r.bytes, r.sha256) for r in results
            ),
        )
        manifest.write(location)
    finally:
        writer.abort()  # the spools go, whatever happened (closes nothing twice)
    t_end = time.perf_counter()
    seconds = t_end - t0
    return ShardedBuildStats(
        path=location.url,
        backend=backend,
        shards=shards,
        vectors=manifest.vectors,
        dimension=dim,
        metric=metric,
        seconds=seconds,
        rate=manifest.vectors / seconds if seconds > 0 else 0.0,
        spool_seconds=t_spooled - t0,
        build_seconds=t_end - t_spooled,
        index_bytes=sum(r.bytes for r in results),
        shard_stats=tuple(results),
    )


class _Bar:
    """The build's progress: vectors in finished shards, to a callable(done, total) or
    a tqdm bar (on a terminal, as bulk_build_index shows one)."""

    def __init__(self, progress: Progress, total: int) -> None:
        self.total, self.done = total, 0
        self.fn = progress if callable(progress) and not isinstance(progress, bool) else None
        self.bar: Any = None
        show = progress is True or (progress is None and _isatty(sys.stderr))
        if self.fn is None and show:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="vec", desc="building shards", file=sys.stderr,
                            delay=0.0 if progress is True else 2.0, dynamic_ncols=True)  # fmt: skip

    def shard_done(self, stats: ShardBuildStats) -> None:
        self.done += stats.vectors
        if self.fn is not None:
            self.fn(self.done, self.total)
        if self.bar is not None:
            self.bar.update(stats.vectors)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
