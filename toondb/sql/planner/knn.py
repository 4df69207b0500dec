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
   that yields few rows, their rowids are the search's filter: the kernel answers
   exactly min(k, allowed) of them, by an exact scan when they are few, else by a
   graph traversal that applies the filter (toondb/vector/_filter.pxi). "Few" is
   first what a probe (below) costs: 50 * 2k rows;
3. otherwise a probe: the index's 2k nearest rows (at least 16), the conjuncts
   tested on each; those that pass are the nearest that pass (when k pass, that is
   all), and the fraction that passes estimates the selectivity. The prefilter's
   collection then goes on up to ``prefilter_cap`` rows (what the postfilter would
   cost at that selectivity);
4. postfilter: past that, the search is widened by the fraction that passed until
   enough pass; past a quarter of the table, the exact scan of the table finishes
   (for the ip metric as soon as less than 40% pass, as the kernel does).

Rows whose vector is NULL are not in the index: their distance is NULL, so they
come first (NULLS FIRST, SQLite's default for ASC) or last (NULLS LAST), found by a
scan of the table when the index holds fewer rows than the table.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain, islice
from operator import itemgetter
from typing import Any

from toondb.codec.keycode import rowid_key
from toondb.codec.rowcodec import decode_row
from toondb.errors import SchemaError
from toondb.sql import ast, hnsw
from toondb.sql import types as T
from toondb.sql.catalog import TableInfo
from toondb.sql.executor import Access, IndexScan, Row
from toondb.sql.fn_vector import DISTANCE_OF_METRIC, to_blob
from toondb.sql.planner.common import (
    Fn,
    PlannerContext,
    and_all,
    refs,
    shifted_scope,
    sql_text,
    table_defaults,
    top_k_term,
)
from toondb.sql.scope import Scope

__all__ = ["KnnRequest", "knn_request", "knn_access", "KnnScan", "prefilter_cap"]

_METRIC_OF = {v: k for k, v in DISTANCE_OF_METRIC.items()}
POSTFILTER_EXACT_FROM = 0.25  # past this fraction of the table read, the exact scan
IP_GRAPH_FROM = 0.4  # ip: the graph only when this fraction passes (the kernel's GRAPH_FROM)
PROBE_MIN = 16  # the probe reads at least this many of the nearest rows
# reading and testing one candidate row (a row fetch, a decode, the conjuncts, a share
# of a search with a large ef) costs about this many index entries collected by the
# prefilter (their rowids mapped to the index's ids and made its filter): measured on
# 30k x 384 rows, 15 us against 0.3 us
READ_VS_COLLECT = 50


def prefilter_cap(need: int, rate: float) -> int:
    """The most rows the prefilter collects: the postfilter would read about need / rate
    more rows (rate: the fraction of the probe that passed), each costing
    READ_VS_COLLECT index entries."""
    return max(256, int(READ_VS_COLLECT * need / max(rate, 1e-9)))


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
    term = top_k_term(core, order_by, limit, aggregated)
    if term is None or term[0].desc:
        return None
    o, e = term
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
        self.query: Fn = ec.compile(probe, scope)  # parameters, literals, outer columns
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
                f"  STRATEGY prefilter by {self.pre.explain()} when it yields few rows (their "
                "exact scan, or a graph search with their filter, by their fraction); else "
                "probe the index's 2 * LIMIT nearest rows, then the prefilter if it yields "
                f"few for the fraction that passed, else {post}"
            ]
        return [f"  STRATEGY probe the index's 2 * LIMIT nearest rows; then {post}"]

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
        tree = ctx.tree(self.table.tree)
        live = hnsw.method().live(ctx.txn, self.vx)
        nulls = len(tree) > live
        first = self.req.nulls_first
        if nulls and first:
            yield from self._null_rows(tree)
        if self.own_pred is None:
            yield from self._searched(q, need, None, None, live, set())
        else:
            yield from self._filtered(outer, q, need, live, tree)
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

    def _candidates(
        self, q: bytes, kk: int, allowed: Any, pred: Fn | None, seen: set[int], stats: list[int]
    ) -> Iterator[Row]:
        """One search for the kk nearest (among allowed): its rows not yet seen that pass
        pred. stats: [rows passed, rows read, 1 when the search found fewer than kk]."""
        ctx = self.ctx
        tree = ctx.tree(self.table.tree)
        ef = hnsw.ef_search(ctx)
        rids, _ = hnsw.method().search(ctx.txn, self.vx, q, kk, max(ef, kk), allowed)
        stats[2] = int(len(rids) < kk)
        for rid in rids.tolist():
            if rid in seen:
                continue
            seen.add(rid)
            stats[1] += 1
            row = self._row(tree, rid)
            if row is not None and (pred is None or pred(row)):
                stats[0] += 1
                yield row

    def _searched(
        self, q: bytes, need: int, allowed: Any, pred: Fn | None, live: int, seen: set[int]
    ) -> Iterator[Row]:
        """The index's nearest rows (among allowed), widened while the consumer asks."""
        kk = need
        stats = [0, 0, 0]
        while True:
            yield from self._candidates(q, kk, allowed, pred, seen, stats)
            if stats[2] or kk >= live:
                return
            kk *= 4

    def _filtered(self, outer: Row, q: bytes, need: int, live: int, tree: Any) -> Iterator[Row]:
        """With conjuncts on the table: the prefilter when its access path yields few
        rows; else a probe (the index's 2k nearest, tested) gives the nearest rows that
        pass and the fraction that passes; then the prefilter when its access path
        yields few enough rows for that fraction, else the postfilter (the module's
        docstring). The prefilter's collection resumes where it stopped."""
        seen: set[int] = set()
        stats = [0, 0, 0]
        kk = max(2 * need, PROBE_MIN)
        pre = _Collector(self, outer) if self.pre is not None else None
        if pre is not None and pre.fill(READ_VS_COLLECT * kk):  # about a probe's cost
            yield from self._searched(q, need, pre.rowids(), self.pre_pred, live, seen)
            return
        yield from self._candidates(q, kk, None, self.own_pred, seen, stats)
        if stats[2]:
            return  # every row of the index was read
        rate = (stats[0] + 1) / (stats[1] + 2)
        if pre is not None and pre.fill(prefilter_cap(need, rate)):
            yield from self._searched(q, need, pre.rowids(), self.pre_pred, live, seen)
            return
        yield from self._postfiltered(q, need, live, tree, seen, stats, kk)

    def _postfiltered(
        self,
        q: bytes,
        need: int,
        live: int,
        tree: Any,
        seen: set[int],
        stats: list[int],
        kk: int,
    ) -> Iterator[Row]:
        """The index's nearest rows, the conjuncts tested on each, the search widened
        by the fraction that passes; the exact scan past a quarter of the table."""
        while True:
            rate = (stats[0] + 1) / (stats[1] + 2)
            if self.vx.metric == "ip" and rate < IP_GRAPH_FROM:
                # under the inner product the graph reaches a filtered set's short
                # vectors poorly (toondb/vector/_filter.pxi): the exact scan answers
                yield from self._exact(seen)
                return
            kk = max(4 * kk, int(1.5 * max(need, 2 * stats[0]) / rate))
            if kk > POSTFILTER_EXACT_FROM * live:
                yield from self._exact(seen)
                return
            yield from self._candidates(q, kk, None, self.own_pred, seen, stats)
            if stats[2]:
                return  # every row of the index was read

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


