"""One SELECT core: result columns, WHERE (through the FROM plan), GROUP BY and
aggregates, HAVING, DISTINCT, ORDER BY (planner rule 4), LIMIT and OFFSET."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import islice
from operator import itemgetter
from typing import Any, Callable

from toondb.errors import SchemaError, SQLError
from toondb.sql import ast
from toondb.sql import types as T
from toondb.sql.aggregate_map import AggMap, contains_aggregate
from toondb.sql.collation import collation
from toondb.sql.executor import count_rows, sort_rows, top_rows
from toondb.sql.expressions import ExprCompiler, collation_of
from toondb.sql.fulltext import rewrite_core
from toondb.sql.functions import AGG_ARITY, AGG_FUNCS
from toondb.sql.planner.common import (
    Fn,
    PlannerContext,
    SelectPlan,
    apply_limit,
    flatten_from,
    limit_count,
    limit_fns,
    split_and,
    sql_text,
)
from toondb.sql.planner.fts import fts_request
from toondb.sql.planner.joins import plan_from
from toondb.sql.planner.knn import knn_request
from toondb.sql.planner.windows import find_windows, plan_windows
from toondb.sql.scope import Scope
from toondb.sql.user_functions import USER_FUNCTIONS


def plan_select_core(
    planner: PlannerContext,
    core: ast.SelectCore,
    parent: Scope | None,
    order_by: list[ast.OrderItem],
    limit: ast.Expr | None,
    offset: ast.Expr | None,
) -> SelectPlan:
    """A SELECT core (not VALUES) with the ORDER BY and LIMIT of its statement."""
    ec = planner.ec
    # full-text tables: MATCH, rank, bm25(), highlight(), snippet() (sql/fulltext.py)
    core, order_by = rewrite_core(planner, core, order_by)
    # the ORDER BY a scan might deliver: one plain column term
    order_hint = None
    if len(order_by) == 1 and order_by[0].nulls_first in (None, not order_by[0].desc):
        order_hint = (order_by[0].expr, order_by[0].desc)
    # ORDER BY vec_distance_*(col, ?) LIMIT k: nearest first through an HNSW index
    has_windows = bool(core.windows) or _mentions_window(core.columns, order_by)
    # (both index methods answer only ORDER BY one term LIMIT n of rows that are
    # not aggregated: the aggregate test runs only for that shape)
    top_k = limit is not None and len(order_by) == 1
    not_rows = top_k and (
        has_windows  # window values are of every row, before the LIMIT
        or bool(core.group_by)
        or core.having is not None
        or any(contains_aggregate(rc.expr) for rc in core.columns)
        or contains_aggregate(order_by[0].expr)
    )
    knn = knn_request(core, order_by, limit, offset, not_rows)
    fts = fts_request(core, order_by, limit, offset, not_rows)
    if core.group_by and core.having is not None and not has_windows:
        core = having_to_where(planner, core)
    scope, source, lines, in_order = plan_from(planner, core, parent, order_hint, knn, fts)
    knn_order = in_order == "knn"
    columns = expand_columns(core, scope)
    names = [column_name(rc) for rc in columns]
    aggregated = (
        bool(core.group_by)
        or core.having is not None
        or any(contains_aggregate(rc.expr) for rc in columns)
        or any(contains_aggregate(o.expr) for o in order_by)
    )
    aliases: dict[str, int] = {}
    for i, rc in enumerate(columns):
        if rc.alias is not None:
            aliases.setdefault(rc.alias.lower(), i)
    agg: AggMap | None = None
    if aggregated:
        group_by = [resolve_alias(g, columns, aliases) for g in core.group_by]
        agg = AggMap(group_by)
    having = (
        ec.compile(having_aliases(core.having, columns, aliases, scope), scope, True, agg)
        if core.having is not None
        else None
    )
    saved_slots = ec.window_slots
    ec.window_slots = {}
    windows = plan_windows(ec, core, columns, order_by, scope, agg) if has_windows else None
    if windows is not None:
        ec.window_slots = windows[1]
    try:
        proj_fns = [ec.compile(rc.expr, scope, False, agg) for rc in columns]
        order_terms = _order_terms(ec, order_by, columns, aliases, scope, agg)
    finally:
        ec.window_slots = saved_slots
    affs = [ec.affinity(rc.expr, scope) for rc in columns]
    lf, of = limit_fns(ec, limit, offset)
    distinct = core.distinct
    dkey = _distinct_key([rc.expr for rc in columns], scope) if distinct else None
    agg_run = aggregate(ec, agg, scope) if agg is not None else None
    if agg is not None:
        lines = lines + [
            f"AGGREGATE{' GROUP BY ' + ', '.join(sql_text(g) for g in agg.keys) if agg.keys else ''}"
        ]
        if having is not None:
            lines.append(f"  HAVING {sql_text(core.having)}")
    if windows is not None:
        lines = lines + windows[2]
    need_sort = bool(order_terms) and not (
        in_order and agg is None and not distinct and windows is None
    )
    if knn_order:
        lines.append("ORDER BY (the index's order; the first LIMIT + OFFSET rows sorted)")
    elif order_terms:
        lines.append(
            "ORDER BY (scan order)"
            if not need_sort
            else "SORT BY "
            + ", ".join(sql_text(t[2].expr) + (" DESC" if t[2].desc else "") for t in order_terms)
        )
    if distinct:
        lines.append("DISTINCT")
    if limit is not None:
        lines.append(
            f"LIMIT {sql_text(limit)}"
            + (f" OFFSET {sql_text(offset)}" if offset is not None else "")
        )
    lines.append("PROJECT " + ", ".join(names))
    nproj = len(proj_fns)
    if nproj == 1:
        p0 = proj_fns[0]
        project: Fn = lambda r: (p0(r),)  # noqa: E731
    else:
        slots = plain_slots(columns, scope, agg, windows[1] if windows is not None else {})
        if slots is not None:
            project = itemgetter(*slots)
        else:
            project = lambda r: tuple([p(r) for p in proj_fns])  # noqa: E731
    sort_terms = [
        (
            (lambda it, f=f: f(it[1])) if kind == "out" else (lambda it, f=f: f(it[0])),
            o.desc,
            o.nulls_first,
        )
        for kind, f, o in order_terms
    ]
    only_out = all(kind == "out" for kind, _, _ in order_terms)
    has_limit = limit is not None
    window_run = windows[0] if windows is not None else None

    def run() -> Iterator[tuple[Any, ...]]:
        rows: Any = source()
        if knn_order:
            # nearest first, approximately: the first LIMIT + OFFSET rows, sorted by
            # the ORDER BY values themselves (ties keep the index's order)
            n = limit_count(lf, of)
            items = [(r, project(r)) for r in (rows if n is None else islice(rows, n))]
            items = sort_rows(items, sort_terms)
            return apply_limit((p for _, p in items), lf, of)
        if agg_run is not None:
            rows = agg_run(rows)
            if having is not None:
                rows = filter(having, rows)
        if window_run is not None:
            rows = window_run(rows)
        if not need_sort:
            out: Iterator[tuple[Any, ...]] = map(project, rows)
            if distinct:
                out = distinct_rows(out, dkey)
            return apply_limit(out, lf, of)
        if only_out and not distinct:
            items = [((), project(r)) for r in rows]
        elif distinct:
            items = []
            seen = set()
            for r in rows:
                p = project(r)
                k = p if dkey is None else dkey(p)
                if k not in seen:
                    seen.add(k)
                    items.append((r, p))
        else:
            items = [(r, project(r)) for r in rows]
        if has_limit and of is None and lf is not None:
            n = lf(())
            if type(n) is int and 0 <= n < len(items) // 4:
                return iter([p for _, p in top_rows(iter(items), sort_terms, n)])
        items = sort_rows(items, sort_terms)
        return apply_limit((p for _, p in items), lf, of)

    plan = SelectPlan(names, affs, run, lines, scope.correlated)
    plan.collations = [collation_of(rc.expr, scope) for rc in columns]
    return plan


def _order_terms(
    ec: ExprCompiler,
    order_by: list[ast.OrderItem],
    columns: list[ast.ResultColumn],
    aliases: dict[str, int],
    scope: Scope,
    agg: AggMap | None,
) -> list[tuple[str, Fn, ast.OrderItem]]:
    """ORDER BY terms: (kind, fn, item) where kind "out" reads the output row,
    "src" the source row."""
    order_terms: list[tuple[str, Fn, ast.OrderItem]] = []
    for o in order_by:
        e = o.expr
        ok, v = ec.constant(e)
        if ok and type(v) is int:
            if not 1 <= v <= len(columns):
                raise SQLError(
                    f"ORDER BY term out of range - should be between 1 and {len(columns)}"
                )
            order_terms.append(("out", _keyed(itemgetter(v - 1), columns[v - 1].expr, scope), o))
            continue
        if isinstance(e, ast.Column) and e.table is None and e.name.lower() in aliases:
            i = aliases[e.name.lower()]
            order_terms.append(("out", _keyed(itemgetter(i), columns[i].expr, scope), o))
            continue
        # an expression equal to a select-list expression reads the output
        hit = next((i for i, rc in enumerate(columns) if rc.expr == e), None)
        if hit is not None:
            order_terms.append(("out", _keyed(itemgetter(hit), e, scope), o))
            continue
        order_terms.append(("src", _keyed(ec.compile(e, scope, False, agg), e, scope), o))
    return order_terms


def _collated(exprs: list[ast.Expr], scope: Scope) -> list[tuple[int, Fn]]:
    """(position, collation key) of the expressions whose collation is not BINARY."""
    out = []
    for i, e in enumerate(exprs):
        coll = collation_of(e, scope)
        if coll not in (None, "BINARY"):
            out.append((i, collation(coll)[0]))
    return out


def _under(f: Fn, ck: Fn) -> Fn:
    """f's value under the collation key ck."""
    return lambda r: ck(f(r))


