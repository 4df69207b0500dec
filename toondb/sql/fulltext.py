"""Full-text tables (``CREATE VIRTUAL TABLE name USING fts5(...)``), as the SQL engine
sees them.

The index itself (toondb/text: FTS5's tokenizers, query language, inverted index,
bm25, highlight and snippet) sits beside the SQL engine in the layers, so it
registers itself here (``register``; toondb/database.py does it when SQL first runs)
and the engine reaches it through the ``FullTextMethod`` protocol below, as the
HNSW indexes do (sql/hnsw.py).

The table
    A catalog table (``TableInfo.fulltext`` holds the module arguments and the
    index's name) whose columns are the FTS5 columns, all without a type. With
    the default content its rows tree holds the rows, as any table's; with
    ``content='t'`` (external content) the rows are read from table t by its
    ``content_rowid`` column, and with ``content=''`` (contentless) every column
    reads NULL. The index is one named tree, ``fts:sql:<table id>``.

Writes (catalog invariant 6)
    The table's writer (writer.py) records each row it inserts and deletes (an
    UPDATE is both) in the statement's ``PendingText`` (``Ctx.fulltext``);
    ``flush``, the statement's last step beside the HNSW flush, hands them to the
    index in order: deletes with the values the row was indexed with, then
    inserts. The index keeps inserted rows in an accumulator until its
    transaction commits (``Transaction`` runs its before-commit callables) or a
    read needs them. INSERT into an external-content or contentless table, and
    FTS5's special INSERTs (``INSERT INTO t(t) VALUES('optimize')``, ``'rebuild'``,
    ``'delete-all'``, ``'integrity-check'``, ``'delete'``) are fts_dml.py's.

Queries
    Before a SELECT core is planned, ``rewrite_core`` replaces what only means
    something for a full-text table (the table's name as a column on the left of
    ``MATCH`` or ``=``, ``rank``, ``bm25()``, ``highlight()``, ``snippet()``) by
    calls of internal functions bound to that FROM item (``FtsBinding``); the
    planner reads a full-text table through ``FtsScan`` (planner/fts.py), which
    runs the search once and hands the binding each row's match (its phrase
    instances and score) for those functions to read.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Protocol

from toondb.errors import FullTextError, SQLError
from toondb.sql import ast

__all__ = [
    "FullTextMethod",
    "register",
    "method",
    "PendingText",
    "flush",
    "split_args",
    "FtsBinding",
    "rewrite_core",
    "SCALARS",
]

MODULES = ("fts5",)


class FullTextMethod(Protocol):
    """What the engine asks of the full-text implementation (toondb/text/sql_table.py).
    ``name`` is the index's name (``TableInfo.fulltext["index"]``)."""

    def parse(self, args: list[str], table: str) -> dict[str, Any]:
        """The table's definition from FTS5's arguments: {"columns", "content"
        (None: the table's own, "": none, else a table), "content_rowid"};
        FullTextError with FTS5's message when they are wrong."""

    def create(self, txn: Any, name: str, args: list[str], table: str) -> None:
        """Create the empty index."""

    def drop(self, txn: Any, name: str) -> None:
        """Delete the index."""

    def handle(self, txn: Any, name: str) -> Any:
        """The index as txn sees it (a toondb.text.FullTextIndex: insert, delete,
        search, highlight, snippet, rebuild, optimize, delete_all,
        integrity_check), one per transaction; rows it holds pending reach the
        tree before the transaction commits."""


_loader: Callable[[], FullTextMethod] | None = None
_method: FullTextMethod | None = None


def register(loader: Callable[[], FullTextMethod]) -> None:
    """Make the full-text implementation reachable: loader() returns it (called once,
    when a statement first needs it)."""
    global _loader, _method
    _loader, _method = loader, None


def method() -> FullTextMethod:
    global _method
    if _method is None:
        if _loader is None:
            raise SQLError(
                "full-text tables are not available here: open the database with toondb.Database"
            )
        _method = _loader()
    return _method


def split_args(text: str | None) -> list[str]:
    """CREATE VIRTUAL TABLE's argument text split at its top-level commas, each
    argument stripped (as SQLite hands them to the module)."""
    if text is None:
        return []
    out: list[str] = []
    depth = 0
    cur: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch in "'\"`[":
            close = "]" if ch == "[" else ch
            j = i + 1
            while j < n:
                if text[j] == close:
                    if close != "]" and j + 1 < n and text[j + 1] == close:
                        j += 2
                        continue
                    break
                j += 1
            cur.append(text[i : j + 1])
            i = j + 1
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            i += 1
            continue
        cur.append(ch)
        i += 1
    last = "".join(cur).strip()
    if last or out:
        out.append(last)
    return out


