"""What a sharded search returns: the usual shapes, flagged when shards were missing.

``ShardedIndex.search`` returns a ``ShardedNeighbors`` (a list, as
``VectorIndex.search`` returns) and ``search_arrays`` a ``ShardedArrays`` (a tuple
that unpacks as ``ids, distances``). Both carry:

- ``partial``: True when some shards did not answer and the result merges only the
  others' (possible only with ``allow_partial=True``; otherwise the search raises
  ShardUnavailableError);
- ``missing_shards``: the numbers of those shards (empty when complete).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["ShardedNeighbors", "ShardedArrays"]


class ShardedNeighbors(list):  # type: ignore[type-arg]
    """A list of Neighbor (one query) or of lists of Neighbor (a batch), with
    ``partial`` and ``missing_shards``."""

    missing_shards: tuple[int, ...]

    def __init__(self, items: Iterable[Any] = (), missing_shards: Iterable[int] = ()) -> None:
        super().__init__(items)
        self.missing_shards = tuple(missing_shards)

    @property
    def partial(self) -> bool:
        return bool(self.missing_shards)

    def __repr__(self) -> str:
        flag = f", missing_shards={self.missing_shards}" if self.missing_shards else ""
        return f"ShardedNeighbors({list.__repr__(self)}{flag})"


class ShardedArrays(tuple):  # type: ignore[type-arg]
    """``(ids int64, distances float32)`` with ``ids``, ``distances``, ``partial`` and
    ``missing_shards``."""

    missing_shards: tuple[int, ...]

    def __new__(
        cls, ids: np.ndarray, distances: np.ndarray, missing_shards: Iterable[int] = ()
    ) -> ShardedArrays:
        self = super().__new__(cls, (ids, distances))
        self.missing_shards = tuple(missing_shards)
        return self

    def __getnewargs__(self) -> tuple[Any, ...]:
        return (self[0], self[1], self.missing_shards)

    @property
    def ids(self) -> np.ndarray:
        return self[0]  # type: ignore[no-any-return]

    @property
    def distances(self) -> np.ndarray:
        return self[1]  # type: ignore[no-any-return]

    @property
    def partial(self) -> bool:
        return bool(self.missing_shards)
