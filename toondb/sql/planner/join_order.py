"""The order of inner joins, chosen by estimated cost (planner rule 3a).

Row counts are the storage's maintained entry counts of each table's tree
(``Tree.count()``, O(1); no ANALYZE step). They are read while the statement is
compiled, from the transaction set in :data:`PLANNING_TXN`; the counts used are
recorded in ``Ctx.size_marks`` so that a cached plan is made again when a table
has grown or shrunk by more than a factor of 4 (engine.compiled_for).

The model, after SQLite's query planner (optoverview.html, queryplanner-ng.html),
in units of one row read by a scan:

* a column's distinct values: its table's rows when it is the rowid or a
  one-column UNIQUE index (or PRIMARY KEY), else a tenth of them (SQLite's
  default of 10 rows per index key); an expression that is not a column: 1;
* a conjunct's selectivity: an equality ``x = y`` (or ``IS``) keeps
  1/max(distinct(x), distinct(y), 4) of the rows, an ``IN`` list that many times
  its length, a comparison, ``BETWEEN``, ``LIKE`` or a full-text ``MATCH`` a quarter,
  anything else 0.9;
* the rows out of a set of tables: the product of their rows and of the
  selectivities of the conjuncts they bind (the same whatever their order);
* joining table k after the tables placed (their rows out: ``outer``), with the
  access path access.py would choose from the conjuncts then usable (every
  WHERE term applies at the earliest step where its tables are bound): a probe
  bound by an outer column costs ``outer * (SEEK + rows fetched)`` (a rowid or
  unique lookup fetches ~1 row, an index equality rows/distinct); otherwise the
  table is read once (``SETUP`` plus the rows its access fetches) and joined by
  a hash join on an equality (one lookup per outer row) or else by a nested loop
  (every outer row against every inner row); each step also pays its rows out.

The search is SQLite's N-best path search over sets of tables: level by level,
every path extended by every table not in it, the cheapest path kept for each
set of tables, and the ``BEAM`` cheapest sets kept (every set up to
``EXHAUSTIVE`` tables, which makes the search exact there). Ties go to the order
closest to the written one. The written order stands when its estimated cost is
under ``SMALL_COST`` (any order is cheap) or the best is not ``KEEP_WRITTEN``
times cheaper. A FROM clause with LEFT JOIN, USING or a k-NN request keeps the
written order (joins.plan_from).
"""

from __future__ import annotations

import contextvars
from typing import Any

from toondb.errors import SchemaError
from toondb.sql import ast
from toondb.sql.catalog import TableInfo
from toondb.sql.executor import IndexScan, RowidIn, RowidRange
from toondb.sql.planner.common import PlannerContext, refs
from toondb.sql.scope import Scope, Source

PLANNING_TXN: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "toondb_planning_txn", default=None
)
SEEK = 4.0  # one index or rowid probe, in rows scanned
SETUP = 10.0  # building a hash table or a read-once list, whatever its size
SMALL_COST = 1000.0  # a written order estimated under this many rows read stands
EXHAUSTIVE = 10  # up to this many tables every set of tables is kept (exact)
BEAM = 16  # beyond, the number of cheapest partial paths kept per level
KEEP_WRITTEN = 1.25  # another order must be estimated this many times cheaper
UNKNOWN_ROWS = 1000  # a subquery, a WITH name, a table-valued function
RANGE = 0.25  # a comparison's selectivity (SQLite's LogEst -20 per bound)
OTHER = 0.9  # the selectivity of any other conjunct


def row_count(planner: PlannerContext, table: TableInfo) -> int:
    """The table's row count now (recorded for re-planning), or UNKNOWN_ROWS."""
    txn = PLANNING_TXN.get()
    if txn is None or txn.closed:
        return UNKNOWN_ROWS
    try:
        if not txn.has_tree(table.tree):
            n = 0
        else:
            n = txn.tree(table.tree).count()
    except Exception:  # noqa: BLE001 - a count is only an estimate
        return UNKNOWN_ROWS
    marks = planner.ctx.size_marks
    if marks is not None:
        marks[table.tree] = n
    return int(n)


def size_class(n: int) -> int:
    """Counts within a factor of 4 of each other mostly share a class."""
    return n.bit_length() // 2


def distinct_values(e: ast.Expr, scope: Scope, counts: list[float]) -> float:
    """Estimated distinct values of e over its table (1 when e is no column of
    this scope's sources: a constant, a parameter, an outer column)."""
    if not isinstance(e, ast.Column):
        return 1.0
    try:
        depth, slot, _, src = scope.resolve(e)
    except SchemaError:
        return 1.0
    if depth != 0 or src is None:
        return 1.0
    j = scope.sources.index(src)
    n = counts[j]
    table = src.table
    if table is not None:
        ci = slot - src.offset
        if slot == src.rowid_slot() or table.rowid_col == ci:
            return n
        if any(ix.unique and ix.col_idx == [ci] for ix in table.indexes):
            return n
    return max(1.0, n / 10)


def is_match(c: ast.Expr) -> bool:
    """Whether c is a full-text MATCH (planner/fts.py's rewritten form)."""
    return isinstance(c, ast.Func) and c.name == "__FTS_MATCH"


def selectivity(c: ast.Expr, scope: Scope, counts: list[float]) -> float:
    """The share of rows conjunct c keeps (see the module docstring)."""
    if isinstance(c, ast.Binary) and c.op in ("=", "==", "IS"):
        d = max(distinct_values(c.left, scope, counts), distinct_values(c.right, scope, counts))
        return 1.0 / max(d, 4.0)
    if isinstance(c, ast.InList) and not c.negated:
        d = max(distinct_values(c.expr, scope, counts), 4.0)
        return min(1.0, max(1, len(c.items)) / d)
    if isinstance(c, ast.Binary) and c.op in ("<", "<=", ">", ">="):
        return RANGE
    if isinstance(c, (ast.Between, ast.Like)) and not c.negated or is_match(c):
        return RANGE
    return OTHER