def _distinct_key(exprs: list[ast.Expr], scope: Scope) -> Fn | None:
    """DISTINCT under NOCASE / RTRIM: the output row's key (its collated columns
    under their collation key); None when every column is BINARY. The first row
    of equal ones is the one shown, as SQLite shows it."""
    keyed = dict(_collated(exprs, scope))
    if not keyed:
        return None
    return lambda p: tuple([keyed[i](v) if i in keyed else v for i, v in enumerate(p)])


def _keyed(f: Fn, e: ast.Expr, scope: Scope) -> Fn:
    """f, its value under e's collation key when that is not BINARY (ORDER BY)."""
    coll = collation_of(e, scope)
    if coll is None or coll == "BINARY":
        return f
    key = collation(coll)[0]
    return lambda r: key(f(r))


def _mentions_window(columns: list[ast.ResultColumn], order_by: list[ast.OrderItem]) -> bool:
    found: list[ast.WindowFunc] = []
    find_windows([rc.expr for rc in columns], found)
    find_windows([o.expr for o in order_by], found)
    return bool(found)


def expand_columns(core: ast.SelectCore, scope: Scope) -> list[ast.ResultColumn]:
    """The result columns with * and table.* expanded (USING columns hidden by *)."""
    out = []
    for rc in core.columns:
        if isinstance(rc.expr, ast.Star):
            srcs = scope.written
            if rc.expr.table is not None:
                srcs = [s for s in scope.written if s.name == rc.expr.table.lower()]
                if not srcs:
                    raise SchemaError(f"no such table: {rc.expr.table}")
            if not srcs:
                raise SQLError("no tables specified")
            for s in srcs:
                for c in s.columns:
                    if rc.expr.table is None and c.lower() in s.hidden:
                        continue
                    if c.lower() in s.star_hidden:
                        continue
                    out.append(ast.ResultColumn(ast.Column(s.name, c), None, c))
        else:
            out.append(rc)
    return out