# ------------------------------------------------------------------ writes


class PendingText:
    """The changes a statement makes to the full-text indexes of the tables it
    writes: per table, in order, ("d", rowid, old values) and ("i", rowid, values)."""

    __slots__ = ("changes",)

    def __init__(self) -> None:
        self.changes: dict[str, list[tuple[str, int, list[Any]]]] = {}

    def add(self, index: str, op: str, rowid: int, values: list[Any]) -> None:
        self.changes.setdefault(index, []).append((op, rowid, values))

    def __bool__(self) -> bool:
        return bool(self.changes)


def text_values(values: Any) -> list[str | None]:
    """Column values as FTS5 indexes them: text as is, numbers as their SQL text,
    blobs decoded as UTF-8, NULL as nothing."""
    out: list[str | None] = []
    for v in values:
        if v is None or type(v) is str:
            out.append(v)
        elif type(v) is bytes:
            out.append(v.decode("utf-8", "replace"))
        elif type(v) is float:
            from toondb.sql import types as T

            out.append(T.cast(v, "TEXT"))
        else:
            out.append(str(v))
    return out


def flush(ctx: Any) -> None:
    """Apply the statement's pending changes to each index (the statement's last step)."""
    pending: PendingText | None = ctx.fulltext
    if not pending:
        return
    ctx.fulltext = None
    m = method()
    with index_writes(ctx.txn):
        for name, ops in pending.changes.items():
            ix = m.handle(ctx.txn, name)
            for op, rowid, values in ops:
                if op == "d":
                    ix.delete(rowid, None if values is None else text_values(values))
                else:
                    ix.insert(rowid, text_values(values))


class index_writes:
    """Around writes to a full-text index: they are not in the statement's undo
    list, so a failure among them aborts the transaction (its index could not
    commit half-written), as an HNSW index's does."""

    def __init__(self, txn: Any) -> None:
        self.txn = txn

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None and not self.txn.closed:
            self.txn.abort()


# ------------------------------------------------------------------ queries


class FtsBinding:
    """One full-text table of a FROM clause of one compiled statement: the matches
    of the rows its access path yielded in the current execution, which rank,
    bm25(), highlight() and snippet() read."""

    def __init__(self, ctx: Any, table: Any, source: str) -> None:
        self.ctx = ctx
        self.table = table
        self.source = source
        self.epoch = -1
        self.matches: dict[int, Any] = {}
        self.searches: dict[Any, Any] = {}
        self.query: tuple[Any, int | None] | None = None  # the MATCH of this execution

    def __repr__(self) -> str:  # EXPLAIN shows the binding as the table's name
        return self.source

    def fresh(self) -> None:
        """Forget the matches of an earlier execution."""
        ctx = self.ctx
        if self.epoch != ctx.epoch:
            self.epoch = ctx.epoch
            self.matches = {}
            self.searches = {}
            self.query = None

    def index(self) -> Any:
        return method().handle(self.ctx.txn, self.table.fulltext["index"])

    def search(self, query: Any, column: int | None, weights: tuple[float, ...] = ()) -> Any:
        """rowid -> Match of every row the query matches (cached per execution)."""
        self.fresh()
        if not weights:
            self.query = (query, column)
        key = (query, column, weights)
        hit = self.searches.get(key)
        if hit is None:
            if query is None:
                hit = {}
            else:
                ms = self.index().search(
                    _query_text(query), column, order=None, weights=list(weights) or None
                )
                hit = {m.rowid: m for m in ms}
            self.searches[key] = hit
        return hit

    def keep(self, match: Any) -> None:
        self.matches[match.rowid] = match


def _query_text(q: Any) -> str:
    if type(q) is str:
        return q
    if type(q) is bytes:
        return q.decode("utf-8", "replace")
    return text_values([q])[0]  # type: ignore[return-value]


def _f_match(b: FtsBinding, rowid: Any, query: Any, column: Any) -> Any:
    """t MATCH q for a row its access path did not find by the query (a join, an OR)."""
    if rowid is None or query is None:
        return None
    m = b.search(query, column).get(rowid)
    if m is None:
        return 0
    b.keep(m)
    return 1


def _match_of(b: FtsBinding, rowid: Any) -> Any:
    """The row's match; a row read without a MATCH has one with no phrases (FTS5's
    auxiliary functions in a full scan: the text unhighlighted, bm25 -0.0)."""
    b.fresh()
    m = b.matches.get(rowid)
    if m is None:
        if rowid is None:
            return None
        m = b.index().no_match(rowid)
    return m


