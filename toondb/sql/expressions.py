"""Compiling expressions to Python closures, once per statement.

``ExprCompiler.compile(node, scope)`` returns ``f(row) -> value``: the row is the
flat tuple an operator produces (the columns of every table joined so far, each
table's rowid after its columns). Column positions, affinities, constants and
the choice of comparison are all settled here, so evaluating a row runs no
dispatch on the AST. Parameters are read from the statement's parameter list
``P`` (filled before each execution); a correlated subquery reads the outer
row from its scope's cell.

Conditions (``cond=True``) return True, False or None (NULL); values never are
Python bools (a comparison used as a value gives 1 or 0, as in SQLite).
"""

from __future__ import annotations

import operator
import re
from operator import itemgetter
from typing import Any, Callable

from toondb.errors import SchemaError, SQLError
from toondb.sql import ast
from toondb.sql import functions as F
from toondb.sql import types as T
from toondb.sql.aggregate_map import AggMap, InValues, contains_aggregate
from toondb.sql.ast import K_COLLATE, kinds
from toondb.sql.collation import collation
from toondb.sql.like import like_regex
from toondb.sql.scope import Scope
from toondb.sql.user_functions import USER_FUNCTIONS
from toondb.sql.window import WINDOW_ONLY

Fn = Callable[[Any], Any]

PREDICATES = (ast.Like, ast.Between, ast.InList, ast.InSelect, ast.IsNull, ast.Exists)
CMP_OPS = ("=", "!=", "<", "<=", ">", ">=")
_PREDICATE_TYPES = frozenset(PREDICATES)
_PREDICATE_OPS = frozenset(CMP_OPS + ("AND", "OR", "IS", "ISNOT"))

#: the arithmetic operators (SQLite's rules: types.py); + - * of two Python
#: numbers are tried as Python's first (_PY_ARITH), their overflow checked
_ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": T.add,
    "-": T.sub,
    "*": T.mul,
    "/": T.div,
    "%": T.mod,
    "&": T.bit_and,
    "|": T.bit_or,
    "<<": T.shift_left,
    ">>": T.shift_right,
}
_PY_ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
}
#: comparisons of two values of one type: the operator module's (C functions,
#: no Python frame per call); of others, T.compare's result against 0
_PY_CMP: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_CMP_RESULT: dict[str, Callable[[int], bool]] = {
    "=": lambda c: c == 0,
    "!=": lambda c: c != 0,
    "<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
    ">": lambda c: c > 0,
    ">=": lambda c: c >= 0,
}


class CollateKey(ast.Expr):
    """Internal: expr's value under a collation's key (collation.py), for a
    comparison, IN or BETWEEN whose collation is not BINARY; its affinity is expr's."""

    __slots__ = ("expr", "collation")

    def __init__(self, expr: ast.Expr, collation: str) -> None:
        self.expr = expr
        self.collation = collation


def collation_of(node: ast.Expr, scope: Scope | None) -> str | None:
    """The collation an operand brings to a comparison (datatype3 7.1): an
    explicit COLLATE, else a table column's collation (BINARY when it declares
    none: a column on the left decides even then), else None. A column under
    unary + or CAST is still the column (SQLite's sqlite3ExprCollSeq)."""
    while (isinstance(node, ast.Unary) and node.op == "+") or isinstance(node, ast.Cast):
        node = node.operand if isinstance(node, ast.Unary) else node.expr
    if isinstance(node, ast.Collate):
        return node.collation.upper()
    if not isinstance(node, ast.Column):
        return explicit_collation(node)
    if scope is not None:
        try:
            depth, slot, _, src = scope.resolve(node)
        except SchemaError:
            return None
        if src is None:
            return None
        i = slot - src.offset
        if src.table is None:
            colls = src.collations
            if colls is None or not 0 <= i < len(colls):
                return None
            return colls[i] or "BINARY"
        if 0 <= i < len(src.table.columns):
            c = src.table.columns[i].collation
            return c.upper() if c else "BINARY"
    return None


