"""The Ray backend: Ray tasks build the shards, one Ray actor per shard serves it.

Imported only when ``backend="ray"`` is asked for (so toondb never needs Ray
otherwise). It uses the Ray cluster this process is connected to: call
``ray.init(address=...)`` first (docs/distributed.md); if Ray is not initialized,
``ray.init()`` is called with no arguments, as Ray's own first ``.remote()`` would
(it joins the cluster named by RAY_ADDRESS, or starts a local one).

Actors. Each actor is a ShardServer (shard_server.py) made by ``ray.remote`` with
these options (``actor_options`` of ShardedIndex.open override any of them):

| option | default | why |
| --- | --- | --- |
| ``max_restarts`` | -1 | an actor that dies (its process killed, its node lost) is restarted by Ray, which runs the constructor again: the shard file is reopened |
| ``max_task_retries`` | -1 | a call that was running or queued on the dead actor is resubmitted to the restarted one; the search's deadline still bounds it |
| ``num_cpus`` | 0 | an actor does not reserve a CPU slot (on a real cluster give it the cores its searches use, e.g. 8, and ``memory=`` its shard's bytes) |
| ``scheduling_strategy`` | ``"SPREAD"`` | shards go to different nodes where there are several |

Calls. A query batch is put in the object store once (``ray.put``) and its reference
given to every shard's actor, which reads it zero-copy on its node; the call waits
with ``ray.wait`` until every answer is in or the deadline passes. An answer not in by
then is abandoned (its actor finishes it and the result is dropped), and the shard is
reported missing. An exception the method raised comes back as the shard's ``raised``
entry (its original class); an actor that died for good (its constructor failed at a
restart) is ``missing``.

Builds. ``run_builds_ray`` runs one task per shard (options: ``num_cpus`` default 1,
which is also the task's build threads unless ``threads`` is given; ``max_retries``
default 2, so a task whose worker died is rerun from its spool; ``max_calls`` default
1, a fresh worker process per shard, so its memory is returned and its peak measured).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from toondb.distributed.backend import Outcome, ShardPool, unavailable
from toondb.distributed.location import StorageLocation
from toondb.distributed.manifest import Manifest
from toondb.distributed.shard_server import ShardServer

__all__ = ["RayShardPool", "run_builds_ray", "import_ray"]

ACTOR_DEFAULTS: dict[str, Any] = {
    "max_restarts": -1,
    "max_task_retries": -1,
    "num_cpus": 0,
    "scheduling_strategy": "SPREAD",
}
BUILD_DEFAULTS: dict[str, Any] = {"num_cpus": 1, "max_retries": 2, "max_calls": 1}


def import_ray() -> Any:
    """The ray module, initialized (see the module's docstring)."""
    try:
        import ray
    except ImportError as e:
        raise ImportError(
            'backend="ray" needs Ray: pip install "toondb[distributed]" (or "ray[default]")'
        ) from e
    if not ray.is_initialized():
        ray.init()
    return ray


def _cause(ray: Any, e: BaseException) -> BaseException:
    """The exception a remote method raised (Ray wraps it in a RayTaskError)."""
    cause = getattr(e, "cause", None)
    return cause if isinstance(cause, BaseException) else e


class RayShardPool(ShardPool):
    backend = "ray"

    def __init__(
        self,
        location: StorageLocation,
        manifest: Manifest,
        *,
        read_only: bool,
        threads: int | None,
        verify: bool,
        open_timeout: float,
        options: Mapping[str, Any] | None,
    ) -> None:
        ray = self._ray = import_ray()
        self.shards = len(manifest.shards)
        opts = {**ACTOR_DEFAULTS, **dict(options or {})}
        actor_class = ray.remote(ShardServer)
        self._actors = [
            actor_class.options(**opts).remote(
                location,
                e.shard,
                e.file,
                read_only=read_only,
                threads=threads,
                sha256=e.sha256 if verify else None,
            )  # fmt: skip
            for e in manifest.shards
        ]
        out = self.call("ping", {s: () for s in range(self.shards)}, open_timeout)
        if out.raised or out.missing:
            self._kill_all()
            if out.raised:
                raise out.raised[min(out.raised)]
            raise unavailable(out.missing, manifest)

    def worker_handle(self, shard: int) -> Any:
        return self._actors[shard]

    def call(self, method: str, args: Mapping[int, tuple[Any, ...]], timeout: float) -> Outcome:
        ray = self._ray
        stored: dict[int, Any] = {}  # id(array) -> its ObjectRef: one put per batch

        def put(v: Any) -> Any:
            if isinstance(v, np.ndarray) and len(args) > 1:
                ref = stored.get(id(v))
                if ref is None:
                    ref = stored[id(v)] = ray.put(v)
                return ref
            return v

        out = Outcome()
        if not ray.is_initialized():  # ray.shutdown() ended the actors with the cluster
            out.missing.update(dict.fromkeys(args, "Ray was shut down"))
            return out
        refs = {
            s: getattr(self._actors[s], method).remote(*(put(v) for v in a))
            for s, a in args.items()
        }
        ready, _ = ray.wait(list(refs.values()), num_returns=len(refs), timeout=max(timeout, 0.0))
        done = set(ready)
        for s, ref in refs.items():
            if ref not in done:
                out.missing[s] = f"no answer within {timeout:g} s"
                continue
            try:
                out.answers[s] = ray.get(ref)
            except ray.exceptions.RayActorError as e:
                out.missing[s] = f"its actor died and could not be restarted: {e}"
            except ray.exceptions.RayTaskError as e:
                out.raised[s] = _cause(ray, e)
        return out

    def _kill_all(self) -> None:
        if not self._ray.is_initialized():
            return
        for a in self._actors:
            try:
                self._ray.kill(a, no_restart=True)
            except Exception:  # noqa: BLE001,S110 - already dead
                pass

    def close(self, timeout: float) -> Outcome:
        out = self.call("close", {s: () for s in range(self.shards)}, timeout)
        self._kill_all()
        return out


def run_builds_ray(
    fn: Callable[..., Any],
    jobs: Sequence[tuple[Any, ...]],
    *,
    threads: int | None,
    options: Mapping[str, Any] | None,
    on_done: Callable[[Any], None],
) -> list[Any]:
    ray = import_ray()
    opts = {**BUILD_DEFAULTS, **dict(options or {})}
    per_task = threads if threads is not None else max(1, int(opts.get("num_cpus") or 1))
    # max_calls is a property of the remote function, not an option of a call
    fixed = {k: opts.pop(k) for k in ("max_calls",) if k in opts}
    task = (ray.remote(**fixed)(fn) if fixed else ray.remote(fn)).options(**opts)
    refs = [task.remote(*job, per_task) for job in jobs]
    position = {ref: i for i, ref in enumerate(refs)}
    results: list[Any] = [None] * len(jobs)
    first_error: BaseException | None = None
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        for ref in done:
            try:
                results[position[ref]] = ray.get(ref)
            except ray.exceptions.RayError as e:
                if first_error is None:
                    first_error = _cause(ray, e)
                    for other in pending:
                        ray.cancel(other)
                continue
            on_done(results[position[ref]])
    if first_error is not None:
        raise first_error
    return results
