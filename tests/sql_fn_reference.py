"""Shared code of the differential tests of the SQL function libraries.

Two references: stdlib ``sqlite3`` (SQLite 3.40 here) and ``pysqlite3``
(pysqlite3-binary, SQLite 3.51), which has what 3.40 lacks (timediff,
'subsec', 'floor'/'ceiling', %G/%V..., JSON5 input, json_pretty, SQLite's
newer float printing). Each test says which one it compares with;
:func:`sqlite351` skips the test when pysqlite3 is not installed.

:func:`toondb_call` runs ``SELECT fn(?, ?, ...)`` through toondb's SQL engine
and :func:`sqlite_call` the same through a reference; both return
``("ok", value)`` or ``("error", message)`` so that errors compare too.
"""

from __future__ import annotations

import math
import os
import sqlite3
import tempfile
from typing import Any

import pytest

import toondb
from toondb.errors import SQLError
from toondb.sql import types as T


def _decode(b: bytes) -> str:
    """SQLite's text as toondb holds it: lone surrogates kept, broken UTF-8
    (a printf precision that cuts a character) as U+FFFD."""
    try:
        return b.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return b.decode("utf-8", "replace")


def sqlite340() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.text_factory = _decode
    return conn


def sqlite351() -> Any:
    try:
        import pysqlite3.dbapi2 as s3  # type: ignore[import-not-found]
    except ImportError:
        pytest.skip("pysqlite3-binary (SQLite 3.51) is not installed")
    assert s3.sqlite_version_info >= (3, 51, 0), s3.sqlite_version
    conn = s3.connect(":memory:")
    conn.text_factory = _decode
    return conn


class ToonDB:
    """A throwaway toondb database for calling functions through SQL."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="toondb-fn-")
        self.db = toondb.Database.open(os.path.join(self._dir.name, "db"))

    def close(self) -> None:
        self.db.close()
        self._dir.cleanup()


def _placeholders(n: int) -> str:
    return ", ".join("?" * n)


def toondb_call(db: Any, fn: str, *args: Any) -> tuple[str, Any]:
    try:
        rows = db.execute_sql(f"SELECT {fn}({_placeholders(len(args))})", args).rows
    except SQLError as exc:
        return ("error", str(exc))
    return ("ok", T.plain(rows[0][0]))


def sqlite_call(conn: Any, fn: str, *args: Any) -> tuple[str, Any]:
    try:
        row = conn.execute(f"SELECT {fn}({_placeholders(len(args))})", args).fetchone()
    except Exception as exc:  # sqlite3.Error of either module
        if type(exc).__name__ in ("OperationalError", "DataError", "IntegrityError"):
            return ("error", str(exc))
        raise
    return ("ok", row[0])


def same(a: tuple[str, Any], b: tuple[str, Any]) -> bool:
    """Equal outcomes: the same error message, or values of the same type and
    value (floats exactly, NaN equal to NaN)."""
    if a[0] != b[0]:
        return False
    x, y = a[1], b[1]
    if type(x) is not type(y):
        return False
    if type(x) is float and math.isnan(x):
        return math.isnan(y)
    return bool(x == y)


def check(db: Any, conn: Any, fn: str, *args: Any) -> None:
    """Assert toondb and the reference agree on fn(*args)."""
    got = toondb_call(db, fn, *args)
    want = sqlite_call(conn, fn, *args)
    assert same(got, want), f"{fn}{args!r}: toondb {got!r}, sqlite {want!r}"
