"""The function table: scalar SQL functions (SQLite's semantics), the aggregate
functions' finishers and the table-valued functions.

A scalar function takes its evaluated arguments and returns a value; NULL in
gives NULL out unless SQLite says otherwise (COALESCE, IFNULL, TYPEOF, ...).
The core string and number functions live here; the larger libraries in their
own modules, registered below: fn_datetime (date and time), fn_json (JSON),
fn_printf (printf/format), fn_vector (vectors: vec_distance_*, vec_to_json, ...).
"""

from __future__ import annotations

from typing import Any, Callable

from toondb.errors import SQLError
from toondb.sql import fn_datetime, fn_json, fn_strftime, fn_vector, fulltext
from toondb.sql import types as T
from toondb.sql.fn_printf import MAX_LENGTH, f_printf
from toondb.sql.user_functions import USER_FUNCTIONS

AGGREGATES = {
    "COUNT",
    "SUM",
    "TOTAL",
    "AVG",
    "MIN",
    "MAX",
    "GROUP_CONCAT",
    "STRING_AGG",
    *fn_json.AGGREGATES,
}


def _text(v: Any) -> Any:
    return T.to_text(v)


def f_lower(v: Any) -> Any:
    if v is None:
        return None
    s = _text(v)
    return (
        "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in s)
        if not s.isascii()
        else s.lower()
    )


def f_upper(v: Any) -> Any:
    if v is None:
        return None
    s = _text(v)
    return (
        "".join(chr(ord(c) - 32) if "a" <= c <= "z" else c for c in s)
        if not s.isascii()
        else s.upper()
    )


def f_length(v: Any) -> Any:
    if v is None:
        return None
    if type(v) is bytes:
        return len(v)
    return len(_text(v))


def f_octet_length(v: Any) -> Any:
    if v is None:
        return None
    if type(v) is bytes:
        return len(v)
    return len(_text(v).encode("utf-8"))


def f_substr(v: Any, start: Any, length: Any = ...) -> Any:
    if v is None or start is None or length is None:
        return None
    if type(v) is bytes and not v:
        return None  # SQLite: sqlite3_value_blob() of an empty blob is NULL
    s = v if type(v) is bytes else _text(v)
    p1 = T.cast(start, "INTEGER")
    n = len(s)
    if length is ...:
        p2 = n + 1 if p1 >= 0 else -p1  # to the end
        if p1 < 0:
            p1 = max(n + p1, 0) + 1
            return s[p1 - 1 :]
        if p1 == 0:
            p1 = 1
        return s[p1 - 1 :]
    p2 = T.cast(length, "INTEGER")
    # SQLite's substr: 1-based; p1 == 0 counts as a position before the first
    if p1 < 0:
        p1 += n
        if p1 < 0:
            p2 += p1
            p1 = 0
    elif p1 > 0:
        p1 -= 1
    else:
        if p2 > 0:
            p2 -= 1
    if p2 < 0:
        p1 += p2
        p2 = -p2
        if p1 < 0:
            p2 += p1
            p1 = 0
    if p2 <= 0:
        return s[:0]
    return s[p1 : p1 + p2]


def _trim_chars(chars: Any) -> Any:
    return " " if chars is ... else (None if chars is None else _text(chars))


def f_trim(v: Any, chars: Any = ...) -> Any:
    c = _trim_chars(chars)
    if v is None or c is None:
        return None
    return _text(v).strip(c)


def f_ltrim(v: Any, chars: Any = ...) -> Any:
    c = _trim_chars(chars)
    if v is None or c is None:
        return None
    return _text(v).lstrip(c)


def f_rtrim(v: Any, chars: Any = ...) -> Any:
    c = _trim_chars(chars)
    if v is None or c is None:
        return None
    return _text(v).rstrip(c)


def f_replace(v: Any, old: Any, new: Any) -> Any:
    if v is None or old is None:
        return None
    o = _text(old) if type(old) is not bytes else old.decode("utf-8", "replace")
    if o == "":
        # unchanged: a number keeps its type, a blob comes back as text (SQLite)
        return v if type(v) in (int, float) else _text(v)
    if new is None:
        return None
    return _text(v).replace(o, _text(new))


def f_abs(v: Any) -> Any:
    if v is None:
        return None
    n = T.numeric_prefix(v) if type(v) not in (int, float) else v
    if type(v) is str or type(v) is bytes:
        n = float(n)
    if type(n) is int and n == T.I64_MIN:
        raise SQLError("integer overflow")
    return abs(n)


def f_round(v: Any, digits: Any = 0) -> Any:
    if v is None or digits is None:
        return None
    n = float(T.numeric_prefix(v))
    d = T.cast(digits, "INTEGER")
    return T.round_half_up(n, max(d, 0))


def f_coalesce(*args: Any) -> Any:
    for a in args:
        if a is not None:
            return a
    return None


