"""Vectors in SQL: the values of ``VECTOR(n)`` columns and the ``vec_`` functions.

A vector is the blob of its float32 values, little-endian, 4 bytes a dimension:
what a ``VECTOR(n)`` column stores, and what sqlite-vec calls a vector. A value
given for a ``VECTOR(n)`` column, or to a ``vec_`` function, may be

- a 1-D NumPy array of real numbers (bound as a parameter; any float or integer
  dtype is converted to float32),
- ``bytes`` of 4n little-endian float32 values,
- text holding a JSON array of numbers, ``'[0.1, 0.2, 0.3]'`` (sqlite-vec's text form);

anything else, a wrong number of dimensions, NaN or infinity (or a number beyond
float32's range) raise ``VectorValueError`` naming the column or the function.
Read back, a ``VECTOR(n)`` column's value is a NumPy float32 array (the engine
converts the result columns ``vector_result`` names); ``vec_to_json(col)`` gives
the text.

Functions (a NULL argument gives NULL)::

    vec_distance_cosine(a, b)  1 - cosine similarity (1.0 when either is all zeros)
    vec_distance_l2(a, b)      the Euclidean distance (sqlite-vec's, pgvector's <->)
    vec_distance_ip(a, b)      the negative inner product: smaller is nearer (pgvector's <#>)
    vec_length(v)              the number of dimensions (sqlite-vec's)
    vec_normalize(v)           v / |v| as a vector (all zeros stay zeros)
    vec_to_json(v)             '[0.1,0.2,...]': each value the shortest text that reads
                               back as the same float32
    vec_f32(v)                 v as a vector blob (sqlite-vec's: '[...]' -> blob)

Distances are computed in float64 from the float32 values. NumPy is imported on
the first use, not with the SQL engine.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Callable

from toondb.errors import VectorValueError
from toondb.sql import types as T

__all__ = [
    "SCALARS",
    "VECTOR_RESULT",
    "vector_dim",
    "column_value",
    "as_array",
    "to_blob",
]

_F32_MAX = 3.4028234663852886e38
_sqrt = math.sqrt
_TYPE = re.compile(r"\s*VECTOR\s*\(\s*(\d+)\s*\)\s*\Z", re.IGNORECASE)
MAX_DIM = 65536

_np: Any = None


def _numpy() -> Any:
    global _np
    if _np is None:
        import numpy

        _np = numpy
    return _np


def vector_dim(type_name: str | None) -> int | None:
    """n for a declared type ``VECTOR(n)`` (1 <= n <= 65536), else None."""
    if not type_name:
        return None
    m = _TYPE.match(type_name)
    if m is None:
        return None
    n = int(m.group(1))
    return n if 1 <= n <= MAX_DIM else None


# ---------------------------------------------------------------- conversions


def _array_of(v: Any, what: str) -> Any:
    """v (bytes, JSON text or a NumPy array) as a float32 array, finite, not empty."""
    np = _numpy()
    t = type(v)
    if t is bytes:
        if not v or len(v) % 4:
            raise VectorValueError(
                f"{what}: a blob of {len(v)} bytes is not a float32 vector (4 bytes a dimension)"
            )
        a = np.frombuffer(v, "<f4")
    elif isinstance(v, str):
        a = _parse_json(v, what)
    elif isinstance(v, np.ndarray):
        a = _from_ndarray(v, what)
    else:
        raise VectorValueError(
            f"{what}: {T.typeof(v) if t in (int, float) else type(v).__name__} is not a vector "
            "(give a NumPy array, bytes of float32, or JSON text '[0.1, 0.2]')"
        )
    if not np.isfinite(a).all():
        raise VectorValueError(
            f"{what}: the vector contains NaN or infinity (or a value beyond float32's range)"
        )
    return a


def _parse_json(text: str, what: str) -> Any:
    np = _numpy()
    try:
        items = json.loads(text)
    except ValueError:
        raise VectorValueError(
            f"{what}: the text is not a JSON array of numbers: {text[:40]!r}"
        ) from None
    if (
        type(items) is not list
        or not items
        or not all(type(x) in (int, float) for x in items)  # no bool, no nesting
    ):
        raise VectorValueError(
            f"{what}: the text is not a non-empty JSON array of numbers: {text[:40]!r}"
        )
    a = np.array(items, dtype=np.float64)
    if a.size and np.abs(a).max() > _F32_MAX:
        raise VectorValueError(f"{what}: a value is beyond float32's range")
    return a.astype("<f4")


def _from_ndarray(a: Any, what: str) -> Any:
    np = _numpy()
    if a.ndim != 1 or a.size == 0:
        raise VectorValueError(f"{what}: a vector is a non-empty 1-D array, not shape {a.shape}")
    if a.dtype == np.bool_ or a.dtype.kind not in "fiu":
        raise VectorValueError(f"{what}: a vector holds real numbers, not dtype {a.dtype}")
    with np.errstate(over="ignore", invalid="ignore"):  # beyond float32: inf, refused later
        return np.ascontiguousarray(a, dtype="<f4")


def to_blob(v: Any, dim: int | None, what: str) -> bytes:
    """v as the blob of a float32 vector (of dim dimensions when dim is given)."""
    if type(v) is bytes and dim is not None and len(v) == 4 * dim:
        np = _numpy()
        if np.isfinite(np.frombuffer(v, "<f4")).all():
            return v  # the common case: a vector blob already
    a = _array_of(v, what)
    if dim is not None and a.size != dim:
        raise VectorValueError(f"{what}: {a.size} dimensions, but it holds VECTOR({dim})")
    return v if type(v) is bytes else a.tobytes()


def column_value(v: Any, dim: int, table: str, column: str) -> Any:
    """The value a VECTOR(dim) column stores for v: its blob, or NULL."""
    if v is None:
        return None
    return to_blob(v, dim, f"column {table}.{column}")


def as_array(v: Any) -> Any:
    """A stored vector blob as a NumPy float32 array (a copy); anything else unchanged."""
    if type(v) is not bytes or len(v) % 4:
        return v
    return _numpy().frombuffer(v, "<f4").copy()


# ---------------------------------------------------------------- functions

# the last vector converted for each argument position of a distance (each slot
# rebound whole, so a thread reads a consistent pair): the query vector of a scan is
# the same object row after row
_last: list[tuple[Any, Any]] = [(None, None), (None, None)]


def _vec64(v: Any, slot: int, what: str) -> Any:
    """v as a float64 array (a blob's finiteness is checked on the result)."""
    hit = _last[slot]
    if v is hit[0]:
        return hit[1]
    if type(v) is bytes and v and not len(v) % 4:
        a = _numpy().frombuffer(v, "<f4").astype("f8")
    else:
        a = _array_of(v, what).astype("f8")
    _last[slot] = (v, a)
    return a


def _pair(a: Any, b: Any, name: str) -> tuple[Any, Any]:
    x = _vec64(a, 0, f"{name}() argument 1")
    y = _vec64(b, 1, f"{name}() argument 2")
    if x.size != y.size:
        raise VectorValueError(
            f"{name}(): the vectors have {x.size} and {y.size} dimensions; they must be equal"
        )
    return x, y


def _finite(d: float, a: Any, b: Any, name: str) -> float:
    """d, or VectorValueError when it is not finite: then an argument holds NaN or
    infinity (finite float32 values give a finite float64 result)."""
    if d - d == 0.0:
        return d
    for i, v in enumerate((a, b), 1):
        _array_of(v, f"{name}() argument {i}")  # raises for the one that is not finite
    return d


def f_distance_cosine(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    x, y = _pair(a, b, "vec_distance_cosine")
    sxy = float(x @ x) * float(y @ y)
    if sxy == 0.0:
        return 1.0
    return _finite(1.0 - float(x @ y) / _sqrt(sxy), a, b, "vec_distance_cosine")


def f_distance_l2(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    x, y = _pair(a, b, "vec_distance_l2")
    d = x - y
    return _finite(_sqrt(float(d @ d)), a, b, "vec_distance_l2")


def f_distance_ip(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    x, y = _pair(a, b, "vec_distance_ip")
    return _finite(-float(x @ y), a, b, "vec_distance_ip")


def f_length(v: Any) -> Any:
    if v is None:
        return None
    if type(v) is bytes and v and not len(v) % 4:
        return len(v) // 4
    return int(_array_of(v, "vec_length() argument").size)


def f_normalize(v: Any) -> Any:
    if v is None:
        return None
    a = _array_of(v, "vec_normalize() argument").astype("f8")
    n = float(_np.sqrt(a @ a))
    return (a / n if n else a).astype("<f4").tobytes()


def f_to_json(v: Any) -> Any:
    if v is None:
        return None
    a = _array_of(v, "vec_to_json() argument")
    return T.JsonText("[" + ",".join(str(x) for x in a.astype("<f4")) + "]")


def f_f32(v: Any) -> Any:
    if v is None:
        return None
    return to_blob(v, None, "vec_f32() argument")


SCALARS: dict[str, tuple[int, int, Callable[..., Any], bool]] = {
    "VEC_DISTANCE_COSINE": (2, 2, f_distance_cosine, True),
    "VEC_DISTANCE_L2": (2, 2, f_distance_l2, True),
    "VEC_DISTANCE_IP": (2, 2, f_distance_ip, True),
    "VEC_LENGTH": (1, 1, f_length, True),
    "VEC_NORMALIZE": (1, 1, f_normalize, True),
    "VEC_TO_JSON": (1, 1, f_to_json, True),
    "VEC_F32": (1, 1, f_f32, True),
}

# functions whose result is a vector: a result column that is one of these calls
# is read back as a NumPy array, as a VECTOR(n) column is
VECTOR_RESULT = frozenset({"VEC_NORMALIZE", "VEC_F32"})

# the distance function of each metric of an HNSW index (the planner matches them)
DISTANCE_OF_METRIC = {
    "cosine": "VEC_DISTANCE_COSINE",
    "l2": "VEC_DISTANCE_L2",
    "ip": "VEC_DISTANCE_IP",
}