def column_name(rc: ast.ResultColumn) -> str:
    """A result column's name: its alias, its column name, or its text."""
    if rc.alias is not None:
        return rc.alias
    if isinstance(rc.expr, ast.Column):
        return rc.expr.name
    return rc.text


def plain_slots(
    columns: list[ast.ResultColumn],
    scope: Scope,
    agg: AggMap | None,
    window_slots: dict[ast.WindowFunc, int],
) -> list[int] | None:
    """The row slots of the result columns when all are plain columns of this
    query or window values (negative slots, from the row's end: the projection
    is then an itemgetter), else None."""
    if agg is not None:
        return None
    slots = []
    for rc in columns:
        if type(rc.expr) is ast.WindowFunc and rc.expr in window_slots:
            slots.append(window_slots[rc.expr])
            continue
        if not isinstance(rc.expr, ast.Column):
            return None
        depth, slot, _, _ = scope.resolve(rc.expr)
        if depth != 0:
            return None
        slots.append(slot)
    return slots


def resolve_alias(
    g: ast.Expr, columns: list[ast.ResultColumn], aliases: dict[str, int]
) -> ast.Expr:
    """A GROUP BY term: a result column's position or alias means its expression."""
    if isinstance(g, ast.Literal) and type(g.value) is int:
        if not 1 <= g.value <= len(columns):
            raise SQLError(f"GROUP BY term out of range - should be between 1 and {len(columns)}")
        return columns[g.value - 1].expr
    if isinstance(g, ast.Column) and g.table is None and g.name.lower() in aliases:
        return columns[aliases[g.name.lower()]].expr
    return g


