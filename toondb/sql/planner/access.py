"""Access paths: how one table of a FROM clause is read (planner rules 2, 4 and 5).

``choose_access`` picks, from the conjuncts that name the table, a rowid lookup,
a rowid IN list, an index probe (equality on its leading columns, then a range or
an IN list), a rowid range, an index range, or a scan in a requested order; the
conjuncts it enforces exactly are the access's ``consumed``. ``c_filter`` finds
the one comparison the C row decoder may test itself while scanning
(``executor.Access.cfilter``).
"""

from __future__ import annotations

from typing import Any

from toondb.errors import SchemaError, SQLError
from toondb.sql import ast
from toondb.sql import types as T
from toondb.sql.catalog import TableInfo
from toondb.sql.collation import collation
from toondb.sql.executor import Access, FullScan, IndexScan, RowidEq, RowidIn, RowidRange
from toondb.sql.expressions import ExprCompiler, collation_of, comparison_collation
from toondb.sql.planner.common import Fn, PlannerContext, refs, sql_text
from toondb.sql.scope import Scope


def probe_columns(
    conj: ast.Expr, scope: Scope, k: int, allowed: set[int], useful: set[Any] | None = None
) -> list[tuple[Any, str, Any, ast.Expr, str]]:
    """Sargable forms of conj for source k: (column index or 'rowid', op, expr(s),
    the column's side, the comparison's collation). An index column serves the
    comparison only under the same collation (SQLite's rule, where.c). useful:
    the columns a probe can serve (the rowid, indexed columns); None: any."""
    src = scope.sources[k]

    def col_of(e: ast.Expr) -> Any:
        c = _col_of(e)
        return c if useful is None or c in useful else None

    def _col_of(e: ast.Expr) -> Any:
        while isinstance(e, ast.Collate):  # x COLLATE NOCASE = ... probes x
            e = e.expr
        if not isinstance(e, ast.Column):
            return None
        try:
            depth, slot, _, s = scope.resolve(e)
        except SchemaError:
            return None
        if depth != 0 or s is not src:
            return None
        if src.table is not None and slot == src.rowid_slot():
            return "rowid"
        ci = slot - src.offset
        if src.table is not None and src.table.rowid_col == ci:
            return "rowid"
        return ci

    def ok_probe(e: ast.Expr) -> bool:
        r = refs(e, scope)
        return r is not None and r <= allowed and k not in r

    def coll(*operands: ast.Expr) -> str:  # as the expression compiler decides it
        return comparison_collation(list(operands), scope) or "BINARY"

    flip = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "="}
    if isinstance(conj, ast.Binary) and conj.op in flip:
        c = col_of(conj.left)
        if c is not None and ok_probe(conj.right):
            return [(c, conj.op, conj.right, conj.left, coll(conj.left, conj.right))]
        c = col_of(conj.right)
        if c is not None and ok_probe(conj.left):
            return [(c, flip[conj.op], conj.left, conj.right, coll(conj.left, conj.right))]
    if isinstance(conj, ast.Between) and not conj.negated:
        c = col_of(conj.expr)
        if c is not None and ok_probe(conj.low) and ok_probe(conj.high):
            return [
                (c, ">=", conj.low, conj.expr, coll(conj.expr, conj.low)),
                (c, "<=", conj.high, conj.expr, coll(conj.expr, conj.high)),
            ]
    if isinstance(conj, ast.InList) and not conj.negated and conj.items:
        c = col_of(conj.expr)
        if c is not None and all(ok_probe(i) for i in conj.items):
            return [(c, "IN", conj.items, conj.expr, coll(conj.expr))]
    return []


def probe_fn(
    ec: ExprCompiler, colexpr: ast.Expr, probe: ast.Expr, scope: Scope, col_aff: str | None
) -> Fn | None:
    """The probe's value as the column compares it, or None if a lookup cannot
    honour the comparison's affinity (the column side would be converted)."""
    lc, rc = T.comparison_affinity(col_aff, ec.affinity(probe, scope))
    if lc is not None:
        return None
    f = ec.compile(probe, scope)
    conv = T.converter(rc)
    if conv is None:
        return f
    return lambda r: None if (v := f(r)) is None else conv(v)


