"""What a backend provides: workers that build shards and serve them.

Two backends implement it:

- ``"local"`` (local_backend.py, the default): processes on this machine, started with
  the forkserver (or spawn) context: a toondb handle never crosses a fork; needs
  nothing but toondb.
- ``"ray"`` (ray_backend.py): Ray tasks build, Ray actors serve, anywhere on the
  cluster ``ray.init(address=...)`` connected to. Ray is imported only here.

A pool's ``call`` is the one way the index talks to its shards: the same method on
many shards at once, each with its own arguments, waited for together until a common
deadline. It returns what each shard answered and, separately, which shards did not
answer and why (``Outcome``); it never raises for a shard's failure, so the caller
decides between ShardUnavailableError and flagged partial results.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from toondb.distributed.manifest import Manifest
from toondb.errors import ShardUnavailableError

__all__ = ["BACKENDS", "Outcome", "ShardPool", "check_backend", "unavailable"]

BACKENDS = ("local", "ray")


@dataclass
class Outcome:
    """The result of one ``ShardPool.call``.

    answers: shard -> the method's return value. raised: shard -> the exception the
    method raised in the shard (a bad argument, a duplicate id: the caller re-raises
    it). missing: shard -> why there is no answer (no reply before the deadline; the
    worker died and could not be restarted)."""

    answers: dict[int, Any] = field(default_factory=dict)
    raised: dict[int, BaseException] = field(default_factory=dict)
    missing: dict[int, str] = field(default_factory=dict)


class ShardPool(abc.ABC):
    """One worker per shard, each holding a ShardServer (shard_server.py)."""

    backend: str
    shards: int

    @abc.abstractmethod
    def call(self, method: str, args: Mapping[int, tuple[Any, ...]], timeout: float) -> Outcome:
        """ShardServer.method(*args[s]) on every shard s of args, concurrently; waits
        until each answered or `timeout` seconds passed. A worker that died is
        restarted from its file and the call retried on it, within the same deadline."""

    @abc.abstractmethod
    def worker_handle(self, shard: int) -> Any:
        """The shard's worker: a multiprocessing Process (local) or an actor handle
        (ray). For tests and operators (kill it to see it replaced)."""

    @abc.abstractmethod
    def close(self, timeout: float) -> Outcome:
        """ShardServer.close() on every shard, then end the workers (any that does not
        answer within timeout is killed)."""


def unavailable(missing: Mapping[int, str], manifest: Manifest) -> ShardUnavailableError:
    """The error naming every shard of missing (shard -> why) and its file."""
    parts = [f"shard {s} ({manifest.shards[s].file}): {why}" for s, why in sorted(missing.items())]
    return ShardUnavailableError("; ".join(parts), dict(missing))


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(
            f"backend must be one of {', '.join(map(repr, BACKENDS))}, not {backend!r}"
        )
    return backend