def aggregate(
    ec: ExprCompiler, agg: AggMap, scope: Scope
) -> Callable[[Iterator[Any]], Iterator[Any]]:
    """The aggregation step: rows -> one row per group (group keys, aggregate
    values, then the bare columns AggMap found, read from one row of the group)."""
    key_fns = [ec.compile(k, scope) for k in agg.keys]
    # GROUP BY under NOCASE / RTRIM: groups by the collation key; a group shows
    # the value of its first row (as SQLite's sorter does)
    keyed = _collated(agg.keys, scope)
    raw_fns = list(key_fns)
    for i, ck in keyed:
        key_fns[i] = _under(key_fns[i], ck)
    # (aggregate, argument, distinct, extra arguments); (None, None, ...) counts rows
    specs: list[tuple[Callable[..., Any] | None, Any, bool, Sequence[Fn]]] = []
    user = USER_FUNCTIONS.get()
    for a in agg.aggs:
        ufn = user.aggregate(a.name, len(a.args)) if user and not a.star else None
        if ufn is not None:  # an application's aggregate (Database.create_aggregate)
            if a.distinct and len(a.args) != 1:
                raise SQLError("DISTINCT aggregates must have exactly one argument")
            if any(contains_aggregate(x) for x in a.args):
                raise SQLError(f"misuse of aggregate function {a.name.lower()}()")
            compiled = tuple(ec.compile(x, scope) for x in a.args)
            arg = compiled[0] if len(compiled) == 1 else _tuple_of(compiled)
            specs.append((ufn, arg, a.distinct, ()))
            continue
        fn = AGG_FUNCS[a.name]
        if a.star:
            specs.append((None, None, False, ()))
            continue
        if a.name == "COUNT" and not a.args:
            specs.append((None, None, False, ()))
            continue
        if not a.args:
            raise SQLError(f"wrong number of arguments to function {a.name}()")
        if a.distinct and len(a.args) != 1:
            raise SQLError("DISTINCT aggregates must have exactly one argument")
        arity = AGG_ARITY.get(a.name)
        if a.name in ("GROUP_CONCAT", "STRING_AGG"):
            if len(a.args) > 2:
                raise SQLError(f"wrong number of arguments to function {a.name}()")
            extra_fns = [ec.compile(x, scope) for x in a.args[1:]]
        elif arity is not None:
            if len(a.args) != arity:
                raise SQLError(f"wrong number of arguments to function {a.name}()")
            extra_fns = []
        elif len(a.args) != 1:
            raise SQLError(f"wrong number of arguments to function {a.name}()")
        else:
            extra_fns = []
        for x in a.args:
            if contains_aggregate(x):
                raise SQLError(f"misuse of aggregate function {a.name}()")
        if arity is not None:
            arg = _tuple_of(tuple(ec.compile(x, scope) for x in a.args))
        else:
            arg = ec.compile(a.args[0], scope)
        specs.append((fn, arg, a.distinct, extra_fns))
    filters = [
        ec.compile(a.filter, scope, True) if a.filter is not None else None for a in agg.aggs
    ]
    bare_fns = [ec.compile(b, scope) for b in agg.bare]
    minmax_arg = None
    if len(specs) == 1 and agg.aggs[0].name in ("MIN", "MAX") and not agg.aggs[0].distinct:
        minmax_arg = specs[0][1]
    null_row = (None,) * scope.width
    nkeys = len(key_fns)
    grouped = nkeys > 0
    if nkeys == 1:
        kf0 = key_fns[0]
        keyf: Fn = kf0
    elif nkeys > 1:
        keyf = lambda r: tuple([f(r) for f in key_fns])  # noqa: E731
    sort_key = T.sort_key

    def finish(key: Any, grp: list[Any]) -> tuple[Any, ...]:
        out = list(key) if nkeys > 1 else ([key] if nkeys == 1 else [])
        for i, _ in keyed:
            out[i] = raw_fns[i](grp[0])
        for (fn, arg, distinct, extra), flt in zip(specs, filters):
            rows_in = grp if flt is None else [r for r in grp if flt(r)]
            if fn is None:
                out.append(len(rows_in))
                continue
            vals = list(map(arg, rows_in))
            if distinct:
                seen = set()
                dv = []
                for v in vals:
                    if v not in seen:
                        seen.add(v)
                        dv.append(v)
                vals = dv
            if extra:
                sep = extra[0](grp[0]) if grp else ","
                out.append(fn(vals, sep))
            else:
                out.append(fn(vals))
        # bare columns and subqueries read the group's first row, as SQLite
        # 3.40 does (SQLite calls it arbitrary; applications rely on it anyway);
        # a row of NULLs for the one group of an empty input; with a single
        # MIN() or MAX(), the row that holds that minimum or maximum
        last = grp[0] if grp else null_row
        if minmax_arg is not None and grp and bare_fns:
            best = out[nkeys]
            if best is not None:
                for row in grp:
                    v = minmax_arg(row)
                    if v is not None and T.compare(v, best) == 0:
                        last = row
                        break
        for b in bare_fns:
            out.append(b(last))
        return tuple(out)

    # count(*) alone (no other aggregate, no bare column): the rows are counted, not
    # kept; a row is freed as soon as it is counted (a cross join's millions of rows
    # kept in a list cost more in allocation and garbage collection than the join)
    count_only = not bare_fns and all(fn is None for fn, _, _, _ in specs)

    def run(rows: Iterator[Any]) -> Iterator[Any]:
        if not grouped:
            if count_only:
                yield (count_rows(rows),) * len(specs)
                return
            yield finish(None, list(rows))
            return
        groups: dict[Any, list[Any]] = {}
        new_group = groups.setdefault
        held = list(rows)
        # the keys computed by map (no Python frame per row when keyf is C, such as
        # an itemgetter), then one setdefault and append per row
        for k, r in zip(map(keyf, held), held):
            new_group(k, []).append(r)
        keys = list(groups)
        try:
            keys.sort() if nkeys == 1 else keys.sort(key=lambda k: tuple(sort_key(x) for x in k))
        except TypeError:
            keys.sort(key=sort_key)
        for k in keys:
            yield finish(k, groups[k])

    return run