def choose_access(
    planner: PlannerContext,
    scope: Scope,
    k: int,
    conjs: list[ast.Expr],
    allowed: set[int],
    order: tuple[Any, bool, str] | None = None,
) -> tuple[Access | None, bool, bool]:
    """The best access path for source k given conjuncts; (access, depends on
    outer row, satisfies order). ``INDEXED BY name`` (src.indexed) allows that
    index only, and fails as SQLite does ("no query solution") when the index
    is not there; one that bounds nothing is read whole (as SQLite reads it);
    ``NOT INDEXED`` allows no index."""
    src = scope.sources[k]
    hint = getattr(src, "indexed", None)
    if hint:
        found = _choose_access(planner, scope, k, conjs, allowed, order, hint)
        if isinstance(found[0], IndexScan):
            return found
        # as SQLite: the whole named index, every conjunct a filter
        ix = [ix for ix in src.table.indexes if ix.name.lower() == hint.lower()]
        if not ix:
            raise SQLError("no query solution")
        return IndexScan(planner.ctx, src.table, ix[0], [], None, None, ""), False, False
    return _choose_access(planner, scope, k, conjs, allowed, order, hint)


def _choose_access(
    planner: PlannerContext,
    scope: Scope,
    k: int,
    conjs: list[ast.Expr],
    allowed: set[int],
    order: tuple[Any, bool, str] | None,
    hint: str | None,
) -> tuple[Access | None, bool, bool]:
    src = scope.sources[k]
    table: TableInfo = src.table
    indexes = table.indexes
    if hint is not None:
        indexes = [ix for ix in indexes if hint and ix.name.lower() == hint.lower()]
    ctx = planner.ctx
    probes: list[tuple[Any, str, Any, ast.Expr, bool, ast.Expr, str]] = []
    # (only the rowid and indexed columns: the paths below use no other probe)
    useful: set[Any] = {"rowid", *(ci for ix in indexes for ci in ix.col_idx)}
    for c in conjs:
        for col, op, e, colexpr, coll in probe_columns(c, scope, k, allowed, useful):
            dep = False
            es = e if isinstance(e, list) else [e]
            for x in es:
                r = refs(x, scope)
                if r:
                    dep = True
            probes.append((col, op, e, colexpr, dep, c, coll))

    def aff_of(col: Any) -> str | None:
        return T.INTEGER if col == "rowid" else table.affinities[col]

    def fn(col: Any, e: ast.Expr, colexpr: ast.Expr, coll: str = "BINARY") -> Fn | None:
        f = probe_fn(planner.ec, colexpr, e, scope, aff_of(col))
        if f is None or coll == "BINARY":
            return f
        key = collation(coll)[0]  # the index holds collation keys (catalog invariant 7)
        return lambda r: key(f(r))

    if hint:  # INDEXED BY: no rowid path
        probes = [p for p in probes if p[0] != "rowid"]
    # 1. rowid equality, IN
    for col, op, e, colexpr, dep, conj, _ in probes:
        if col == "rowid" and op == "=":
            f = fn(col, e, colexpr)
            if f is not None:
                acc: Access = RowidEq(ctx, table, f, f"rowid={sql_text(e)}")
                acc.consumed = [conj]
                return acc, dep, False
    for col, op, e, colexpr, dep, conj, _ in probes:
        if col == "rowid" and op == "IN":
            fs = [fn(col, x, colexpr) for x in e]
            if all(f is not None for f in fs):
                acc = RowidIn(ctx, table, fs, f"rowid IN ({len(fs)} values)")  # type: ignore[arg-type]
                acc.consumed = [conj]
                return acc, dep, False
    # 2. indexes
    best = None
    for ix in indexes:
        used: list[ast.Expr] = []
        eqs: list[Fn] = []
        texts = []
        deps = False
        for ci, ic in zip(ix.col_idx, ix.collations):
            hit = None
            for col, op, e, colexpr, dep, conj, coll in probes:
                if col == ci and op == "=" and coll == ic:
                    f = fn(col, e, colexpr, ic)
                    if f is not None:
                        hit = (f, e, dep, conj)
                        break
            if hit is None:
                break
            eqs.append(hit[0])
            used.append(hit[3])
            texts.append(f"{table.columns[ci].name}={sql_text(hit[1])}")
            deps = deps or hit[2]
        lo = hi = None
        in_probes = None
        if len(eqs) < len(ix.col_idx):
            ci = ix.col_idx[len(eqs)]
            ic = ix.collations[len(eqs)]
            for col, op, e, colexpr, dep, conj, coll in probes:
                if col != ci or coll != ic:
                    continue
                if op in (">", ">=") and lo is None:
                    f = fn(col, e, colexpr, ic)
                    if f is not None:
                        lo = (f, op == ">=")
                        texts.append(f"{table.columns[ci].name}{op}{sql_text(e)}")
                        deps = deps or dep
                elif op in ("<", "<=") and hi is None:
                    f = fn(col, e, colexpr, ic)
                    if f is not None:
                        hi = (f, op == "<=")
                        texts.append(f"{table.columns[ci].name}{op}{sql_text(e)}")
                        deps = deps or dep
                elif op == "IN" and not eqs and in_probes is None and lo is None and hi is None:
                    fs = [fn(col, x, colexpr, ic) for x in e]
                    if all(f is not None for f in fs):
                        in_probes = [f for f in fs if f is not None]  # all are
                        used.append(conj)
                        texts.append(f"{table.columns[ci].name} IN ({len(fs)} values)")
                        deps = deps or dep
        if not eqs and lo is None and hi is None and in_probes is None:
            continue
        full_unique = ix.unique and len(eqs) == len(ix.col_idx)
        score = (
            len(eqs) + (0.5 if (lo or hi or in_probes) else 0),
            full_unique,
            -len(ix.col_idx),
        )
        if best is None or score > best[0]:
            best = (score, ix, eqs, lo, hi, in_probes, " AND ".join(texts), deps, used)
    if best is not None and (best[0][0] >= 1 or not any(p[0] == "rowid" for p in probes)):
        _, ix, eqs, lo, hi, in_probes, text, deps, used = best
        sat = in_index_order(ix, len(eqs), order)
        desc = sat and order is not None and order[1]
        if in_probes is not None:
            acc = IndexScan(ctx, table, ix, [], None, None, text, desc, in_probes=in_probes)
        else:
            acc = IndexScan(ctx, table, ix, eqs, lo, hi, text, desc)
        acc.consumed = used
        return acc, deps, sat
    # 3. rowid range
    lo_f = hi_f = None
    texts = []
    deps = False
    for col, op, e, colexpr, dep, _conj, _ in probes:
        if col != "rowid":
            continue
        if op in (">", ">=") and lo_f is None:
            lo_f = fn(col, e, colexpr)
            if lo_f is not None:
                texts.append(f"rowid{op}{sql_text(e)}")
                deps = deps or dep
        elif op in ("<", "<=") and hi_f is None:
            hi_f = fn(col, e, colexpr)
            if hi_f is not None:
                texts.append(f"rowid{op}{sql_text(e)}")
                deps = deps or dep
    if lo_f is not None or hi_f is not None:
        reverse = order is not None and order[0] == "rowid" and order[1]
        sat = order is not None and order[0] == "rowid"
        return RowidRange(ctx, table, lo_f, hi_f, " AND ".join(texts), reverse), deps, sat
    if best is not None:
        _, ix, eqs, lo, hi, in_probes, text, deps, used = best
        sat = in_index_order(ix, len(eqs), order)
        desc = sat and order is not None and order[1]
        acc = IndexScan(ctx, table, ix, eqs, lo, hi, text, desc)
        acc.consumed = used
        return acc, deps, sat
    # 4. a scan in the requested order
    if order is not None:
        col, desc, coll = order
        if col == "rowid":
            return FullScan(ctx, table, desc), False, True
        for ix in indexes:
            if ix.col_idx and ix.col_idx[0] == col and ix.collations[0] == coll:
                return IndexScan(ctx, table, ix, [], None, None, "", reverse=desc), False, True
    return None, False, False