def explicit_collation(node: Any) -> str | None:
    """The collation of the first COLLATE operator inside node, looking as SQLite's
    sqlite3ExprCollSeq does (an explicit COLLATE marks every expression above it,
    EP_Collate): the left operand first, then the others in order, never into a
    subquery; None when node holds no COLLATE."""
    if not kinds(node) & K_COLLATE:
        return None
    if isinstance(node, ast.Collate):
        return node.collation.upper()
    if isinstance(node, (ast.Select, ast.SelectCore, ast.Subquery, ast.Exists)):
        return None
    if isinstance(node, ast.Node):
        for name in type(node).__slots__:
            found = explicit_collation(getattr(node, name))
            if found is not None:
                return found
    elif isinstance(node, (list, tuple)):
        for x in node:
            found = explicit_collation(x)
            if found is not None:
                return found
    return None


def comparison_collation(operands: list[ast.Expr], scope: Scope | None) -> str | None:
    """The collation of a comparison: the first explicit COLLATE in the operands
    (left first, anywhere inside each: sqlite3BinaryCompareCollSeq), else the
    first column's; None when it is BINARY."""
    found = None
    for e in operands:
        found = explicit_collation(e)
        if found is not None:
            break
    if found is None:
        for e in operands:
            found = collation_of(e, scope)
            if found is not None:
                break
    return None if found in (None, "BINARY") else found


def _call(fn: Callable[..., Any], args: list[Fn]) -> Fn:
    """fn applied to the values of args, per row."""
    if not args:
        return lambda r: fn()
    if len(args) == 1:
        a0 = args[0]
        return lambda r: fn(a0(r))
    return lambda r: fn(*[a(r) for a in args])


def _as_int(v: bool | None) -> int | None:
    return None if v is None else (1 if v else 0)