def distinct_rows(
    rows: Iterator[tuple[Any, ...]], key: Fn | None = None
) -> Iterator[tuple[Any, ...]]:
    """rows without repeats (under key, when given), in first-seen order."""
    seen = set()
    for r in rows:
        k = r if key is None else key(r)
        if k not in seen:
            seen.add(k)
            yield r


def _tuple_of(fns: tuple[Fn, ...]) -> Fn:
    """The row function giving the tuple of fns' values (a multi-argument aggregate)."""
    return lambda r: tuple([f(r) for f in fns])


def having_aliases(
    node: Any, columns: list[ast.ResultColumn], aliases: dict[str, int], scope: Scope
) -> Any:
    """node (a HAVING expression) with each name that is no column of the FROM
    clause but a result column's alias replaced by that column's expression, as
    SQLite resolves HAVING (columns first, then the select list's aliases)."""
    if not aliases:
        return node
    if isinstance(node, ast.Column):
        if node.table is None and node.name.lower() in aliases:
            try:
                scope.resolve(node)
            except SchemaError:
                return columns[aliases[node.name.lower()]].expr
        return node
    if isinstance(node, (ast.Subquery, ast.Exists, ast.InSelect, ast.Select)):
        return node
    if isinstance(node, ast.Node):
        new = object.__new__(type(node))
        for k in type(node).__slots__:
            setattr(new, k, having_aliases(getattr(node, k), columns, aliases, scope))
        return new
    if isinstance(node, list):
        return [having_aliases(x, columns, aliases, scope) for x in node]
    if isinstance(node, tuple):
        return tuple(having_aliases(x, columns, aliases, scope) for x in node)
    return node


