"""The shape of the rows an aggregation produces: ``AggMap`` collects, while a
SELECT's expressions compile, the GROUP BY keys, the aggregate calls and the bare
columns (columns outside any aggregate, read from one row of each group), and
gives each a slot of the post-aggregation row. ``contains_aggregate`` tells
whether an expression holds an aggregate call of this query (not one inside a
subquery, nor a window function's own call)."""

from __future__ import annotations

from typing import Any

from toondb.sql import ast
from toondb.sql import functions as F
from toondb.sql.ast import K_FUNC, kinds

__all__ = ["AggMap", "InValues", "contains_aggregate"]


class InValues(ast.Expr):
    """Internal: the value set of an IN subquery for one row (see _in_select)."""

    __slots__ = ("node",)

    def __init__(self, node: ast.InSelect) -> None:
        self.node = node


class AggMap:
    """Post-aggregation rows: group keys, then aggregate values, then bare columns."""

    def __init__(self, group_by: list[ast.Expr]) -> None:
        self.keys = list(group_by)
        self.aggs: list[ast.Func] = []
        self.bare: list[ast.Expr] = []
        self.frozen = False

    def slot_of(self, node: ast.Expr) -> int | None:
        for i, k in enumerate(self.keys):
            if k == node:
                return i
        if isinstance(node, ast.Func):
            for i, a in enumerate(self.aggs):
                if a == node:
                    return len(self.keys) + i
        return None

    def add_agg(self, node: ast.Func) -> int:
        s = self.slot_of(node)
        if s is not None:
            return s
        self.aggs.append(node)
        return len(self.keys) + len(self.aggs) - 1

    def add_bare(self, node: ast.Expr) -> int:
        for i, b in enumerate(self.bare):
            if b == node:
                return len(self.keys) + len(self.aggs) + i
        self.bare.append(node)
        return -1  # resolved to a final slot by finalize()


def contains_aggregate(node: Any) -> bool:
    if not kinds(node) & K_FUNC:
        return False
    if isinstance(node, ast.WindowFunc):  # an aggregate OVER a window is not one
        f = node.func
        return contains_aggregate(f.args) or contains_aggregate(f.filter)
    if isinstance(node, ast.Func):
        if F.is_aggregate_call(node.name, len(node.args), node.star):
            return True
        return any(contains_aggregate(a) for a in node.args)
    if isinstance(node, (ast.Select,)):
        return False
    if isinstance(node, ast.Node):
        for k in node.__slots__:
            v = getattr(node, k)
            if isinstance(v, (ast.Select, ast.SelectCore)):
                continue
            if contains_aggregate(v):
                return True
        return False
    if isinstance(node, (list, tuple)):
        return any(contains_aggregate(x) for x in node)
    return False
