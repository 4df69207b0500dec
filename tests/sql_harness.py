"""Shared code of the SQL test harnesses (test_sql_differential, test_sqllogictest).

An *engine* runs one SQL statement at a time: ``engine.execute(sql)`` returns a
:class:`Result` for a statement that produces rows (``columns``, ``rows`` as tuples
of Python values: None, int, float, str, bytes) and ``None`` for one that does not.
An error the engine reports on purpose (toondb's ``SQLError``, sqlite3's
``sqlite3.Error``) is raised as :class:`EngineError`; anything else (a ``TypeError``
out of the engine, say) propagates, because that is a crash, not an SQL error.

Two engines: :class:`SqliteEngine` (stdlib sqlite3, in memory: the reference, and
the stand-in engine under test that proves the harnesses before toondb's SQL
engine exists) and :class:`ToonDBEngine` (``Database.execute_sql``).

The rest is value semantics shared by the harnesses: exact-type value equality with
a relative float tolerance, SQLite's sort order of values (NULL < numbers < text <
blob), multiset comparison of row lists.
"""

from __future__ import annotations

import functools
import math
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Sequence
from typing import Any

import toondb

FLOAT_REL_TOL = 1e-9

Row = tuple


def toondb_has_sql() -> bool:
    return hasattr(toondb.Database, "execute_sql")


SKIP_NO_ENGINE = (
    "toondb's SQL engine has not landed yet (toondb.Database has no execute_sql); "
    "run with TOONDB_SQL_TEST_ENGINE=sqlite3 to exercise the harness against stdlib sqlite3"
)


class EngineError(Exception):
    """The engine under test reported an SQL error (the message is the engine's)."""


class Result:
    __slots__ = ("columns", "rows")

    def __init__(self, columns: Sequence[str], rows: list[Row]):
        self.columns = list(columns)
        self.rows = rows

    def __repr__(self) -> str:
        return f"Result(columns={self.columns!r}, rows={self.rows!r})"


