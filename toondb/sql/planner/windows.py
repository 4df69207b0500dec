"""Planning the window functions of one SELECT core (the operator: sql/window.py).

``plan_windows`` finds every ``f(...) OVER ...`` in the result columns and the
ORDER BY (not inside subqueries, which plan their own), resolves named windows
(``WINDOW w AS (...)``, ``OVER w``, ``OVER (w ORDER BY ...)``) and compiles the
calls. Window values are appended to each row after its columns; the
expression compiler reads the j-th of n from the end (``row[j - n]``), so the
width of an aggregated row need not be known yet.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Callable

from toondb.errors import SQLError
from toondb.sql import ast
from toondb.sql.aggregate_map import AggMap, contains_aggregate
from toondb.sql.ast import K_WINDOW, kinds
from toondb.sql.collation import collation
from toondb.sql.expressions import ExprCompiler, collation_of
from toondb.sql.functions import AGG_ARITY, AGGREGATES
from toondb.sql.planner.common import sql_text
from toondb.sql.scope import Scope
from toondb.sql.window import WINDOW_ONLY, WindowCall, WindowSort, window_operator

_BOUND_RANK = {
    ast.UNBOUNDED_PRECEDING: 0,
    ast.PRECEDING: 1,
    ast.CURRENT_ROW: 2,
    ast.FOLLOWING: 3,
    ast.UNBOUNDED_FOLLOWING: 4,
}
DEFAULT_FRAME = ast.Frame("RANGE", (ast.UNBOUNDED_PRECEDING, None), (ast.CURRENT_ROW, None))


def find_windows(node: Any, out: list[ast.WindowFunc]) -> None:
    """Append the window calls in node (not in subqueries), each once."""
    if not kinds(node) & K_WINDOW:
        return
    if isinstance(node, ast.WindowFunc):
        if node not in out:
            out.append(node)
        for a in node.func.args:  # sum(x) OVER () inside another's argument
            find_windows(a, out)
        return
    if isinstance(node, (ast.Select, ast.SelectCore)):
        return
    if isinstance(node, ast.Node):
        for k in node.__slots__:
            find_windows(getattr(node, k), out)
    elif isinstance(node, (list, tuple)):
        for x in node:
            find_windows(x, out)


def resolve_spec(spec: ast.WindowSpec | str, named: dict[str, ast.WindowSpec]) -> ast.WindowSpec:
    """A window with its base window's PARTITION BY / ORDER BY filled in."""
    if isinstance(spec, str):
        base = named.get(spec.lower())
        if base is None:
            raise SQLError(f"no such window: {spec}")
        return resolve_spec(base, named)
    if spec.base is None:
        return spec
    base = named.get(spec.base.lower())
    if base is None:
        raise SQLError(f"no such window: {spec.base}")
    base = resolve_spec(base, named)
    if spec.partition_by:
        raise SQLError(f"cannot override PARTITION clause of window: {spec.base}")
    if spec.order_by and base.order_by:
        raise SQLError(f"cannot override ORDER BY clause of window: {spec.base}")
    if base.frame is not None:
        raise SQLError(f"cannot override frame specification of window: {spec.base}")
    return ast.WindowSpec(None, base.partition_by, spec.order_by or base.order_by, spec.frame)


def check_call(f: ast.Func) -> None:
    name = f.name
    nargs = len(f.args)
    if name in WINDOW_ONLY:
        lo, hi = WINDOW_ONLY[name]
        if not lo <= nargs <= hi:
            raise SQLError(f"wrong number of arguments to function {name.lower()}()")
        if f.filter is not None:
            raise SQLError("FILTER clause may only be used with aggregate window functions")
        return
    if name not in AGGREGATES:
        raise SQLError(f"{name.lower()}() may not be used as a window function")
    want = AGG_ARITY.get(name)
    if want is not None and nargs != want:
        raise SQLError(f"wrong number of arguments to function {name.lower()}()")
    if name in ("GROUP_CONCAT", "STRING_AGG"):
        if not 1 <= nargs <= 2:
            raise SQLError(f"wrong number of arguments to function {name.lower()}()")
    elif want is None and not f.star and nargs != 1 and not (name == "COUNT" and nargs == 0):
        raise SQLError(f"wrong number of arguments to function {name.lower()}()")
    if f.distinct:
        raise SQLError("DISTINCT is not supported for window functions")