def f_nullif(a: Any, b: Any) -> Any:
    if a is not None and b is not None and T.compare(a, b) == 0:
        return None
    return a


def f_min(*args: Any) -> Any:
    best = None
    for a in args:
        if a is None:
            return None
        if best is None or T.compare(a, best) <= 0:  # the last of equals, as SQLite
            best = a
    return best


def f_max(*args: Any) -> Any:
    best = None
    for a in args:
        if a is None:
            return None
        if best is None or T.compare(a, best) > 0:
            best = a
    return best


def f_instr(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    if type(a) is bytes and type(b) is bytes:
        return a.find(b) + 1
    return _text(a).find(_text(b)) + 1


def f_hex(v: Any) -> Any:
    if v is None:
        return ""
    b = v if type(v) is bytes else _text(v).encode("utf-8")
    return b.hex().upper()


def f_quote(v: Any) -> Any:
    if v is None:
        return "NULL"
    t = type(v)
    if t is int:
        return str(v)
    if t is float:
        return T.format_real(v)
    if t is bytes:
        return "X'" + v.hex().upper() + "'"
    return "'" + v.replace("'", "''") + "'"


def f_sign(v: Any) -> Any:
    if v is None:
        return None
    n = T.numeric_prefix(v)
    return (n > 0) - (n < 0)


def f_char(*args: Any) -> Any:
    return "".join(chr(T.cast(a, "INTEGER")) for a in args if a is not None)


def f_unicode(v: Any) -> Any:
    if v is None:
        return None
    s = _text(v)
    return ord(s[0]) if s else None


def f_zeroblob(n: Any) -> Any:
    if n is None:
        return None
    size = T.cast(n, "INTEGER")
    if size > MAX_LENGTH:  # as SQLite: no allocation of gigabytes on a client's say-so
        raise SQLError("string or blob too big")
    return bytes(max(size, 0))


def f_iif(c: Any, a: Any, b: Any) -> Any:
    return a if T.truth(c) else b


def f_random() -> Any:
    import random

    return random.randint(T.I64_MIN, T.I64_MAX)


# name -> (min args, max args, function, deterministic)
SCALARS: dict[str, tuple[int, int, Callable[..., Any], bool]] = {
    "LOWER": (1, 1, f_lower, True),
    "UPPER": (1, 1, f_upper, True),
    "LENGTH": (1, 1, f_length, True),
    "OCTET_LENGTH": (1, 1, f_octet_length, True),
    "SUBSTR": (2, 3, f_substr, True),
    "SUBSTRING": (2, 3, f_substr, True),
    "TRIM": (1, 2, f_trim, True),
    "LTRIM": (1, 2, f_ltrim, True),
    "RTRIM": (1, 2, f_rtrim, True),
    "REPLACE": (3, 3, f_replace, True),
    "ABS": (1, 1, f_abs, True),
    "ROUND": (1, 2, f_round, True),
    "COALESCE": (2, 999, f_coalesce, True),
    "IFNULL": (2, 2, f_coalesce, True),
    "NULLIF": (2, 2, f_nullif, True),
    "MIN": (2, 999, f_min, True),
    "MAX": (2, 999, f_max, True),
    "TYPEOF": (1, 1, T.typeof, True),
    "INSTR": (2, 2, f_instr, True),
    "HEX": (1, 1, f_hex, True),
    "QUOTE": (1, 1, f_quote, True),
    "SIGN": (1, 1, f_sign, True),
    "CHAR": (0, 999, f_char, True),
    "UNICODE": (1, 1, f_unicode, True),
    "ZEROBLOB": (1, 1, f_zeroblob, True),
    "IIF": (3, 3, f_iif, True),
    "RANDOM": (0, 0, f_random, False),
    # date and time (fn_datetime); 'now' is per statement under statement_clock()
    "CURRENT_TIMESTAMP": (0, 0, fn_datetime.f_current_timestamp, False),
    "CURRENT_DATE": (0, 0, fn_datetime.f_current_date, False),
    "CURRENT_TIME": (0, 0, fn_datetime.f_current_time, False),
    "DATE": (0, 999, fn_datetime.f_date, False),
    "TIME": (0, 999, fn_datetime.f_time, False),
    "DATETIME": (0, 999, fn_datetime.f_datetime, False),
    "JULIANDAY": (0, 999, fn_datetime.f_julianday, False),
    "UNIXEPOCH": (0, 999, fn_datetime.f_unixepoch, False),
    "STRFTIME": (0, 999, fn_strftime.f_strftime, False),
    "TIMEDIFF": (2, 2, fn_datetime.f_timediff, False),
    # printf (fn_printf)
    "PRINTF": (0, 999, f_printf, True),
    "FORMAT": (0, 999, f_printf, True),
    # JSON (fn_json); JSON_ARROW/JSON_ARROW2 are the -> and ->> operators
    **fn_json.SCALARS,
    # vectors (fn_vector)
    **fn_vector.SCALARS,
    # full-text tables' MATCH, rank and auxiliary functions, as rewritten (fulltext.py)
    **fulltext.SCALARS,
}

# scalars compiled for a first argument that is one value per run (a literal or a
# parameter, read as P[i]): name -> (P, i, argument row functions) -> a row
# function, or None for the general call
SPECIALIZED: dict[str, Callable[..., Callable[[Any], Any] | None]] = {
    "STRFTIME": fn_strftime.specialize,
}

# table-valued functions for FROM: name -> (row generator, column names); the
# generator takes the call's arguments (json_each(X [, PATH]))
TABLE_FUNCTIONS: dict[str, tuple[Callable[..., Any], tuple[str, ...]]] = {
    "JSON_EACH": (fn_json.json_each, fn_json.EACH_COLUMNS),
    "JSON_TREE": (fn_json.json_tree, fn_json.EACH_COLUMNS),
}


def is_aggregate_call(name: str, nargs: int, star: bool) -> bool:
    if name in ("MIN", "MAX"):
        return nargs == 1
    if name == "COUNT":
        return star or nargs <= 1
    if name in AGGREGATES:
        return True
    user = USER_FUNCTIONS.get()  # an application's aggregate (create_aggregate)
    return user is not None and user.aggregate(name, nargs) is not None


# ---------------------------------------------------------------- aggregates
# Each takes the list of argument values of one group (NULLs included) and
# returns the aggregate's value; distinct aggregates get the values deduplicated.


def _nonnull(vals: list[Any]) -> list[Any]:
    return [v for v in vals if v is not None]


def agg_count(vals: list[Any]) -> int:
    return len(vals) - vals.count(None) if None in vals else len(vals)


def _sum_values(vals: list[Any]) -> Any:
    """(sum, all integers?) of non-NULL values; text counts by its numeric prefix."""
    try:
        s = sum(vals)
    except TypeError:
        vals = [v if type(v) in (int, float) else T.numeric_prefix(v) for v in vals]
        s = sum(vals)
    return s


_NUMBER_TYPES = frozenset((int, float))


def agg_sum(vals: list[Any]) -> Any:
    vals = _nonnull(vals)
    if not vals:
        return None
    kinds = set(map(type, vals))  # C-level: no Python call per value
    if kinds == {float} or kinds == _NUMBER_TYPES:
        return float(sum(map(float, vals)))  # numbers, not all integers: a REAL sum
    if kinds != {int}:
        # SQLite sums what sqlite3_value_numeric_type makes of each value: a text
        # that is an integer literal counts as an INTEGER; anything else that is
        # not an integer makes the sum REAL (texts by their numeric prefix)
        nums = [T.numeric_value(v) for v in vals]
        if not all(type(n) is int for n in nums):
            return float(_sum_values([float(T.numeric_prefix(v)) for v in vals]))
        vals = nums
    s = sum(vals)
    if not T.I64_MIN <= s <= T.I64_MAX:
        raise SQLError("integer overflow")
    return s


def agg_total(vals: list[Any]) -> Any:
    vals = _nonnull(vals)
    if not vals:
        return 0.0
    return float(_sum_values(vals))


def agg_avg(vals: list[Any]) -> Any:
    vals = _nonnull(vals)
    if not vals:
        return None
    return float(_sum_values(vals)) / len(vals)


def agg_min(vals: list[Any]) -> Any:
    vals = _nonnull(vals)
    if not vals:
        return None
    try:
        return min(vals)
    except TypeError:
        return min(vals, key=T.sort_key)


def agg_max(vals: list[Any]) -> Any:
    vals = _nonnull(vals)
    if not vals:
        return None
    try:
        return max(vals)
    except TypeError:
        return max(vals, key=T.sort_key)


def agg_group_concat(vals: list[Any], sep: Any = ",") -> Any:
    vals = _nonnull(vals)
    if not vals:
        return None
    if sep is None:
        sep = ""
    return T.to_text(sep).join(
        T.to_text(v) if type(v) is not bytes else v.decode("utf-8", "replace") for v in vals
    )


AGG_FUNCS: dict[str, Callable[..., Any]] = {
    **{name: fn for name, (_, fn) in fn_json.AGGREGATES.items()},
    "COUNT": agg_count,
    "SUM": agg_sum,
    "TOTAL": agg_total,
    "AVG": agg_avg,
    "MIN": agg_min,
    "MAX": agg_max,
    "GROUP_CONCAT": agg_group_concat,
    "STRING_AGG": agg_group_concat,
}

# aggregates of more than one argument: name -> number of arguments. Their
# finisher takes one tuple of argument values per row (json_group_object(K, V)
# gets [(k, v), ...]); the planner passes only single-argument aggregates so far.
AGG_ARITY: dict[str, int] = {name: n for name, (n, _) in fn_json.AGGREGATES.items() if n > 1}
