"""What every part of the planner shares: the SelectPlan it produces, the FROM
clause as a list, which sources an expression reads, and LIMIT/OFFSET."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import Any, Callable, Protocol

from toondb.errors import SQLError
from toondb.sql import ast
from toondb.sql import types as T
from toondb.sql.ast import K_COLUMN, K_SUBQUERY, kinds
from toondb.sql.catalog import Catalog, TableInfo
from toondb.sql.collation import collation
from toondb.sql.executor import Ctx
from toondb.sql.expressions import ExprCompiler
from toondb.sql.scope import Scope, Source

Fn = Callable[[Any], Any]


class PlannerContext(Protocol):
    """What the parts of the planner need of the planner (planner.py's Planner): the
    shared state of one statement, and planning a whole SELECT or one core of it
    (for subqueries, views and WITH names). The parts take this, so that they import
    nothing from planner.py, which imports them."""

    catalog: Catalog
    ctx: Ctx
    ec: ExprCompiler
    cte_env: list[Any]  # ctes.CteBinding, innermost last
    expanding: set[int]
    view_depth: int

    def plan_select(self, select: ast.Select, parent: Scope | None = None) -> SelectPlan: ...

    def plan_core(
        self,
        core: ast.SelectCore,
        parent: Scope | None,
        order_by: list[ast.OrderItem],
        limit: ast.Expr | None,
        offset: ast.Expr | None,
    ) -> SelectPlan: ...


def top_k_term(
    core: ast.SelectCore,
    order_by: list[ast.OrderItem],
    limit: ast.Expr | None,
    aggregated: bool,
) -> tuple[ast.OrderItem, ast.Expr] | None:
    """(the ORDER BY item, its expression with a select-list alias resolved) when
    the statement asks for the first rows by one score: ``ORDER BY expr LIMIT n``
    with no aggregation or DISTINCT, the shape an index method (k-NN, full-text
    rank) can answer in order; None otherwise."""
    if limit is None or len(order_by) != 1 or aggregated or core.distinct:
        return None
    o = order_by[0]
    e = o.expr
    if isinstance(e, ast.Column) and e.table is None:  # an alias of the select list
        for rc in core.columns:
            if rc.alias is not None and rc.alias.lower() == e.name.lower():
                e = rc.expr
                break
    return o, e


def split_and(node: ast.Expr | None) -> list[ast.Expr]:
    """The conjuncts of a WHERE or ON expression (AND split apart)."""
    if node is None:
        return []
    if isinstance(node, ast.Binary) and node.op == "AND":
        return split_and(node.left) + split_and(node.right)
    return [node]


def sql_text(node: Any) -> str:
    """An expression back as SQL text (for EXPLAIN and messages)."""
    if isinstance(node, ast.Literal):
        v = node.value
        if v is None:
            return "NULL"
        if isinstance(v, str):
            return "'" + v.replace("'", "''") + "'"
        if isinstance(v, bytes):
            return "X'" + v.hex().upper() + "'"
        return repr(v)
    if isinstance(node, ast.Param):
        return "?" if node.name is None else ":" + node.name
    if isinstance(node, ast.Column):
        return f"{node.table}.{node.name}" if node.table else node.name
    if isinstance(node, ast.Star):
        return f"{node.table}.*" if node.table else "*"
    if isinstance(node, ast.Unary):
        return (
            f"{node.op} {sql_text(node.operand)}"
            if node.op == "NOT"
            else f"{node.op}{sql_text(node.operand)}"
        )
    if isinstance(node, ast.Binary):
        op = {"ISNOT": "IS NOT"}.get(node.op, node.op)
        return f"{sql_text(node.left)} {op} {sql_text(node.right)}"
    if isinstance(node, ast.Func):
        if node.star:
            return f"{node.name}(*)"
        d = "DISTINCT " if node.distinct else ""
        return f"{node.name}({d}{', '.join(sql_text(a) for a in node.args)})"
    if isinstance(node, ast.IsNull):
        return f"{sql_text(node.expr)} IS {'NOT ' if node.negated else ''}NULL"
    if isinstance(node, ast.Between):
        n = "NOT " if node.negated else ""
        return f"{sql_text(node.expr)} {n}BETWEEN {sql_text(node.low)} AND {sql_text(node.high)}"
    if isinstance(node, ast.InList):
        n = "NOT " if node.negated else ""
        return f"{sql_text(node.expr)} {n}IN ({', '.join(sql_text(i) for i in node.items)})"
    if isinstance(node, ast.InSelect):
        return f"{sql_text(node.expr)} {'NOT ' if node.negated else ''}IN (subquery)"
    if isinstance(node, ast.Like):
        return f"{sql_text(node.expr)} {'NOT ' if node.negated else ''}{node.op} {sql_text(node.pattern)}"
    if isinstance(node, ast.Cast):
        return f"CAST({sql_text(node.expr)} AS {node.type_name})"
    if isinstance(node, ast.Exists):
        return "EXISTS (subquery)"
    if isinstance(node, ast.Subquery):
        return "(subquery)"
    if isinstance(node, ast.Case):
        return "CASE ... END"
    if isinstance(node, ast.Collate):
        return f"{sql_text(node.expr)} COLLATE {node.collation}"
    return type(node).__name__


class SelectPlan:
    """A compiled SELECT: run() yields output tuples."""

    def __init__(
        self,
        columns: list[str],
        affinities: list[str | None],
        run: Callable[[], Iterator[tuple[Any, ...]]],
        explain: list[str],
        correlated: bool,
    ) -> None:
        self.columns = columns
        self.ncolumns = len(columns)
        self.affinities = affinities
        self.run = run
        self.explain_lines = explain
        self.correlated = correlated
        # each output column's collation (a column's, or an explicit COLLATE's;
        # None for other expressions), carried to the queries that read the plan
        # as a subquery, view or CTE (SQLite's sqlite3SubqueryColumnTypes)
        self.collations: list[str | None] = [None] * len(columns)


def flatten_from(
    node: ast.Node | None,
) -> list[tuple[str | None, ast.Node, ast.Expr | None, list[str] | None]]:
    """The FROM clause as a list of (join kind, item, ON, USING), left to right
    (the first item's kind is None)."""
    if node is None:
        return []
    if isinstance(node, ast.Join):
        left = flatten_from(node.left)
        right = flatten_from(node.right)
        if not right:
            return left
        first_kind, first_node, first_on, first_using = right[0]
        kind = node.kind
        items = left + [(kind, first_node, node.on, node.using)] + right[1:]
        return items
    return [(None, node, None, None)]


def refs(node: Any, scope: Scope) -> set[int] | None:
    """Indexes of the sources (of this scope) an expression reads; None: it holds
    a subquery (treated as reading every source)."""
    m = kinds(node)
    if m & K_SUBQUERY:
        return None
    out: set[int] = set()
    if not m & K_COLUMN:
        return out

    def walk(n: Any) -> None:
        if type(n) is ast.Column:
            depth, slot, _, src = scope.resolve(n)
            if depth == 0 and src is not None:
                out.add(scope.sources.index(src))
        elif isinstance(n, ast.Node):
            if kinds(n) & K_COLUMN:
                for k in type(n).__slots__:
                    walk(getattr(n, k))
        elif type(n) is list or type(n) is tuple:
            for x in n:
                walk(x)

    walk(node)
    return out


def shifted_scope(scope: Scope, k: int) -> Scope:
    """A scope of source k alone, at offset 0: for expressions evaluated on that
    table's row before it is joined (pushed-down filters, hash join keys)."""
    src = scope.sources[k]
    s = Source(src.name, src.columns, src.affinities, 0, src.table)
    s.hidden = src.hidden
    sc = Scope([s], scope.parent)
    sc.corr = scope.corr
    return sc


def and_all(preds: list[Fn]) -> Fn | None:
    """One predicate true when all of preds are (None for none)."""
    if not preds:
        return None
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda r: a(r) and b(r)
    return lambda r: all(p(r) for p in preds)


def table_defaults(table: TableInfo) -> tuple[Any, ...]:
    """The columns' constant DEFAULT values (None where there is none or it is an
    expression): what a row stored before ALTER TABLE ADD COLUMN is padded with."""
    vals = []
    for c in table.columns:
        v = None
        if c.default is not None and isinstance(c.default, ast.Literal):
            v = T.apply_affinity(c.affinity, c.default.value)
        elif (
            c.default is not None
            and isinstance(c.default, ast.Unary)
            and isinstance(c.default.operand, ast.Literal)
        ):
            v = T.apply_affinity(c.affinity, T.neg(c.default.operand.value))
        vals.append(v)
    return tuple(vals)


def limit_fns(
    ec: ExprCompiler, limit: ast.Expr | None, offset: ast.Expr | None
) -> tuple[Fn | None, Fn | None]:
    """LIMIT and OFFSET compiled (None where absent); apply_limit runs them."""
    lf = ec.compile(limit, None) if limit is not None else None
    of = ec.compile(offset, None) if offset is not None else None
    return lf, of


def limit_count(lf: Fn | None, of: Fn | None) -> int | None:
    """LIMIT + OFFSET: how many rows apply_limit reads at most (None: all)."""
    if lf is None:
        return None
    v = lf(())
    n = T.cast(v, "INTEGER") if v is not None else -1
    if n < 0:
        return None
    off = max(T.cast(of(()), "INTEGER") or 0, 0) if of is not None else 0
    return n + off


def apply_limit(rows: Iterator[Any], lf: Fn | None, of: Fn | None) -> Iterator[Any]:
    """rows with OFFSET and LIMIT applied (a negative LIMIT: none)."""
    if lf is None and of is None:
        return rows
    n = None
    if lf is not None:
        v = lf(())
        n = T.cast(v, "INTEGER") if v is not None else -1
        if type(v) is str and not isinstance(T.text_to_numeric(v, T.NUMERIC), int):
            raise SQLError("datatype mismatch: LIMIT must be an integer")
        if n < 0:
            n = None
    off = 0
    if of is not None:
        v = of(())
        off = max(T.cast(v, "INTEGER"), 0) if v is not None else 0
    return islice(rows, off, None if n is None else off + n)


def table_scope(table: TableInfo, alias: str | None) -> Scope:
    """The scope of one table's rows (UPDATE, DELETE, CHECK constraints)."""
    src = Source(
        alias or table.name, [c.name for c in table.columns], list(table.affinities), 0, table
    )
    return Scope([src], None)


def compound_collations(plans: list[SelectPlan]) -> list[str | None]:
    """Each output column's collation in a compound SELECT: that of the leftmost
    SELECT giving it one (SQLite's multiSelectCollSeq); None for BINARY."""
    out: list[str | None] = []
    for i in range(plans[0].ncolumns):
        name = next((p.collations[i] for p in plans if p.collations[i] is not None), None)
        out.append(None if name in (None, "BINARY") else name)
    return out


def row_under(collations: list[str | None]) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """row -> the row with each collated column's value replaced by its collation
    key: rows equal under the collations map to equal tuples (UNION, INTERSECT,
    EXCEPT, a recursive CTE's UNION)."""
    keyed = [(i, collation(name)[0]) for i, name in enumerate(collations) if name is not None]
    if not keyed:
        return lambda row: row

    def under(row: tuple[Any, ...]) -> tuple[Any, ...]:
        out = list(row)
        for i, key in keyed:
            out[i] = key(out[i])
        return tuple(out)

    return under
