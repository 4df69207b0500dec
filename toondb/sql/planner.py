"""The planner: a SELECT's AST -> a tree of physical operators over B+tree cursors.

Rules (docs/sql.md has the long form):

1. FROM items join left-deep in the order written (no reordering); WHERE is
   split into conjuncts, each applied as soon as every table it names is joined
   (an inner join's ON is a WHERE conjunct; a LEFT JOIN's ON is its join condition).
2. A table's access path: rowid equality (``SEARCH ... USING ROWID``) > rowid
   IN list > index equality on the most leading columns (a unique index that is
   fully bound first), with a range on the next column > rowid range > index
   range > full scan. Probes are constants, parameters, outer-query columns and,
   for the inner side of a join, columns of the tables joined before it.
3. A join's inner side: an index (or rowid) lookup per outer row when one
   applies (index nested loop); otherwise a hash join on an equality conjunct;
   otherwise a nested loop over the inner rows, read once.
4. ORDER BY is satisfied by the scan when a single-table query orders by its
   rowid or by the first column of the index being scanned; otherwise it sorts
   (``SORT``), with a bounded heap for ORDER BY ... LIMIT.
5. Every conjunct is evaluated on every row an access path returns (a probe only
   narrows what is read), so a probe may over-approximate but never misses a row.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from itertools import islice
from operator import itemgetter
from typing import Any, Callable

from toondb.errors import SchemaError, SQLError
from toondb.sql import ast
from toondb.sql import types as T
from toondb.sql.catalog import ROWID_NAMES, Catalog, TableInfo
from toondb.sql.executor import (
    Access,
    Ctx,
    FullScan,
    IndexScan,
    RowidEq,
    RowidIn,
    RowidRange,
    SubquerySource,
    hash_join,
    nested_loop,
    sort_rows,
    top_rows,
)
from toondb.sql.expressions import AggMap, ExprCompiler, Scope, Source, contains_aggregate
from toondb.sql.functions import AGG_FUNCS, is_aggregate_call

Fn = Callable[[Any], Any]


def split_and(node: ast.Expr | None) -> list[ast.Expr]:
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


def _flatten_from(
    node: ast.Node | None,
) -> list[tuple[str | None, ast.Node, ast.Expr | None, list[str] | None]]:
    if node is None:
        return []
    if isinstance(node, ast.Join):
        left = _flatten_from(node.left)
        right = _flatten_from(node.right)
        if not right:
            return left
        first_kind, first_node, first_on, first_using = right[0]
        kind = node.kind
        items = left + [(kind, first_node, node.on, node.using)] + right[1:]
        return items
    return [(None, node, None, None)]


def _names_table(node: Any, low: str) -> bool:
    """Whether a FROM clause anywhere in node names the table low. Below a WITH
    that defines low again, low means that one (its bodies included)."""
    if isinstance(node, ast.TableRef):
        return node.name.lower() == low
    if isinstance(node, ast.Select) and any(c.name.lower() == low for c in node.ctes):
        return False
    if isinstance(node, ast.Node):
        return any(_names_table(getattr(node, k), low) for k in node.__slots__)
    if isinstance(node, (list, tuple)):
        return any(_names_table(x, low) for x in node)
    return False


def _named_columns(plan: SelectPlan, cte: ast.Cte) -> SelectPlan:
    """plan with the column names a WITH name(a, b) gives it."""
    if cte.columns is None:
        return plan
    if len(cte.columns) != plan.ncolumns:
        raise SQLError(
            f"table {cte.name} has {plan.ncolumns} values for {len(cte.columns)} columns"
        )
    return SelectPlan(
        list(cte.columns), plan.affinities, plan.run, plan.explain_lines, plan.correlated
    )


class Step:
    def __init__(self, source: Source, kind: str | None) -> None:
        self.source = source
        self.kind = kind  # None (first), INNER, LEFT, CROSS
        self.on: list[ast.Expr] = []  # LEFT JOIN conditions
        self.filters: list[ast.Expr] = []  # applied after this step


class CteBinding:
    """A WITH name in scope: its definition and the names its SELECT sees (every
    name of its WITH, itself included, and those of enclosing ones); for the
    working table of a recursive CTE, the plan that yields its current rows."""

    __slots__ = ("cte", "env", "working")

    def __init__(self, cte: ast.Cte, working: SelectPlan | None = None) -> None:
        self.cte = cte
        self.env: list[CteBinding] = []
        self.working = working


def _bind(env: list[CteBinding], ctes: list[ast.Cte]) -> list[CteBinding]:
    """env with the names of one WITH added; as in SQLite each sees all of them."""
    new = env + [CteBinding(cte) for cte in ctes]
    for b in new[len(env) :]:
        b.env = new
    return new


class Planner:
    def __init__(self, catalog: Catalog, ctx: Ctx, params: list[Any]) -> None:
        self.catalog = catalog
        self.ctx = ctx
        self.ec = ExprCompiler(params, self)
        self._ctes: list[CteBinding] = []  # WITH names in scope, innermost last
        self._expanding: set[int] = set()  # ids of the bindings being planned

    # ------------------------------------------------------------ helpers for expressions

    def subplan(self, select: ast.Select, parent: Scope | None) -> tuple[SelectPlan, Scope | None]:
        plan = self.plan_select(select, parent)
        return plan, parent

    def scope_for_affinity(self, core: ast.SelectCore, parent: Scope | None) -> Scope | None:
        try:
            sources, _ = self._sources(core, parent, plan_subqueries=False)
        except (SchemaError, SQLError):
            return None
        return Scope(sources, parent)

    # ------------------------------------------------------------ SELECT

    def with_ctes(self, ctes: list[ast.Cte]) -> None:
        """Put the names of a statement-level WITH (INSERT/UPDATE/DELETE) in scope
        for everything this planner plans."""
        self._ctes = _bind(self._ctes, ctes)

    def plan_select(self, select: ast.Select, parent: Scope | None = None) -> SelectPlan:
        if select.ctes:
            saved = self._ctes
            self._ctes = _bind(saved, select.ctes)
            try:
                return self._plan_select_body(select, parent)
            finally:
                self._ctes = saved
        return self._plan_select_body(select, parent)

    def _plan_select_body(self, select: ast.Select, parent: Scope | None) -> SelectPlan:
        if len(select.cores) == 1:
            return self._plan_core(
                select.cores[0], parent, select.order_by, select.limit, select.offset
            )
        return self._plan_compound(select, parent)

    def _limit_fns(
        self, limit: ast.Expr | None, offset: ast.Expr | None
    ) -> tuple[Fn | None, Fn | None]:
        lf = self.ec.compile(limit, None) if limit is not None else None
        of = self.ec.compile(offset, None) if offset is not None else None
        return lf, of

    @staticmethod
    def _apply_limit(rows: Iterator[Any], lf: Fn | None, of: Fn | None) -> Iterator[Any]:
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

    def _sources(
        self, core: ast.SelectCore, parent: Scope | None, plan_subqueries: bool = True
    ) -> tuple[
        list[Source],
        list[tuple[str | None, Any, ast.Expr | None, list[str] | None, Source]],
    ]:
        items = _flatten_from(core.from_)
        sources: list[Source] = []
        out = []
        offset = 0
        seen: set[str] = set()
        for kind, node, on, using in items:
            low = node.name.lower() if isinstance(node, ast.TableRef) else ""
            binding = self._cte(low) if low else None
            if (
                low
                and binding is None
                and low not in self.catalog.tables
                and low in self.catalog.views
            ):
                node = self._view_ref(node)
            if binding is not None:
                if not plan_subqueries:
                    raise SQLError("subquery")
                plan = self._plan_cte(binding)
                name = node.alias or node.name
                src = Source(name, plan.columns, list(plan.affinities), offset, None)
                payload = plan
            elif isinstance(node, ast.TableRef):
                table = self.catalog.table(node.name)
                name = node.alias or node.name
                src = Source(
                    name, [c.name for c in table.columns], list(table.affinities), offset, table
                )
                payload: Any = table
            elif isinstance(node, ast.SubqueryRef):
                if not plan_subqueries:
                    raise SQLError("subquery")
                plan = self.plan_select(node.select, parent)
                name = node.alias or f"(subquery-{len(sources) + 1})"
                src = Source(name, plan.columns, list(plan.affinities), offset, None)
                payload = plan
            else:
                raise SQLError("unsupported FROM item")
            if src.name in seen:
                raise SchemaError(f"ambiguous table name in FROM: {name} (give it an alias)")
            seen.add(src.name)
            offset += src.width
            sources.append(src)
            out.append((kind, payload, on, using, src))
        return sources, out

    # ------------------------------------------------------------ WITH

    def _cte(self, low: str) -> CteBinding | None:
        for b in reversed(self._ctes):
            if b.cte.name.lower() == low:
                return b
        return None

    def _plan_cte(self, b: CteBinding) -> SelectPlan:
        """A reference to a WITH name: its SELECT planned with the names of where it
        was defined, once per reference (SQLite inlines it likewise). One that
        names itself is recursive; names that lead back to themselves otherwise
        are a circular reference."""
        if b.working is not None:
            return b.working
        if id(b) in self._expanding:
            raise SQLError(f"circular reference: {b.cte.name}")
        saved = self._ctes
        self._expanding.add(id(b))
        try:
            if _names_table(b.cte.select, b.cte.name.lower()):
                return self._plan_recursive_cte(b)
            self._ctes = b.env
            return _named_columns(self.plan_select(b.cte.select, None), b.cte)
        finally:
            self._ctes = saved
            self._expanding.discard(id(b))

    def _plan_recursive_cte(self, b: CteBinding) -> SelectPlan:
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
        if any(_names_table(c, low) for c in initial.cores):
            raise SQLError(f"circular reference: {cte.name}")
        core = sel.cores[-1]
        in_from = [n for _, n, _, _ in _flatten_from(core.from_)]
        direct = sum(isinstance(n, ast.TableRef) and n.name.lower() == low for n in in_from)
        elsewhere = _names_table(
            [n for n in in_from if not isinstance(n, ast.TableRef)], low
        ) or any(_names_table(getattr(core, k), low) for k in core.__slots__ if k != "from_")
        if direct != 1 or elsewhere:
            raise SQLError(
                f"the recursive select of {cte.name} must name {cte.name} exactly once, "
                "in its FROM clause and not in a subquery"
            )
        saved = self._ctes
        self._ctes = b.env
        try:
            init_plan = _named_columns(self.plan_select(initial, None), cte)
            current: list[tuple[Any, ...]] = []
            # "correlated": a FROM that reads it reads it again at every step
            working = SelectPlan(
                init_plan.columns,
                init_plan.affinities,
                lambda: iter(current),
                [f"RECURSIVE TABLE {cte.name}"],
                True,
            )
            self._ctes = b.env + [CteBinding(cte, working)]
            step_plan = self.plan_select(step, None)
            lf, of = self._limit_fns(sel.limit, sel.offset)
        finally:
            self._ctes = saved
        if step_plan.ncolumns != init_plan.ncolumns:
            raise SQLError(
                "SELECTs to the left and right of UNION do not have the same number of result columns"
            )
        distinct = sel.ops[-1] == "UNION"
        apply_limit = self._apply_limit

        def rows() -> Iterator[tuple[Any, ...]]:
            seen: set[tuple[Any, ...]] = set()
            queue: deque[tuple[Any, ...]] = deque()

            def enqueue(new: Iterator[tuple[Any, ...]]) -> None:
                for r in new:
                    if distinct:
                        if r in seen:
                            continue
                        seen.add(r)
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
        return SelectPlan(
            init_plan.columns, init_plan.affinities, run, explain + step_plan.explain_lines, False
        )

    def _view_ref(self, node: ast.TableRef) -> ast.SubqueryRef:
        """A view in FROM: its SELECT, planned as a subquery named by the view."""
        from toondb.sql.grammar import parse

        view = self.catalog.views[node.name.lower()]
        depth = getattr(self, "_view_depth", 0)
        if depth > 32:
            raise SQLError(f"view {view['name']} is circularly defined")
        sel = parse(view["sql"])[0].statement
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
        self._view_depth = depth + 1
        try:
            # planned here only to fail early on a broken view; the SubqueryRef plans it again
            self.plan_select(sel, None)
        finally:
            self._view_depth = depth
        return ast.SubqueryRef(sel, node.alias or view["name"])

    def _refs(self, node: Any, scope: Scope) -> set[int] | None:
        """Indexes of the sources (of this scope) an expression reads; None: it holds
        a subquery (treated as reading every source)."""
        out: set[int] = set()

        def walk(n: Any) -> bool:
            if isinstance(n, (ast.Subquery, ast.Exists, ast.InSelect)):
                return False
            if isinstance(n, ast.Column):
                depth, slot, _, src = scope.resolve(n)
                if depth == 0 and src is not None:
                    out.add(scope.sources.index(src))
                return True
            if isinstance(n, ast.Node):
                return all(walk(getattr(n, k)) for k in n.__slots__)
            if isinstance(n, (list, tuple)):
                return all(walk(x) for x in n)
            return True

        if not walk(node):
            return None
        return out

    def _probe_columns(self, conj: ast.Expr, scope: Scope, k: int, allowed: set[int]):
        """Sargable forms of conj for source k: yields (column index or 'rowid', op, expr(s))."""
        src = scope.sources[k]

        def col_of(e: ast.Expr) -> Any:
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
            r = self._refs(e, scope)
            return r is not None and r <= allowed and k not in r

        flip = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "="}
        if isinstance(conj, ast.Binary) and conj.op in flip:
            c = col_of(conj.left)
            if c is not None and ok_probe(conj.right):
                return [(c, conj.op, conj.right, conj.left)]
            c = col_of(conj.right)
            if c is not None and ok_probe(conj.left):
                return [(c, flip[conj.op], conj.left, conj.right)]
        if isinstance(conj, ast.Between) and not conj.negated:
            c = col_of(conj.expr)
            if c is not None and ok_probe(conj.low) and ok_probe(conj.high):
                return [(c, ">=", conj.low, conj.expr), (c, "<=", conj.high, conj.expr)]
        if isinstance(conj, ast.InList) and not conj.negated and conj.items:
            c = col_of(conj.expr)
            if c is not None and all(ok_probe(i) for i in conj.items):
                return [(c, "IN", conj.items, conj.expr)]
        return []

    def _probe_fn(
        self, colexpr: ast.Expr, probe: ast.Expr, scope: Scope, col_aff: str | None
    ) -> Fn | None:
        """The probe's value as the column compares it, or None if a lookup cannot
        honour the comparison's affinity (the column side would be converted)."""
        lc, rc = T.comparison_affinity(col_aff, self.ec.affinity(probe, scope))
        if lc is not None:
            return None
        f = self.ec.compile(probe, scope)
        conv = T.converter(rc)
        if conv is None:
            return f
        return lambda r: conv(f(r)) if (v := f(r)) is not None else None

    def _access(
        self,
        scope: Scope,
        k: int,
        conjs: list[ast.Expr],
        allowed: set[int],
        order: tuple[Any, bool] | None = None,
    ) -> tuple[Access | None, bool, bool]:
        """The best access path for source k given conjuncts; (access, depends on
        outer row, satisfies order)."""
        src = scope.sources[k]
        table: TableInfo = src.table
        ctx = self.ctx
        probes: list[tuple[Any, str, Any, ast.Expr, bool]] = []
        for c in conjs:
            for col, op, e, colexpr in self._probe_columns(c, scope, k, allowed):
                dep = False
                es = e if isinstance(e, list) else [e]
                for x in es:
                    r = self._refs(x, scope)
                    if r:
                        dep = True
                probes.append((col, op, e, colexpr, dep, c))
        aff_of = lambda col: T.INTEGER if col == "rowid" else table.affinities[col]  # noqa: E731

        def fn(col: Any, e: ast.Expr, colexpr: ast.Expr) -> Fn | None:
            return self._probe_fn(colexpr, e, scope, aff_of(col))

        # 1. rowid equality, IN
        for col, op, e, colexpr, dep, conj in probes:
            if col == "rowid" and op == "=":
                f = fn(col, e, colexpr)
                if f is not None:
                    acc: Access = RowidEq(ctx, table, f, f"rowid={sql_text(e)}")
                    acc.consumed = [conj]
                    return acc, dep, False
        for col, op, e, colexpr, dep, conj in probes:
            if col == "rowid" and op == "IN":
                fs = [fn(col, x, colexpr) for x in e]
                if all(f is not None for f in fs):
                    acc = RowidIn(ctx, table, fs, f"rowid IN ({len(fs)} values)")  # type: ignore[arg-type]
                    acc.consumed = [conj]
                    return acc, dep, False
        # 2. indexes
        best = None
        for ix in table.indexes:
            used: list[ast.Expr] = []
            eqs: list[Fn] = []
            texts = []
            deps = False
            for ci in ix.col_idx:
                hit = None
                for col, op, e, colexpr, dep, conj in probes:
                    if col == ci and op == "=":
                        f = fn(col, e, colexpr)
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
                for col, op, e, colexpr, dep, conj in probes:
                    if col != ci:
                        continue
                    if op in (">", ">=") and lo is None:
                        f = fn(col, e, colexpr)
                        if f is not None:
                            lo = (f, op == ">=")
                            texts.append(f"{table.columns[ci].name}{op}{sql_text(e)}")
                            deps = deps or dep
                    elif op in ("<", "<=") and hi is None:
                        f = fn(col, e, colexpr)
                        if f is not None:
                            hi = (f, op == "<=")
                            texts.append(f"{table.columns[ci].name}{op}{sql_text(e)}")
                            deps = deps or dep
                    elif op == "IN" and not eqs and in_probes is None and lo is None and hi is None:
                        fs = [fn(col, x, colexpr) for x in e]
                        if all(f is not None for f in fs):
                            in_probes = fs
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
            if in_probes is not None:
                acc = IndexScan(ctx, table, ix, [], None, None, text, in_probes=in_probes)
            else:
                acc = IndexScan(ctx, table, ix, eqs, lo, hi, text)
            acc.consumed = used
            return acc, deps, False
        # 3. rowid range
        lo_f = hi_f = None
        texts = []
        deps = False
        for col, op, e, colexpr, dep, _conj in probes:
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
            acc = IndexScan(ctx, table, ix, eqs, lo, hi, text)
            acc.consumed = used
            return acc, deps, False
        # 4. a scan in the requested order
        if order is not None:
            col, desc = order
            if col == "rowid":
                return FullScan(ctx, table, desc), False, True
            for ix in table.indexes:
                if ix.col_idx and ix.col_idx[0] == col:
                    return IndexScan(ctx, table, ix, [], None, None, "", reverse=desc), False, True
        return None, False, False

    def _plan_from(
        self,
        core: ast.SelectCore,
        parent: Scope | None,
        order: tuple[ast.Expr, bool] | None = None,
    ) -> tuple[Scope, Callable[[], Iterator[tuple[Any, ...]]], list[str], bool]:
        """Scope, a row generator with WHERE applied, EXPLAIN lines, and whether
        the rows come out in the requested order."""
        sources, items = self._sources(core, parent)
        scope = Scope(sources, parent)
        ec = self.ec
        ctx = self.ctx
        conjs = split_and(core.where)
        if not items:
            preds = [ec.compile(c, scope, True) for c in conjs]

            def no_from() -> Iterator[tuple[Any, ...]]:
                r: tuple[Any, ...] = ()
                if all(p(r) for p in preds):
                    yield r

            lines = ["SCAN CONSTANT ROW"] + ([f"FILTER {sql_text(core.where)}"] if conjs else [])
            return scope, no_from, lines, False
        steps = [Step(src, kind) for kind, _, _, _, src in items]
        pool: list[tuple[ast.Expr, int]] = []  # (conjunct, step it applies at)
        last = len(steps) - 1

        def place(c: ast.Expr) -> int:
            r = self._refs(c, scope)
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
                    eq = ast.Binary(
                        "=", ast.Column(left_src.name, name), ast.Column(src.name, name)
                    )
                    if kind == "LEFT":
                        steps[i].on.append(eq)
                    else:
                        pool.append((eq, i))
                    src.hidden.add(name.lower())
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

        lines: list[str] = []
        in_order = False
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
            if isinstance(payload, TableInfo):
                order_req = None
                if k == 0 and len(steps) == 1 and order is not None:
                    order_req = self._order_column(order, scope)
                found, dep, sat = self._access(scope, k, conds, allowed, order_req)
                if k == 0:
                    in_order = sat
                if found is None:
                    found = FullScan(ctx, payload)
                    dep = False
                access = found
                access.defaults = self._defaults(payload)
            else:
                access = SubquerySource(ctx, payload, src.name)
                dep = False
            consumed = access.consumed
            remaining = [c for c in conds if not any(c is u for u in consumed)]
            # conjuncts on this table alone are checked while reading it
            own = [c for c in remaining if self._refs(c, scope) == {k}]
            if (
                own
                and isinstance(payload, TableInfo)
                and not dep
                or (own and k == 0 and isinstance(payload, TableInfo))
            ):
                shifted = self._shifted_scope(scope, k)
                rest_own = list(own)
                if isinstance(access, (FullScan, RowidRange)):
                    for c in own:
                        spec = self._c_filter(c, shifted)
                        if spec is not None:
                            access.cfilter = spec
                            rest_own = [o for o in own if o is not c]
                            break
                access.pred = self._and([ec.compile(c, shifted, True) for c in rest_own])
                access.pred_text = " AND ".join(sql_text(c) for c in own)
                remaining = [c for c in remaining if not any(c is o for o in own)]
            if k == 0:
                post = (
                    self._and([ec.compile(c, scope, True) for c in remaining])
                    if remaining
                    else None
                )
                gen = self._first_step(access, post)
                lines.append(access.explain())
                shown = ([access.pred_text] if access.pred_text else []) + [
                    sql_text(c) for c in remaining
                ]
                if shown:
                    lines.append("  FILTER " + " AND ".join(shown))
                continue
            null_row = (None,) * src.width
            cond_exprs = remaining
            post_exprs = step.filters if left else []
            hj = None if dep else self._hash_keys(scope, k, cond_exprs, allowed)
            if hj is not None:
                cond_exprs = [c for c in cond_exprs if not any(c is u for u in hj[3])]
            cond = (
                self._and([ec.compile(c, scope, True) for c in cond_exprs]) if cond_exprs else None
            )
            post = (
                self._and([ec.compile(c, scope, True) for c in post_exprs]) if post_exprs else None
            )
            outer_gen = gen
            label = "LEFT " if left else ""
            if dep:
                desc = f"{label}NESTED LOOP: {access.explain()}"
                gen = self._nl(outer_gen, access, cond, left, null_row, False, post)  # type: ignore[arg-type]
            elif hj is not None:
                ok_f, ik_f, text, _ = hj
                desc = f"{label}HASH JOIN ON {text}: build {access.explain()}"
                gen = self._hj(outer_gen, access, ok_f, ik_f, cond, left, null_row, post)  # type: ignore[arg-type]
            else:
                desc = f"{label}NESTED LOOP: {access.explain()} (read once)"
                gen = self._nl(outer_gen, access, cond, left, null_row, True, post)  # type: ignore[arg-type]
            lines.append(desc)
            if access.pred_text:
                lines.append("  FILTER " + access.pred_text)
            if cond_exprs:
                lines.append(
                    ("  ON " if left else "  FILTER ")
                    + " AND ".join(sql_text(c) for c in cond_exprs)
                )
            if post_exprs:
                lines.append("  FILTER " + " AND ".join(sql_text(c) for c in post_exprs))
        return scope, gen, lines, in_order  # type: ignore[return-value]

    _C_OPS = {"<": 0, "<=": 1, ">": 2, ">=": 3, "=": 4, "!=": 5}
    _FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "=", "!=": "!="}

    def _c_filter(self, c: ast.Expr, shifted: Scope) -> Any:
        """(column, op code, value function, predicate) when c is `column op ?` or
        `column op constant` with no affinity conversion on the column's side (the
        C decoder then tests that column itself), else None."""
        if not (isinstance(c, ast.Binary) and c.op in self._C_OPS):
            return None
        col, other, op = c.left, c.right, c.op
        if not isinstance(col, ast.Column):
            col, other, op = c.right, c.left, self._FLIP[c.op]
        if not isinstance(col, ast.Column) or not isinstance(other, (ast.Param, ast.Literal)):
            return None
        try:
            depth, slot, _, src = shifted.resolve(col)
        except SchemaError:
            return None
        if depth != 0 or src is None or src.table is None or slot >= len(src.columns):
            return None
        lconv, rconv = self.ec.comparison_converters(col, other, shifted)
        if lconv is not None:
            return None
        if isinstance(other, ast.Param):
            P, i = self.ec.P, other.index
            value = (lambda: rconv(P[i])) if rconv is not None else (lambda: P[i])
        else:
            v = other.value
            if type(v) is int and v > T.I64_MAX:
                v = float(v)
            cv = rconv(v) if rconv is not None and v is not None else v
            value = lambda: cv  # noqa: E731
        return (slot, self._C_OPS[op], value, self.ec.compile(c, shifted, True))

    def _order_column(self, order: tuple[ast.Expr, bool], scope: Scope) -> tuple[Any, bool] | None:
        expr, desc = order
        if not isinstance(expr, ast.Column):
            return None
        try:
            depth, slot, _, src = scope.resolve(expr)
        except SchemaError:
            return None
        if depth != 0 or src is None or src.table is None:
            return None
        if slot == src.rowid_slot() or src.table.rowid_col == slot - src.offset:
            return ("rowid", desc)
        return (slot - src.offset, desc)

    @staticmethod
    def _first_step(access: Access, post: Fn | None) -> Callable[[], Iterator[tuple[Any, ...]]]:
        if post is None:
            return lambda: access.rows(())
        return lambda: filter(post, access.rows(()))

    @staticmethod
    def _nl(
        outer: Callable[[], Iterator[Any]],
        access: Access,
        cond: Fn | None,
        left: bool,
        null_row: tuple[Any, ...],
        materialize: bool,
        post: Fn | None,
    ) -> Callable[[], Iterator[Any]]:
        def run() -> Iterator[Any]:
            it = nested_loop(outer(), access, cond, left, null_row, materialize)
            return filter(post, it) if post is not None else it

        return run

    @staticmethod
    def _hj(
        outer: Callable[[], Iterator[Any]],
        access: Access,
        ok: Fn,
        ik: Fn,
        cond: Fn | None,
        left: bool,
        null_row: tuple[Any, ...],
        post: Fn | None,
    ) -> Callable[[], Iterator[Any]]:
        def run() -> Iterator[Any]:
            it = hash_join(outer(), access, ok, ik, cond, left, null_row)
            return filter(post, it) if post is not None else it

        return run

    def _hash_keys(
        self, scope: Scope, k: int, conjs: list[ast.Expr], allowed: set[int]
    ) -> tuple[Fn, Fn, str, list[ast.Expr]] | None:
        """An equality between a column of source k and an expression of the outer
        sources: (outer key, inner key on the inner row alone, text)."""
        shifted = self._shifted_scope(scope, k)
        outs, ins, texts = [], [], []
        used: list[ast.Expr] = []
        for c in conjs:
            if not (isinstance(c, ast.Binary) and c.op == "="):
                continue
            for a, b in ((c.left, c.right), (c.right, c.left)):
                ra, rb = self._refs(a, scope), self._refs(b, scope)
                if ra == {k} and rb is not None and rb <= allowed and rb:
                    la, lb = self.ec.affinity(a, scope), self.ec.affinity(b, scope)
                    ca, cb = T.comparison_affinity(la, lb)
                    conv_a, conv_b = T.converter(ca), T.converter(cb)
                    fa = self.ec.compile(a, shifted)
                    fb = self.ec.compile(b, scope)
                    ins.append(fa if conv_a is None else (lambda r, f=fa, cv=conv_a: cv(f(r))))
                    outs.append(fb if conv_b is None else (lambda r, f=fb, cv=conv_b: cv(f(r))))
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

    def _shifted_scope(self, scope: Scope, k: int) -> Scope:
        src = scope.sources[k]
        s = Source(src.name, src.columns, src.affinities, 0, src.table)
        s.hidden = src.hidden
        sc = Scope([s], scope.parent)
        sc.corr = scope.corr
        return sc

    @staticmethod
    def _and(preds: list[Fn]) -> Fn | None:
        if not preds:
            return None
        if len(preds) == 1:
            return preds[0]
        if len(preds) == 2:
            a, b = preds
            return lambda r: a(r) and b(r)
        return lambda r: all(p(r) for p in preds)

    @staticmethod
    def _defaults(table: TableInfo) -> tuple[Any, ...]:
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

    # ------------------------------------------------------------ one SELECT core

    def _expand_columns(self, core: ast.SelectCore, scope: Scope) -> list[ast.ResultColumn]:
        out = []
        for rc in core.columns:
            if isinstance(rc.expr, ast.Star):
                srcs = scope.sources
                if rc.expr.table is not None:
                    srcs = [s for s in scope.sources if s.name == rc.expr.table.lower()]
                    if not srcs:
                        raise SchemaError(f"no such table: {rc.expr.table}")
                if not srcs:
                    raise SQLError("no tables specified")
                for s in srcs:
                    for c in s.columns:
                        if rc.expr.table is None and c.lower() in s.hidden:
                            continue
                        out.append(ast.ResultColumn(ast.Column(s.name, c), None, c))
            else:
                out.append(rc)
        return out

    @staticmethod
    def _column_name(rc: ast.ResultColumn) -> str:
        if rc.alias is not None:
            return rc.alias
        if isinstance(rc.expr, ast.Column):
            return rc.expr.name
        return rc.text

    def _plan_core(
        self,
        core: ast.SelectCore,
        parent: Scope | None,
        order_by: list[ast.OrderItem],
        limit: ast.Expr | None,
        offset: ast.Expr | None,
    ) -> SelectPlan:
        ec = self.ec
        if core.values is not None:
            return self._plan_values(core, parent, order_by, limit, offset)
        # the ORDER BY a scan might deliver: one plain column term
        order_hint = None
        if len(order_by) == 1 and order_by[0].nulls_first in (None, not order_by[0].desc):
            order_hint = (order_by[0].expr, order_by[0].desc)
        scope, source, lines, in_order = self._plan_from(core, parent, order_hint)
        columns = self._expand_columns(core, scope)
        names = [self._column_name(rc) for rc in columns]
        aggregated = (
            bool(core.group_by)
            or core.having is not None
            or any(contains_aggregate(rc.expr) for rc in columns)
            or any(contains_aggregate(o.expr) for o in order_by)
        )
        aliases = {}
        for i, rc in enumerate(columns):
            if rc.alias is not None:
                aliases.setdefault(rc.alias.lower(), i)
        agg: AggMap | None = None
        if aggregated:
            group_by = [self._resolve_alias(g, columns, aliases) for g in core.group_by]
            agg = AggMap(group_by)
        proj_fns = [ec.compile(rc.expr, scope, False, agg) for rc in columns]
        affs = [ec.affinity(rc.expr, scope) for rc in columns]
        having = ec.compile(core.having, scope, True, agg) if core.having is not None else None
        # ORDER BY terms: (kind, fn) where kind "out" reads the output row, "src" the source row
        order_terms = []
        for o in order_by:
            e = o.expr
            ok, v = ec.constant(e)
            if ok and type(v) is int:
                if not 1 <= v <= len(columns):
                    raise SQLError(
                        f"ORDER BY term out of range - should be between 1 and {len(columns)}"
                    )
                order_terms.append(("out", itemgetter(v - 1), o))
                continue
            if isinstance(e, ast.Column) and e.table is None and e.name.lower() in aliases:
                order_terms.append(("out", itemgetter(aliases[e.name.lower()]), o))
                continue
            # an expression equal to a select-list expression reads the output
            hit = next((i for i, rc in enumerate(columns) if rc.expr == e), None)
            if hit is not None:
                order_terms.append(("out", itemgetter(hit), o))
                continue
            order_terms.append(("src", ec.compile(e, scope, False, agg), o))
        lf, of = self._limit_fns(limit, offset)
        distinct = core.distinct
        agg_run = self._aggregate(agg, scope) if agg is not None else None
        if agg is not None:
            lines = lines + [
                f"AGGREGATE{' GROUP BY ' + ', '.join(sql_text(g) for g in agg.keys) if agg.keys else ''}"
            ]
            if having is not None:
                lines.append(f"  HAVING {sql_text(core.having)}")
        need_sort = bool(order_terms) and not (in_order and agg is None and not distinct)
        if order_terms:
            lines.append(
                "ORDER BY (scan order)"
                if not need_sort
                else "SORT BY "
                + ", ".join(
                    sql_text(t[2].expr) + (" DESC" if t[2].desc else "") for t in order_terms
                )
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
            slots = self._plain_slots(columns, scope, agg)
            if slots is not None:
                project = itemgetter(*slots)
            else:
                project = lambda r: tuple([p(r) for p in proj_fns])  # noqa: E731
        apply_limit = self._apply_limit
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

        def run() -> Iterator[tuple[Any, ...]]:
            rows: Any = source()
            if agg_run is not None:
                rows = agg_run(rows)
                if having is not None:
                    rows = filter(having, rows)
            if not need_sort:
                out = map(project, rows)
                if distinct:
                    out = _distinct(out)
                return apply_limit(out, lf, of)
            if only_out and not distinct:
                items = [((), project(r)) for r in rows]
            elif distinct:
                items = []
                seen = set()
                for r in rows:
                    p = project(r)
                    if p not in seen:
                        seen.add(p)
                        items.append((r, p))
            else:
                items = [(r, project(r)) for r in rows]
            if has_limit and of is None and lf is not None:
                n = lf(())
                if type(n) is int and 0 <= n < len(items) // 4:
                    return iter([p for _, p in top_rows(iter(items), sort_terms, n)])
            items = sort_rows(items, sort_terms)
            return apply_limit((p for _, p in items), lf, of)

        return SelectPlan(names, affs, run, lines, scope.correlated)

    def _plain_slots(
        self, columns: list[ast.ResultColumn], scope: Scope, agg: AggMap | None
    ) -> list[int] | None:
        if agg is not None:
            return None
        slots = []
        for rc in columns:
            if not isinstance(rc.expr, ast.Column):
                return None
            depth, slot, _, _ = scope.resolve(rc.expr)
            if depth != 0:
                return None
            slots.append(slot)
        return slots

    @staticmethod
    def _resolve_alias(
        g: ast.Expr, columns: list[ast.ResultColumn], aliases: dict[str, int]
    ) -> ast.Expr:
        if isinstance(g, ast.Literal) and type(g.value) is int:
            if not 1 <= g.value <= len(columns):
                raise SQLError(
                    f"GROUP BY term out of range - should be between 1 and {len(columns)}"
                )
            return columns[g.value - 1].expr
        if isinstance(g, ast.Column) and g.table is None and g.name.lower() in aliases:
            return columns[aliases[g.name.lower()]].expr
        return g

    def _aggregate(self, agg: AggMap, scope: Scope) -> Callable[[Iterator[Any]], Iterator[Any]]:
        ec = self.ec
        key_fns = [ec.compile(k, scope) for k in agg.keys]
        specs = []
        for a in agg.aggs:
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
            if a.name in ("GROUP_CONCAT", "STRING_AGG"):
                if len(a.args) > 2:
                    raise SQLError(f"wrong number of arguments to function {a.name}()")
                extra_fns = [ec.compile(x, scope) for x in a.args[1:]]
            elif len(a.args) != 1:
                raise SQLError(f"wrong number of arguments to function {a.name}()")
            else:
                extra_fns = []
            for x in a.args:
                if contains_aggregate(x):
                    raise SQLError(f"misuse of aggregate function {a.name}()")
            specs.append((fn, ec.compile(a.args[0], scope), a.distinct, extra_fns))
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
            for fn, arg, distinct, extra in specs:
                if fn is None:
                    out.append(len(grp))
                    continue
                vals = list(map(arg, grp))
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
            # bare columns and subqueries read the group's last row (a row of
            # NULLs for the one group of an empty input, as in SQLite); with a
            # single MIN() or MAX(), the row that holds that minimum or maximum
            last = grp[-1] if grp else null_row
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

        def run(rows: Iterator[Any]) -> Iterator[Any]:
            if not grouped:
                yield finish(None, list(rows))
                return
            groups: dict[Any, list[Any]] = {}
            get = groups.get
            for r in rows:
                k = keyf(r)
                g = get(k)
                if g is None:
                    groups[k] = [r]
                else:
                    g.append(r)
            keys = list(groups)
            try:
                keys.sort() if nkeys == 1 else keys.sort(
                    key=lambda k: tuple(sort_key(x) for x in k)
                )
            except TypeError:
                keys.sort(key=sort_key)
            for k in keys:
                yield finish(k, groups[k])

        return run

    def _plan_values(
        self,
        core: ast.SelectCore,
        parent: Scope | None,
        order_by: list[ast.OrderItem],
        limit: ast.Expr | None,
        offset: ast.Expr | None,
    ) -> SelectPlan:
        rows_ast = core.values or []
        width = len(rows_ast[0])
        for r in rows_ast:
            if len(r) != width:
                raise SQLError("all VALUES must have the same number of terms")
        scope = Scope([], parent)
        fns = [[self.ec.compile(e, scope) for e in r] for r in rows_ast]
        names = [f"column{i + 1}" for i in range(width)]
        lf, of = self._limit_fns(limit, offset)
        terms = []
        for o in order_by:
            ok, v = self.ec.constant(o.expr)
            if ok and type(v) is int and 1 <= v <= width:
                terms.append((itemgetter(v - 1), o.desc, o.nulls_first))
            else:
                raise SQLError("ORDER BY on VALUES must name a column by position")
        apply_limit = self._apply_limit

        def run() -> Iterator[tuple[Any, ...]]:
            out = [tuple(f(()) for f in r) for r in fns]
            if terms:
                out = sort_rows(out, terms)
            return apply_limit(iter(out), lf, of)

        return SelectPlan(
            names, [None] * width, run, [f"VALUES ({len(rows_ast)} rows)"], scope.correlated
        )

    def _plan_compound(self, select: ast.Select, parent: Scope | None) -> SelectPlan:
        plans = [self._plan_core(c, parent, [], None, None) for c in select.cores]
        width = plans[0].ncolumns
        for p in plans[1:]:
            if p.ncolumns != width:
                raise SQLError(
                    "SELECTs to the left and right of UNION do not have the same number of result columns"
                )
        names = plans[0].columns
        lower = {n.lower(): i for i, n in reversed(list(enumerate(names)))}
        terms = []
        for o in select.order_by:
            ok, v = self.ec.constant(o.expr)
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
            terms.append((itemgetter(idx), o.desc, o.nulls_first))
        lf, of = self._limit_fns(select.limit, select.offset)
        ops = select.ops
        apply_limit = self._apply_limit
        sort_key = T.sort_key

        def canon(row: tuple[Any, ...]) -> tuple[Any, ...]:
            return row

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
        return SelectPlan(names, plans[0].affinities, run, lines, correlated)


def _distinct(rows: Iterator[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    seen = set()
    for r in rows:
        if r not in seen:
            seen.add(r)
            yield r


__all__ = ["Planner", "SelectPlan", "split_and", "sql_text", "ROWID_NAMES", "is_aggregate_call"]