def having_to_where(planner: PlannerContext, core: ast.SelectCore) -> ast.SelectCore:
    """core with its HAVING terms that only test GROUP BY columns moved into WHERE,
    as SQLite's havingToWhere does: a term with no aggregate, subquery or COLLATE
    whose columns are all plain GROUP BY columns of tables that declare them
    BINARY holds for a group exactly when it holds for each of its rows, so it
    filters rows before they are grouped (and before a WHERE subquery runs)."""
    group_cols = [g for g in core.group_by if isinstance(g, ast.Column)]
    if not group_cols:
        return core
    # a name that is a result alias may mean the alias in GROUP BY and the column
    # in HAVING: such terms stay where they are
    alias_names = {rc.alias.lower() for rc in core.columns if rc.alias is not None}
    tables = []
    for _, item, _, _ in flatten_from(core.from_):
        if not isinstance(item, ast.TableRef):
            return core  # a subquery, view or table function: its collations unknown here
        table = planner.catalog.tables.get(item.name.lower())
        if table is None:
            return core  # a view or CTE name
        tables.append(table)

    def movable(node: Any) -> bool:
        if isinstance(node, (ast.Subquery, ast.Exists, ast.InSelect, ast.Collate)):
            return False
        if isinstance(node, (ast.WindowFunc, ast.Param)):
            return False
        if isinstance(node, ast.Column):
            name = node.name.lower()
            if name in alias_names or not any(node == g for g in group_cols):
                return False
            if not any(c.name.lower() == name for t in tables for c in t.columns):
                return False  # a rowid alias or an unknown name: left to HAVING
            return not any(
                c.collation and c.collation.upper() != "BINARY"
                for t in tables
                for c in t.columns
                if c.name.lower() == name
            )
        if isinstance(node, ast.Node):
            return all(movable(getattr(node, k)) for k in node.__slots__)
        if isinstance(node, (list, tuple)):
            return all(movable(x) for x in node)
        return True

    moved: list[ast.Expr] = []
    kept: list[ast.Expr] = []
    for c in split_and(core.having):
        has_column = any(True for _ in _columns_in(c))
        (moved if has_column and not contains_aggregate(c) and movable(c) else kept).append(c)
    if not moved:
        return core
    where = core.where
    for c in moved:
        where = c if where is None else ast.Binary("AND", where, c)
    having = None
    for c in kept:
        having = c if having is None else ast.Binary("AND", having, c)
    return ast.SelectCore(
        core.distinct,
        core.columns,
        core.from_,
        where,
        core.group_by,
        having,
        core.values,
        core.windows,
    )


def _columns_in(node: Any) -> Iterator[ast.Column]:
    if isinstance(node, ast.Column):
        yield node
    elif isinstance(node, ast.Node):
        for k in node.__slots__:
            yield from _columns_in(getattr(node, k))
    elif isinstance(node, (list, tuple)):
        for x in node:
            yield from _columns_in(x)
