"""Physical operators: iterators over B+tree cursors, and the statement context.

Every operator yields flat row tuples. An access operator reads one table: it
yields that table's rows (its columns, then its rowid); ``rows(outer)`` takes
the outer row of a join, from which its probe values are computed. The others
combine their inputs. ``explain()`` gives the operator's line in EXPLAIN
(docs/sql.md describes the format).
"""

from __future__ import annotations

import heapq
import struct
from collections import deque
from collections.abc import Iterator, Sequence
from itertools import chain, count, repeat
from operator import add
from typing import Any, Callable

from toondb.codec.keycode import encode_value, key_rowid, prefix_end, rowid_key
from toondb.codec.rowcodec import decode_row, decode_scan
from toondb.errors import CorruptionError, RowFormatError
from toondb.sql import types as T

Row = tuple[Any, ...]
Fn = Callable[[Any], Any]
# (key function of one item, descending, nulls first?); a key function may take defaults
_SortTerm = tuple[Callable[..., Any], bool, bool | None]

_MIN_KEY = b""
_pack_q = struct.Struct(">Q").pack


class Ctx:
    """What one execution of a compiled statement needs; set before each run.

    epoch changes every execution, so uncorrelated subqueries compute once per run.
    engine: the session's settings (PRAGMAs: hnsw_ef_search, ...), or None.
    vectors: the HNSW index changes the statement has made so far (sql/hnsw.py)."""

    __slots__ = ("txn", "epoch", "undo", "engine", "trees", "vectors", "fulltext", "size_marks")

    def __init__(self) -> None:
        self.txn: Any = None
        # table tree -> the row count its plan was chosen with (planner/join_order.py)
        self.size_marks: dict[bytes, int] | None = {}
        self.epoch = 0
        self.undo: list[tuple[Any, bytes, bytes | None]] | None = None
        self.engine: Any = None
        self.trees: dict[bytes, Any] = {}
        self.vectors: Any = None
        self.fulltext: Any = None  # the full-text index changes so far (sql/fulltext.py)

    def tree(self, name: bytes) -> Any:
        t = self.trees.get(name)
        if t is None:
            t = self.trees[name] = self.txn.tree(name, create=not self.txn.read_only)
        return t


def rowid_probe(v: Any) -> Any:
    """A probe value as a rowid: int, or None when no integer rowid can equal it."""
    t = type(v)
    if t is int:
        return v
    if t is float and v.is_integer() and -9.3e18 < v < 9.3e18:
        return int(v)
    return None


# ---------------------------------------------------------------- access paths


class Access:
    """Reads one table; rows(outer) yields (columns..., rowid) tuples."""

    table: Any
    label: str = ""
    # conjuncts the access path enforces exactly (an equality probe): not re-checked
    consumed: list[Any] = []
    pred: Any = None
    pred_text: str = ""
    # (column, op code, value function, predicate): one "column op number" conjunct
    # the C row decoder evaluates itself (see _rowcodec.DecodeScan)
    cfilter: Any = None
    defaults: tuple[Any, ...]  # the table's column defaults, set by the planner (decode_row)

    def _decoded(self, it: Any) -> Iterator[Row]:
        """The rows of a table scan's (key, value) pairs, pushed predicates applied."""
        spec = self.cfilter
        pred = self.pred
        rows: Iterator[Row]
        if spec is not None:
            v = spec[2]()
            if type(v) is int or type(v) is float:
                rows = decode_scan(it, self.defaults, (spec[0], spec[1], v, spec[3]))
            else:
                rows = filter(spec[3], decode_scan(it, self.defaults))
        else:
            rows = decode_scan(it, self.defaults)
        return rows if pred is None else filter(pred, rows)

    def rows(self, outer: Row) -> Iterator[Row]:
        raise NotImplementedError

    def explain(self) -> str:
        return self.label


class FullScan(Access):
    def __init__(self, ctx: Ctx, table: Any, reverse: bool = False, pred: Fn | None = None):
        self.ctx = ctx
        self.table = table
        self.reverse = reverse
        self.pred = pred
        self.defaults: tuple[Any, ...] = ()

    def rows(self, outer: Row) -> Iterator[Row]:
        tree = self.ctx.tree(self.table.tree)
        return self._decoded(tree.scan(b"", None, self.reverse))

    def explain(self) -> str:
        return f"SCAN {self.table.name}" + (" (rowid order, descending)" if self.reverse else "")


