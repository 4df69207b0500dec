"""RETURNING on INSERT, UPDATE and DELETE: the rows a statement wrote, projected.

Each written row is handed over as the table's row layout (its columns, then its
rowid): for INSERT and UPDATE the row as stored (after affinity, defaults and an
upsert's DO UPDATE), for DELETE the row as it was. As in SQLite, the expressions
see only that table (no aggregates, no window functions), ``*`` is its columns,
and the rows come back in the order the statement wrote them.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any, Callable

from toondb.errors import SQLError
from toondb.sql import ast
from toondb.sql.aggregate_map import contains_aggregate
from toondb.sql.catalog import TableInfo
from toondb.sql.planner.common import table_scope


class Returning:
    """The compiled RETURNING list of one statement: column names and one
    projection function over a written row."""

    def __init__(
        self, ec: Any, table: TableInfo, alias: str | None, items: list[ast.ResultColumn]
    ) -> None:
        scope = table_scope(table, alias)
        self.columns: list[str] = []
        fns: list[Callable[[Any], Any]] = []
        for rc in items:
            e = rc.expr
            if isinstance(e, ast.Star):
                for i, c in enumerate(table.columns):
                    self.columns.append(c.name)
                    fns.append(itemgetter(i))
                continue
            if contains_aggregate(e):
                raise SQLError("aggregate functions are not allowed in RETURNING")
            if rc.alias is not None:
                self.columns.append(rc.alias)
            elif isinstance(e, ast.Column):
                self.columns.append(e.name)
            else:
                self.columns.append(rc.text)
            fns.append(ec.compile(e, scope))
        self.fns = fns

    def row(self, written: Any) -> tuple[Any, ...]:
        """The RETURNING row of one written row (its columns, then its rowid)."""
        return tuple([f(written) for f in self.fns])
