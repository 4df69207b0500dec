"""``Result``: what an SQL statement returned (rows as dicts, with ``.columns``,
``.rows``, ``.rowcount`` and ``.lastrowid``). Shared by the embedded engine and the
IPC client, so that both return the same object."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

__all__ = ["Result"]


class Result(Sequence):  # type: ignore[type-arg]
    """What a statement returned. For a SELECT: a sequence of dicts keyed by the
    output column names (``row["name"]``), with ``.columns`` and ``.rows``
    (tuples). For INSERT/UPDATE/DELETE: empty, with ``.rowcount`` (and
    ``.lastrowid`` for INSERT). Two output columns with the same name keep both:
    the second is ``name:1``."""

    __slots__ = ("columns", "rows", "rowcount", "lastrowid", "_keys", "_dicts")

    def __init__(
        self,
        columns: list[str] | None,
        rows: list[tuple[Any, ...]] | None,
        rowcount: int = -1,
        lastrowid: int | None = None,
    ) -> None:
        self.columns = columns if columns is not None else []
        self.rows = rows if rows is not None else []
        self.rowcount = rowcount if rows is None else len(self.rows)
        self.lastrowid = lastrowid
        self._keys: list[str] | None = None
        self._dicts: list[dict[str, Any]] | None = None

    @property
    def keys(self) -> list[str]:
        """The dict keys of the rows: the column names, a repeated one as name:1, name:2..."""
        if self._keys is None:
            self._keys = _unique_keys(self.columns)
        return self._keys

    def _all(self) -> list[dict[str, Any]]:
        if self._dicts is None:
            keys = self.keys
            self._dicts = [dict(zip(keys, r)) for r in self.rows]
        return self._dicts

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, i: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, i: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, i: int | slice) -> Any:
        return self._all()[i]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self._dicts is not None:
            return iter(self._dicts)
        keys = self.keys
        return (dict(zip(keys, r)) for r in self.rows)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Result):
            return self.columns == other.columns and self.rows == other.rows
        if isinstance(other, list):
            return self._all() == other
        return NotImplemented

    def __repr__(self) -> str:
        if not self.columns:
            return f"<Result rowcount={self.rowcount}>"
        return repr(self._all())

    def scalar(self) -> Any:
        """The first column of the first row (None when there is no row)."""
        return self.rows[0][0] if self.rows else None


def _unique_keys(columns: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for c in columns:
        if c in seen:
            n = seen[c]
            key = f"{c}:{n}"
            while key in seen:
                n += 1
                key = f"{c}:{n}"
            seen[c] = n + 1
            seen[key] = 1
            out.append(key)
        else:
            seen[c] = 1
            out.append(c)
    return out