class _Collector:
    """The rowids a KnnScan's prefilter access path yields (a superset of the rows
    passing the conjuncts), collected up to a cap at a time, resumable."""

    def __init__(self, scan: KnnScan, outer: Row) -> None:
        acc = scan.pre
        self.index_only = isinstance(acc, IndexScan) and acc.in_probes is None
        if self.index_only:
            # the index alone: its entries' values are the rows' keys
            itree = scan.ctx.tree(acc.index.tree)  # type: ignore[union-attr]
            ranges = acc._ranges(outer)  # type: ignore[union-attr]
            entries = chain.from_iterable(itree.scan(a, b) for a, b in ranges)
            self.it: Iterator[Any] = map(itemgetter(1), entries)
        else:
            self.it = map(itemgetter(-1), acc.rows(outer))  # type: ignore[union-attr]
        self.got: list[Any] = []
        self.done = False

    def fill(self, cap: int) -> bool:
        """Collect up to cap in all; True when that was all of them."""
        more = cap + 1 - len(self.got)
        if more > 0 and not self.done:
            chunk = list(islice(self.it, more))
            self.got += chunk
            self.done = len(chunk) < more
        return self.done

    def rowids(self) -> Any:
        import numpy as np

        if self.index_only:
            keys = np.frombuffer(b"".join(self.got), dtype=">u8")
            return (keys ^ np.uint64(1 << 63)).astype(np.uint64).view(np.int64)
        return np.array(self.got, dtype=np.int64)