class ExprCompiler:
    """Compiles expressions of one statement. planner supplies subquery plans."""

    def __init__(self, params: list[Any], planner: Any) -> None:
        self.P = params
        self.planner = planner
        # the window calls of the SELECT core being compiled -> their (negative)
        # slot in its rows (planner/windows.py); set per core by select_core
        self.window_slots: dict[ast.WindowFunc, int] = {}

    # ---------------------------------------------------------- affinity

    def affinity(self, node: ast.Expr, scope: Scope | None) -> str | None:
        if isinstance(node, ast.Column) and scope is not None:
            try:
                return scope.resolve(node)[2]
            except SchemaError:
                return None
        if isinstance(node, ast.Cast):
            return T.affinity_of(node.type_name)
        if isinstance(node, (ast.Collate, CollateKey)):
            return self.affinity(node.expr, scope)
        if isinstance(node, ast.Subquery):
            core = node.select.cores[0]
            if core.columns and not isinstance(core.columns[0].expr, ast.Star):
                inner = self.planner.scope_for_affinity(core, scope)
                if inner is not None:
                    return self.affinity(core.columns[0].expr, inner)
        return None

    # ---------------------------------------------------------- constants

    def constant(self, node: ast.Expr) -> tuple[bool, Any]:
        """(True, value) when node is a constant (literal, or unary minus of one)."""
        if isinstance(node, ast.Literal):
            v = node.value
            if type(v) is int and v > T.I64_MAX:
                v = float(v)
            return True, v
        if isinstance(node, ast.Unary) and node.op == "-" and isinstance(node.operand, ast.Literal):
            v = node.operand.value
            if type(v) in (int, float):
                return True, T.neg(v)
        return False, None

    # ---------------------------------------------------------- compile

    def compile(
        self,
        node: ast.Expr,
        scope: Scope | None,
        cond: bool = False,
        agg: AggMap | None = None,
    ) -> Fn:
        if type(node) is ast.WindowFunc:
            wslot = self.window_slots.get(node)
            if wslot is None:
                raise SQLError(f"misuse of window function {node.func.name.lower()}()")
            f: Fn = itemgetter(wslot)
            return self._cond(f) if cond else f
        if agg is not None:
            slot = agg.slot_of(node)
            if slot is not None:
                f = itemgetter(slot)
                return self._cond(f) if cond else f
            if isinstance(node, ast.Func) and F.is_aggregate_call(
                node.name, len(node.args), node.star
            ):
                slot = agg.add_agg(node)
                f = itemgetter(slot)
                return self._cond(f) if cond else f
            if (
                isinstance(node, ast.Column)
                or isinstance(node, (ast.Subquery, ast.Exists))
                or (isinstance(node, ast.InSelect) and not contains_aggregate(node.expr))
            ):
                # a bare column, or a subquery (which may read the outer row):
                # evaluated on the group's last row, as SQLite does
                agg.add_bare(node)
                idx = agg.bare.index(node)
                holder = agg  # the final slot is known once every expression is compiled

                def bare(r: Any, holder: AggMap = holder, idx: int = idx) -> Any:
                    return r[len(holder.keys) + len(holder.aggs) + idx]

                return self._cond(bare) if cond else bare
        f = self._compile(node, scope, cond, agg)
        return f

    def _cond(self, f: Fn) -> Fn:
        truth = T.truth

        def c(r: Any) -> Any:
            return truth(f(r))

        return c

    def _compile(self, node: ast.Expr, scope: Scope | None, cond: bool, agg: AggMap | None) -> Fn:
        tp = type(node)
        if (
            (tp is ast.Binary and node.op in _PREDICATE_OPS)  # type: ignore[attr-defined]
            or tp in _PREDICATE_TYPES
            or (tp is ast.Unary and node.op == "NOT")  # type: ignore[attr-defined]
        ):
            f = self._predicate(node, scope, agg)
            if cond:
                return f

            def as_value(r: Any) -> Any:
                v = f(r)
                return None if v is None else (1 if v else 0)

            return as_value
        build = _VALUE_BUILDERS.get(tp)
        if build is None:
            raise SQLError(f"unsupported expression {tp.__name__}")
        f = build(self, node, scope, agg)
        return self._cond(f) if cond else f

    def sub(self, node: ast.Expr, scope: Scope | None, agg: AggMap | None) -> Fn:
        return self.compile(node, scope, False, agg)

    # ---------------------------------------------------------- values

    def _literal(self, node: ast.Literal, scope: Scope | None, agg: AggMap | None) -> Fn:
        v = node.value
        if type(v) is int and v > T.I64_MAX:
            v = float(v)
        return lambda r: v

    def _param(self, node: ast.Param, scope: Scope | None, agg: AggMap | None) -> Fn:
        P, i = self.P, node.index
        return lambda r: P[i]

    def _column(self, node: ast.Column, scope: Scope | None, agg: AggMap | None) -> Fn:
        if scope is None:
            raise SchemaError(f"no such column: {node.name}")
        depth, slot, _, _ = scope.resolve(node)
        if depth == 0:
            return itemgetter(slot)
        s: Scope = scope
        for _ in range(depth):
            s.corr[0] = True
            s = s.parent  # type: ignore[assignment]
        cell = s.cell
        return lambda r: cell[0][slot]

    def _star(self, node: ast.Star, scope: Scope | None, agg: AggMap | None) -> Fn:
        raise SQLError("'*' is only allowed in a select list or COUNT(*)")

    def _unary(self, node: ast.Unary, scope: Scope | None, agg: AggMap | None) -> Fn:
        f = self.sub(node.operand, scope, agg)
        if node.op == "-":
            ok, c = self.constant(node)
            if ok:
                return lambda r: c
            neg = T.neg
            return lambda r: neg(f(r))
        if node.op == "+":
            return f
        if node.op == "~":
            bn = T.bit_not
            return lambda r: bn(f(r))
        raise SQLError("unsupported expression Unary")

    def _collate(self, node: ast.Collate, scope: Scope | None, agg: AggMap | None) -> Fn:
        return self.sub(node.expr, scope, agg)

    def _collate_key(self, node: CollateKey, scope: Scope | None, agg: AggMap | None) -> Fn:
        f = self.sub(node.expr, scope, agg)
        key = collation(node.collation)[0]
        return lambda r: key(f(r))

    def _cast(self, node: ast.Cast, scope: Scope | None, agg: AggMap | None) -> Fn:
        f = self.sub(node.expr, scope, agg)
        tn = node.type_name
        cast = T.cast
        return lambda r: cast(f(r), tn)

    def _subquery_value(self, node: ast.Subquery, scope: Scope | None, agg: AggMap | None) -> Fn:
        return self._scalar_subquery(node, scope)

    def _in_values(self, node: InValues, scope: Scope | None, agg: AggMap | None) -> Fn:
        return self._in_select_values(node.node, scope)[0]

    def _arith(self, node: ast.Binary, scope: Scope | None, agg: AggMap | None) -> Fn:
        op = node.op
        lf = self.sub(node.left, scope, agg)
        rf = self.sub(node.right, scope, agg)
        if op == "||":
            concat = T.concat
            return lambda r: concat(lf(r), rf(r))
        fn = _ARITH.get(op)
        if fn is None:
            raise SQLError(f"unsupported operator {op}")
        if op in ("+", "-", "*"):
            I64_MIN, I64_MAX = T.I64_MIN, T.I64_MAX
            pyop = _PY_ARITH[op]
            slow = fn

            def arith(r: Any) -> Any:
                a = lf(r)
                b = rf(r)
                ta = type(a)
                if (ta is int or ta is float) and type(b) in (int, float):
                    v = pyop(a, b)
                    if type(v) is int and not I64_MIN <= v <= I64_MAX:
                        return slow(a, b)
                    return v
                return slow(a, b)

            return arith
        return lambda r: fn(lf(r), rf(r))

    def _case(self, node: ast.Case, scope: Scope | None, agg: AggMap | None) -> Fn:
        results = [self.sub(res, scope, agg) for _, res in node.whens]
        else_ = self.sub(node.else_, scope, agg) if node.else_ is not None else (lambda r: None)
        if node.operand is not None:
            base = self.sub(node.operand, scope, agg)
            whens = [self.sub(w, scope, agg) for w, _ in node.whens]
            # CASE x WHEN y compares as x = y does, affinities included
            convs = [self.comparison_converters(node.operand, w, scope) for w, _ in node.whens]
            triples = list(zip(whens, results, convs))
            compare = T.compare

            def case_eq(r: Any) -> Any:
                v = base(r)
                if v is not None:
                    for w, res, (lc, rc) in triples:
                        x = w(r)
                        if x is None:
                            continue
                        a = lc(v) if lc is not None else v
                        b = rc(x) if rc is not None else x
                        if compare(a, b) == 0:
                            return res(r)
                return else_(r)

            return case_eq
        conds = [self.compile(w, scope, True, agg) for w, _ in node.whens]
        pairs = list(zip(conds, results))

        def case(r: Any) -> Any:
            for c, res in pairs:
                if c(r):
                    return res(r)
            return else_(r)

        return case

    def _func(self, node: ast.Func, scope: Scope | None, agg: AggMap | None) -> Fn:
        name = node.name
        nargs = len(node.args)
        if F.is_aggregate_call(name, nargs, node.star):
            raise SQLError(f"misuse of aggregate function {name}()")
        if name in WINDOW_ONLY:
            raise SQLError(f"misuse of window function {name.lower()}()")
        if node.filter is not None:
            raise SQLError(f"FILTER may not be used with non-aggregate {name.lower()}()")
        user = USER_FUNCTIONS.get()
        ufn = user.lookup(name, nargs) if user else None
        if ufn is not None:  # an application's function (Database.create_function)
            return _call(ufn, [self.sub(a, scope, agg) for a in node.args])
        spec = F.SCALARS.get(name)
        if spec is None:
            if user and user.defines(name):
                raise SQLError(f"wrong number of arguments to function {name.lower()}()")
            raise SQLError(f"no such function: {name}")
        lo, hi, fn, _ = spec
        if not lo <= nargs <= hi:
            raise SQLError(f"wrong number of arguments to function {name}()")
        args = [self.sub(a, scope, agg) for a in node.args]
        special = F.SPECIALIZED.get(name)
        first = node.args[0] if nargs else None
        if special is not None and type(first) in (ast.Literal, ast.Param):
            # the first argument is one value per run: held at P[i] (for a literal, its own list)
            held = (self.P, first.index) if type(first) is ast.Param else ([first.value], 0)  # type: ignore[union-attr]
            f = special(*held, args)
            if f is not None:
                return f
        if name in ("COALESCE", "IFNULL"):

            def coalesce(r: Any) -> Any:
                for a in args:
                    v = a(r)
                    if v is not None:
                        return v
                return None

            return coalesce
        if nargs == 0:
            return lambda r: fn()
        if nargs == 1:
            a0 = args[0]
            return lambda r: fn(a0(r))
        if nargs == 2:
            a0, a1 = args
            return lambda r: fn(a0(r), a1(r))
        return lambda r: fn(*[a(r) for a in args])

    def _scalar_subquery(self, node: ast.Subquery, scope: Scope | None) -> Fn:
        plan, inner_scope = self.planner.subplan(node.select, scope)
        if plan.ncolumns != 1:
            raise SQLError(f"sub-select returns {plan.ncolumns} columns - expected 1")
        cell = scope.cell if scope is not None else [None]
        ctx = self.planner.ctx
        if not plan.correlated:
            memo: list[Any] = [None, None]  # epoch, value

            def scalar_once(r: Any) -> Any:
                if memo[0] != ctx.epoch:
                    memo[1] = next(iter(plan.run()), (None,))[0]
                    memo[0] = ctx.epoch
                return memo[1]

            return scalar_once

        def scalar(r: Any) -> Any:
            cell[0] = r
            for row in plan.run():
                return row[0]
            return None

        return scalar

    # ---------------------------------------------------------- predicates

    def _predicate(self, node: ast.Expr, scope: Scope | None, agg: AggMap | None) -> Fn:
        if isinstance(node, ast.Unary):  # NOT
            f = self.compile(node.operand, scope, True, agg)

            def not_(r: Any) -> Any:
                v = f(r)
                return None if v is None else not v

            return not_
        if isinstance(node, ast.Binary):
            if node.op == "AND":
                a = self.compile(node.left, scope, True, agg)
                b = self.compile(node.right, scope, True, agg)

                def and_(r: Any) -> Any:
                    x = a(r)
                    if x is False:
                        return False
                    y = b(r)
                    if y is False:
                        return False
                    if x is None or y is None:
                        return None
                    return True

                return and_
            if node.op == "OR":
                a = self.compile(node.left, scope, True, agg)
                b = self.compile(node.right, scope, True, agg)

                def or_(r: Any) -> Any:
                    x = a(r)
                    if x:
                        return True
                    y = b(r)
                    if y:
                        return True
                    if x is None or y is None:
                        return None
                    return False

                return or_
            return self._comparison(node, scope, agg)
        if isinstance(node, ast.IsNull):
            f = self.sub(node.expr, scope, agg)
            if node.negated:
                return lambda r: f(r) is not None
            return lambda r: f(r) is None
        if isinstance(node, ast.Between):
            lo = ast.Binary(">=", node.expr, node.low)
            hi = ast.Binary("<=", node.expr, node.high)
            both: ast.Expr = ast.Binary("AND", lo, hi)
            if node.negated:
                both = ast.Unary("NOT", both)
            return self._predicate(both, scope, agg)
        if isinstance(node, ast.Like):
            return self._like(node, scope, agg)
        if isinstance(node, ast.InList):
            return self._in_list(node, scope, agg)
        if isinstance(node, ast.InSelect):
            return self._in_select(node, scope, agg)
        if isinstance(node, ast.Exists):
            plan, _ = self.planner.subplan(node.select, scope)
            cell = scope.cell if scope is not None else [None]
            ctx = self.planner.ctx
            if not plan.correlated:
                memo: list[Any] = [None, None]

                def exists_once(r: Any) -> Any:
                    if memo[0] != ctx.epoch:
                        memo[1] = next(iter(plan.run()), None) is not None
                        memo[0] = ctx.epoch
                    return memo[1]

                return exists_once

            def exists(r: Any) -> Any:
                cell[0] = r
                for _ in plan.run():
                    return True
                return False

            return exists
        raise SQLError(f"unsupported predicate {type(node).__name__}")

    def comparison_converters(
        self, left: ast.Expr, right: ast.Expr, scope: Scope | None
    ) -> tuple[Fn | None, Fn | None]:
        la, ra = self.affinity(left, scope), self.affinity(right, scope)
        lc, rc = T.comparison_affinity(la, ra)
        return T.converter(lc), T.converter(rc)

    def _comparison(self, node: ast.Binary, scope: Scope | None, agg: AggMap | None) -> Fn:
        coll = comparison_collation([node.left, node.right], scope)
        if coll is not None:
            node = ast.Binary(node.op, CollateKey(node.left, coll), CollateKey(node.right, coll))
        op = node.op
        lconv, rconv = self.comparison_converters(node.left, node.right, scope)
        lf = self.sub(node.left, scope, agg)
        rf = self.sub(node.right, scope, agg)
        compare = T.compare
        if op in ("IS", "ISNOT"):
            want = op == "IS"

            def is_(r: Any) -> Any:
                a = lf(r)
                b = rf(r)
                if a is None or b is None:
                    return (a is None and b is None) == want
                if lconv is not None:
                    a = lconv(a)
                if rconv is not None:
                    b = rconv(b)
                return (compare(a, b) == 0) == want

            return is_
        # a column against a constant: convert the constant once
        okr, cr = self.constant(node.right)
        if okr and rconv is not None:
            cr = rconv(cr)
            rconv = None
            converted = cr
            rf = lambda r: converted  # noqa: E731
        if okr and cr is None:
            return lambda r: None
        pyop = _PY_CMP[op]
        cmpres = _CMP_RESULT[op]
        if (
            isinstance(node.right, ast.Param)
            and isinstance(node.left, ast.Column)
            and lconv is None
            and agg is None
            and scope is not None
        ):
            depth, slot, _, _ = scope.resolve(node.left)
            if depth == 0:
                return self._column_param(op, slot, node.right.index, rconv, pyop, cmpres)
        if (
            isinstance(node.left, ast.Column)
            and okr
            and lconv is None
            and agg is None
            and scope is not None
        ):
            depth, slot, _, _ = scope.resolve(node.left)
            if depth == 0:
                c = cr
                tc = type(c)
                if op == "=":

                    def col_eq(r: Any) -> Any:
                        a = r[slot]
                        if a is None:
                            return None
                        return a == c

                    return col_eq
                if op == ">":

                    def col_gt(r: Any) -> Any:
                        a = r[slot]
                        if a is None:
                            return None
                        if type(a) is tc:
                            return a > c
                        return compare(a, c) > 0

                    return col_gt
                if op == "<":

                    def col_lt(r: Any) -> Any:
                        a = r[slot]
                        if a is None:
                            return None
                        if type(a) is tc:
                            return a < c
                        return compare(a, c) < 0

                    return col_lt

                def col_cmp(r: Any) -> Any:
                    a = r[slot]
                    if a is None:
                        return None
                    if type(a) is tc:
                        return pyop(a, c)
                    return cmpres(compare(a, c))

                return col_cmp

        if (
            isinstance(node.left, ast.Column)
            and isinstance(node.right, ast.Column)
            and lconv is None
            and rconv is None
            and agg is None
            and scope is not None
        ):
            # column against column (a join's condition, evaluated per pair): two
            # tuple indexes, no calls but the comparison's
            ldepth, ls, _, _ = scope.resolve(node.left)
            rdepth, rs, _, _ = scope.resolve(node.right)
            if ldepth == 0 and rdepth == 0:

                def col_col(r: Any) -> Any:
                    a = r[ls]
                    b = r[rs]
                    if a is None or b is None:
                        return None
                    if type(a) is type(b):
                        return pyop(a, b)
                    return cmpres(compare(a, b))

                return col_col

        def cmp(r: Any) -> Any:
            a = lf(r)
            b = rf(r)  # both sides always evaluated, as SQLite does (errors included)
            if a is None or b is None:
                return None
            if lconv is not None:
                a = lconv(a)
            if rconv is not None:
                b = rconv(b)
            if type(a) is type(b):
                return pyop(a, b)
            return cmpres(compare(a, b))

        return cmp

    def _column_param(
        self, op: str, slot: int, pi: int, rconv: Fn | None, pyop: Any, cmpres: Any
    ) -> Fn:
        """column <op> ?: a parameter that is a number needs no conversion, so the
        common case is one tuple index, one list index and one comparison."""
        P = self.P
        compare = T.compare
        conv = rconv if rconv is not None else (lambda v: v)
        # the parameter types the conversion changes: numeric affinity changes
        # texts, TEXT affinity changes numbers, no affinity changes nothing
        if rconv is T.converter(T.NUMERIC):
            needs: tuple[type, ...] = (str,)
        elif rconv is T.converter(T.TEXT):
            needs = (int, float)
        else:
            needs = ()

        if op == ">":

            def col_gt_p(r: Any) -> Any:
                a = r[slot]
                b = P[pi]
                if a is None or b is None:
                    return None
                if type(b) in needs:
                    b = conv(b)
                if type(a) is type(b):
                    return a > b
                return compare(a, b) > 0

            return col_gt_p
        if op == "=":

            def col_eq_p(r: Any) -> Any:
                a = r[slot]
                b = P[pi]
                if a is None or b is None:
                    return None
                if type(b) in needs:
                    b = conv(b)
                if type(a) is type(b):
                    return a == b
                return compare(a, b) == 0

            return col_eq_p

        def col_op_p(r: Any) -> Any:
            a = r[slot]
            b = P[pi]
            if a is None or b is None:
                return None
            if type(b) in needs:
                b = conv(b)
            if type(a) is type(b):
                return pyop(a, b)
            return cmpres(compare(a, b))

        return col_op_p

    def _like(self, node: ast.Like, scope: Scope | None, agg: AggMap | None) -> Fn:
        f = self.sub(node.expr, scope, agg)
        pf = self.sub(node.pattern, scope, agg)
        ef = self.sub(node.escape, scope, agg) if node.escape is not None else None
        glob = node.op == "GLOB"
        negated = node.negated
        cache: dict[tuple[str, str | None], re.Pattern[str]] = {}
        to_text = T.to_text

        def like(r: Any) -> Any:
            v = f(r)
            p = pf(r)
            if v is None or p is None:
                return None
            if type(v) is bytes or type(p) is bytes:
                # SQLite as built for Python (SQLITE_LIKE_DOESNT_MATCH_BLOBS)
                return negated
            esc = None
            if ef is not None:
                esc = ef(r)
                if esc is None:
                    return None
                esc = to_text(esc)
                if len(esc) != 1:
                    raise SQLError("ESCAPE expression must be a single character")
            p = to_text(p) if type(p) is not bytes else p.decode("utf-8", "replace")
            rx = cache.get((p, esc))
            if rx is None:
                rx = cache[(p, esc)] = like_regex(p, esc, glob)
            s = to_text(v) if type(v) is not bytes else v.decode("utf-8", "replace")
            m = rx.match(s) is not None
            return (not m) if negated else m

        return like

    def _in_list(self, node: ast.InList, scope: Scope | None, agg: AggMap | None) -> Fn:
        coll = comparison_collation([node.expr], scope)
        if coll is not None:
            node = ast.InList(
                CollateKey(node.expr, coll),
                [CollateKey(x, coll) for x in node.items],
                node.negated,
            )
        f = self.sub(node.expr, scope, agg)
        negated = node.negated
        if not node.items:
            return lambda r: negated
        # x IN (list): the left side's affinity (if any) applies to every item;
        # the items' own affinities play no part (SQLite)
        laff = self.affinity(node.expr, scope)
        item_conv = T.converter(laff if laff in (T.INTEGER, T.REAL, T.NUMERIC, T.TEXT) else None)
        items = node.items
        consts = [self.constant(i) for i in items]
        if all(ok for ok, _ in consts):
            values = []
            for _, v in consts:
                values.append(item_conv(v) if item_conv and v is not None else v)
            has_null = any(v is None for v in values)
            try:
                vset = frozenset(v for v in values if v is not None)
            except TypeError:
                vset = frozenset()
            compare = T.compare

            def in_consts(r: Any) -> Any:
                x = f(r)
                if x is None:
                    return None
                found = x in vset
                if not found and type(x) is str:
                    found = False
                if found:
                    return not negated
                if has_null:
                    return None
                return negated

            del compare
            return in_consts
        fns = [self.sub(i, scope, agg) for i in items]
        convs = [(None, item_conv) for _ in items]
        compare = T.compare

        def in_list(r: Any) -> Any:
            x = f(r)
            if x is None:
                return None
            saw_null = False
            for g, (lc, rc) in zip(fns, convs):
                y = g(r)
                if y is None:
                    saw_null = True
                    continue
                a = lc(x) if lc else x
                b = rc(y) if rc else y
                if compare(a, b) == 0:
                    return not negated
            if saw_null:
                return None
            return negated

        return in_list

    def _in_select_values(self, node: ast.InSelect, scope: Scope | None) -> tuple[Fn, Fn | None]:
        """(values(row) -> (set of the subquery's values, has a NULL), conversion of
        the left side): the subquery runs once per execution, or per row when correlated."""
        plan, _ = self.planner.subplan(node.select, scope)
        if plan.ncolumns != 1:
            raise SQLError(f"sub-select returns {plan.ncolumns} columns - expected 1")
        laff = self.affinity(node.expr, scope)
        raff = plan.affinities[0] if plan.affinities else None
        lc, rc = T.comparison_affinity(laff, raff)
        lconv, rconv = T.converter(lc), T.converter(rc)
        cell = scope.cell if scope is not None else [None]
        ctx = self.planner.ctx
        memo: list[Any] = [None, None]

        def compute() -> tuple[frozenset[Any], bool]:
            vals = set()
            has_null = False
            for (v,) in plan.run():
                if v is None:
                    has_null = True
                else:
                    vals.add(rconv(v) if rconv else v)
            return frozenset(vals), has_null

        if plan.correlated:

            def values(r: Any) -> Any:
                cell[0] = r
                return compute()

        else:

            def values(r: Any) -> Any:
                if memo[0] != ctx.epoch:
                    memo[1] = compute()
                    memo[0] = ctx.epoch
                return memo[1]

        return values, lconv

    @staticmethod
    def _membership(f: Fn, values: Fn, lconv: Fn | None, negated: bool) -> Fn:
        def in_select(r: Any) -> Any:
            x = f(r)
            vset, has_null = values(r)
            if x is None:
                return None if (vset or has_null) else negated
            if lconv is not None:
                x = lconv(x)
            if x in vset:
                return not negated
            if has_null:
                return None
            return negated

        return in_select

    def _in_select(self, node: ast.InSelect, scope: Scope | None, agg: AggMap | None) -> Fn:
        f = self.sub(node.expr, scope, agg)
        if agg is not None:
            # an aggregate on the left (x IN ... is bare otherwise): the subquery's
            # values come from the group's first row, like a bare column
            holder = InValues(node)
            agg.add_bare(holder)
            idx = agg.bare.index(holder)

            def group_values(r: Any, agg: AggMap = agg, idx: int = idx) -> Any:
                return r[len(agg.keys) + len(agg.aggs) + idx]

            _, lconv = self._in_select_values(node, scope)
            return self._membership(f, group_values, lconv, node.negated)
        values, lconv = self._in_select_values(node, scope)
        return self._membership(f, values, lconv, node.negated)


#: how ExprCompiler compiles a value of each node type (no isinstance chain per node)
_VALUE_BUILDERS: dict[type, Callable[..., Fn]] = {
    ast.Literal: ExprCompiler._literal,
    ast.Param: ExprCompiler._param,
    ast.Column: ExprCompiler._column,
    ast.Star: ExprCompiler._star,
    ast.Unary: ExprCompiler._unary,
    ast.Binary: ExprCompiler._arith,
    ast.Collate: ExprCompiler._collate,
    CollateKey: ExprCompiler._collate_key,
    ast.Cast: ExprCompiler._cast,
    ast.Case: ExprCompiler._case,
    ast.Func: ExprCompiler._func,
    ast.Subquery: ExprCompiler._subquery_value,
    InValues: ExprCompiler._in_values,
}