class RowidEq(Access):
    def __init__(self, ctx: Ctx, table: Any, probe: Fn, text: str):
        self.ctx = ctx
        self.table = table
        self.probe = probe
        self.text = text
        self.defaults: tuple[Any, ...] = ()

    def rows(self, outer: Row) -> Any:
        # a list, not a generator: the one-row case is the hot path of point queries
        rid = self.probe(outer)
        if type(rid) is not int:
            rid = rowid_probe(rid)
            if rid is None:
                return ()
        if not -(1 << 63) <= rid < (1 << 63):
            return ()
        key = _pack_q(rid + (1 << 63))
        v = self.ctx.tree(self.table.tree).get(key)
        if v is None:
            return ()
        row = decode_row(v, self.defaults, key)
        if self.pred is not None and not self.pred(row):
            return ()
        return (row,)

    def explain(self) -> str:
        return f"SEARCH {self.table.name} USING ROWID ({self.text})"


class RowidIn(Access):
    def __init__(self, ctx: Ctx, table: Any, probes: list[Fn], text: str):
        self.ctx = ctx
        self.table = table
        self.probes = probes
        self.text = text
        self.defaults: tuple[Any, ...] = ()

    def rows(self, outer: Row) -> Iterator[Row]:
        ids = set()
        for p in self.probes:
            rid = rowid_probe(p(outer))
            if rid is not None and -(1 << 63) <= rid < (1 << 63):
                ids.add(rid)
        tree = self.ctx.tree(self.table.tree)
        pred = self.pred
        for rid in sorted(ids):
            key = rowid_key(rid)
            v = tree.get(key)
            if v is not None:
                row = decode_row(v, self.defaults, key)
                if pred is None or pred(row):
                    yield row

    def explain(self) -> str:
        return f"SEARCH {self.table.name} USING ROWID ({self.text})"


def _bound_int(v: Any, low: bool) -> Any:
    """A range bound on the rowid as an inclusive integer (a superset of the range);
    None: no bound usable (scan that side); False: no row can match."""
    if v is None:
        return False
    t = type(v)
    if t is int:
        return v
    if t is float:
        if v != v:
            return False
        import math

        if v in (math.inf, -math.inf):
            return None if (v < 0) == low else False
        return math.floor(v) if low else math.ceil(v)
    # text and blobs sort above every number
    return False if low else None


class RowidRange(Access):
    def __init__(
        self,
        ctx: Ctx,
        table: Any,
        lo: Fn | None,
        hi: Fn | None,
        text: str,
        reverse: bool = False,
        pred: Fn | None = None,
    ):
        self.ctx = ctx
        self.table = table
        self.lo = lo
        self.hi = hi
        self.text = text
        self.reverse = reverse
        self.pred = pred
        self.defaults: tuple[Any, ...] = ()

    def rows(self, outer: Row) -> Iterator[Row]:
        start = b""
        end = None
        if self.lo is not None:
            b = _bound_int(self.lo(outer), True)
            if b is False:
                return
            if b is not None:
                if b >= 1 << 63:
                    return
                start = rowid_key(max(b, -(1 << 63)))
        if self.hi is not None:
            b = _bound_int(self.hi(outer), False)
            if b is False:
                return
            if b is not None:
                if b < -(1 << 63):
                    return
                if b < (1 << 63) - 1:
                    end = rowid_key(b + 1)
        tree = self.ctx.tree(self.table.tree)
        yield from self._decoded(tree.scan(start, end, self.reverse))

    def explain(self) -> str:
        return f"SEARCH {self.table.name} USING ROWID RANGE ({self.text})" + (
            " descending" if self.reverse else ""
        )


