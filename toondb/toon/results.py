"""SQL results as documents for an LLM prompt: ``execute_sql(..., format="toon" |
"json")`` calls ``format_result`` (TOON spec v4.0 or compact JSON)."""

from __future__ import annotations

import base64
import json
import math
from typing import Any

from toondb.toon.encoder import encode

__all__ = ["format_result", "result_document", "FORMATS", "ROW_NAME"]

ROW_NAME = "result"
"""The name of the table of rows: ``result[N]{col,...}:``."""

Record = dict[str, Any]

# ---------------------------------------------------------------------------------------
# execute_sql(..., format="toon" | "json")
# ---------------------------------------------------------------------------------------

FORMATS = ("toon", "json")


def _plain(v: Any) -> Any:
    """A SQL value as a JSON value: a BLOB becomes its base64 text, NaN/inf null, a
    vector (a NumPy array: a VECTOR(n) value) the list of its numbers, each as short as
    reads back as the same float32."""
    if isinstance(v, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(v)).decode("ascii")
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if type(v).__module__ == "numpy" and getattr(v, "ndim", 0) == 1:
        return [float(str(x)) for x in v.astype("<f4")]
    return v


def _row_dicts(result: Any) -> list[Record]:
    """The rows as dicts keyed as iterating the Result keys them (a repeated column name
    as name:1), without converting any value."""
    rows = result.rows
    if not rows:
        return []
    keys = list(next(iter(result)))  # one row's dict: its keys, not every row's
    return [dict(zip(keys, r)) for r in rows]


def result_document(result: Any) -> Any:
    """The JSON value a SQL result stands for: the rows as a list of dicts for a statement
    that returns columns, else ``{"rowcount": n}`` (and ``lastrowid`` when set). BLOBs
    become base64 text and NaN/infinities null."""
    if getattr(result, "columns", None):
        return [{k: _plain(v) for k, v in row.items()} for row in _row_dicts(result)]
    doc: dict[str, Any] = {"rowcount": getattr(result, "rowcount", -1)}
    if getattr(result, "lastrowid", None) is not None:
        doc["lastrowid"] = result.lastrowid
    return doc


def _json_default(v: Any) -> Any:
    if isinstance(v, (bytes, bytearray, memoryview)) or type(v).__module__ == "numpy":
        return _plain(v)
    raise TypeError(f"cannot write a value of type {type(v).__name__} as JSON")


def format_result(result: Any, format: str, name: str = ROW_NAME) -> str:
    """A SQL ``Result`` as a document. ``"toon"``: TOON spec v4.0, the rows as a table
    ``result[N]{col,...}:`` with one indented row per line; ``"json"``: a compact JSON
    array of row objects. A statement without result columns gives ``rowcount: N``
    (``{"rowcount":N}``). BLOBs are written as base64 text, NaN and infinities as null."""
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; use one of {', '.join(FORMATS)}")
    if not getattr(result, "columns", None):
        doc = result_document(result)
        if format == "json":
            return json.dumps(doc, separators=(",", ":"))
        return encode(doc)
    rows = _row_dicts(result)
    # fast path: the values as they are (BLOBs and non-finite floats are rare)
    try:
        if format == "json":
            return json.dumps(
                rows,
                separators=(",", ":"),
                ensure_ascii=False,
                allow_nan=False,
                default=_json_default,
            )
        return encode({name: rows})
    except (TypeError, ValueError):
        pass
    doc = result_document(result)
    if format == "json":
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    return encode({name: doc})
