"""Reading a full-text table (planner rule 7; sql/fulltext.py describes the tables).

Every FROM item that is a full-text table is read through ``FtsScan``. With a
``t MATCH q`` conjunct (rewritten to ``__FTS_MATCH``) whose query reads no table
of the statement, it runs the search once per execution (per outer row when the
query reads an outer query's columns) and yields the matching rows, handing the
table's ``FtsBinding`` each row's match; without one it yields every row. When
the statement is ``ORDER BY rank`` (or ``bm25(t, ...)``) with a LIMIT, and the
table is the first FROM item with no GROUP BY, aggregate or DISTINCT, the rows
come out best first (FTS5's order: the score, then the rowid), and the select
core reads only LIMIT + OFFSET of them (as it reads a k-NN scan, planner/knn.py);
when nothing else filters or joins, the search itself keeps only those.

Rows: the default content's come from the table's tree; an external content
table's from its content table (the columns of the same names, the rowid its
``content_rowid`` column); a contentless table's columns are NULL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Callable

from toondb.codec.keycode import rowid_key
from toondb.codec.rowcodec import decode_row, decode_scan
from toondb.errors import SchemaError
from toondb.sql import ast
from toondb.sql.catalog import TableInfo
from toondb.sql.executor import Access, Row
from toondb.sql.fulltext import FtsBinding, method, text_values
from toondb.sql.planner.common import PlannerContext, refs, table_defaults, top_k_term
from toondb.sql.scope import Scope

__all__ = ["FtsRequest", "fts_request", "fts_access", "FtsScan", "content_rows"]


class FtsRequest:
    """ORDER BY rank / bm25(t, ...) [DESC] LIMIT n [OFFSET m] of one full-text table."""

    __slots__ = ("binding", "desc", "weights", "limit", "offset")

    def __init__(
        self, binding: FtsBinding, desc: bool, weights: list[ast.Expr], limit: Any, offset: Any
    ) -> None:
        self.binding = binding
        self.desc = desc
        self.weights = weights
        self.limit = limit
        self.offset = offset


def fts_request(
    core: ast.SelectCore,
    order_by: list[ast.OrderItem],
    limit: ast.Expr | None,
    offset: ast.Expr | None,
    aggregated: bool,
) -> FtsRequest | None:
    term = top_k_term(core, order_by, limit, aggregated)
    if term is None:
        return None
    o, e = term
    if not (isinstance(e, ast.Func) and e.name in ("__FTS_RANK", "__FTS_BM25")):
        return None
    if o.nulls_first is not None and o.nulls_first != o.desc:
        return None
    binding = e.args[0].value  # type: ignore[attr-defined]
    return FtsRequest(binding, o.desc, list(e.args[2:]), limit, offset)


def _match_conjunct(c: ast.Expr, src_name: str) -> FtsBinding | None:
    if (
        isinstance(c, ast.Func)
        and c.name == "__FTS_MATCH"
        and isinstance(c.args[0], ast.Literal)
        and isinstance(c.args[0].value, FtsBinding)
        and c.args[0].value.source == src_name
    ):
        return c.args[0].value
    return None


def fts_access(
    planner: PlannerContext,
    scope: Scope,
    k: int,
    conds: list[ast.Expr],
    req: FtsRequest | None,
    alone: bool,
) -> tuple[FtsScan, bool, bool]:
    """(access, whether it depends on the tables before it, whether its rows come
    in the request's order) for source k of scope, a full-text table. alone: the
    table is the only FROM item."""
    src = scope.sources[k]
    table: TableInfo = src.table
    match: ast.Func | None = None
    binding = None
    dep = False
    for c in conds:
        b = _match_conjunct(c, src.name)
        if b is None:
            continue
        r = refs(c.args[2], scope)  # type: ignore[attr-defined]
        if r is None or k in r or any(x > k for x in r):
            continue
        assert isinstance(c, ast.Func)  # _match_conjunct: a __FTS_MATCH call
        match, binding = c, b
        dep = bool(r)
        break
    ordered = (
        req is not None and binding is not None and req.binding is binding and k == 0 and not dep
    )
    scan = FtsScan(planner, scope, table, src.name, match, req if ordered else None)
    if ordered:
        others = [c for c in conds if c is not match]
        scan.push_limit = alone and not others
    return scan, dep, ordered


class FtsScan(Access):
    """The rows of a full-text table: those its MATCH finds, or all (module doc)."""

    def __init__(
        self,
        planner: PlannerContext,
        scope: Scope,
        table: TableInfo,
        name: str,
        match: ast.Func | None,
        req: FtsRequest | None,
    ) -> None:
        ec = planner.ec
        self.ctx = planner.ctx
        self.table = table
        self.name = name
        self.match = match
        self.req = req
        self.push_limit = False
        self.pred = None
        self.defaults = table_defaults(table)
        self.consumed = [match] if match is not None else []
        self.binding: FtsBinding | None = None
        if match is not None:
            self.binding = match.args[0].value  # type: ignore[attr-defined]
            self.query = ec.compile(match.args[2], scope)
            self.column = match.args[3].value  # type: ignore[attr-defined]
        self.weights = [ec.compile(w, scope) for w in req.weights] if req is not None else []
        self.want: Callable[[], int | None] = lambda: None
        if req is not None:
            lim = ec.compile(req.limit, scope)
            off = ec.compile(req.offset, scope) if req.offset is not None else None
            self.want = lambda: _want(lim(()), off(()) if off is not None else 0)
        fx = table.fulltext
        assert fx is not None
        self.content = fx["content"]
        self.content_table: TableInfo | None = None
        if self.content:
            ct = planner.catalog.tables.get(self.content.lower())
            if ct is None:
                raise SchemaError(f"no such table: {self.content}")
            self.content_table = ct
            idx = []
            for c in table.columns:
                i = ct.col_index.get(c.name.lower())
                if i is None:
                    raise SchemaError(f"no such column: {self.content}.{c.name}")
                idx.append(i)
            self.content_idx = idx
            rc = fx["content_rowid"].lower()
            self.content_rowid = None if rc in ("rowid", "_rowid_", "oid") else ct.column(rc)
            self.content_defaults = table_defaults(ct)

    def explain(self) -> str:
        how = "SCAN" if self.match is None else "SEARCH"
        s = f"{how} {self.table.name} USING FULL-TEXT INDEX"
        if self.req is not None:
            s += " (ORDER BY rank)"
        return s

    # -- rows by rowid

    def _row(self, rowid: int) -> Row | None:
        if self.content is None:
            raw = self.ctx.tree(self.table.tree).get(rowid_key(rowid))
            if raw is None:
                return None
            return decode_row(raw, self.defaults, rowid_key(rowid))
        if self.content == "":
            return (None,) * len(self.table.columns) + (rowid,)
        ct = self.content_table
        assert ct is not None
        if self.content_rowid is None or self.content_rowid == ct.rowid_col:
            raw = self.ctx.tree(ct.tree).get(rowid_key(rowid))
            if raw is None:
                return (None,) * len(self.table.columns) + (rowid,)
            r = decode_row(raw, self.content_defaults, rowid_key(rowid))
        else:
            r = None
            for k, v in self.ctx.tree(ct.tree).scan():
                row = decode_row(v, self.content_defaults, k)
                if row[self.content_rowid] == rowid:
                    r = row
                    break
            if r is None:
                return (None,) * len(self.table.columns) + (rowid,)
        assert r is not None
        return tuple(r[i] for i in self.content_idx) + (rowid,)

    def _all(self) -> Iterator[Row]:
        if self.content is None:
            return iter(decode_scan(self.ctx.tree(self.table.tree).scan(), self.defaults))
        if self.content == "":  # contentless: every indexed rowid, NULL columns
            ix = method().handle(self.ctx.txn, self.table.fulltext["index"])
            nulls = (None,) * len(self.table.columns)
            return (nulls + (r,) for r in ix.rowids())
        ct = self.content_table
        assert ct is not None
        rows = decode_scan(self.ctx.tree(ct.tree).scan(), self.content_defaults)
        rc = self.content_rowid if self.content_rowid is not None else len(ct.columns)
        return (tuple(r[i] for i in self.content_idx) + (r[rc],) for r in rows)

    def rows(self, outer: Row) -> Iterator[Row]:
        pred = self.pred
        if self.match is None:
            rows = self._all()
            return rows if pred is None else filter(pred, rows)
        return self._matched(outer, pred)

    def _matched(self, outer: Row, pred: Any) -> Iterator[Row]:
        b = self.binding
        assert b is not None
        b.fresh()
        q = self.query(outer)
        if q is None:
            return
        req = self.req
        if req is None:
            hits = b.search(q, self.column)
            ms = [hits[r] for r in sorted(hits)]
        else:
            weights = [float(w(outer)) for w in self.weights]
            b.query = (q, self.column)
            from toondb.sql.fulltext import _query_text

            limit = self.want() if self.push_limit else None
            ms = b.index().search(
                _query_text(q),
                self.column,
                order="rank",
                descending=req.desc,
                limit=limit,
                weights=weights or None,
            )
        keep = b.keep
        for m in ms:
            r = self._row(m.rowid)
            if r is None:
                continue
            keep(m)
            if pred is None or pred(r):
                yield r


def _want(limit: Any, offset: Any) -> int | None:
    """LIMIT + OFFSET rows, None for all of them (a negative LIMIT, as SQLite)."""
    try:
        n = int(limit)
    except (TypeError, ValueError):
        return None  # the select core reports the bad LIMIT
    if n < 0:
        return None
    try:
        m = int(offset)
    except (TypeError, ValueError):
        m = 0
    return n + max(m, 0)


def content_rows(
    tree: Callable[[bytes], Any], table: Any, tables: dict[str, Any]
) -> list[tuple[int, list[str | None]]] | None:
    """(rowid, column values as indexed) of a full-text table's content: its own
    rows, or its external content table's (None: a contentless table). tree(name):
    the transaction's tree of that name."""
    fx = table.fulltext
    content = fx["content"]
    n = len(table.columns)
    if content == "":
        return None
    if content is None:
        rows = decode_scan(tree(table.tree).scan(), table_defaults(table))
        return [(r[n], text_values(r[:n])) for r in rows]
    ct = tables.get(content.lower())
    if ct is None:
        raise SchemaError(f"no such table: {content}")
    idx = [ct.column(c.name) for c in table.columns]
    rc = fx["content_rowid"].lower()
    ri = len(ct.columns) if rc in ("rowid", "_rowid_", "oid") else ct.column(rc)
    rows = decode_scan(tree(ct.tree).scan(), table_defaults(ct))
    return [(r[ri], text_values([r[i] for i in idx])) for r in rows]