def in_index_order(ix: Any, neq: int, order: tuple[Any, ...] | None) -> bool:
    """Whether a probe of index ix with equalities on its first neq columns (and a
    range or an IN list on the next, whose values it reads in ascending key
    order) yields its rows in the requested order: the next column is the ORDER BY
    column (read backwards for DESC; equal values come in rowid order, reversed
    for DESC, as SQLite's index scan gives them)."""
    return order is not None and neq < len(ix.col_idx) and order[0] == ix.col_idx[neq]


C_OPS = {"<": 0, "<=": 1, ">": 2, ">=": 3, "=": 4, "!=": 5}
FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "=", "!=": "!="}


def c_filter(ec: ExprCompiler, c: ast.Expr, shifted: Scope) -> Any:
    """(column, op code, value function, predicate) when c is `column op ?`,
    `column op constant` or `column op outer.column` (a correlated subquery's
    column of an enclosing query: one value per run of the subquery) with no
    affinity conversion on the column's side (the C decoder then tests that
    column itself), else None."""
    if not (isinstance(c, ast.Binary) and c.op in C_OPS):
        return None
    col, other, op = c.left, c.right, c.op
    outer = _outer_column(other, shifted)
    if not isinstance(col, ast.Column) or (
        outer is None and not isinstance(other, (ast.Param, ast.Literal))
    ):
        col, other, op = c.right, c.left, FLIP[c.op]
        outer = _outer_column(other, shifted)
    if not isinstance(col, ast.Column) or (
        outer is None and not isinstance(other, (ast.Param, ast.Literal))
    ):
        return None
    try:
        depth, slot, _, src = shifted.resolve(col)
    except SchemaError:
        return None
    if depth != 0 or src is None or src.table is None or slot >= len(src.columns):
        return None
    if (src.table.columns[slot].collation or "BINARY") != "BINARY":
        return None  # the C decoder compares BINARY
    if outer is not None and comparison_collation([c.left, c.right], shifted) is not None:
        return None  # (the outer column's collation, when it is on the left)
    lconv, rconv = ec.comparison_converters(col, other, shifted)
    if lconv is not None:
        return None
    pred = ec.compile(c, shifted, True)  # (marks the scope correlated for an outer column)
    if outer is not None:
        cell, oslot = outer
        if rconv is not None:
            value = lambda: rconv(cell[0][oslot])  # noqa: E731
        else:
            value = lambda: cell[0][oslot]  # noqa: E731
    elif isinstance(other, ast.Param):
        P, i = ec.P, other.index
        value = (lambda: rconv(P[i])) if rconv is not None else (lambda: P[i])
    else:
        assert isinstance(other, ast.Literal)
        v = other.value
        if type(v) is int and v > T.I64_MAX:
            v = float(v)
        cv = rconv(v) if rconv is not None and v is not None else v
        value = lambda: cv  # noqa: E731
    return (slot, C_OPS[op], value, pred)


