"""SQLite's value semantics: type affinity, comparison, arithmetic and casts.

Values are Python ``None``, ``int`` (64-bit, like SQLite's INTEGER), ``float``,
``str`` and ``bytes``. The rules follow https://sqlite.org/datatype3.html:

* a column's affinity comes from its declared type (INT -> INTEGER; CHAR, CLOB,
  TEXT -> TEXT; BLOB or nothing -> BLOB; REAL, FLOA, DOUB -> REAL; else NUMERIC),
  and is applied to every value stored in it;
* before a comparison, numeric affinity is applied to an operand when the other
  has INTEGER, REAL or NUMERIC affinity and it has TEXT, BLOB or none; TEXT
  affinity when the other has TEXT and it has none;
* values of different classes order NULL < INTEGER/REAL < TEXT < BLOB; integers
  and reals compare by value, text by its UTF-8 bytes (BINARY collation);
* integer arithmetic that overflows 64 bits gives a REAL; integer division
  truncates toward zero; division by zero is NULL.
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any, Callable

from toondb.errors import IntegerOverflowError, SQLError, VectorValueError

INTEGER, TEXT, BLOB, REAL, NUMERIC = "INTEGER", "TEXT", "BLOB", "REAL", "NUMERIC"
NONE = None  # no affinity (an expression that is not a column or a CAST)

I64_MIN = -(1 << 63)
I64_MAX = (1 << 63) - 1
INT_OVERFLOW = "Python int too large to convert to SQLite INTEGER"  # sqlite3's words


class JsonText(str):
    """TEXT that carries SQLite's JSON subtype: the result of a JSON function.

    Another JSON function taking it as an argument embeds it as JSON rather
    than as a string (``json_array(json('[1]'))`` is ``[[1]]``, while
    ``json_array('[1]')`` is ``["[1]"]``). Everywhere else it is plain TEXT, and
    the subtype is lost where SQLite loses it: storing the value (affinity),
    concatenating it, casting it (:func:`to_text`), handing it to the caller
    (:func:`plain`)."""

    __slots__ = ()


def plain(v: Any) -> Any:
    """v without a subtype: a JsonText becomes a plain str."""
    return str(v) if type(v) is JsonText else v


def affinity_of(type_name: str) -> str:
    """The affinity of a declared column type (the rules of datatype3.html 3.1)."""
    t = type_name.upper()
    if "INT" in t:
        return INTEGER
    if "CHAR" in t or "CLOB" in t or "TEXT" in t:
        return TEXT
    if "BLOB" in t or not t.strip():
        return BLOB
    if "REAL" in t or "FLOA" in t or "DOUB" in t:
        return REAL
    return NUMERIC


def is_numeric_affinity(aff: str | None) -> bool:
    return aff in (INTEGER, REAL, NUMERIC)


# ---------------------------------------------------------------- text <-> numbers

_NUM_FULL = re.compile(r"\s*([+-]?)(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*\Z")
_NUM_PREFIX = re.compile(r"\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)")
_INT_PREFIX = re.compile(r"\s*([+-]?\d+)")


def format_real(v: float) -> str:
    """A REAL as SQLite prints it as text ("%!.15g": always a '.' or an exponent)."""
    if v != v:
        return "NaN"
    if v in (math.inf, -math.inf):
        return "Inf" if v > 0 else "-Inf"
    if v == 0:
        v = 0.0  # SQLite prints -0.0 as 0.0
    s = f"{v:.15g}"
    if "e" in s:
        mant, exp = s.split("e")
        if "." not in mant:
            mant += ".0"
        return f"{mant}e{exp}"
    if "." not in s:
        s += ".0"
    return s


def to_text(v: Any) -> Any:
    """v as TEXT (NULL stays NULL)."""
    t = type(v)
    if t is str or v is None:
        return v
    if t is int or t is bool:
        return str(int(v))
    if t is float:
        return format_real(v)
    if t is JsonText:
        return str(v)
    return bytes(v).decode("utf-8", "replace")


def _int_or_float(text: str, m: re.Match[str]) -> Any:
    """A well-formed numeric literal: int when it is an integer that fits."""
    if m.group(3) is None and m.group(4) is None and not text.strip().startswith("."):
        try:
            i = int(text)
        except ValueError:
            return float(text)
        if I64_MIN <= i <= I64_MAX:
            return i
        return float(i)
    return float(text)


def text_to_numeric(s: str, aff: str) -> Any:
    """Apply numeric affinity to a text: the number if the whole text is one, else s."""
    m = _NUM_FULL.match(s)
    if m is None:
        return s
    v = _int_or_float(s, m)
    if aff == REAL:
        return float(v)
    if type(v) is float and v.is_integer() and -9.223372036854775e18 <= v <= 9.223372036854775e18:
        return int(v)
    return v


def apply_affinity(aff: str | None, v: Any) -> Any:
    """The value stored in (or compared as) a column of affinity aff."""
    t = type(v)
    if v is None:
        return None
    if t is bool:
        v, t = int(v), int
    elif t is JsonText:
        v, t = str(v), str  # a stored value loses its subtype
    if aff == TEXT:
        if t is int or t is float:
            return to_text(v)
        return v
    if aff == INTEGER or aff == NUMERIC:
        if t is str:
            return text_to_numeric(v, aff)
        if t is float and v.is_integer() and -9.223372036854775e18 <= v <= 9.223372036854775e18:
            return int(v)
        return v
    if aff == REAL:
        if t is int:
            return float(v)
        if t is str:
            return text_to_numeric(v, REAL)
        return v
    return v


def numeric_value(v: Any) -> Any:
    """v as SQLite's sqlite3_value_numeric_type sees it: a number, or a text that
    is wholly an integer (-> int) or a real (-> float) literal; else None."""
    t = type(v)
    if t is int or t is float:
        return v
    if t is str:
        m = _NUM_FULL.match(v)
        if m is not None:
            return _int_or_float(v, m)
    return None


def numeric_prefix(v: Any) -> Any:
    """v as a number for arithmetic: text and blobs by their longest numeric prefix
    (0 when there is none); NULL stays NULL."""
    t = type(v)
    if t is int or t is float or v is None:
        return v
    if t is bool:
        return int(v)
    if t is bytes:
        v = v.decode("utf-8", "replace")
    m = _NUM_PREFIX.match(v)
    if m is None:
        return 0
    text = m.group(1)
    if "." in text or "e" in text or "E" in text:
        return float(text)
    i = int(text)
    return i if I64_MIN <= i <= I64_MAX else float(i)


def cast(v: Any, type_name: str) -> Any:
    """CAST(v AS type_name)."""
    if v is None:
        return None
    aff = affinity_of(type_name)
    t = type(v)
    if aff == TEXT:
        return to_text(v)
    if aff == BLOB:
        if t is bytes:
            return v
        return to_text(v).encode("utf-8")
    if aff == INTEGER:
        if t is int:
            return v
        if t is float:
            return float_to_int(v)
        if t is bytes:
            v = v.decode("utf-8", "replace")
        m = _INT_PREFIX.match(v)
        if m is None:
            return 0
        i = int(m.group(1))
        return max(I64_MIN, min(I64_MAX, i))
    if aff == REAL:
        n = numeric_prefix(v)
        return float(n)
    # NUMERIC: a number is unchanged (a REAL stays REAL, as in SQLite)
    if t is int or t is float:
        return v
    n = numeric_prefix(v)
    if type(n) is float and n.is_integer() and -9.223372036854775e18 <= n <= 9.223372036854775e18:
        return int(n)
    return n


def float_to_int(f: float) -> int:
    if f != f:
        return 0
    if f >= 9.223372036854775807e18:
        return I64_MAX
    if f <= -9.223372036854775808e18:
        return I64_MIN
    return int(f)


# ---------------------------------------------------------------- comparison


def type_class(v: Any) -> int:
    if v is None:
        return 0
    t = type(v)
    if t is int or t is float or t is bool:
        return 1
    if t is str or t is JsonText:
        return 2
    return 3


def compare(a: Any, b: Any) -> int:
    """-1, 0 or 1: SQLite's order of two non-NULL values (BINARY collation)."""
    ta, tb = type(a), type(b)
    if ta is tb or (ta in (int, float) and tb in (int, float)):
        return -1 if a < b else (1 if a > b else 0)
    ca, cb = type_class(a), type_class(b)
    if ca != cb:
        return -1 if ca < cb else 1
    return -1 if a < b else (1 if a > b else 0)


