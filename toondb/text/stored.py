"""What the query runner (search.py) and the integrity check (integrity.py) read of an
open index: ``StoredIndex``, the part of ``FullTextIndex`` (index.py) they use. They
take this protocol rather than importing index.py, which calls them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from toondb.text.config import FullTextConfig

__all__ = ["StoredIndex"]


class StoredIndex(Protocol):
    name: str
    config: FullTextConfig
    tree: Any  # the index's named tree (toondb.storage Tree)
    _max_key_term: int
    _totals: list[int]

    @property
    def row_count(self) -> int: ...

    def block_limit(self, kp: bytes) -> int: ...

    def _all_terms(self) -> Iterable[tuple[bytes, list[tuple[bytes, int, bytes]]]]: ...

    def _read_totals(self) -> list[int]: ...

    def _new_pending(self) -> Any: ...