def _outer_column(e: ast.Expr, scope: Scope) -> tuple[list[Any], int] | None:
    """(the row cell of the enclosing query, slot) when e is a column of an
    enclosing query's scope (not of scope itself), else None."""
    if not isinstance(e, ast.Column):
        return None
    try:
        depth, slot, _, _ = scope.resolve(e)
    except SchemaError:
        return None
    if depth == 0:
        return None
    s: Scope = scope
    for _ in range(depth):
        s = s.parent  # type: ignore[assignment]
    return s.cell, slot


def order_column(order: tuple[ast.Expr, bool], scope: Scope) -> tuple[Any, bool, str] | None:
    """The ORDER BY term as (column index or 'rowid', descending, collation) when
    it is a column of a table of this scope, maybe under COLLATE (a scan of an
    index under that collation might deliver that order), else None."""
    expr, desc = order
    coll = collation_of(expr, scope) or "BINARY"
    while isinstance(expr, ast.Collate):
        expr = expr.expr
    if not isinstance(expr, ast.Column):
        return None
    try:
        depth, slot, _, src = scope.resolve(expr)
    except SchemaError:
        return None
    if depth != 0 or src is None or src.table is None:
        return None
    if slot == src.rowid_slot() or src.table.rowid_col == slot - src.offset:
        return ("rowid", desc, coll)
    return (slot - src.offset, desc, coll)