def sort_key(v: Any) -> tuple[int, Any]:
    """A key for Python's sort that orders values as SQLite does (NULLs first)."""
    if v is None:
        return (0, 0)
    t = type(v)
    if t is int or t is float:
        return (1, v)
    if t is str or t is JsonText:
        return (2, v)
    return (3, v)


def comparison_affinity(left: str | None, right: str | None) -> tuple[str | None, str | None]:
    """The affinities applied to (left, right) before comparing them (datatype3 4.2)."""
    ln, rn = is_numeric_affinity(left), is_numeric_affinity(right)
    if ln and not rn:
        return None, NUMERIC
    if rn and not ln:
        return NUMERIC, None
    if left == TEXT and right is None:
        return None, TEXT
    if right == TEXT and left is None:
        return TEXT, None
    return None, None


def converter(aff: str | None) -> Callable[[Any], Any] | None:
    """A function applying affinity aff to an operand before a comparison, or None."""
    if aff is None:
        return None
    if aff == TEXT:
        return _to_text_cmp
    return _to_numeric_cmp


def _to_numeric_cmp(v: Any) -> Any:
    if type(v) is str:
        return text_to_numeric(v, NUMERIC)
    return v


def _to_text_cmp(v: Any) -> Any:
    t = type(v)
    if t is int or t is float:
        return to_text(v)
    return v


