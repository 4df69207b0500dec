"""Choosing a backend by name: ``open_pool`` starts the shard workers of an index and
``run_builds`` runs shard builds, on the local backend (local_backend.py) or on Ray
(ray_backend.py, imported only when asked for). The interface both implement is in
backend.py."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from toondb.distributed.backend import ShardPool, check_backend
from toondb.distributed.location import StorageLocation
from toondb.distributed.manifest import Manifest

__all__ = ["open_pool", "run_builds"]


def open_pool(
    backend: str,
    location: StorageLocation,
    manifest: Manifest,
    *,
    read_only: bool,
    threads: int | None,
    verify: bool,
    open_timeout: float,
    options: Mapping[str, Any] | None,
) -> ShardPool:
    """Start one worker per shard of manifest and wait until each opened its file."""
    if check_backend(backend) == "ray":
        from toondb.distributed.ray_backend import RayShardPool

        return RayShardPool(location, manifest, read_only=read_only, threads=threads,
                            verify=verify, open_timeout=open_timeout, options=options)  # fmt: skip
    from toondb.distributed.local_backend import LocalShardPool

    return LocalShardPool(location, manifest, read_only=read_only, threads=threads,
                          verify=verify, open_timeout=open_timeout, options=options)  # fmt: skip


def run_builds(
    backend: str,
    fn: Callable[..., Any],
    jobs: Sequence[tuple[Any, ...]],
    *,
    threads: int | None,
    options: Mapping[str, Any] | None,
    on_done: Callable[[Any], None],
) -> list[Any]:
    """fn(*job, threads) for every job, in parallel on the backend's workers; on_done
    is called (in this process) with each result as it arrives. Returns the results
    in job order; the first failure is raised once every job has ended."""
    if check_backend(backend) == "ray":
        from toondb.distributed.ray_backend import run_builds_ray

        return run_builds_ray(fn, jobs, threads=threads, options=options, on_done=on_done)
    from toondb.distributed.local_backend import run_builds_local

    return run_builds_local(fn, jobs, threads=threads, options=options, on_done=on_done)