class IndexScan(Access):
    """Equality on the first len(eq) columns of an index, an optional range on the
    next one (lo/hi: (fn, inclusive)), or neither (the whole index, for ORDER BY)."""

    def __init__(
        self,
        ctx: Ctx,
        table: Any,
        index: Any,
        eq: list[Fn],
        lo: tuple[Fn, bool] | None,
        hi: tuple[Fn, bool] | None,
        text: str,
        reverse: bool = False,
        in_probes: list[Fn] | None = None,
        pred: Fn | None = None,
    ):
        self.ctx = ctx
        self.table = table
        self.index = index
        self.eq = eq
        self.lo = lo
        self.hi = hi
        self.text = text
        self.reverse = reverse
        self.in_probes = in_probes
        self.pred = pred
        self.defaults: tuple[Any, ...] = ()

    def _ranges(self, outer: Row) -> list[tuple[bytes, bytes | None]]:
        if self.in_probes is not None:
            seen = set()
            out = []
            for p in self.in_probes:
                v = p(outer)
                if v is None:
                    continue
                k = encode_value(v)
                if k in seen:
                    continue
                seen.add(k)
                out.append((k, prefix_end(k)))
            out.sort()
            return out
        parts = []
        for f in self.eq:
            v = f(outer)
            if v is None:
                return []
            parts.append(encode_value(v))
        prefix = b"".join(parts)
        start = prefix
        end = prefix_end(prefix) if prefix else None
        if self.lo is not None:
            v = self.lo[0](outer)
            if v is None:
                return []
            start = prefix + encode_value(v)
        else:
            if self.hi is not None:
                start = prefix + b"\x06"  # above NULL: NULL < x is never true
        if self.hi is not None:
            v = self.hi[0](outer)
            if v is None:
                return []
            k = prefix + encode_value(v)
            end = prefix_end(k) if self.hi[1] else k
        if end is not None and end <= start:
            return []
        return [(start, end)]

    def rows(self, outer: Row) -> Iterator[Row]:
        tree = self.ctx.tree(self.index.tree)
        rows_tree = self.ctx.tree(self.table.tree)
        get = rows_tree.get
        defaults = self.defaults
        pred = self.pred
        dec = decode_row
        ranges = self._ranges(outer)
        if self.reverse:
            ranges.reverse()
        for start, end in ranges:
            for _, rk in tree.scan(start, end, self.reverse):
                if len(rk) != 8:  # an index entry's value is its row's rowid key
                    raise RowFormatError(
                        f"an entry of index {self.index.name} does not name a row (damage)"
                    )
                v = get(rk)
                if v is None:
                    raise self._no_row(rk)
                r = dec(v, defaults, rk)
                if pred is None or pred(r):
                    yield r

    def _no_row(self, rk: bytes) -> CorruptionError:
        """An index entry whose row is not in the table: the index and its table
        are written in the same transaction, so only damage makes one."""
        rowid = key_rowid(rk)  # RowFormatError when the entry's value is no rowid key
        return CorruptionError(
            f"index {self.index.name} of table {self.table.name} has an entry for "
            f"rowid {rowid}, which has no row"
        )

    def explain(self) -> str:
        how = "SEARCH" if (self.eq or self.lo or self.hi or self.in_probes) else "SCAN"
        cond = f" ({self.text})" if self.text else ""
        return f"{how} {self.table.name} USING INDEX {self.index.name}{cond}" + (
            " descending" if self.reverse else ""
        )


class SubquerySource(Access):
    """A subquery in FROM: its rows are materialized once per execution (or per
    outer row when it is correlated)."""

    def __init__(self, ctx: Ctx, plan: Any, name: str):
        self.ctx = ctx
        self.plan = plan
        self.name = name
        self.table = None
        self._memo: list[Any] = [None, None]

    def rows(self, outer: Row) -> Iterator[Row]:
        if self.plan.correlated:
            return iter(list(self.plan.run()))
        if self._memo[0] != self.ctx.epoch:
            self._memo[1] = list(self.plan.run())
            self._memo[0] = self.ctx.epoch
        return iter(self._memo[1])

    def explain(self) -> str:
        return f"SCAN SUBQUERY {self.name}"


class TableFuncScan(Access):
    """A table-valued function in FROM (json_each, json_tree): its rows for the
    argument values, computed on the outer row (correlated arguments)."""

    def __init__(self, name: str, gen: Callable[..., Iterator[Row]], args: list[Fn]):
        self.name = name
        self.gen = gen
        self.args = args
        self.table = None

    def rows(self, outer: Row) -> Iterator[Row]:
        return self.gen(*[a(outer) for a in self.args])

    def explain(self) -> str:
        return f"SCAN TABLE-VALUED FUNCTION {self.name}"


# ---------------------------------------------------------------- joins


def nested_loop(
    outer: Iterator[Row],
    inner: Access,
    cond: Fn | None,
    left: bool,
    null_row: Row,
    materialize: bool,
) -> Iterator[Row]:
    """For each outer row, the inner rows that satisfy cond (LEFT: or one NULL row).

    An inner join is composed of C iterators (chain, map of the outer row's tuple
    concatenation by operator.add, filter), so that a pair costs no Python bytecode but cond's: the
    per-pair generator step was most of a cross join's time. Without cond it is a
    JoinedRows, which count_rows() counts without building the rows."""
    if left:
        return _left_nested_loop(outer, inner, cond, null_row, materialize)
    joined = JoinedRows(outer, inner, materialize)
    return joined if cond is None else filter(cond, joined)


