"""Checks and conversions of the arguments of the vector-index operations: ids,
vectors, metric, build and search parameters, thread counts. Each raises before
anything is written (ValueError / TypeError, or VectorIndexError for a vector of
the wrong dimension), so a failed call leaves the index as it was.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Union

import numpy as np
import numpy.typing as npt

from toondb.errors import VectorIndexError

__all__ = [
    "METRICS",
    "MAX_ID",
    "IdsLike",
    "Filter",
    "check_metric",
    "check_params",
    "check_search",
    "as_ids",
    "as_vectors",
]

METRICS = ("cosine", "l2", "ip")
MAX_ID = 2**63 - 1  # ids are 0 .. 2**63-1 (int64 in arrays; -1 pads missing results)

IdsLike = Union[Sequence[int], npt.ArrayLike, Iterable[int]]
Filter = Union[None, Iterable[int], npt.ArrayLike, Callable[[int], bool]]


def check_metric(metric: str) -> str:
    if not isinstance(metric, str) or metric not in METRICS:
        raise ValueError(
            f"unknown metric {metric!r}: use 'cosine' (1 - cosine similarity), 'l2' (squared "
            "Euclidean distance) or 'ip' (1 - inner product)"
        )
    return metric


def check_params(dimension: int, m: int, ef_construction: int) -> None:
    for what, v, lo, hi in (
        ("dimension", dimension, 1, 65536),
        ("m", m, 2, 4096),
        ("ef_construction", ef_construction, 1, 1 << 20),
    ):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
            raise TypeError(f"{what} must be an integer, not {type(v).__name__}")
        if not lo <= v <= hi:
            raise ValueError(f"{what} must be in {lo}..{hi}, got {v}")


def check_search(k: int, ef_search: int) -> None:
    for what, v in (("k", k), ("ef_search", ef_search)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
            raise TypeError(f"{what} must be an integer, not {type(v).__name__}")
        if v < 1:
            raise ValueError(f"{what} must be >= 1, got {v}")


def as_ids(ids: Any, what: str = "ids") -> np.ndarray:
    """ids as a 1-D uint64 array; each must be an integer in 0 .. 2**63-1."""
    if not isinstance(ids, (np.ndarray, list, tuple, range, str, bytes)) and isinstance(
        ids, Iterable
    ):
        ids = list(ids)  # a set, a dict's keys, a generator
    try:
        a = np.asarray(ids)
    except (OverflowError, ValueError) as e:
        raise ValueError(f"{what} must be integers in 0..2**63-1 ({e})") from None
    if a.ndim == 0:
        a = a.reshape(1)
    if a.ndim != 1:
        raise ValueError(f"{what} must be a 1-D sequence of integers, got shape {a.shape}")
    if a.size == 0:
        return np.empty(0, np.uint64)
    if a.dtype == np.bool_ or a.dtype.kind not in "iu":
        items = a.tolist() if a.dtype.kind == "O" else ids if isinstance(ids, (list, tuple)) else []
        if (
            a.dtype.kind in "fO"
            and items
            and all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in items)
        ):
            # Python ints beyond int64, which NumPy made objects or floats
            raise ValueError(f"{what} must be integers in 0..2**63-1")
        raise TypeError(f"{what} must be integers, got dtype {a.dtype}")
    if a.dtype.kind == "i" and int(a.min()) < 0:
        raise ValueError(f"{what} must be >= 0, got {int(a.min())}")
    if a.dtype.kind == "u" and int(a.max()) > MAX_ID:
        raise ValueError(f"{what} must be <= 2**63-1, got {int(a.max())}")
    return np.ascontiguousarray(a, dtype=np.uint64)


def as_vectors(vectors: Any, dim: int | None, what: str = "vectors", ndim: int = 2) -> np.ndarray:
    """vectors as a C-contiguous float32 array of ndim dimensions (the last one dim):
    real dtypes are converted; NaN, infinity, and values too large for float32 raise."""
    a = vectors if isinstance(vectors, np.ndarray) else np.asarray(vectors)
    if a.dtype != np.float32:
        if a.dtype == np.bool_ or a.dtype.kind not in "fiu":
            raise TypeError(f"{what} must be real numbers (float32 preferred), got dtype {a.dtype}")
        with np.errstate(over="ignore", invalid="ignore"):
            a = a.astype(np.float32)
    if a.ndim != ndim:
        shape = f"({dim or 'dimension'},)" if ndim == 1 else f"(n, {dim or 'dimension'})"
        raise ValueError(f"{what} must be a {ndim}-D array {shape}, got shape {a.shape}")
    if dim is not None and a.shape[-1] != dim:
        raise VectorIndexError(
            f"{what}: dimension {a.shape[-1]}, but the index holds {dim}-dimensional vectors"
        )
    a = np.ascontiguousarray(a)
    if a.size and not np.isfinite(a).all():
        raise ValueError(f"{what} contain NaN or infinity (or values too large for float32)")
    return a


def _unique_or_raise(labels: np.ndarray) -> None:
    """ValueError when an id appears twice in one batch."""
    if labels.size > 1:
        s = np.sort(labels)
        dup = s[1:][s[1:] == s[:-1]]
        if dup.size:
            raise ValueError(f"duplicate ids in one batch: {int(dup[0])}")


def _threads(threads: int | None) -> int:
    """The number of threads to use: every core the process may run on for None."""
    if threads is None:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except (AttributeError, OSError):  # pragma: no cover - not Linux
            return max(1, os.cpu_count() or 1)
    if not isinstance(threads, (int, np.integer)) or isinstance(threads, bool) or threads < 1:
        raise ValueError(
            f"threads must be an integer >= 1 (or None for every core), got {threads!r}"
        )
    return int(threads)
