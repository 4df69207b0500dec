"""``Cursor``: runs statements on its connection and hands out their rows.

A statement's rows arrive whole (toondb's engine returns a result as a list of
tuples); fetching hands them out from that list. Rows are tuples, or what the
cursor's ``row_factory(cursor, row)`` makes of them (``toondb.dbapi.Row``, as
sqlite3.Row). ``rowcount`` is the number of rows an INSERT, UPDATE, DELETE or
REPLACE changed (summed over ``executemany``), -1 for other statements;
``lastrowid`` is, after ``execute``, the rowid of the last row an INSERT or REPLACE
of this connection inserted (0 before any), and ``executemany`` leaves it as it
was, both as sqlite3. Fetching after a statement that returns no rows (DDL, DML)
raises ``ProgrammingError``, as PEP 249 asks (sqlite3 returns nothing instead).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from toondb.dbapi import types as T
from toondb.errors import ProgrammingError

__all__ = ["Cursor"]

_UNSET: Any = object()


class Cursor:
    """A PEP 249 cursor; make one with ``connection.cursor()``."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.arraysize = 1
        self.row_factory = connection.row_factory
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._closed = False
        self._rows: list[tuple[Any, ...]] | None = None  # None: no result set
        self._pos = 0
        self._columns: list[str] = []
        self._first: tuple[Any, ...] | None = None
        self._sql = ""
        self._description: Any = None
        self._converters: list[Any] | None = None

    # ---- running statements

    def execute(self, sql: str, parameters: Any = ()) -> Cursor:
        """Run one statement with its parameters (a sequence for ``?``, a dict for
        ``:name``); returns the cursor, whose rows can be fetched or iterated."""
        self._check_open()
        if not isinstance(sql, str):
            raise TypeError(f"execute() argument 1 must be str, not {type(sql).__name__}")
        self._reset()
        result, info = self.connection._run(sql, parameters, False)
        self._take(sql, result, info)
        if info.count:
            self.lastrowid = self.connection._last_rowid
        return self

    def executemany(self, sql: str, seq_of_parameters: Any) -> Cursor:
        """Run one DML statement once per parameter set (atomically, parsed once)."""
        self._check_open()
        if not isinstance(sql, str):
            raise TypeError(f"executemany() argument 1 must be str, not {type(sql).__name__}")
        self._reset()
        result, info = self.connection._run(sql, seq_of_parameters, True)
        if result is not None and result.columns:
            raise ProgrammingError("executemany() can only execute DML statements.")
        self._take(sql, result, info)
        return self

    def executescript(self, sql_script: str) -> Cursor:
        """Run the statements of a script (see Connection's executescript rules)."""
        self._check_open()
        self._reset()
        self.connection._executescript(sql_script)
        return self

    def _reset(self) -> None:
        self._rows = None
        self._pos = 0
        self._columns = []
        self._first = None
        self._description = None
        self._converters = None
        self.rowcount = -1

    def _take(self, sql: str, result: Any, info: Any) -> None:
        if result is None:
            return
        if info.is_dml:
            self.rowcount = result.rowcount
        columns = result.columns
        if not columns:
            return
        rows = result.rows
        self._sql = sql
        self._columns = columns
        self._rows = rows
        self._first = rows[0] if rows else None
        self._description = _UNSET
        if self.connection.detect_types:
            self._converters = self._find_converters()

    # ---- the result set

    @property
    def description(self) -> tuple[tuple[Any, ...], ...] | None:
        """A 7-item tuple per result column: (name, type_code, None, None, None, None,
        None); None after a statement that returns no rows. type_code: see
        toondb.dbapi.types."""
        if self._description is _UNSET:
            self._description = self._describe()
        return self._description  # type: ignore[no-any-return]

    def _describe(self) -> tuple[tuple[Any, ...], ...]:
        names = self._columns
        if self.connection.detect_types & T.PARSE_COLNAMES:
            names = [T.split_colname(n)[0] for n in names]
        decl = self.connection._declared_types(self._sql)
        if decl is None or len(decl) != len(names):
            decl = [None] * len(names)
        first = self._first
        out = []
        for i, name in enumerate(names):
            code = decl[i] or (T.value_type_code(first[i]) if first is not None else None)
            out.append((name, code, None, None, None, None, None))
        return tuple(out)

    def _find_converters(self) -> list[Any] | None:
        detect = self.connection.detect_types
        found: list[Any] = [None] * len(self._columns)
        if detect & T.PARSE_COLNAMES:
            for i, name in enumerate(self._columns):
                kind = T.split_colname(name)[1]
                if kind is not None:
                    found[i] = T.converters.get(kind)
        if detect & T.PARSE_DECLTYPES:
            decl = self.connection._declared_types(self._sql)
            if decl is not None and len(decl) == len(found):
                for i, d in enumerate(decl):
                    if found[i] is None:
                        converter = T.converter_name(d)
                        found[i] = T.converters.get(converter) if converter else None
        return found if any(found) else None

    def _make(self, row: tuple[Any, ...]) -> Any:
        """A row as the caller gets it: converted, text_factory applied, row_factory."""
        converters = self._converters
        text_factory = self.connection.text_factory
        if converters is not None or text_factory is not str:
            values = list(row)
            for i, v in enumerate(values):
                if v is None:
                    continue
                conv = converters[i] if converters is not None else None
                if conv is not None:
                    values[i] = conv(T.as_converter_input(v))
                elif type(v) is str and text_factory is not str:
                    values[i] = v.encode() if text_factory is bytes else text_factory(v.encode())
            row = tuple(values)
        factory = self.row_factory
        return row if factory is None else factory(self, row)

    def _plain(self) -> bool:
        return (
            self.row_factory is None
            and self._converters is None
            and self.connection.text_factory is str
        )

    def _result_rows(self) -> list[tuple[Any, ...]]:
        self._check_open()
        if self.connection._closed:
            raise ProgrammingError("Cannot operate on a closed database.")
        rows = self._rows
        if rows is None:
            raise ProgrammingError(
                "no result set: the last statement returned no rows (or none was executed)"
            )
        return rows

    def fetchone(self) -> Any:
        """The next row, or None when there is no more."""
        rows = self._result_rows()
        pos = self._pos
        if pos >= len(rows):
            return None
        self._pos = pos + 1
        return rows[pos] if self._plain() else self._make(rows[pos])

    def fetchmany(self, size: int | None = None) -> list[Any]:
        """The next size rows (arraysize by default); fewer at the end, [] after it."""
        rows = self._result_rows()
        if size is None:
            size = self.arraysize
        pos = self._pos
        out = rows[pos : pos + max(size, 0)]
        self._pos = pos + len(out)
        return out if self._plain() else [self._make(r) for r in out]

    def fetchall(self) -> list[Any]:
        """Every remaining row ([] when none remain)."""
        rows = self._result_rows()
        pos = self._pos
        out = rows if pos == 0 else rows[pos:]
        self._rows = []  # the list is the caller's now
        self._pos = 0
        return out if self._plain() else [self._make(r) for r in out]

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        rows = self._result_rows()
        pos = self._pos
        if pos >= len(rows):
            raise StopIteration
        self._pos = pos + 1
        return rows[pos] if self._plain() else self._make(rows[pos])

    # ---- the rest of PEP 249

    def close(self) -> None:
        """Close the cursor: its rows are dropped; using it raises ProgrammingError."""
        self._closed = True
        self._rows = None

    def setinputsizes(self, sizes: Any) -> None:
        """Does nothing (PEP 249 lets a driver ignore it)."""

    def setoutputsize(self, size: int, column: int | None = None) -> None:
        """Does nothing (PEP 249 lets a driver ignore it)."""

    def _check_open(self) -> None:
        if self._closed:
            raise ProgrammingError("Cannot operate on a closed cursor.")

    def __repr__(self) -> str:
        return f"<toondb.dbapi.Cursor {'closed' if self._closed else 'open'}>"