class JoinedRows:
    """The rows of an inner nested-loop join with no join condition: iterating it
    builds each row (outer + inner, in C iterators: iter() hands out that chain, so
    a consumer's loop runs no Python code per row); count() counts them without
    building any (count(*) of a cross join). An iterator, once, like the others."""

    __slots__ = ("outer", "inner", "materialize", "cached", "started")

    def __init__(self, outer: Iterator[Row], inner: Access, materialize: bool) -> None:
        self.outer = outer
        self.inner = inner
        self.materialize = materialize
        self.cached: list[Row] | None = None
        self.started: Iterator[Row] | None = None

    def _inner_rows(self, o: Row) -> list[Row]:
        if self.cached is None:  # read once, when the first outer row arrives
            self.cached = list(self.inner.rows(o))
        return self.cached

    def __iter__(self) -> Iterator[Row]:
        if self.started is None:
            self.started = self._chain()
        return self.started

    def __next__(self) -> Row:
        return next(iter(self))

    def _chain(self) -> Iterator[Row]:
        if self.materialize:
            inner_rows = self._inner_rows

            def pairs(o: Row) -> Iterator[Row]:
                return map(add, repeat(o), inner_rows(o))

        else:
            rows_of = self.inner.rows

            def pairs(o: Row) -> Iterator[Row]:
                return map(add, repeat(o), rows_of(o))

        return chain.from_iterable(map(pairs, self.outer))

    def count(self) -> int:
        if self.started is not None:  # partly read: count what is left
            return count_rows(self.started)
        if not self.materialize:
            return sum(map(count_rows, map(self.inner.rows, self.outer)))
        first = next(iter(self.outer), None)  # the outer stays lazy: one row, then a count
        if first is None:
            return 0
        return (1 + count_rows(self.outer)) * len(self._inner_rows(first))


def count_rows(rows: Any) -> int:
    """How many rows an iterator yields, without keeping them (in C; a join's rows
    are not even built)."""
    if isinstance(rows, JoinedRows):
        return rows.count()
    counter = count()
    deque(zip(rows, counter), maxlen=0)
    return next(counter)


def _left_nested_loop(
    outer: Iterator[Row],
    inner: Access,
    cond: Fn | None,
    null_row: Row,
    materialize: bool,
) -> Iterator[Row]:
    cached: list[Row] | None = None
    for o in outer:
        if materialize:
            if cached is None:
                cached = list(inner.rows(o))
            source: Any = cached
        else:
            source = inner.rows(o)
        matched = False
        for i in source:
            r = o + i
            if cond is None or cond(r):
                matched = True
                yield r
        if not matched:
            yield o + null_row


def hash_join(
    outer: Iterator[Row],
    inner: Access,
    outer_key: Fn,
    inner_key: Fn,
    cond: Fn | None,
    left: bool,
    null_row: Row,
) -> Iterator[Row]:
    """Build a hash table of the inner rows on inner_key once, probe it with outer_key."""
    table: dict[Any, list[Row]] | None = None
    for o in outer:
        if table is None:
            table = {}
            for i in inner.rows(()):
                k = inner_key(i)
                if k is None:
                    continue
                b = table.get(k)
                if b is None:
                    table[k] = [i]
                else:
                    b.append(i)
        k = outer_key(o)
        matched = False
        if k is not None:
            bucket = table.get(k)
            if bucket:
                for i in bucket:
                    r = o + i
                    if cond is None or cond(r):
                        matched = True
                        yield r
        if left and not matched:
            yield o + null_row


# ---------------------------------------------------------------- sorting


def sort_rows(items: list[Any], terms: Sequence[_SortTerm]) -> list[Any]:
    """Sort items by terms (key function, descending, nulls first?) with SQLite's
    order of values. Stable: one pass per term, from the last."""
    for kf, desc, nulls_first in reversed(terms):
        keys = order_keys(list(map(kf, items)), desc, nulls_first)
        order = sorted(range(len(items)), key=keys.__getitem__, reverse=desc)
        items = [items[i] for i in order]
    return items


def order_keys(vals: list[Any], desc: bool, nulls_first: bool | None) -> list[Any]:
    """Python sort keys for one ORDER BY term's values (sorted with reverse=desc):
    the values themselves when Python orders them as SQLite does."""
    types = set(map(type, vals))
    sort_key = T.sort_key
    default_nulls = nulls_first is None or nulls_first == (not desc)
    if default_nulls and (types <= {int, float} or (len(types) == 1 and type(None) not in types)):
        return vals
    if default_nulls:
        return [sort_key(v) for v in vals]
    null_class = 9 if desc == nulls_first else -1
    return [(null_class, 0) if v is None else sort_key(v) for v in vals]


def top_rows(items: Iterator[Any], terms: Sequence[_SortTerm], n: int) -> list[Any]:
    """The first n items in sort order (a bounded heap when there is one ascending key)."""
    if len(terms) == 1 and not terms[0][1] and terms[0][2] in (None, True):
        kf = terms[0][0]
        sort_key = T.sort_key
        return heapq.nsmallest(n, items, key=lambda it: sort_key(kf(it)))
    return sort_rows(list(items), terms)[:n]