def choose_order(
    planner: PlannerContext,
    sources: list[Source],
    payloads: list[Any],
    conjs: list[ast.Expr],
    parent: Scope | None,
) -> list[int]:
    """The order to join the FROM items in (indexes into sources)."""
    from toondb.sql.planner.access import choose_access  # access imports common only

    n = len(sources)
    scope = Scope(sources, parent)
    counts = [
        max(1.0, float(row_count(planner, p))) if isinstance(p, TableInfo) else float(UNKNOWN_ROWS)
        for p in payloads
    ]
    everything = (1 << n) - 1
    # each conjunct: the sources it reads (a bit mask; a subquery reads them all)
    masks: list[int] = []
    sels: list[float] = []
    for c in conjs:
        r = refs(c, scope)
        masks.append(everything if r is None else sum(1 << i for i in r))
        sels.append(selectivity(c, scope, counts))
    mine = [[t for t, m in enumerate(masks) if m >> k & 1] for k in range(n)]
    # an equality usable as a hash join key for k: one side reads k alone
    hashable: list[set[int]] = [set() for _ in range(n)]
    for t, c in enumerate(conjs):
        if isinstance(c, ast.Binary) and c.op in ("=", "=="):
            for a in (c.left, c.right):
                r = refs(a, scope)
                if r is not None and len(r) == 1:
                    hashable[next(iter(r))].add(t)
    memo: dict[tuple[int, tuple[int, ...]], tuple[float, float, bool, bool, float]] = {}

    def access_of(k: int, placed: int) -> tuple[float, float, bool, bool, float]:
        """Table k joined after the sources in placed: (rows fetched per read,
        rows left after its own conjuncts, probed per outer row?, hash join
        possible?, the selectivity of the conjuncts it completes)."""
        avail = placed | 1 << k
        usable = [t for t in mine[k] if masks[t] & avail == masks[t]]
        key = (k, tuple(usable))
        hit = memo.get(key)
        if hit is not None:
            return hit
        sel = 1.0
        for t in usable:
            sel *= sels[t]
        rows = counts[k]
        fetched = rows
        dep = False
        consumed: list[int] = []
        if isinstance(payloads[k], TableInfo) and payloads[k].fulltext is not None:
            # read by its own access (fts.py): what a MATCH on it alone finds, or all
            consumed = [t for t in usable if masks[t] == 1 << k and is_match(conjs[t])]
            for t in consumed:
                fetched *= sels[t]
            fetched = max(1.0, fetched)
        elif isinstance(payloads[k], TableInfo):
            allowed = {i for i in range(n) if placed >> i & 1}
            access, dep, _ = choose_access(planner, scope, k, [conjs[t] for t in usable], allowed)
            if access is not None:
                consumed = [t for t in usable if any(conjs[t] is u for u in access.consumed)]
                for t in consumed:
                    fetched *= sels[t]
                bounds = 0
                if isinstance(access, (IndexScan, RowidRange)):
                    lo, hi = access.lo, access.hi
                    bounds = (lo is not None) + (hi is not None)
                if isinstance(access, RowidIn):
                    fetched = float(len(access.probes))
                fetched = max(1.0, fetched * RANGE**bounds)
        own = fetched
        for t in usable:
            if masks[t] == 1 << k and t not in consumed:
                own *= sels[t]
        hashed = any(t in hashable[k] and masks[t] != 1 << k and masks[t] & placed for t in usable)
        memo[key] = (fetched, max(1.0, own), dep, hashed, sel)
        return memo[key]

    def step(k: int, placed: int, out: float) -> tuple[float, float]:
        """(the cost of joining k after placed, the rows out after it); out: the
        estimated rows of placed (not floored, so that it is the same in any order)."""
        fetched, own, dep, hashed, sel = access_of(k, placed)
        after = out * counts[k] * sel
        outer = max(1.0, out)
        if not placed:
            return fetched + max(1.0, after), after
        if dep:
            cost = outer * (SEEK + fetched)
        elif hashed:
            cost = SETUP + fetched + outer
        else:
            cost = SETUP + fetched + outer * own
        return cost + max(1.0, after), after

    def cost_of(order: list[int]) -> float:
        total, out, placed = 0.0, 1.0, 0
        for k in order:
            c, out = step(k, placed, out)
            total += c
            placed |= 1 << k
        return total

    written = list(range(n))
    written_cost = cost_of(written)
    if written_cost < SMALL_COST:
        return written  # any order is cheap: the written one stands
    # N-best search: for each set of tables placed, (cost, rows out, order)
    paths: dict[int, tuple[float, float, list[int]]] = {0: (0.0, 1.0, [])}
    for _ in range(n):
        nxt: dict[int, tuple[float, float, list[int]]] = {}
        for placed, (total, out, order) in paths.items():
            for k in range(n):
                if placed >> k & 1:
                    continue
                cost, after = step(k, placed, out)
                cand = (total + cost, after, order + [k])
                m = placed | 1 << k
                cur = nxt.get(m)
                if cur is None or (cand[0], cand[2]) < (cur[0], cur[2]):
                    nxt[m] = cand
        if n > EXHAUSTIVE and len(nxt) > BEAM:
            best = sorted(nxt.items(), key=lambda kv: (kv[1][0], kv[1][1], kv[1][2]))[:BEAM]
            nxt = dict(best)
        paths = nxt
    best_cost, _, order = paths[everything]
    # estimates are rough: the order written stands unless clearly worse
    if best_cost * KEEP_WRITTEN >= written_cost:
        return written
    return order