def _f_rank(b: FtsBinding, rowid: Any) -> Any:
    b.fresh()
    m = b.matches.get(rowid)
    return None if m is None else m.score


def _f_bm25(b: FtsBinding, rowid: Any, *weights: Any) -> Any:
    b.fresh()
    m = b.matches.get(rowid)
    if m is None:
        return None if rowid is None else -0.0
    if not weights:
        return m.score
    w = tuple(float(x) if x is not None else 0.0 for x in weights)
    query = b.query
    if query is None:
        return m.score
    again = b.search(query[0], query[1], w).get(rowid)
    return None if again is None else again.score


def _f_highlight(b: FtsBinding, rowid: Any, col: Any, open_: Any, close: Any, *vals: Any) -> Any:
    m = _match_of(b, rowid)
    if m is None:
        return None
    col = int(col) if col is not None else 0
    if not 0 <= col < len(vals):
        raise FullTextError("column index out of range")
    text = text_values([vals[col]])[0]
    return b.index().highlight(m, col, text, _str(open_), _str(close))


def _f_snippet(
    b: FtsBinding,
    rowid: Any,
    col: Any,
    open_: Any,
    close: Any,
    ellipsis: Any,
    tokens: Any,
    *vals: Any,
) -> Any:
    m = _match_of(b, rowid)
    if m is None:
        return None
    n = int(tokens) if tokens is not None else 0
    if n <= 0 or n > 64:
        raise FullTextError("parameter 6 (max tokens) must be between 1 and 64")
    return b.index().snippet(
        m,
        int(col) if col is not None else -1,
        text_values(vals),
        _str(open_),
        _str(close),
        _str(ellipsis),
        n,
    )


def _str(v: Any) -> str:
    return "" if v is None else _query_text(v)


# internal functions the rewrite calls (the binding is their first argument)
SCALARS: dict[str, tuple[int, int, Callable[..., Any], bool]] = {
    "__FTS_MATCH": (4, 4, _f_match, False),
    "__FTS_RANK": (2, 2, _f_rank, False),
    "__FTS_BM25": (2, 999, _f_bm25, False),
    "__FTS_HIGHLIGHT": (4, 999, _f_highlight, False),
    "__FTS_SNIPPET": (7, 999, _f_snippet, False),
}
AUX_ARGS = {"BM25": (1, 999), "HIGHLIGHT": (4, 4), "SNIPPET": (6, 6)}


def fulltext_sources(catalog: Any, core: ast.SelectCore) -> dict[str, Any]:
    """lower FROM name -> TableInfo of the core's full-text tables."""
    out = {}
    todo = [core.from_]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Join):
            todo += [node.left, node.right]
        elif isinstance(node, (ast.TableRef, ast.TableCall)):
            t = catalog.tables.get(node.name.lower())
            if t is not None and t.fulltext is not None:
                out[(node.alias or node.name).lower()] = t
    return out


