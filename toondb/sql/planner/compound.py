"""Compound SELECTs (UNION [ALL], INTERSECT, EXCEPT) and VALUES lists."""

from __future__ import annotations

from collections.abc import Iterator
from operator import itemgetter
from typing import Any, Callable

from toondb.errors import SQLError
from toondb.sql import ast
from toondb.sql import types as T
from toondb.sql.collation import collation
from toondb.sql.executor import sort_rows
from toondb.sql.planner.common import (
    PlannerContext,
    SelectPlan,
    apply_limit,
    compound_collations,
    limit_fns,
    row_under,
)
from toondb.sql.scope import Scope


def plan_values(
    planner: PlannerContext,
    core: ast.SelectCore,
    parent: Scope | None,
    order_by: list[ast.OrderItem],
    limit: ast.Expr | None,
    offset: ast.Expr | None,
) -> SelectPlan:
    """A VALUES list (a SELECT core of constant rows): its ORDER BY names columns
    by position."""
    rows_ast = core.values or []
    width = len(rows_ast[0])
    for r in rows_ast:
        if len(r) != width:
            raise SQLError("all VALUES must have the same number of terms")
    scope = Scope([], parent)
    fns = [[planner.ec.compile(e, scope) for e in r] for r in rows_ast]
    names = [f"column{i + 1}" for i in range(width)]
    lf, of = limit_fns(planner.ec, limit, offset)
    terms = []
    for o in order_by:
        ok, v = planner.ec.constant(o.expr)
        if ok and type(v) is int and 1 <= v <= width:
            terms.append((itemgetter(v - 1), o.desc, o.nulls_first))
        else:
            raise SQLError("ORDER BY on VALUES must name a column by position")

    def run() -> Iterator[tuple[Any, ...]]:
        out = [tuple(f(()) for f in r) for r in fns]
        if terms:
            out = sort_rows(out, terms)
        return apply_limit(iter(out), lf, of)

    return SelectPlan(
        names, [None] * width, run, [f"VALUES ({len(rows_ast)} rows)"], scope.correlated
    )


def plan_compound(planner: PlannerContext, select: ast.Select, parent: Scope | None) -> SelectPlan:
    """SELECTs joined by UNION [ALL], INTERSECT, EXCEPT, left to right; the
    ORDER BY and LIMIT apply to the whole (ORDER BY terms name output columns)."""
    plans = [planner.plan_core(c, parent, [], None, None) for c in select.cores]
    width = plans[0].ncolumns
    for p in plans[1:]:
        if p.ncolumns != width:
            raise SQLError(
                "SELECTs to the left and right of UNION do not have the same number of result columns"
            )
    names = plans[0].columns
    # each column compares under the collation of the leftmost SELECT that gives
    # it one (SQLite's multiSelectCollSeq): UNION, INTERSECT, EXCEPT and ORDER BY
    colls = compound_collations(plans)
    keys = [collation(name)[0] if name is not None else None for name in colls]
    lower = {n.lower(): i for i, n in reversed(list(enumerate(names)))}
    terms = []
    for o in select.order_by:
        ok, v = planner.ec.constant(o.expr)
        if ok and type(v) is int:
            if not 1 <= v <= width:
                raise SQLError(f"ORDER BY term out of range - should be between 1 and {width}")
            idx = v - 1
        elif isinstance(o.expr, ast.Column) and o.expr.name.lower() in lower:
            idx = lower[o.expr.name.lower()]
        else:
            hit = next(
                (i for i, rc in enumerate(select.cores[0].columns) if rc.expr == o.expr), None
            )
            if hit is None:
                raise SQLError("ORDER BY term does not match any column in the result set")
            idx = hit
        terms.append((_collated_getter(idx, keys[idx]), o.desc, o.nulls_first))
    lf, of = limit_fns(planner.ec, select.limit, select.offset)
    ops = select.ops
    sort_key = T.sort_key

    canon = row_under(colls)

    def run() -> Iterator[tuple[Any, ...]]:
        acc: list[tuple[Any, ...]] = list(plans[0].run())
        distinct_sorted = False
        for op, p in zip(ops, plans[1:]):
            if terms and not acc and op in ("EXCEPT", "INTERSECT"):
                # the result stays empty; SQLite (merging the sorted parts
                # for an ORDER BY) never runs the right part then, so an
                # error it would raise is not raised here either
                distinct_sorted = True
                continue
            rows = list(p.run())
            if op == "UNION ALL":
                acc.extend(rows)
                continue
            if op == "UNION":
                seen = set()
                out = []
                for r in acc + rows:
                    c = canon(r)
                    if c not in seen:
                        seen.add(c)
                        out.append(r)
                acc = out
            elif op == "INTERSECT":
                right = {canon(r) for r in rows}
                seen = set()
                out = []
                for r in acc:
                    c = canon(r)
                    if c in right and c not in seen:
                        seen.add(c)
                        out.append(r)
                acc = out
            else:  # EXCEPT
                right = {canon(r) for r in rows}
                seen = set()
                out = []
                for r in acc:
                    c = canon(r)
                    if c not in right and c not in seen:
                        seen.add(c)
                        out.append(r)
                acc = out
            distinct_sorted = True
        if distinct_sorted and not terms:
            acc.sort(key=lambda r: tuple(sort_key(v) for v in r))
        if terms:
            acc = sort_rows(acc, terms)
        return apply_limit(iter(acc), lf, of)

    lines = []
    for i, p in enumerate(plans):
        if i:
            lines.append(ops[i - 1])
        lines.extend("  " + ln for ln in p.explain_lines)
    if terms:
        lines.append("SORT (compound)")
    correlated = any(p.correlated for p in plans)
    plan = SelectPlan(names, plans[0].affinities, run, lines, correlated)
    plan.collations = list(plans[0].collations)  # the leftmost SELECT's, as SQLite
    return plan


def _collated_getter(idx: int, key: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    """Column idx of a row, under the collation key when the column has one."""
    get = itemgetter(idx)
    if key is None:
        return get

    def collated(row: Any) -> Any:
        return key(get(row))

    return collated