class SqliteEngine:
    """stdlib sqlite3 in memory, autocommit (BEGIN/COMMIT pass through).

    reverse=True sets ``PRAGMA reverse_unordered_selects``; extra_indexes=True
    creates an index on every column of every table created, so that scans come
    out in other orders: both are legal variations of an engine, which the
    harnesses must tolerate.
    """

    name = "sqlite"

    def __init__(self, *, reverse: bool = False, extra_indexes: bool = False):
        self.conn = sqlite3.connect(":memory:", isolation_level=None)
        self.extra_indexes = extra_indexes
        self._indexed: set[str] = set()
        if reverse:
            self.conn.execute("PRAGMA reverse_unordered_selects = 1")

    def execute(self, sql: str) -> Result | None:
        try:
            cur = self.conn.execute(sql)
            rows = cur.fetchall() if cur.description is not None else None
        except (sqlite3.Error, OverflowError) as exc:
            raise EngineError(f"{type(exc).__name__}: {exc}") from None
        if self.extra_indexes and sql.lstrip()[:12].upper().startswith("CREATE TABLE"):
            self._index_everything()
        if rows is None:
            return None
        return Result([d[0] for d in cur.description], [tuple(r) for r in rows])

    def _index_everything(self) -> None:
        tables = [
            r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        for table in tables:
            if table in self._indexed:
                continue
            self._indexed.add(table)
            for i, col in enumerate(self.conn.execute(f'PRAGMA table_info("{table}")')):
                self.conn.execute(f'CREATE INDEX "_x_{table}_{i}" ON "{table}"("{col[1]}")')

    def close(self) -> None:
        self.conn.close()


class ToonDBEngine:
    """toondb's SQL engine on a fresh database in a temporary directory."""

    name = "toondb"

    def __init__(self, path: str | None = None):
        self._tmp = None
        if path is None:
            self._tmp = tempfile.mkdtemp(prefix="toondb-sql-")
            path = os.path.join(self._tmp, "db")
        self.db = toondb.Database.open(path)

    def execute(self, sql: str) -> Result | None:
        try:
            res = self.db.execute_sql(sql)
        except toondb.SQLError as exc:
            raise EngineError(f"{type(exc).__name__}: {exc}") from None
        rows = getattr(res, "rows", None)
        if rows is None:
            return None
        return Result(getattr(res, "columns", []), [tuple(r) for r in rows])

    def close(self) -> None:
        try:
            self.db.close()
        finally:
            if self._tmp is not None:
                shutil.rmtree(self._tmp, ignore_errors=True)


def engine_under_test_name() -> str:
    """``TOONDB_SQL_TEST_ENGINE``: "toondb" (the default) or "sqlite3" (stdlib
    sqlite3 with reversed scans and an index on every column, to validate the
    harnesses)."""
    name = os.environ.get("TOONDB_SQL_TEST_ENGINE", "toondb").lower()
    if name not in ("toondb", "sqlite3", "sqlite"):
        raise ValueError(f"TOONDB_SQL_TEST_ENGINE={name!r}: expected toondb or sqlite3")
    return "sqlite3" if name.startswith("sqlite") else "toondb"


def make_engine_under_test(name: str | None = None):
    name = name or engine_under_test_name()
    if name == "sqlite3":
        return SqliteEngine(reverse=True, extra_indexes=True)
    return ToonDBEngine()


# ---------------------------------------------------------------- values


def values_equal(a: Any, b: Any) -> bool:
    """Exact type agreement (bool is not int), floats within FLOAT_REL_TOL."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b or math.isclose(a, b, rel_tol=FLOAT_REL_TOL, abs_tol=0.0)
    return a == b


def rows_equal(a: Row, b: Row) -> bool:
    return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b))


def _class(v: Any) -> int:
    if v is None:
        return 0
    if isinstance(v, (int, float)):  # bool is an int
        return 1
    if isinstance(v, str):
        return 2
    return 3


def sqlite_compare(a: Any, b: Any) -> int:
    """SQLite's order of two values with the BINARY collation: NULL < INTEGER/REAL
    (compared numerically, exactly) < TEXT (UTF-8 bytes) < BLOB (bytes)."""
    ca, cb = _class(a), _class(b)
    if ca != cb:
        return -1 if ca < cb else 1
    if ca == 0:
        return 0
    if ca == 2:
        a, b = a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass")
    elif ca == 3:
        a, b = bytes(a), bytes(b)
    return (a > b) - (a < b)


def key_equal(a: Any, b: Any) -> bool:
    """Equal as sort keys: SQLite compares them equal, or they are the same value
    within the float tolerance."""
    return sqlite_compare(a, b) == 0 or values_equal(a, b)


def _canon(v: Any) -> tuple:
    """A total order key over values of any type, for sorting a multiset."""
    if v is None:
        return (0, 0)
    if isinstance(v, bool):
        return (1, int(v))
    if isinstance(v, int):
        return (2, v)
    if isinstance(v, float):
        return (3, 0.0 if math.isnan(v) else v)
    if isinstance(v, str):
        return (4, v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return (5, bytes(v))
    return (6, repr(v))


def _row_canon(row: Row) -> tuple:
    return tuple(_canon(v) for v in row)


def multiset_diff(expected: list[Row], actual: list[Row]) -> tuple[list[Row], list[Row]]:
    """(rows missing from actual, rows in excess in actual), with exact types and
    the float tolerance. Empty lists mean the two are equal as multisets."""
    exp = sorted(expected, key=_row_canon)
    act = sorted(actual, key=_row_canon)
    if len(exp) == len(act) and all(rows_equal(x, y) for x, y in zip(exp, act)):
        return [], []
    # greedy matching: tolerant float equality may pair rows that sorted apart
    remaining = list(act)
    missing = []
    for row in exp:
        for i, cand in enumerate(remaining):
            if rows_equal(row, cand):
                del remaining[i]
                break
        else:
            missing.append(row)
    return missing, remaining


def row_cmp(order: Sequence[tuple[int, bool]]):
    """cmp function of rows under ORDER BY keys: (0-based column, descending)."""

    def cmp(r1: Row, r2: Row) -> int:
        for col, desc in order:
            c = sqlite_compare(r1[col], r2[col])
            if c and not key_equal(r1[col], r2[col]):
                return -c if desc else c
        return 0

    return cmp


def sort_rows(rows: list[Row], order: Sequence[tuple[int, bool]]) -> list[Row]:
    return sorted(rows, key=functools.cmp_to_key(row_cmp(order)))


def check_ordered(
    expected_full: list[Row],
    actual: list[Row],
    order: Sequence[tuple[int, bool]],
    offset: int = 0,
    limit: int | None = None,
) -> str | None:
    """Check ``actual`` against the query's ordered result, allowing any order of
    the rows that tie under the ORDER BY keys.

    expected_full: the reference's rows of the query without LIMIT/OFFSET (in any
    order). actual: the engine's rows of the query with them. Returns None when
    actual is a correct answer, else a description of the first problem."""
    cmp = row_cmp(order)
    for i in range(1, len(actual)):
        if cmp(actual[i - 1], actual[i]) > 0:
            return (
                f"rows {i - 1} and {i} are out of ORDER BY order: {actual[i - 1]!r} > {actual[i]!r}"
            )
    full = sort_rows(expected_full, order)
    stop = len(full) if limit is None or limit < 0 else min(len(full), max(offset, 0) + limit)
    start = min(max(offset, 0), len(full))
    window = full[start:stop]
    if len(actual) != len(window):
        return f"{len(actual)} rows, expected {len(window)}"
    # group the sorted reference into runs of rows that tie on the keys
    group_of: list[int] = []
    groups: list[list[Row]] = []
    for j, row in enumerate(full):
        if j and cmp(full[j - 1], row) == 0:
            groups[-1].append(row)
        else:
            groups.append([row])
        group_of.append(len(groups) - 1)
    picked: dict[int, list[Row]] = {}
    for i, row in enumerate(actual):
        g = group_of[start + i]
        if cmp(row, groups[g][0]) != 0:
            return f"row {i} is {row!r}, expected a row sorting like {groups[g][0]!r}"
        picked.setdefault(g, []).append(row)
    for g, rows in picked.items():
        pool = list(groups[g])
        for row in rows:
            for k, cand in enumerate(pool):
                if rows_equal(row, cand):
                    del pool[k]
                    break
            else:
                return f"row {row!r} is not in the expected result (among its ties {groups[g]!r})"
    return None


def sql_literal(v: Any) -> str:
    """An SQL literal of a Python value (negative numbers parenthesized)."""
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return f"({v})" if v < 0 else str(v)
    if isinstance(v, float):
        if math.isinf(v):
            return "(1e999)" if v > 0 else "(-1e999)"
        r = repr(v)
        return f"({r})" if r.startswith("-") else r
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    if isinstance(v, (bytes, bytearray, memoryview)):
        return "X'" + bytes(v).hex().upper() + "'"
    raise TypeError(f"no SQL literal for {type(v).__name__}")