class _Rewriter:
    def __init__(self, ctx: Any, tables: dict[str, Any]) -> None:
        self.tables = tables
        self.bindings = {name: FtsBinding(ctx, t, name) for name, t in tables.items()}
        self.calls: list[ast.Expr] = []  # the MATCH conjuncts of t('query') calls

    def _fts_name(self, e: Any) -> str | None:
        """The FROM name when e is a full-text table's name used as a column."""
        if not isinstance(e, ast.Column):
            return None
        name = e.name.lower()
        if e.table is not None:
            t = self.tables.get(e.table.lower())
            if t is not None and name == t.name.lower() and name not in t.col_index:
                return e.table.lower()  # t.t, alias.t
            return None
        t = self.tables.get(name)
        if t is not None and name not in t.col_index:
            return name
        return None

    def _column_filter(self, e: Any) -> tuple[str, int] | None:
        """(FROM name, column) when e is a column of a full-text table (col MATCH q)."""
        if not isinstance(e, ast.Column):
            return None
        if e.table is not None:
            t = self.tables.get(e.table.lower())
            i = t.col_index.get(e.name.lower()) if t is not None else None
            return (e.table.lower(), i) if i is not None else None
        hits = []
        for n, t in self.tables.items():
            i = t.col_index.get(e.name.lower())
            if i is not None:
                hits.append((n, i))
        return hits[0] if len(hits) == 1 else None

    def _rowid(self, name: str) -> ast.Column:
        return ast.Column(name, "rowid")

    def _values(self, name: str) -> list[ast.Expr]:
        return [ast.Column(name, c.name) for c in self.tables[name].columns]

    def _match(self, name: str, query: ast.Expr, column: int | None) -> ast.Func:
        return ast.Func(
            "__FTS_MATCH",
            [ast.Literal(self.bindings[name]), self._rowid(name), query, ast.Literal(column)],
            False,
            False,
        )

    def expr(self, e: Any) -> Any:
        if isinstance(e, (ast.Subquery, ast.Exists, ast.Select)):
            return e
        if isinstance(e, ast.TableCall):
            name = (e.alias or e.name).lower()
            if name not in self.tables:
                return e  # a table-valued function (json_each): planner/joins.py
            if len(e.args) > 1:
                raise SQLError(f"too many arguments on {e.name}() - max 1")
            if e.args:
                self.calls.append(self._match(name, self.expr(e.args[0]), None))
            return ast.TableRef(e.name, e.alias)
        target: str | None
        if isinstance(e, ast.Like) and e.op == "MATCH":
            target = self._fts_name(e.expr)
            col: int | None = None
            if target is None:
                cf = self._column_filter(e.expr)
                if cf is None:
                    raise SQLError("unable to use function MATCH in the requested context")
                target, col = cf
            new: ast.Expr = self._match(target, self.expr(e.pattern), col)
            return ast.Unary("NOT", new) if e.negated else new
        if isinstance(e, ast.Binary) and e.op == "=":
            target = self._fts_name(e.left)
            if target is not None:
                return self._match(target, self.expr(e.right), None)
        if isinstance(e, ast.Column) and e.table is None and e.name.lower() == "rank":
            names = [n for n, t in self.tables.items() if "rank" not in t.col_index]
            if len(names) == 1:
                b = self.bindings[names[0]]
                return ast.Func("__FTS_RANK", [ast.Literal(b), self._rowid(names[0])], False, False)
        if isinstance(e, ast.Column) and e.table is not None and e.name.lower() == "rank":
            name = e.table.lower()
            if name in self.tables:
                b = self.bindings[name]
                return ast.Func("__FTS_RANK", [ast.Literal(b), self._rowid(name)], False, False)
        if isinstance(e, ast.Func) and e.name in AUX_ARGS and e.args:
            target = self._fts_name(e.args[0])
            if target is not None:
                lo, hi = AUX_ARGS[e.name]
                if not lo <= len(e.args) <= hi:
                    raise FullTextError(f"wrong number of arguments to function {e.name.lower()}()")
                rest = [self.expr(a) for a in e.args[1:]]
                head = [ast.Literal(self.bindings[target]), self._rowid(target)]
                if e.name == "BM25":
                    return ast.Func("__FTS_BM25", head + rest, False, False)
                return ast.Func("__FTS_" + e.name, head + rest + self._values(target), False, False)
        if not isinstance(e, ast.Node):
            return e
        changed = None
        for slot in type(e).__slots__:
            v = getattr(e, slot)
            nv = self.value(v)
            if nv is not v:
                if changed is None:
                    changed = copy.copy(e)
                setattr(changed, slot, nv)
        return e if changed is None else changed

    def value(self, v: Any) -> Any:
        if isinstance(v, ast.Node):
            return self.expr(v)
        if isinstance(v, list):
            out = [self.value(x) for x in v]
            return v if all(a is b for a, b in zip(out, v)) else out
        if isinstance(v, tuple):
            out_t = tuple(self.value(x) for x in v)
            return v if all(a is b for a, b in zip(out_t, v)) else out_t
        return v


def rewrite_where(planner: Any, table: Any, alias: str | None, where: Any) -> Any:
    """UPDATE / DELETE's WHERE on a full-text table, rewritten as a SELECT's."""
    if where is None:
        return None
    rw = _Rewriter(planner.ctx, {(alias or table.name).lower(): table})
    return rw.value(where)


def rewrite_core(
    planner: Any, core: ast.SelectCore, order_by: list[ast.OrderItem]
) -> tuple[ast.SelectCore, list[ast.OrderItem]]:
    """The core and ORDER BY with the full-text parts replaced (the module's
    docstring); unchanged when no FROM item is a full-text table."""
    tables = fulltext_sources(planner.catalog, core)
    if not tables:
        return core, order_by
    rw = _Rewriter(planner.ctx, tables)
    new = copy.copy(core)
    new.columns = rw.value(core.columns)
    new.where = rw.value(core.where)
    new.group_by = rw.value(core.group_by)
    new.having = rw.value(core.having)
    new.from_ = rw.value(core.from_)
    new.windows = rw.value(core.windows)  # WINDOW w AS (ORDER BY rank)
    for c in rw.calls:
        new.where = c if new.where is None else ast.Binary("AND", new.where, c)
    return new, rw.value(order_by)
