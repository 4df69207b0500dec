"""Names as expressions see them: a ``Source`` is one FROM item (where its columns
and rowid sit in the flat row an operator produces), a ``Scope`` the FROM items
of one SELECT with a link to the enclosing SELECT's scope, for correlated
subqueries. ``Scope.resolve`` turns a column reference into (depth, slot,
affinity, source), with SQLite's errors for unknown and ambiguous names."""

from __future__ import annotations

from typing import Any

from toondb.errors import SchemaError
from toondb.sql import ast
from toondb.sql import types as T
from toondb.sql.catalog import ROWID_NAMES

__all__ = ["Source", "Scope"]


class Source:
    """One FROM item as expressions see it: its columns sit at row[offset:offset+n],
    its rowid (tables only) at row[offset+n]."""

    def __init__(
        self,
        name: str,
        columns: list[str],
        affinities: list[str | None],
        offset: int,
        table: Any = None,
    ) -> None:
        self.name = name.lower()
        self.columns = columns
        self.lower: dict[str, int] = {}
        for i, c in enumerate(columns):
            self.lower.setdefault(c.lower(), i)
        self.affinities = affinities
        self.offset = offset
        self.table = table
        self.indexed: str | None = None  # INDEXED BY name, "" for NOT INDEXED
        self.width = len(columns) + (1 if table is not None else 0)
        self.hidden: set[str] = set()  # USING columns of a right-hand side
        self.star_hidden: set[str] = set()  # HIDDEN columns: named, not in SELECT *
        # a subquery's, view's or CTE's output collations (None: BINARY)
        self.collations: list[str | None] | None = None

    def rowid_slot(self) -> int | None:
        if self.table is None:
            return None
        return self.offset + len(self.columns)


class Scope:
    def __init__(self, sources: list[Source], parent: Scope | None = None) -> None:
        self.sources = sources
        self.written = sources  # in the order of the FROM clause (for SELECT *)
        self.parent = parent
        self.cell: list[Any] = [None]  # the current row, for correlated subqueries
        self.width = sum(s.width for s in sources)
        # set when a column of a parent scope is used (shared with the scopes
        # derived from this one for pushed-down predicates)
        self.corr: list[bool] = [False]
        # _find's answers by (table, name): planning asks for the same column
        # many times (its slot, affinity, collation, which source it reads);
        # cleared by forget() when a source's hidden columns change (USING)
        self._found: dict[tuple[str | None, str], tuple[int, str | None, Source] | None] = {}

    def forget(self) -> None:
        """Drop the remembered answers: a source's columns were hidden (USING)."""
        self._found.clear()

    @property
    def correlated(self) -> bool:
        return self.corr[0]

    def resolve(self, col: ast.Column) -> tuple[int, int, str | None, Source | None]:
        """(depth, slot, affinity, source) of a column; depth 0 is this scope."""
        scope: Scope | None = self
        depth = 0
        while scope is not None:
            hit = scope._find(col)
            if hit is not None:
                return (depth, *hit)
            scope = scope.parent
            depth += 1
        name = f"{col.table}.{col.name}" if col.table else col.name
        raise SchemaError(f"no such column: {name}")

    def _find(self, col: ast.Column) -> tuple[int, str | None, Source] | None:
        key = (col.table, col.name)
        found = self._found
        if key in found:
            return found[key]
        hit = self._lookup(col)  # an error (unknown, ambiguous) is not remembered
        found[key] = hit
        return hit

    def _lookup(self, col: ast.Column) -> tuple[int, str | None, Source] | None:
        name = col.name.lower()
        if col.table is not None:
            tl = col.table.lower()
            for s in self.sources:
                if s.name == tl:
                    i = s.lower.get(name)
                    if i is not None:
                        return s.offset + i, s.affinities[i], s
                    if name in ROWID_NAMES and s.table is not None:
                        return s.rowid_slot(), T.INTEGER, s  # type: ignore[return-value]
                    raise SchemaError(f"no such column: {col.table}.{col.name}")
            return None
        found = None
        for s in self.sources:
            i = s.lower.get(name)
            if i is not None and name not in s.hidden:
                if found is not None:
                    raise SchemaError(f"ambiguous column name: {col.name}")
                found = (s.offset + i, s.affinities[i], s)
        if found is None and name in ROWID_NAMES:
            tables = [s for s in self.sources if s.table is not None]
            if len(tables) == 1:
                return tables[0].rowid_slot(), T.INTEGER, tables[0]  # type: ignore[return-value]
        return found
