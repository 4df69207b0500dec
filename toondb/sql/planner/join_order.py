"""The order of inner joins, chosen by estimated cost (planner rule 3a).

Row counts are the storage's maintained entry counts of each table's tree
(``Tree.count()``, O(1); no ANALYZE step). They are read while the statement is
compiled, from the transaction set in :data:`PLANNING_TXN`; the counts used are
recorded in ``Ctx.size_marks`` so that a cached plan is made again when a table
has grown or shrunk by more than a factor of 4 (engine.compiled_for).

The cost model (in units of one row read by a scan):

* the first table: its rows (a constant rowid probe: 1; a constant index probe:
  a tenth; each other conjunct on it alone: a quarter);
* each next table: through an index or rowid probe on the rows so far,
  ``SEEK`` per outer row; otherwise a hash join or a read-once loop that reads
  it once (``SETUP`` plus its rows) plus one lookup per outer row;
* the rows out of a step: a probe or an equality join gives as many rows as the
  larger side (a key joined to its foreign key), anything else the product.

Every order is costed for up to ``EXHAUSTIVE`` tables, beyond that a greedy
choice of the cheapest next table; the written order is kept unless the best is
estimated ``KEEP_WRITTEN`` times cheaper, or when no table has ``SMALL`` rows. A FROM clause with LEFT JOIN, USING or a
k-NN request keeps the written order.
"""

from __future__ import annotations

import contextvars
from itertools import permutations
from typing import Any

from toondb.sql import ast
from toondb.sql.catalog import TableInfo
from toondb.sql.executor import RowidEq
from toondb.sql.planner.common import PlannerContext, refs
from toondb.sql.scope import Scope, Source

PLANNING_TXN: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "toondb_planning_txn", default=None
)
SEEK = 4.0  # one index or rowid probe, in rows scanned
SMALL = 1000  # when no table has this many rows, the written order stands
SETUP = 10.0  # building a hash table or a read-once list, whatever its size
EXHAUSTIVE = 6
KEEP_WRITTEN = 1.25  # another order must be estimated this many times cheaper
UNKNOWN_ROWS = 1000  # a subquery, a WITH name, a table-valued function


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
    if max(counts) < SMALL:
        return list(range(n))  # any order is cheap: the written one stands
    conj_refs = []
    for c in conjs:
        r = refs(c, scope)
        conj_refs.append(set(range(n)) if r is None else r)
    memo: dict[tuple[int, frozenset[int]], tuple[float, float, bool, bool]] = {}

    def step(k: int, placed: frozenset[int]) -> tuple[float, float, bool, bool]:
        """Joining k after the sources placed: (rows read from k alone, rows of k
        left after its own conjuncts, probed by the outer row?, equality join?)."""
        key = (k, placed)
        hit = memo.get(key)
        if hit is not None:
            return hit
        avail = placed | {k}
        usable = [c for c, r in zip(conjs, conj_refs) if k in r and r <= avail]
        eq_join = any(
            isinstance(c, ast.Binary) and c.op == "=" and len(r) > 1
            for c, r in zip(conjs, conj_refs)
            if k in r and r <= avail
        )
        read = rows = counts[k]
        probe = False
        if isinstance(payloads[k], TableInfo):
            access, dep, _ = choose_access(planner, scope, k, usable, set(placed))
            if access is not None and dep:
                probe = True
            elif access is not None:
                read = rows = 1.0 if isinstance(access, RowidEq) else max(1.0, rows / 10)
        for r in conj_refs:
            if r == {k}:
                rows = max(1.0, rows / 4)
        memo[key] = (read, rows, probe, eq_join)
        return memo[key]

    def cost(order: tuple[int, ...] | list[int]) -> float:
        total = out = 0.0
        placed: frozenset[int] = frozenset()
        for i, k in enumerate(order):
            read, rows, probe, eq = step(k, placed)
            if i == 0:
                total, out = read, rows
            else:
                after = max(out, rows) if eq else out * rows
                if probe:
                    total += out * SEEK + after
                else:
                    total += SETUP + read + out + after
                out = after
            placed = placed | {k}
        return total

    if n <= EXHAUSTIVE:
        order = list(min(permutations(range(n)), key=lambda o: (cost(tuple(o)), tuple(o))))
    else:
        order = []
        left = set(range(n))
        while left:
            k = min(left, key=lambda j: (cost(order + [j]), j))
            order.append(k)
            left.discard(k)
    written = list(range(n))
    # estimates are rough: the order written stands unless clearly worse
    if cost(order) * KEEP_WRITTEN >= cost(written):
        return written
    return order
