"""Window functions: the operator that computes ``f(...) OVER (...)`` values.

The planner (planner/windows.py) compiles each window function of a SELECT core
into a :class:`WindowCall` and groups the calls that share PARTITION BY and
ORDER BY into a :class:`WindowSort`. :func:`window_operator` then takes the
rows of the core (after WHERE, GROUP BY and HAVING) and returns each row with
the values of every window function appended, in the order of the calls.

Semantics are SQLite's (windowfunctions.html):

1. A partition is the set of rows with equal PARTITION BY values (NULLs equal);
   rows are ordered within it by ORDER BY; rows with equal ORDER BY values are
   peers. Without ORDER BY every row of the partition is a peer of every other.
2. The default frame is RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW: the
   partition's rows up to the current row's last peer.
3. ROWS counts rows, GROUPS counts peer groups, RANGE n PRECEDING/FOLLOWING
   compares the single ORDER BY value (a NULL current value frames the NULL
   peers). EXCLUDE CURRENT ROW / GROUP / TIES then removes rows from the frame.
4. row_number rank dense_rank percent_rank cume_dist ntile lag lead ignore the
   frame; first_value last_value nth_value and every aggregate read it.
5. FILTER (WHERE c) drops the rows where c is not true from an aggregate.

Cost (invariant W1): frame bounds move forward only, so an aggregate with an
inverse (count, sum, total, avg) slides: each row enters and leaves the frame
once per partition; min and max over a frame that starts at the partition's
first row accumulate; a frame equal to the previous row's reuses its value.
Anything else (DISTINCT, EXCLUDE, sliding min/max, group_concat) is computed
over the frame's rows.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from itertools import accumulate, chain, compress, repeat
from operator import ne, sub
from typing import Any, Callable

from toondb.errors import SQLError
from toondb.sql import ast
from toondb.sql import types as T
from toondb.sql.executor import order_keys
from toondb.sql.functions import AGG_FUNCS

Fn = Callable[[Any], Any]

RANKING = {
    # name -> (min args, max args); these ignore the frame
    "ROW_NUMBER": (0, 0),
    "RANK": (0, 0),
    "DENSE_RANK": (0, 0),
    "PERCENT_RANK": (0, 0),
    "CUME_DIST": (0, 0),
    "NTILE": (1, 1),
    "LAG": (1, 3),
    "LEAD": (1, 3),
}
VALUE_FUNCS = {"FIRST_VALUE": (1, 1), "LAST_VALUE": (1, 1), "NTH_VALUE": (2, 2)}
WINDOW_ONLY = {**RANKING, **VALUE_FUNCS}
_SIZE_ONLY = {"ROW_NUMBER", "RANK", "DENSE_RANK", "PERCENT_RANK", "CUME_DIST"}

_SKIP = object()  # a row an aggregate's FILTER leaves out


class WindowCall:
    """One window function: its name, compiled arguments, FILTER, DISTINCT, frame."""

    def __init__(
        self,
        name: str,
        args: list[Fn],
        star: bool,
        distinct: bool,
        filter: Fn | None,
        frame: ast.Frame,
        offsets: tuple[Fn | None, Fn | None],
    ) -> None:
        self.name = name
        self.args = args
        self.star = star
        self.distinct = distinct
        self.filter = filter
        self.frame = frame
        self.offsets = offsets  # start / end offset expressions (n PRECEDING/FOLLOWING)
        self.slot = 0  # position among the appended values


class WindowSort:
    """The calls sharing one PARTITION BY and ORDER BY."""

    def __init__(self, partition: list[Fn], order: list[tuple[Fn, bool, bool | None]]) -> None:
        self.partition = partition
        self.order = order
        self.calls: list[WindowCall] = []


def window_operator(sorts: list[WindowSort], ncalls: int) -> Callable[[Any], Iterator[Any]]:
    """rows -> the rows, each with the ncalls window values appended, in the
    order of the last WindowSort (partition, then ORDER BY), as an iterator
    (each output row is made as it is read, then freed by its reader).

    Each sort computes its key values once per row (a map over the rows), sorts
    the row indexes by them and cuts the partitions and peer groups where
    adjacent keys differ; a call's values come out in that sort's order, which is
    the output order for the last sort (earlier sorts' values are permuted)."""

    def run(rows_in: Any) -> Iterator[Any]:
        rows = rows_in if type(rows_in) is list else list(rows_in)
        n = len(rows)
        seqs: list[list[Any]] = [[] for _ in range(ncalls)]  # per call, in its sort's order
        orders: list[list[int]] = [[]] * ncalls  # per call, its sort's order
        order = list(range(n))
        for ws in sorts:
            pvals = [list(map(f, rows)) for f in ws.partition]
            ovals = [list(map(f, rows)) for f, _, _ in ws.order]
            order = _sorted_indexes(n, pvals, ovals, ws)
            need_peers = any(_uses_peers(c) for c in ws.calls)
            # rank and its kin read only the partition's size: its indexes stand in for its rows
            need_rows = any(c.name not in _SIZE_ONLY for c in ws.calls)
            for call in ws.calls:
                orders[call.slot] = order
            for part in _partitions(order, pvals):
                prows = list(map(rows.__getitem__, part)) if need_rows else part
                peers = _peer_groups(_equality_keys(part, ovals)) if need_peers else _NO_PEERS
                for call in ws.calls:
                    seqs[call.slot].extend(_evaluate(call, prows, peers, ws))
        cols = []
        for seq, o in zip(seqs, orders):
            if o is not order:  # an earlier sort's order: by row, then in the output's order
                inverse = sorted(range(n), key=o.__getitem__)
                seq = list(map(seq.__getitem__, map(inverse.__getitem__, order)))
            cols.append(seq)
        return map(tuple.__add__, map(rows.__getitem__, order), zip(*cols))

    return run


# ---------------------------------------------------------------- partitions


def _sorted_indexes(
    n: int, pvals: list[list[Any]], ovals: list[list[Any]], ws: WindowSort
) -> list[int]:
    """The row indexes sorted by PARTITION BY, then ORDER BY (stable: one pass
    per term, from the last, over each term's values of the rows)."""
    terms: list[tuple[list[Any], bool, Any]] = [(v, False, None) for v in pvals]
    terms += [(v, desc, nf) for v, (_, desc, nf) in zip(ovals, ws.order)]
    order = list(range(n))
    for vals, desc, nulls_first in reversed(terms):
        keys = order_keys(vals, desc, nulls_first)
        order.sort(key=keys.__getitem__, reverse=desc)
    return order


def _equality_keys(idx: list[int], vals: list[list[Any]]) -> Any:
    """Per index, a key equal for rows whose values are all equal (SQLite's
    equality: NULLs equal each other, 1 equals 1.0)."""
    if not vals:
        return [()] * len(idx)
    if len(vals) == 1:
        return list(map(vals[0].__getitem__, idx))
    return list(zip(*[map(v.__getitem__, idx) for v in vals]))


def _partitions(order: list[int], pvals: list[list[Any]]) -> list[list[int]]:
    if not pvals:
        return [order] if order else []
    peers = _peer_groups(_equality_keys(order, pvals))  # the partitions are its groups
    return [order[a:b] for a, b in zip(peers.starts, peers.ends)]


def _uses_peers(call: WindowCall) -> bool:
    """Whether call reads the peer groups (not: row_number, ntile, lag, lead, and
    ROWS frames without EXCLUDE)."""
    if call.name in ("ROW_NUMBER", "NTILE", "LAG", "LEAD"):
        return False
    if call.name in RANKING:
        return True
    return call.frame.unit != "ROWS" or call.frame.exclude is not None


class _Peers:
    """Peer groups of a sorted partition: group[k] is row k's group number;
    starts[g] / ends[g] the first row of group g and the row after its last;
    sizes[g] its number of rows."""

    def __init__(self, group: list[int], starts: list[int], ends: list[int], sizes: list[int]):
        self.group = group
        self.starts = starts
        self.ends = ends
        self.sizes = sizes


_NO_PEERS = _Peers([], [], [], [])  # for calls that do not read them (_uses_peers)


def _peer_groups(keys: list[Any]) -> _Peers:
    m = len(keys)
    if not m:
        return _Peers([], [], [], [])
    # where a key differs from the one before it, as maps (no Python frame per row)
    new = list(map(ne, keys[1:], keys[:-1]))
    starts = [0, *compress(range(1, m), new)]
    ends = [*starts[1:], m]
    group = list(accumulate(new, initial=0))
    return _Peers(group, starts, ends, list(map(sub, ends, starts)))


# ---------------------------------------------------------------- evaluation


def _evaluate(call: WindowCall, prows: list[Any], peers: _Peers, ws: WindowSort) -> list[Any]:
    name = call.name
    m = len(prows)
    if name in RANKING:
        return _ranking(call, prows, peers)
    lo, hi = _frame_bounds(call, prows, peers, ws)
    excl = call.frame.exclude
    if name in VALUE_FUNCS:
        vals = [call.args[0](r) for r in prows]
        nth = 1
        if name == "NTH_VALUE":
            nv = call.args[1](prows[0]) if prows else 1
            if type(nv) is float and nv.is_integer():
                nv = int(nv)
            if type(nv) is not int or nv <= 0:
                raise SQLError("second argument to nth_value must be a positive integer")
            nth = nv
        res = []
        for k in range(m):
            rows_k = _frame_rows(k, lo[k], hi[k], excl, peers)
            if name == "FIRST_VALUE":
                res.append(vals[rows_k[0]] if rows_k else None)
            elif name == "LAST_VALUE":
                res.append(vals[rows_k[-1]] if rows_k else None)
            else:
                res.append(vals[rows_k[nth - 1]] if len(rows_k) >= nth else None)
        return res
    return _aggregate(call, prows, peers, lo, hi)


def _ranking(call: WindowCall, prows: list[Any], peers: _Peers) -> list[Any]:
    name = call.name
    m = len(prows)
    g, starts, ends = peers.group, peers.starts, peers.ends
    if name == "ROW_NUMBER":
        return list(range(1, m + 1))
    if name == "RANK":  # each peer group's first row number, once per row of the group
        return list(chain.from_iterable(map(repeat, [s + 1 for s in starts], peers.sizes)))
    if name == "DENSE_RANK":
        return list(chain.from_iterable(map(repeat, range(1, len(starts) + 1), peers.sizes)))
    if name == "PERCENT_RANK":
        return [starts[gk] / (m - 1) if m > 1 else 0.0 for gk in g]
    if name == "CUME_DIST":
        return [ends[gk] / m for gk in g]
    if name == "NTILE":
        nt = call.args[0](prows[0]) if prows else 1
        if type(nt) is float and nt.is_integer():
            nt = int(nt)
        if type(nt) is not int or nt <= 0:
            raise SQLError("argument of ntile must be a positive integer")
        size, large = divmod(m, nt)
        if size == 0:
            return list(range(1, m + 1))
        edge = large * (size + 1)
        return [
            k // (size + 1) + 1 if k < edge else (k - edge) // size + large + 1 for k in range(m)
        ]
    # LAG / LEAD
    sign = -1 if name == "LAG" else 1
    vfn = call.args[0]
    ofn = call.args[1] if len(call.args) > 1 else None
    dfn = call.args[2] if len(call.args) > 2 else None
    vals = [vfn(r) for r in prows]
    res: list[Any] = []
    for k, r in enumerate(prows):
        off = 1
        if ofn is not None:
            off = ofn(r)
            if off is None:
                res.append(None)
                continue
            off = T.cast(off, "INTEGER")
        j = k + sign * off
        if 0 <= j < m:
            res.append(vals[j])
        else:
            res.append(dfn(r) if dfn is not None else None)
    return res


def _offset(fn: Fn | None, row: Any, unit: str, which: str) -> Any:
    v = fn(row) if fn is not None else 0
    if unit == "RANGE":
        if type(v) not in (int, float) or v < 0:
            raise SQLError(f"frame {which} offset must be a non-negative number")
        return v
    if type(v) is float and v.is_integer():
        v = int(v)
    if type(v) is not int or v < 0:
        raise SQLError(f"frame {which} offset must be a non-negative integer")
    return v


def _frame_bounds(
    call: WindowCall, prows: list[Any], peers: _Peers, ws: WindowSort
) -> tuple[list[int], list[int]]:
    """Per row k of the partition: the frame as rows lo[k] <= j < hi[k] (before
    EXCLUDE); both lists are non-decreasing (invariant W1)."""
    fr = call.frame
    m = len(prows)
    if not m:
        return [], []
    unit = fr.unit
    (sk, _), (ek, _) = fr.start, fr.end
    first = prows[0]
    soff = _offset(call.offsets[0], first, unit, "starting") if call.offsets[0] else 0
    eoff = _offset(call.offsets[1], first, unit, "ending") if call.offsets[1] else 0
    g, starts, ends = peers.group, peers.starts, peers.ends
    ngroups = len(starts)
    if unit == "RANGE" and (
        sk in (ast.PRECEDING, ast.FOLLOWING) or ek in (ast.PRECEDING, ast.FOLLOWING)
    ):
        return _range_bounds(call, prows, peers, ws, soff, eoff)

    def bound(kind: str, off: int, k: int, is_start: bool) -> int:
        if kind == ast.UNBOUNDED_PRECEDING:
            return 0
        if kind == ast.UNBOUNDED_FOLLOWING:
            return m
        if unit == "ROWS":
            j = k if kind == ast.CURRENT_ROW else (k - off if kind == ast.PRECEDING else k + off)
            return min(max(j + (0 if is_start else 1), 0), m)
        # GROUPS, and RANGE's CURRENT ROW (the current row's peers)
        gk = g[k]
        if kind != ast.CURRENT_ROW:
            gk = gk - off if kind == ast.PRECEDING else gk + off
        if is_start:
            return 0 if gk < 0 else (m if gk >= ngroups else starts[gk])
        return 0 if gk < 0 else (m if gk >= ngroups else ends[gk])

    lo = _fast_bound(unit, sk, soff, True, m, peers)
    if lo is None:
        lo = [bound(sk, soff, k, True) for k in range(m)]
    hi = _fast_bound(unit, ek, eoff, False, m, peers)
    if hi is None:
        hi = [bound(ek, eoff, k, False) for k in range(m)]
    return lo, hi


def _fast_bound(
    unit: str, kind: str, off: int, is_start: bool, m: int, peers: _Peers
) -> list[int] | None:
    """The common bounds as one comprehension each (None: compute row by row)."""
    if kind == ast.UNBOUNDED_PRECEDING:
        return [0] * m
    if kind == ast.UNBOUNDED_FOLLOWING:
        return [m] * m
    if unit == "ROWS":
        d = 0 if kind == ast.CURRENT_ROW else (-off if kind == ast.PRECEDING else off)
        d += 0 if is_start else 1
        # min(max(k + d, 0), m) for k in range(m), as three runs
        zeros = min(max(-d, 0), m)
        body = list(range(max(d, 0), min(m, m + d)))
        return [0] * zeros + body + [m] * (m - zeros - len(body))
    if kind == ast.CURRENT_ROW:
        edge = peers.starts if is_start else peers.ends
        return list(map(edge.__getitem__, peers.group))
    return None


def _range_bounds(
    call: WindowCall, prows: list[Any], peers: _Peers, ws: WindowSort, soff: Any, eoff: Any
) -> tuple[list[int], list[int]]:
    """RANGE with n PRECEDING / n FOLLOWING over the one ORDER BY value."""
    if len(ws.order) != 1:
        raise SQLError("RANGE with offset PRECEDING/FOLLOWING requires one ORDER BY expression")
    m = len(prows)
    f, desc, _ = ws.order[0]
    vals = [f(r) for r in prows]
    # the numeric values are one run of the sorted partition: [a, b)
    num = [k for k, v in enumerate(vals) if type(v) in (int, float)]
    a, b = (num[0], num[-1] + 1) if num else (0, 0)
    us = [(-vals[k] if desc else vals[k]) for k in range(a, b)]  # ascending
    g, starts, ends = peers.group, peers.starts, peers.ends
    (sk, _), (ek, _) = call.frame.start, call.frame.end
    lo: list[int] = []
    hi: list[int] = []
    for k in range(m):
        v = vals[k]
        numeric = type(v) in (int, float)
        u = (-v if desc else v) if numeric else None
        for kind, off, is_start, outl in ((sk, soff, True, lo), (ek, eoff, False, hi)):
            if kind == ast.UNBOUNDED_PRECEDING:
                outl.append(0)
            elif kind == ast.UNBOUNDED_FOLLOWING:
                outl.append(m)
            elif kind == ast.CURRENT_ROW or not numeric:
                outl.append(starts[g[k]] if is_start else ends[g[k]])
            else:
                t = u - off if kind == ast.PRECEDING else u + off
                outl.append(a + (bisect_left(us, t) if is_start else bisect_right(us, t)))
    return lo, hi


def _frame_rows(k: int, lo: int, hi: int, excl: str | None, peers: _Peers) -> list[int]:
    if excl is None:
        return list(range(lo, hi))
    gs, ge = peers.starts[peers.group[k]], peers.ends[peers.group[k]]
    if excl == "CURRENT ROW":
        return [j for j in range(lo, hi) if j != k]
    if excl == "GROUP":
        return [j for j in range(lo, hi) if not gs <= j < ge]
    return [j for j in range(lo, hi) if j == k or not gs <= j < ge]  # TIES


# ---------------------------------------------------------------- aggregates


def _arg_values(call: WindowCall, prows: list[Any]) -> list[Any]:
    """Per row: the aggregate's argument value (a tuple for several), or _SKIP
    where FILTER leaves the row out."""
    flt = call.filter
    if call.star or not call.args:
        vals: list[Any] = [1] * len(prows)
    elif len(call.args) == 1 or call.name in ("GROUP_CONCAT", "STRING_AGG"):
        vals = list(map(call.args[0], prows))
    else:
        fns = call.args
        vals = [tuple([f(r) for f in fns]) for r in prows]
    if flt is not None:
        vals = [v if flt(r) else _SKIP for v, r in zip(vals, prows)]
    return vals


def _aggregate(
    call: WindowCall, prows: list[Any], peers: _Peers, lo: list[int], hi: list[int]
) -> list[Any]:
    name = call.name
    m = len(prows)
    vals = _arg_values(call, prows)
    excl = call.frame.exclude
    if not call.distinct and excl is None and name in _SLIDING:
        groups = peers.group if call.frame.unit == "GROUPS" else None
        return _sliding(name, vals, lo, hi, _catch_up_width(call, prows), groups)
    fn = AGG_FUNCS[name]
    sep_fn = call.args[1] if name in ("GROUP_CONCAT", "STRING_AGG") and len(call.args) > 1 else None
    running = (
        not call.distinct and excl is None and name in ("MIN", "MAX") and all(x == 0 for x in lo)
    )
    res: list[Any] = []
    prev: Any = None
    best: Any = None
    upto = 0
    for k in range(m):
        span = (lo[k], hi[k])
        if excl is None and span == prev:
            res.append(res[-1])
            continue
        prev = span
        if running:
            while upto < hi[k]:
                v = vals[upto]
                upto += 1
                if v is not _SKIP and v is not None:
                    if best is None:
                        best = v
                    else:
                        c = T.compare(v, best)
                        if (c < 0) if name == "MIN" else (c > 0):
                            best = v
            res.append(best)
            continue
        rows_k = _frame_rows(k, lo[k], hi[k], excl, peers)
        fv = [vals[j] for j in rows_k if vals[j] is not _SKIP]
        if call.distinct:
            seen: set[Any] = set()
            dv = []
            for v in fv:
                if v not in seen:
                    seen.add(v)
                    dv.append(v)
            fv = dv
        if sep_fn is not None:
            res.append(fn(fv, sep_fn(prows[k])))
        else:
            res.append(fn(fv))
    return res


_SLIDING = {"COUNT", "SUM", "TOTAL", "AVG"}


def _number(v: Any) -> int | float:
    """The value sum() adds for v (SQLite's numeric value of a text)."""
    if type(v) is int or type(v) is float:
        return v
    n = T.numeric_value(v)
    if type(n) is int:
        return n
    return float(T.numeric_prefix(v))


def _catch_up_width(call: WindowCall, prows: list[Any]) -> float | None:
    """For ROWS or GROUPS BETWEEN s FOLLOWING AND e FOLLOWING (or UNBOUNDED
    FOLLOWING): e - s, how far SQLite's end cursor runs ahead of its start cursor
    from the partition's first row (window.c adds row (or peer group) j + (e - s),
    then takes row (group) j away); None for other frames, where the frame's own
    width at each row gives the same order."""
    fr = call.frame
    if fr.unit not in ("ROWS", "GROUPS") or fr.start[0] != ast.FOLLOWING or not prows:
        return None
    soff = _offset(call.offsets[0], prows[0], fr.unit, "starting")
    if fr.end[0] == ast.UNBOUNDED_FOLLOWING:
        return float("inf")
    if fr.end[0] != ast.FOLLOWING:
        return None
    width: float = _offset(call.offsets[1], prows[0], fr.unit, "ending") - soff
    return width


def _sliding(
    name: str,
    vals: list[Any],
    lo: list[int],
    hi: list[int],
    catch_up: float | None = None,
    groups: list[int] | None = None,
) -> list[Any]:
    """count / sum / total / avg over frames that only move forward: each value
    enters and leaves the running state once (invariant W1). All-integer
    arguments use prefix sums instead (exact, so the same numbers)."""
    types = set(map(type, vals))
    if types <= {int}:
        return _prefix(name, vals, lo, hi)
    if types == {float} and not any(lo):
        return _running_floats(name, vals, hi)
    res: list[Any] = []
    a = b = 0  # the state holds rows a <= j < b
    count = 0
    isum = 0  # the integers, exactly (SQLite's SumCtx.iSum)
    rsum = 0.0  # every value as a double, added and taken away in order (SumCtx.rSum)
    approx = False  # a non-integer was added (sticky, as SQLite's SumCtx.approx)

    def add(v: Any) -> None:
        nonlocal count, isum, rsum, approx
        if v is _SKIP or v is None:
            return
        count += 1
        if name == "COUNT":
            return
        x = _number(v)
        rsum += x
        if type(x) is int:
            isum += x
        else:
            approx = True

    def remove(v: Any) -> None:
        nonlocal count, isum, rsum
        if v is _SKIP or v is None:
            return
        count -= 1
        if name == "COUNT":
            return
        x = _number(v)
        rsum -= x
        if type(x) is int and not approx:
            isum -= x

    for k in range(len(lo)):
        nlo, nhi = lo[k], max(lo[k], hi[k])
        # the state steps through every row from the partition's first, never
        # jumping ahead, as SQLite's does: a REAL sum rounds the same way
        while a < nlo and a < b:  # SQLite takes leaving rows away first
            remove(vals[a])
            a += 1
        # catching up (a frame that starts FOLLOWING, at the partition's first
        # row): SQLite takes row a away right after adding row a + width
        width = nhi - 1 - nlo if catch_up is None else catch_up
        while b < nhi:
            add(vals[b])
            b += 1
            if groups is None or catch_up is None:
                while a < nlo and a <= b - 1 - width:
                    remove(vals[a])
                    a += 1
            elif b == len(vals) or groups[b] != groups[b - 1]:  # a whole peer group added
                while a < nlo and groups[a] <= groups[b - 1] - width:
                    remove(vals[a])
                    a += 1
        while a < nlo:
            remove(vals[a])
            a += 1
        if name == "COUNT":
            res.append(count)
        elif name == "TOTAL":
            res.append(rsum)
        elif not count:
            res.append(None)
        elif name == "AVG":
            res.append(rsum / count)
        elif approx:
            res.append(rsum)
        else:
            if not T.I64_MIN <= isum <= T.I64_MAX:
                raise SQLError("integer overflow")
            res.append(isum)
    return res


def _prefix(name: str, vals: list[int], lo: list[int], hi: list[int]) -> list[Any]:
    """_sliding for integer values without NULLs: frame sums from prefix sums."""
    pre = [0, *accumulate(vals)]
    counts = [max(h - a, 0) for a, h in zip(lo, hi)]
    if name == "COUNT":
        return counts
    sums = [pre[h] - pre[a] if h > a else 0 for a, h in zip(lo, hi)]
    if name == "TOTAL":
        return [float(x) for x in sums]
    if name == "AVG":
        return [x / c if c else None for x, c in zip(sums, counts)]
    for x in sums:
        if not T.I64_MIN <= x <= T.I64_MAX:
            raise SQLError("integer overflow")
    return [x if c else None for x, c in zip(sums, counts)]


def _running_floats(name: str, vals: list[float], hi: list[int]) -> list[Any]:
    """_sliding for REAL values without NULLs over frames from the partition's
    first row: the same additions, in the same order, as prefix sums."""
    # pre[h] is 0.0 + pre[h] (as _sliding computes it): the first sum is 0.0 + v,
    # never -0.0, and a sum is -0.0 only when both of its terms are
    pre = list(accumulate(vals, initial=0.0))
    if name == "COUNT":
        return list(hi)
    if name == "TOTAL":
        return list(map(pre.__getitem__, hi))
    if name == "AVG":
        return [pre[h] / h if h else None for h in hi]
    if hi and hi[0] > 0:  # non-decreasing (W1): no empty frame
        return list(map(pre.__getitem__, hi))
    return [pre[h] if h else None for h in hi]
