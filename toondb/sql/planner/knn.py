"""k-nearest-neighbour queries through an HNSW index (planner rule 6).

``SELECT ... FROM t [JOIN ...] WHERE ... ORDER BY vec_distance_<metric>(t.col, ?) LIMIT k``
(the ORDER BY term also through an alias of the select list) reads ``t`` through
``KnnScan`` when ``t`` is the first FROM item, ``t.col`` has an HNSW index of that
metric, the other argument reads no table, the order is ascending and there is no
GROUP BY, aggregate or DISTINCT. ``KnnScan`` yields ``t``'s rows that pass the
conjuncts on ``t`` alone, nearest first, for as long as its consumer asks (the joins
after it keep that order; the select core takes LIMIT + OFFSET rows and sorts those
few by the ORDER BY values). Without such an index, or without a LIMIT, the query is
the plain plan: every row, its distance computed, sorted (the same rows).

The strategy, chosen per execution (docs/vector.md, "Filtered search"):

1. no conjunct on t: the index's k nearest (its search widened when the joins after
   it drop rows);
2. prefilter: when a conjunct on t has an access path (an index or a rowid range)
   and that path yields at most ``prefilter_cap`` rows, their rowids are the
   search's filter: the kernel answers exactly min(k, allowed) of them, by an exact
   scan when they are few, else by a graph traversal that applies the filter
   (toondb/vector/_filter.pxi);
3. postfilter: otherwise the index's nearest rows are read and the conjuncts
   tested on them, the search widened by the fraction that passed until enough
   pass; past a quarter of the table, the exact scan of the table finishes (for
   the ip metric as soon as less than 40% pass, as the kernel does).

Rows whose vector is NULL are not in the index: their distance is NULL, so they
come first (NULLS FIRST, SQLite's default for ASC) or last (NULLS LAST), found by a
scan of the table when the index holds fewer rows than the table.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from toondb.codec.keycode import rowid_key
from toondb.codec.rowcodec import decode_row
from toondb.errors import SchemaError
from toondb.sql import ast, hnsw
from toondb.sql import types as T
from toondb.sql.catalog import TableInfo
from toondb.sql.executor import Access, IndexScan, Row
from toondb.sql.expressions import Scope
from toondb.sql.fn_vector import DISTANCE_OF_METRIC, to_blob
from toondb.sql.planner.common import (
    Fn,
    PlannerContext,
    and_all,
    refs,
    shifted_scope,
    sql_text,
    table_defaults,
)

__all__ = ["KnnRequest", "knn_request", "knn_access", "KnnScan", "prefilter_cap"]

_METRIC_OF = {v: k for k, v in DISTANCE_OF_METRIC.items()}
PREFILTER_WORK = 20.0  # prefilter_cap's constant (docs/vector.md: what each strategy costs)
POSTFILTER_EXACT_FROM = 0.25  # past this fraction of the table read, the exact scan
IP_GRAPH_FROM = 0.4  # ip: the graph only when this fraction passes (the kernel's GRAPH_FROM)


def prefilter_cap(need: int, live: int) -> int:
    """The most rows a prefilter collects: collecting one costs about a twentieth of
    reading and testing one row of the postfilter, which reads about need / s rows
    (s = the fraction that passes), so the prefilter wins below n = sqrt(20 need live)."""
    return max(256, int(math.sqrt(PREFILTER_WORK * max(need, 1) * max(live, 1))))


class KnnRequest:
    """An ORDER BY vec_distance_*(...) LIMIT the select core hands to plan_from."""

    __slots__ = ("func", "nulls_first", "limit", "offset")

    def __init__(self, func: ast.Func, nulls_first: bool, limit: Any, offset: Any) -> None:
        self.func = func
        self.nulls_first = nulls_first
        self.limit = limit
        self.offset = offset


def knn_request(
    core: ast.SelectCore,
    order_by: list[ast.OrderItem],
    limit: ast.Expr | None,
    offset: ast.Expr | None,
    aggregated: bool,
) -> KnnRequest | None:
    """The request when the statement has the k-NN shape (the module's docstring),
    before its tables are resolved; None otherwise."""
    if limit is None or len(order_by) != 1 or aggregated or core.distinct:
        return None
    o = order_by[0]
    if o.desc:
        return None
    e = o.expr
    if isinstance(e, ast.Column) and e.table is None:  # an alias of the select list
        for rc in core.columns:
            if rc.alias is not None and rc.alias.lower() == e.name.lower():
                e = rc.expr
                break
    if not (isinstance(e, ast.Func) and e.name in _METRIC_OF and len(e.args) == 2):
        return None
    return KnnRequest(e, o.nulls_first is not False, limit, offset)


def knn_access(
    planner: PlannerContext, scope: Scope, conds: list[ast.Expr], req: KnnRequest
) -> KnnScan | None:
    """KnnScan for source 0 of scope when req's distance is on its indexed column."""
    src = scope.sources[0]
    table: TableInfo = src.table
    metric = _METRIC_OF[req.func.name]
    for col, probe in (req.func.args, req.func.args[::-1]):
        if not isinstance(col, ast.Column):
            continue
        try:
            depth, slot, _, s = scope.resolve(col)
        except SchemaError:
            continue
        if depth != 0 or s is not src:
            continue
        r = refs(probe, scope)
        if r is None or r:
            continue  # the query vector must not read the tables
        ci = slot - src.offset
        for vx in table.vector_indexes:
            if vx.col_idx == ci and vx.metric == metric:
                return KnnScan(planner, scope, conds, req, vx, probe)
    return None


class KnnScan(Access):
    """The rows of the first FROM table that pass its own conjuncts, nearest first
    (the module's docstring)."""

    def __init__(
        self,
        planner: PlannerContext,
        scope: Scope,
        conds: list[ast.Expr],
        req: KnnRequest,
        vx: Any,
        probe: ast.Expr,
    ) -> None:
        from toondb.sql.planner.access import choose_access

        ec = planner.ec
        self.ctx = planner.ctx
        self.table = scope.sources[0].table
        self.vx = vx
        self.req = req
        self.defaults: tuple[Any, ...] = table_defaults(self.table)
        self.query: Fn = ec.compile(probe, None)
        self.what = f"the query vector of {req.func.name.lower()}()"
        shifted = shifted_scope(scope, 0)
        own = [c for c in conds if refs(c, scope) == {0}]
        self.own = own
        self.consumed = own  # KnnScan tests them all (plan_from applies no other filter)
        self.own_pred: Fn | None = and_all([ec.compile(c, shifted, True) for c in own])
        self.distance: Fn = ec.compile(req.func, shifted)
        self.limit: Fn | None = ec.compile(req.limit, None)
        self.offset: Fn | None = ec.compile(req.offset, None) if req.offset is not None else None
        # the prefilter: an access path of the conjuncts on t (not a scan of everything)
        self.pre: Access | None = None
        self.pre_pred: Fn | None = None
        if own:
            acc, dep, _ = choose_access(planner, scope, 0, own, set())
            if acc is not None and not dep:
                acc.defaults = self.defaults
                self.pre = acc
                rest = [c for c in own if not any(c is u for u in acc.consumed)]
                self.pre_pred = and_all([ec.compile(c, shifted, True) for c in rest])
        self.pred_text = " AND ".join(sql_text(c) for c in own)
        self.label = (
            f"SEARCH {self.table.name} USING HNSW INDEX {vx.name} "
            f"({sql_text(req.func)}, {vx.metric})"
        )

    # -- EXPLAIN

    def explain(self) -> str:
        return self.label

    def strategy_lines(self) -> list[str]:
        if not self.own:
            return ["  STRATEGY the index's nearest rows (ef = PRAGMA hnsw_ef_search)"]
        post = (
            "the index's nearest rows filtered after, the search widened until LIMIT pass "
            "(the exact scan past a quarter of the table)"
        )
        if self.pre is not None:
            return [
                f"  STRATEGY prefilter by {self.pre.explain()} when it yields at most "
                "sqrt(20 * LIMIT * rows) rows (their exact scan, or a graph search with their "
                f"filter, by their fraction); else {post}"
            ]
        return [f"  STRATEGY postfilter: {post}"]

    # -- running

    def rows(self, outer: Row) -> Iterator[Row]:
        q = self.query(outer)
        need = self._need()
        if q is None or need is None:
            if q is not None:
                to_blob(q, self.vx.dim, self.what)  # a bad query vector raises as the plain plan's
            yield from self._exact()
            return
        q = to_blob(q, self.vx.dim, self.what)
        ctx = self.ctx
        m = hnsw.method()
        tree = ctx.tree(self.table.tree)
        live = m.live(ctx.txn, self.vx)
        nulls = len(tree) > live
        first = self.req.nulls_first
        if nulls and first:
            yield from self._null_rows(tree)
        allowed = None
        if self.pre is not None:
            allowed = self._prefilter(outer, prefilter_cap(need, live))
        if allowed is not None:
            yield from self._searched(q, need, allowed, self.pre_pred, live)
        elif self.own_pred is None:
            yield from self._searched(q, need, None, None, live)
        else:
            yield from self._postfiltered(q, need, live, tree)
        if nulls and not first:
            yield from self._null_rows(tree)

    def _need(self) -> int | None:
        """LIMIT + OFFSET, or None when there is no limit (a negative LIMIT)."""
        v = self.limit(()) if self.limit is not None else None
        n = T.cast(v, "INTEGER") if v is not None else -1
        if n < 0:
            return None
        off = 0
        if self.offset is not None:
            ov = self.offset(())
            off = max(T.cast(ov, "INTEGER"), 0) if ov is not None else 0
        return max(n + off, 1)

    def _row(self, tree: Any, rid: int) -> Row | None:
        key = rowid_key(rid)
        v = tree.get(key)
        return None if v is None else decode_row(v, self.defaults, key)

    def _searched(
        self, q: bytes, need: int, allowed: Any, pred: Fn | None, live: int
    ) -> Iterator[Row]:
        """The index's nearest rows (among allowed), widened while the consumer asks."""
        ctx = self.ctx
        m = hnsw.method()
        tree = ctx.tree(self.table.tree)
        ef = hnsw.ef_search(ctx)
        seen: set[int] = set()
        kk = need
        while True:
            rids, _ = m.search(ctx.txn, self.vx, q, kk, max(ef, kk), allowed)
            for rid in rids.tolist():
                if rid in seen:
                    continue
                seen.add(rid)
                row = self._row(tree, rid)
                if row is not None and (pred is None or pred(row)):
                    yield row
            if len(rids) < kk or kk >= live:
                return
            kk *= 4

    def _postfiltered(self, q: bytes, need: int, live: int, tree: Any) -> Iterator[Row]:
        """The index's nearest rows, the conjuncts tested on each, the search widened
        by the fraction that passes; the exact scan past a quarter of the table."""
        ctx = self.ctx
        m = hnsw.method()
        ef = hnsw.ef_search(ctx)
        pred = self.own_pred
        seen: set[int] = set()
        passed = 0
        kk = max(2 * need, 16)
        while True:
            if kk > POSTFILTER_EXACT_FROM * live:
                yield from self._exact(seen)
                return
            rids, _ = m.search(ctx.txn, self.vx, q, kk, max(ef, kk), None)
            for rid in rids.tolist():
                if rid in seen:
                    continue
                seen.add(rid)
                row = self._row(tree, rid)
                if row is not None and (pred is None or pred(row)):
                    passed += 1
                    yield row
            if len(rids) < kk:
                return  # every row of the index was read
            rate = (passed + 1) / (len(seen) + 2)
            if self.vx.metric == "ip" and rate < IP_GRAPH_FROM:
                # under the inner product the graph reaches a filtered set's short
                # vectors poorly (toondb/vector/_filter.pxi): the exact scan answers
                yield from self._exact(seen)
                return
            kk = max(4 * kk, int(1.5 * max(need, 2 * passed) / rate))

    def _prefilter(self, outer: Row, cap: int) -> Any:
        """The rowids the prefilter's access path yields (int64 array; a superset of
        the rows passing the conjuncts), or None when there are more than cap."""
        import numpy as np

        acc = self.pre
        if isinstance(acc, IndexScan) and acc.in_probes is None:
            # the index alone: its entries' values are the rows' keys
            itree = self.ctx.tree(acc.index.tree)
            vals: list[bytes] = []
            for start, end in acc._ranges(outer):
                for _, v in itree.scan(start, end):
                    vals.append(v)
                    if len(vals) > cap:
                        return None
            keys = np.frombuffer(b"".join(vals), dtype=">u8")
            return (keys ^ np.uint64(1 << 63)).astype(np.uint64).view(np.int64)
        rids = []
        for r in acc.rows(outer):  # type: ignore[union-attr]
            rids.append(r[-1])
            if len(rids) > cap:
                return None
        return np.array(rids, dtype=np.int64)

    def _null_rows(self, tree: Any) -> Iterator[Row]:
        """The rows whose vector is NULL (not in the index), passing the conjuncts."""
        ci = self.vx.col_idx
        pred = self.own_pred
        for k, v in tree.scan():
            r = decode_row(v, self.defaults, k)
            if r[ci] is None and (pred is None or pred(r)):
                yield r

    def _exact(self, seen: set[int] | None = None) -> Iterator[Row]:
        """Every row passing the conjuncts and not yet yielded, by distance (NULL
        first or last as the ORDER BY says): the exact scan."""
        tree = self.ctx.tree(self.table.tree)
        pred = self.own_pred
        dist = self.distance
        found = []
        nulls = []
        for k, v in tree.scan():
            r = decode_row(v, self.defaults, k)
            if seen is not None and r[-1] in seen:
                continue
            if pred is not None and not pred(r):
                continue
            d = dist(r)
            if d is None:
                nulls.append(r)
            else:
                found.append((d, r))
        found.sort(key=lambda item: item[0])
        if self.req.nulls_first and seen is None:
            yield from nulls
        for _, r in found:
            yield r
        if not self.req.nulls_first and seen is None:
            yield from nulls