# ---------------------------------------------------------------- arithmetic


def _num(v: Any) -> Any:
    t = type(v)
    if t is int or t is float:
        return v
    return numeric_prefix(v)


def add(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    a, b = _num(a), _num(b)
    r = a + b
    if type(r) is int and not I64_MIN <= r <= I64_MAX:
        return float(a) + float(b)
    return r


def sub(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    a, b = _num(a), _num(b)
    r = a - b
    if type(r) is int and not I64_MIN <= r <= I64_MAX:
        return float(a) - float(b)
    return r


def mul(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    a, b = _num(a), _num(b)
    r = a * b
    if type(r) is int and not I64_MIN <= r <= I64_MAX:
        return float(a) * float(b)
    return r


def div(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    a, b = _num(a), _num(b)
    if type(a) is int and type(b) is int:
        if b == 0:
            return None
        q = abs(a) // abs(b)
        if (a < 0) != (b < 0):
            q = -q
        if q > I64_MAX:
            return float(a) / float(b)
        return q
    if b == 0:
        return None
    try:
        return a / b
    except OverflowError:
        return math.inf if (a > 0) == (b > 0) else -math.inf


def _int_part(v: Any) -> int:
    """The integer % works on: a text's integer prefix ('1e3' is 1), a real truncated."""
    if type(v) is int:
        return v
    if type(v) is float:
        return float_to_int(v)
    i: int = cast(v, "INTEGER")
    return i


def mod(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    ta, tb = type(a), type(b)
    if (ta is str or ta is bytes) or (tb is str or tb is bytes):
        na, nb = _num(a), _num(b)  # a text counts as REAL when it reads as one
        ia, ib = _int_part(a), _int_part(b)
        if ib == 0:
            return None
        r = abs(ia) % abs(ib)
        r = -r if ia < 0 else r
        return float(r) if (type(na) is float or type(nb) is float) else r
    a, b = _num(a), _num(b)
    if type(a) is int and type(b) is int:
        if b == 0:
            return None
        r = abs(a) % abs(b)
        return -r if a < 0 else r
    # SQLite: a REAL operand makes the result REAL, computed on the integer parts
    ia, ib = _int_part(a), _int_part(b)
    if ib == 0:
        return None
    r = abs(ia) % abs(ib)
    return float(-r if ia < 0 else r)


def neg(a: Any) -> Any:
    if a is None:
        return None
    a = _num(a)
    if type(a) is int and a == I64_MIN:
        return -float(a)
    return -a


def _to_i64(v: Any) -> int | None:
    if v is None:
        return None
    v = _num(v)
    if type(v) is float:
        return float_to_int(v)
    i: int = v
    return i


def _wrap64(i: int) -> int:
    i &= (1 << 64) - 1
    return i - (1 << 64) if i >> 63 else i


def bit_and(a: Any, b: Any) -> Any:
    a, b = _to_i64(a), _to_i64(b)
    return None if a is None or b is None else a & b


def bit_or(a: Any, b: Any) -> Any:
    a, b = _to_i64(a), _to_i64(b)
    return None if a is None or b is None else a | b


def shift_left(a: Any, b: Any) -> Any:
    a, b = _to_i64(a), _to_i64(b)
    if a is None or b is None:
        return None
    if b < 0:
        return shift_right(a, -b)
    if b >= 64:
        return 0
    return _wrap64(a << b)


def shift_right(a: Any, b: Any) -> Any:
    a, b = _to_i64(a), _to_i64(b)
    if a is None or b is None:
        return None
    if b < 0:
        return shift_left(a, -b)
    if b >= 64:
        return -1 if a < 0 else 0
    return a >> b


def bit_not(a: Any) -> Any:
    a = _to_i64(a)
    return None if a is None else ~a


def concat(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    return to_text(a) + to_text(b)


def truth(v: Any) -> bool | None:
    """A value as a condition: NULL -> None, else is it non-zero (text by its numeric prefix)."""
    if v is None:
        return None
    t = type(v)
    r: bool
    if t is int or t is float or t is bool:
        r = v != 0
    else:
        r = numeric_prefix(v) != 0
    return r


def round_half_up(x: float, digits: int) -> float:
    """SQLite's round(): half away from zero on the shortest decimal form of x."""
    if x != x or x in (math.inf, -math.inf):
        return x
    if digits <= 0:
        return float(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)
    if digits > 15 or abs(x) >= 1e16:
        return x
    # up to 16 integer digits and 15 decimals: more than the default context's 28
    d = Decimal(repr(x)).quantize(Decimal(1).scaleb(-digits), ROUND_HALF_UP, _ROUND_CONTEXT)
    return float(d)


_ROUND_CONTEXT = Context(prec=40)


def typeof(v: Any) -> str:
    if v is None:
        return "null"
    t = type(v)
    if t is int or t is bool:
        return "integer"
    if t is float:
        return "real"
    if t is str or t is JsonText:
        return "text"
    return "blob"


def check_value(v: Any) -> Any:
    """A parameter or a Python value going into the engine: one of SQLite's types."""
    t = type(v)
    if v is None or t is int or t is float or t is str or t is bytes:
        if t is int and not I64_MIN <= v <= I64_MAX:
            raise IntegerOverflowError(INT_OVERFLOW)
        if t is float and v != v:
            return None
        return v
    if t is bool:
        return int(v)
    if isinstance(v, (bytearray, memoryview)):
        return bytes(v)
    if isinstance(v, int):
        return check_value(int(v))
    if isinstance(v, float):
        return float(v)
    if isinstance(v, str):
        return str(v)
    if type(v).__module__ == "numpy":
        pv = numpy_value(v)
        if pv is not None:
            return pv
    raise SQLError(
        f"unsupported parameter type {type(v).__name__}: use None, int, float, str, bytes "
        "or a NumPy array (a vector)"
    )


def numpy_value(v: Any) -> Any:
    """A NumPy value bound as a parameter: a 1-D array of real numbers becomes the blob
    of its float32 values, a vector (sql/fn_vector.py; NaN and infinity are refused
    where it is stored or used), a NumPy scalar its Python number; None otherwise."""
    import numpy as np

    if isinstance(v, np.ndarray):
        if v.ndim != 1 or v.size == 0:
            raise VectorValueError(
                f"parameter: a vector is a non-empty 1-D array, not shape {v.shape}"
            )
        if v.dtype == np.bool_ or v.dtype.kind not in "fiu":
            raise VectorValueError(f"parameter: a vector holds real numbers, not dtype {v.dtype}")
        with np.errstate(over="ignore", invalid="ignore"):  # beyond float32: inf
            return np.ascontiguousarray(v, dtype="<f4").tobytes()
    if isinstance(v, np.generic):
        item = v.item()
        return item if type(item) in (int, float) else None
    return None
