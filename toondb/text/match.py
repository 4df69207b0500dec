"""One row matched by a full-text query: its rowid, its bm25 score and the
positions of each query phrase in it (what FTS5's auxiliary functions see)."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["Match"]


class Match:
    """A matching row.

    ``rowid``; ``score``: bm25 (negative; lower is more relevant; None when not
    computed); ``positions``: per query phrase, the (column << 32 | offset)
    positions of its instances (FTS5's xPhraseFirst); ``phrase_sizes``: the
    tokens in each phrase (xPhraseSize); ``column_sizes``: the row's token count
    per column when known (xColumnSize)."""

    __slots__ = ("rowid", "score", "positions", "phrase_sizes", "column_sizes", "_inst")

    def __init__(
        self,
        rowid: int,
        score: float | None,
        positions: Sequence[Sequence[int]],
        phrase_sizes: Sequence[int],
        column_sizes: Sequence[int] | None = None,
    ) -> None:
        self.rowid = rowid
        self.score = score
        self.positions = positions
        self.phrase_sizes = tuple(phrase_sizes)
        self.column_sizes = list(column_sizes) if column_sizes is not None else None
        self._inst: list[tuple[int, int, int]] | None = None

    @property
    def instances(self) -> list[tuple[int, int, int]]:
        """(phrase, column, offset) of every phrase instance in FTS5's xInst
        order: by position, a tie going to the lower phrase number."""
        if self._inst is None:
            merged = [(pos, p) for p, plist in enumerate(self.positions) for pos in plist]
            merged.sort()
            self._inst = [(p, pos >> 32, pos & 0xFFFFFFFF) for pos, p in merged]
        return self._inst

    def phrase_instances(self, phrase: int) -> list[tuple[int, int]]:
        """(column, offset) of each instance of one phrase."""
        return [(pos >> 32, pos & 0xFFFFFFFF) for pos in self.positions[phrase]]

    def __repr__(self) -> str:
        return f"Match(rowid={self.rowid}, score={self.score!r}, instances={len(self.instances)})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Match):
            return NotImplemented
        return (self.rowid, self.score, [list(p) for p in self.positions]) == (
            other.rowid,
            other.score,
            [list(p) for p in other.positions],
        )

    __hash__ = None  # type: ignore[assignment]
