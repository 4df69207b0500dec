"""The FROM clause: its items resolved to sources, then joined (planner rules 1 and 3).

``resolve_from`` turns each FROM item (a table, a WITH name, a view, a subquery)
into a Source of the statement's scope. ``plan_from`` places every WHERE and
inner-join ON conjunct at the first step where all the tables it names are
joined, reads the first table through its access path (access.py) and joins each
next one, left-deep in the order written: an index nested loop when its access
path probes columns of the tables before it; else a hash join on an equality
conjunct (``hash_keys``); else a nested loop over its rows, read once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Callable

from toondb.errors import SchemaError, SQLError
from toondb.sql import ast, functions, schema_table
from toondb.sql import types as T
from toondb.sql.ast import K_SUBQUERY, kinds
from toondb.sql.catalog import TableInfo
from toondb.sql.executor import (
    Access,
    FullScan,
    RowidRange,
    SubquerySource,
    TableFuncScan,
    hash_join,
    nested_loop,
)
from toondb.sql.expressions import ExprCompiler, comparison_collation
from toondb.sql.planner.access import c_filter, choose_access, order_column
from toondb.sql.planner.common import (
    Fn,
    PlannerContext,
    and_all,
    flatten_from,
    refs,
    shifted_scope,
    split_and,
    sql_text,
    table_defaults,
)
from toondb.sql.planner.ctes import lookup, plan_cte, view_ref
from toondb.sql.planner.fts import FtsRequest, fts_access
from toondb.sql.planner.join_order import choose_order
from toondb.sql.planner.knn import KnnRequest, knn_access
from toondb.sql.scope import Scope, Source


class Step:
    """One FROM item in the join: its source, how it joins, and its conjuncts."""

    def __init__(self, source: Source, kind: str | None) -> None:
        self.source = source
        self.kind = kind  # None (first), INNER, LEFT, CROSS
        self.on: list[ast.Expr] = []  # LEFT JOIN conditions
        self.filters: list[ast.Expr] = []  # applied after this step


def resolve_from(
    planner: PlannerContext,
    core: ast.SelectCore,
    parent: Scope | None,
    plan_subqueries: bool = True,
) -> tuple[
    list[Source],
    list[tuple[str | None, Any, ast.Expr | None, list[str] | None, Source]],
]:
    """The FROM items as Sources (their columns at consecutive offsets of the
    joined row) and, for each, (join kind, table or plan, ON, USING, source).
    plan_subqueries=False (for expression affinities) refuses what needs planning."""
    items = flatten_from(core.from_)
    sources: list[Source] = []
    out = []
    offset = 0
    seen: set[str] = set()
    for kind, node, on, using in items:
        low = node.name.lower() if isinstance(node, ast.TableRef) else ""
        binding = lookup(planner, low) if low else None
        if (
            isinstance(node, ast.TableRef)  # as low says
            and low
            and binding is None
            and low not in planner.catalog.tables
            and low in planner.catalog.views
        ):
            node = view_ref(planner, node)
        elif (
            isinstance(node, ast.TableRef)
            and low in schema_table.NAMES
            and binding is None
            and low not in planner.catalog.tables
            and low not in planner.catalog.views
        ):
            sel = schema_table.schema_select(planner.catalog, low)
            node = ast.SubqueryRef(sel, node.alias or node.name)
        if binding is not None:
            if not plan_subqueries:
                raise SQLError("subquery")
            assert isinstance(node, ast.TableRef)  # a WITH name: low is node's
            plan = plan_cte(planner, binding)
            name = node.alias or node.name
            src = Source(name, plan.columns, list(plan.affinities), offset, None)
            src.collations = plan.collations
            payload: Any = plan
        elif isinstance(node, ast.TableRef):
            table = planner.catalog.table(node.name)
            name = node.alias or node.name
            src = Source(
                name, [c.name for c in table.columns], list(table.affinities), offset, table
            )
            src.indexed = node.indexed  # INDEXED BY / NOT INDEXED (planner/access.py)
            if node.indexed and not any(
                ix.name.lower() == node.indexed.lower() for ix in table.indexes
            ):
                raise SQLError(f"no such index: {node.indexed}")
            payload = table
        elif isinstance(node, ast.SubqueryRef):
            if not plan_subqueries:
                raise SQLError("subquery")
            plan = planner.plan_select(node.select, parent)
            name = node.alias or f"(subquery-{len(sources) + 1})"
            src = Source(name, plan.columns, list(plan.affinities), offset, None)
            src.collations = plan.collations
            payload = plan
        elif isinstance(node, ast.TableCall):
            if node.name.upper() not in functions.TABLE_FUNCTIONS:
                raise SQLError(f"no such table-valued function: {node.name}")
            columns = list(functions.TABLE_FUNCTIONS[node.name.upper()][1])
            name = node.alias or node.name
            src = Source(name, columns, [None] * len(columns), offset, None)
            src.star_hidden = {"json", "root"}  # SQLite's HIDDEN columns
            payload = node
        else:
            raise SQLError("unsupported FROM item")
        if isinstance(using, ast.Natural):
            # NATURAL: USING every column name both sides have (the right's order)
            left_names = {c for s in sources for c in s.lower if c not in s.star_hidden}
            using = [c for c in src.columns if c.lower() in left_names] or None
        if src.name in seen:
            raise SchemaError(f"ambiguous table name in FROM: {name} (give it an alias)")
        seen.add(src.name)
        offset += src.width
        sources.append(src)
        out.append((kind, payload, on, using, src))
    return sources, out


def plan_from(
    planner: PlannerContext,
    core: ast.SelectCore,
    parent: Scope | None,
    order: tuple[ast.Expr, bool] | None = None,
    knn: KnnRequest | None = None,
    fts: FtsRequest | None = None,
) -> tuple[Scope, Callable[[], Iterator[tuple[Any, ...]]], list[str], bool | str]:
    """Scope, a row generator with WHERE applied, EXPLAIN lines, and whether
    the rows come out in the requested order ("knn": nearest first, through an
    HNSW index, for the k-NN request knn, planner/knn.py; or best first through
    a full-text index, for the ORDER BY rank request fts, planner/fts.py)."""
    sources, items = resolve_from(planner, core, parent)
    # terms without a subquery are tested before those with one, at each loop
    # (as SQLite codes them): a row the cheap terms reject never runs a subquery
    conjs = sorted(split_and(core.where), key=has_subquery)
    written = sources
    reordered = False
    if (
        len(items) > 1
        and knn is None
        and fts is None
        and all(kind in (None, "INNER", "CROSS") and not using for kind, _, _, using, _ in items)
        # a table-valued function reads the tables before it: the order written stays
        and not any(isinstance(it[1], ast.TableCall) for it in items)
    ):
        on_conjs = [c for _, _, on, _, _ in items for c in split_and(on)]
        join_order = choose_order(
            planner, sources, [it[1] for it in items], conjs + on_conjs, parent
        )
        if join_order != list(range(len(items))):
            reordered = True
            items = [items[i] for i in join_order]
            items = [(None if j == 0 else "INNER", *it[1:]) for j, it in enumerate(items)]
            sources = [it[4] for it in items]
            offset = 0
            for src in sources:
                src.offset = offset
                offset += src.width
    scope = Scope(sources, parent)
    scope.written = written  # SELECT * lists the columns in the order written
    ec = planner.ec
    ctx = planner.ctx
    if not items:
        preds = [ec.compile(c, scope, True) for c in conjs]

        def no_from() -> Iterator[tuple[Any, ...]]:
            r: tuple[Any, ...] = ()
            if all(p(r) for p in preds):
                yield r

        lines: list[str] = ["SCAN CONSTANT ROW"] + (
            [f"FILTER {sql_text(core.where)}"] if conjs else []
        )
        return scope, no_from, lines, False
    steps = [Step(src, kind) for kind, _, _, _, src in items]
    pool: list[tuple[ast.Expr, int]] = []  # (conjunct, step it applies at)
    last = len(steps) - 1

    # which sources each conjunct reads, asked where it is placed and again where
    # its table is read (the conjuncts live as long as this call: ids are stable)
    read_by: dict[int, set[int] | None] = {}

    def refs_of(c: ast.Expr) -> set[int] | None:
        key = id(c)
        if key not in read_by:
            read_by[key] = refs(c, scope)
        return read_by[key]

    def place(c: ast.Expr) -> int:
        r = refs_of(c)
        if r is None:
            return last
        return max(r) if r else 0

    # USING -> equality conditions, and the right side's USING columns hide
    for i, (kind, _, on, using, src) in enumerate(items):
        if using:
            for name in using:
                left_src = None
                for s in sources[:i]:
                    if name.lower() in s.lower and name.lower() not in s.hidden:
                        left_src = s
                        break
                if left_src is None or name.lower() not in src.lower:
                    raise SchemaError(
                        f"cannot join using column {name} - column not present in both tables"
                    )
                eq = ast.Binary("=", ast.Column(left_src.name, name), ast.Column(src.name, name))
                if kind == "LEFT":
                    steps[i].on.append(eq)
                else:
                    pool.append((eq, i))
                src.hidden.add(name.lower())
                scope.forget()
                read_by.clear()
        if on is not None:
            for c in split_and(on):
                if kind == "LEFT":
                    steps[i].on.append(c)
                else:
                    pool.append((c, max(place(c), i) if False else place(c)))
    for c in conjs:
        pool.append((c, place(c)))
    # a conjunct placed before a LEFT JOIN step that it does not name stays where it is
    for c, at in pool:
        steps[at].filters.append(c)

    lines = (
        ["JOIN ORDER " + ", ".join(src.name for src in sources) + " (by estimated cost)"]
        if reordered
        else []
    )
    in_order: bool | str = False
    gen: Callable[[], Iterator[tuple[Any, ...]]] | None = None
    for k, step in enumerate(steps):
        src = step.source
        kind, payload, _, _, _ = items[k]
        allowed = set(range(k))
        left = step.kind == "LEFT"
        # the conditions this step may use to read its table: a LEFT JOIN's ON
        # (WHERE applies after the NULL rows are added), an inner step's conjuncts
        conds = step.on if left else step.filters
        access: Access
        knn_scan = None
        if k == 0 and knn is not None and isinstance(payload, TableInfo) and not left:
            knn_scan = knn_access(planner, scope, conds, knn)
        if knn_scan is not None:
            access = knn_scan
            dep = False
            in_order = "knn"
        elif isinstance(payload, TableInfo) and payload.fulltext is not None:
            access, dep, ranked = fts_access(
                planner, scope, k, conds, None if left else fts, len(steps) == 1
            )
            if ranked:
                in_order = "knn"
        elif isinstance(payload, TableInfo):
            order_req = None
            if k == 0 and len(steps) == 1 and order is not None:
                order_req = order_column(order, scope)
            found, dep, sat = choose_access(planner, scope, k, conds, allowed, order_req)
            if k == 0:
                in_order = sat
            if found is None:
                found = FullScan(ctx, payload)
                dep = False
            access = found
            access.defaults = table_defaults(payload)
        elif isinstance(payload, ast.TableCall):
            access, dep = table_func_access(planner, scope, k, payload)
        else:
            access = SubquerySource(ctx, payload, src.name)
            dep = False
        consumed = access.consumed
        remaining = [c for c in conds if not any(c is u for u in consumed)]
        # conjuncts on this table alone are checked while reading it
        own = [c for c in remaining if refs_of(c) == {k}]
        if knn_scan is not None:
            own = []  # KnnScan tests them itself
        if (
            own
            and isinstance(payload, TableInfo)
            and not dep
            or (own and k == 0 and isinstance(payload, TableInfo))
        ):
            shifted = shifted_scope(scope, k)
            rest_own = list(own)
            if isinstance(access, (FullScan, RowidRange)):
                for c in own:
                    spec = c_filter(ec, c, shifted)
                    if spec is not None:
                        access.cfilter = spec
                        rest_own = [o for o in own if o is not c]
                        break
            access.pred = and_all([ec.compile(c, shifted, True) for c in rest_own])
            access.pred_text = " AND ".join(sql_text(c) for c in own)
            remaining = [c for c in remaining if not any(c is o for o in own)]
        if k == 0:
            post = and_all([ec.compile(c, scope, True) for c in remaining]) if remaining else None
            gen = first_step(access, post)
            lines.append(access.explain())
            shown = ([access.pred_text] if access.pred_text else []) + [
                sql_text(c) for c in remaining
            ]
            if shown:
                lines.append("  FILTER " + " AND ".join(shown))
            if knn_scan is not None:
                lines.extend(knn_scan.strategy_lines())
            continue
        null_row = (None,) * src.width
        cond_exprs = remaining
        post_exprs = step.filters if left else []
        hj = None if dep else hash_keys(ec, scope, k, cond_exprs, allowed)
        if hj is not None:
            cond_exprs = [c for c in cond_exprs if not any(c is u for u in hj[3])]
        cond = and_all([ec.compile(c, scope, True) for c in cond_exprs]) if cond_exprs else None
        post = and_all([ec.compile(c, scope, True) for c in post_exprs]) if post_exprs else None
        outer_gen = gen
        label = "LEFT " if left else ""
        if dep:
            desc = f"{label}NESTED LOOP: {access.explain()}"
            gen = nested_loop_step(outer_gen, access, cond, left, null_row, False, post)  # type: ignore[arg-type]
        elif hj is not None:
            ok_f, ik_f, text, _ = hj
            desc = f"{label}HASH JOIN ON {text}: build {access.explain()}"
            gen = hash_join_step(outer_gen, access, ok_f, ik_f, cond, left, null_row, post)  # type: ignore[arg-type]
        else:
            desc = f"{label}NESTED LOOP: {access.explain()} (read once)"
            gen = nested_loop_step(outer_gen, access, cond, left, null_row, True, post)  # type: ignore[arg-type]
        lines.append(desc)
        if access.pred_text:
            lines.append("  FILTER " + access.pred_text)
        if cond_exprs:
            lines.append(
                ("  ON " if left else "  FILTER ") + " AND ".join(sql_text(c) for c in cond_exprs)
            )
        if post_exprs:
            lines.append("  FILTER " + " AND ".join(sql_text(c) for c in post_exprs))
    return scope, gen, lines, in_order  # type: ignore[return-value]


def table_func_access(
    planner: PlannerContext, scope: Scope, k: int, node: ast.TableCall
) -> tuple[TableFuncScan, bool]:
    """The access of FROM item k, a table-valued function; dep: its arguments
    read the tables before it (evaluated per outer row)."""
    gen = functions.TABLE_FUNCTIONS[node.name.upper()][0]
    if not 1 <= len(node.args) <= 2:
        raise SQLError(f"wrong number of arguments to function {node.name}()")
    dep = False
    for a in node.args:
        r = refs(a, scope)  # None: a subquery
        if r is not None and any(i >= k for i in r):
            raise SQLError(f"{node.name}() reads a table joined after it")
        dep = dep or r is None or bool(r)
    args = [planner.ec.compile(a, scope) for a in node.args]
    return TableFuncScan(node.alias or node.name, gen, args), dep


def first_step(access: Access, post: Fn | None) -> Callable[[], Iterator[tuple[Any, ...]]]:
    """The rows of the first FROM item, with the conjuncts that apply there."""
    if post is None:
        return lambda: access.rows(())
    return lambda: filter(post, access.rows(()))


def nested_loop_step(
    outer: Callable[[], Iterator[Any]],
    access: Access,
    cond: Fn | None,
    left: bool,
    null_row: tuple[Any, ...],
    materialize: bool,
    post: Fn | None,
) -> Callable[[], Iterator[Any]]:
    """Join the next FROM item to the rows so far by a nested loop (materialize:
    its rows read once, when they do not depend on the outer row)."""

    def run() -> Iterator[Any]:
        it = nested_loop(outer(), access, cond, left, null_row, materialize)
        return filter(post, it) if post is not None else it

    return run


def hash_join_step(
    outer: Callable[[], Iterator[Any]],
    access: Access,
    ok: Fn,
    ik: Fn,
    cond: Fn | None,
    left: bool,
    null_row: tuple[Any, ...],
    post: Fn | None,
) -> Callable[[], Iterator[Any]]:
    """Join the next FROM item to the rows so far by a hash join on (ok, ik)."""

    def run() -> Iterator[Any]:
        it = hash_join(outer(), access, ok, ik, cond, left, null_row)
        return filter(post, it) if post is not None else it

    return run


def _converted(f: Fn, cv: Fn) -> Fn:
    """f's value through the conversion cv (a comparison's affinity)."""

    def converted(r: Any, f: Fn = f, cv: Fn = cv) -> Any:  # bound as defaults: fast locals
        return cv(f(r))

    return converted


def hash_keys(
    ec: ExprCompiler, scope: Scope, k: int, conjs: list[ast.Expr], allowed: set[int]
) -> tuple[Fn, Fn, str, list[ast.Expr]] | None:
    """An equality between a column of source k and an expression of the outer
    sources: (outer key, inner key on the inner row alone, text)."""
    shifted = shifted_scope(scope, k)
    outs: list[Fn] = []
    ins: list[Fn] = []
    texts: list[str] = []
    used: list[ast.Expr] = []
    for c in conjs:
        if not (isinstance(c, ast.Binary) and c.op == "="):
            continue
        if comparison_collation([c.left, c.right], scope) is not None:
            continue  # hash keys compare BINARY
        for a, b in ((c.left, c.right), (c.right, c.left)):
            ra, rb = refs(a, scope), refs(b, scope)
            if ra == {k} and rb is not None and rb <= allowed and rb:
                la, lb = ec.affinity(a, scope), ec.affinity(b, scope)
                ca, cb = T.comparison_affinity(la, lb)
                conv_a, conv_b = T.converter(ca), T.converter(cb)
                fa = ec.compile(a, shifted)
                fb = ec.compile(b, scope)
                ins.append(fa if conv_a is None else _converted(fa, conv_a))
                outs.append(fb if conv_b is None else _converted(fb, conv_b))
                texts.append(sql_text(c))
                used.append(c)
                break
    if not outs:
        return None
    if len(outs) == 1:
        return outs[0], ins[0], texts[0], used

    def ok(r: Any) -> Any:
        key = tuple(f(r) for f in outs)
        return None if None in key else key

    def ik(r: Any) -> Any:
        key = tuple(f(r) for f in ins)
        return None if None in key else key

    return ok, ik, " AND ".join(texts), used


def has_subquery(node: Any) -> bool:
    """Whether node holds a subquery (scalar, EXISTS or IN (SELECT ...))."""
    return bool(kinds(node) & K_SUBQUERY)