def plan_windows(
    ec: ExprCompiler,
    core: ast.SelectCore,
    columns: list[ast.ResultColumn],
    order_by: list[ast.OrderItem],
    scope: Scope,
    agg: AggMap | None,
) -> tuple[Callable[[Any], Iterator[Any]], dict[ast.WindowFunc, int], list[str]] | None:
    """(operator, window call -> negative row index, EXPLAIN lines), or None."""
    found: list[ast.WindowFunc] = []
    find_windows([rc.expr for rc in columns], found)
    find_windows([o.expr for o in order_by], found)
    if not found:
        return None
    for clause in (core.where, core.group_by, core.having):
        inner: list[ast.WindowFunc] = []
        find_windows(clause, inner)
        if inner:
            raise SQLError(f"misuse of window function {inner[0].func.name.lower()}()")
    named: dict[str, ast.WindowSpec] = {}
    for name, spec in core.windows:
        named[name.lower()] = spec
    n = len(found)
    slots = {w: j - n for j, w in enumerate(found)}
    sorts: dict[Any, WindowSort] = {}
    lines = []
    for j, w in enumerate(found):
        f = w.func
        check_call(f)
        for x in f.args:
            if contains_aggregate(x) and agg is None:
                raise SQLError(f"misuse of aggregate function {f.name.lower()}()")
        spec = resolve_spec(w.window, named)
        frame = spec.frame or DEFAULT_FRAME
        if _BOUND_RANK[frame.start[0]] > _BOUND_RANK[frame.end[0]] or (
            frame.start[0] == ast.UNBOUNDED_FOLLOWING or frame.end[0] == ast.UNBOUNDED_PRECEDING
        ):
            raise SQLError("unsupported frame specification")
        if (
            frame.unit == "RANGE"
            and (frame.start[1] is not None or frame.end[1] is not None)
            and len(spec.order_by) != 1
        ):
            raise SQLError("RANGE with offset PRECEDING/FOLLOWING requires one ORDER BY expression")
        key = (tuple(spec.partition_by), tuple(spec.order_by))
        ws = sorts.get(key)
        if ws is None:
            ws = WindowSort(
                [_keyed(ec.compile(p, scope, False, agg), p, scope) for p in spec.partition_by],
                [
                    (
                        _keyed(ec.compile(o.expr, scope, False, agg), o.expr, scope),
                        o.desc,
                        o.nulls_first,
                    )
                    for o in spec.order_by
                ],
            )
            sorts[key] = ws
            lines.append(
                "WINDOW"
                + (
                    " PARTITION BY " + ", ".join(map(sql_text, spec.partition_by))
                    if spec.partition_by
                    else ""
                )
                + (
                    " ORDER BY " + ", ".join(sql_text(o.expr) for o in spec.order_by)
                    if spec.order_by
                    else ""
                )
            )
        args = [ec.compile(a, scope, False, agg) for a in f.args]
        flt = ec.compile(f.filter, scope, True, agg) if f.filter is not None else None
        offs = tuple(
            ec.compile(b[1], scope, False, agg) if b[1] is not None else None
            for b in (frame.start, frame.end)
        )
        call = WindowCall(f.name, args, f.star, f.distinct, flt, frame, offs)  # type: ignore[arg-type]
        call.slot = j
        ws.calls.append(call)
    return window_operator(list(sorts.values()), n), slots, lines


def _keyed(f: Callable[[Any], Any], e: ast.Expr, scope: Scope) -> Callable[[Any], Any]:
    """f, its value under e's collation key when that is not BINARY."""
    coll = collation_of(e, scope)
    if coll is None or coll == "BINARY":
        return f
    key = collation(coll)[0]
    return lambda r: key(f(r))
