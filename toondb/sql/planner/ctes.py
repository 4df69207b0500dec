"""WITH and views: the names a FROM clause may use besides tables.

A WITH name is planned at each reference, with the names in scope where it was
defined (``CteBinding.env``), as SQLite inlines it. One whose SELECT names itself
is recursive (``plan_recursive_cte``: SQLite's queue of rows). A view is parsed
from its stored SQL and planned as a subquery named by the view.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

from toondb.errors import SQLError
from toondb.sql import ast
from toondb.sql.planner.common import (
    PlannerContext,
    SelectPlan,
    apply_limit,
    compound_collations,
    flatten_from,
    limit_fns,
    row_under,
)


class CteBinding:
    """A WITH name in scope: its definition and the names its SELECT sees (every
    name of its WITH, itself included, and those of enclosing ones); for the
    working table of a recursive CTE, the plan that yields its current rows."""

    __slots__ = ("cte", "env", "working")

    def __init__(self, cte: ast.Cte, working: SelectPlan | None = None) -> None:
        self.cte = cte
        self.env: list[CteBinding] = []
        self.working = working


def bind(env: list[CteBinding], ctes: list[ast.Cte]) -> list[CteBinding]:
    """env with the names of one WITH added; as in SQLite each sees all of them."""
    new = env + [CteBinding(cte) for cte in ctes]
    for b in new[len(env) :]:
        b.env = new
    return new


def names_table(node: Any, low: str) -> bool:
    """Whether a FROM clause anywhere in node names the table low. Below a WITH
    that defines low again, low means that one (its bodies included)."""
    if isinstance(node, ast.TableRef):
        return node.name.lower() == low
    if isinstance(node, ast.Select) and any(c.name.lower() == low for c in node.ctes):
        return False
    if isinstance(node, ast.Node):
        return any(names_table(getattr(node, k), low) for k in node.__slots__)
    if isinstance(node, (list, tuple)):
        return any(names_table(x, low) for x in node)
    return False


def named_columns(plan: SelectPlan, cte: ast.Cte) -> SelectPlan:
    """plan with the column names a WITH name(a, b) gives it."""
    if cte.columns is None:
        return plan
    if len(cte.columns) != plan.ncolumns:
        raise SQLError(
            f"table {cte.name} has {plan.ncolumns} values for {len(cte.columns)} columns"
        )
    renamed = SelectPlan(
        list(cte.columns), plan.affinities, plan.run, plan.explain_lines, plan.correlated
    )
    renamed.collations = plan.collations
    return renamed


def lookup(planner: PlannerContext, low: str) -> CteBinding | None:
    """The WITH name low in scope (the innermost one), or None."""
    b: CteBinding
    for b in reversed(planner.cte_env):
        if b.cte.name.lower() == low:
            return b
    return None


def plan_cte(planner: PlannerContext, b: CteBinding) -> SelectPlan:
    """A reference to a WITH name: its SELECT planned with the names of where it
    was defined, once per reference (SQLite inlines it likewise). One that
    names itself is recursive; names that lead back to themselves otherwise
    are a circular reference."""
    if b.working is not None:
        return b.working
    if id(b) in planner.expanding:
        raise SQLError(f"circular reference: {b.cte.name}")
    saved = planner.cte_env
    planner.expanding.add(id(b))
    try:
        if names_table(b.cte.select, b.cte.name.lower()):
            return plan_recursive_cte(planner, b)
        planner.cte_env = b.env
        return named_columns(planner.plan_select(b.cte.select, None), b.cte)
    finally:
        planner.cte_env = saved
        planner.expanding.discard(id(b))


def plan_recursive_cte(planner: PlannerContext, b: CteBinding) -> SelectPlan:
    """initial-select UNION [ALL] recursive-select, as SQLite runs it: the rows
    of the initial select go to a queue; each row taken from the queue is
    output and then the recursive select runs with that one row as the
    working table, its rows joining the queue (UNION: only rows not seen
    before). A LIMIT on the CTE stops the recursion."""
    cte = b.cte
    sel = cte.select
    if len(sel.cores) < 2 or sel.ops[-1] not in ("UNION", "UNION ALL"):
        raise SQLError(f"circular reference: {cte.name}")
    if sel.order_by:
        raise SQLError(
            f"ORDER BY in the recursive common table expression {cte.name} is not supported"
        )
    initial = ast.Select(sel.cores[:-1], sel.ops[:-1], [], None, None)
    step = ast.Select([sel.cores[-1]], [], [], None, None)
    low = cte.name.lower()
    if any(names_table(c, low) for c in initial.cores):
        raise SQLError(f"circular reference: {cte.name}")
    core = sel.cores[-1]
    in_from = [n for _, n, _, _ in flatten_from(core.from_)]
    direct = sum(isinstance(n, ast.TableRef) and n.name.lower() == low for n in in_from)
    elsewhere = names_table([n for n in in_from if not isinstance(n, ast.TableRef)], low) or any(
        names_table(getattr(core, k), low) for k in core.__slots__ if k != "from_"
    )
    if direct != 1 or elsewhere:
        raise SQLError(
            f"the recursive select of {cte.name} must name {cte.name} exactly once, "
            "in its FROM clause and not in a subquery"
        )
    saved = planner.cte_env
    planner.cte_env = b.env
    try:
        init_plan = named_columns(planner.plan_select(initial, None), cte)
        current: list[tuple[Any, ...]] = []
        # "correlated": a FROM that reads it reads it again at every step
        working = SelectPlan(
            init_plan.columns,
            init_plan.affinities,
            lambda: iter(current),
            [f"RECURSIVE TABLE {cte.name}"],
            True,
        )
        planner.cte_env = b.env + [CteBinding(cte, working)]
        step_plan = planner.plan_select(step, None)
        lf, of = limit_fns(planner.ec, sel.limit, sel.offset)
    finally:
        planner.cte_env = saved
    if step_plan.ncolumns != init_plan.ncolumns:
        raise SQLError(
            "SELECTs to the left and right of UNION do not have the same number of result columns"
        )
    distinct = sel.ops[-1] == "UNION"
    # UNION compares each column under its collation (the initial SELECT's, else
    # the recursive one's: SQLite's multiSelectCollSeq)
    canon = row_under(compound_collations([init_plan, step_plan]))

    def rows() -> Iterator[tuple[Any, ...]]:
        seen: set[tuple[Any, ...]] = set()
        queue: deque[tuple[Any, ...]] = deque()

        def enqueue(new: Iterator[tuple[Any, ...]]) -> None:
            for r in new:
                if distinct:
                    c = canon(r)
                    if c in seen:
                        continue
                    seen.add(c)
                queue.append(r)

        enqueue(init_plan.run())
        while queue:
            r = queue.popleft()
            yield r
            current[:] = [r]
            enqueue(step_plan.run())

    def run() -> Iterator[tuple[Any, ...]]:
        return apply_limit(rows(), lf, of)

    explain = [f"RECURSIVE CTE {cte.name}", *init_plan.explain_lines, "RECURSIVE STEP"]
    recursive = SelectPlan(
        init_plan.columns, init_plan.affinities, run, explain + step_plan.explain_lines, False
    )
    recursive.collations = init_plan.collations
    return recursive


def view_ref(planner: PlannerContext, node: ast.TableRef) -> ast.SubqueryRef:
    """A view in FROM: its SELECT, planned as a subquery named by the view."""
    from toondb.sql.grammar import parse

    view = planner.catalog.views[node.name.lower()]
    depth = planner.view_depth
    if depth > 32:
        raise SQLError(f"view {view['name']} is circularly defined")
    sel = parse(view["sql"])[0].statement
    assert isinstance(sel, ast.Select)  # CREATE VIEW stores a SELECT
    if view.get("columns"):
        core = sel.cores[0]
        if (
            len(sel.cores) == 1
            and core.values is None
            and not any(isinstance(rc.expr, ast.Star) for rc in core.columns)
        ):
            if len(view["columns"]) != len(core.columns):
                raise SQLError(
                    f"expected {len(core.columns)} columns for '{view['name']}' but got "
                    f"{len(view['columns'])}"
                )
            cols = [
                ast.ResultColumn(rc.expr, name, rc.text)
                for rc, name in zip(core.columns, view["columns"])
            ]
            sel = ast.Select(
                [
                    ast.SelectCore(
                        core.distinct, cols, core.from_, core.where, core.group_by, core.having
                    )
                ],
                [],
                sel.order_by,
                sel.limit,
                sel.offset,
            )
    planner.view_depth = depth + 1
    try:
        # planned here only to fail early on a broken view; the SubqueryRef plans it again
        planner.plan_select(sel, None)
    finally:
        planner.view_depth = depth
    return ast.SubqueryRef(sel, node.alias or view["name"])
