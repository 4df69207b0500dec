"""The SQL methods of ``Database`` and ``Transaction`` (``SQLMixin``) and ``Result``.

``db.execute_sql(sql, params=None)`` (alias ``execute``) runs SQL in its own
transaction (autocommit): a read-only snapshot for a SELECT, an immediate write
transaction (the write lock taken at begin, so it never conflicts) for anything
else. ``BEGIN`` opens a transaction that later statements of the same handle *in
the same thread* run in, until ``COMMIT`` or ``ROLLBACK`` (as a sqlite3
connection per thread would; another thread of the same handle is not in it).
``BEGIN`` is optimistic (its COMMIT may raise TransactionConflictError, and then
nothing of it is applied), ``BEGIN IMMEDIATE`` / ``EXCLUSIVE`` take the write
lock at once.

``txn.execute_sql(sql, params=None)`` (alias ``execute``) runs SQL inside a
``Transaction``, together with its key-value writes: they commit or abort
together. If a statement fails, its own writes are undone and the transaction
stays usable.

Batch: ``executemany(sql, seq_of_params)``, or ``execute_sql(sql, seq)`` where
seq is a list/tuple of sequences or dicts, runs the statement once per
parameter set, parsed and planned once; the whole batch is atomic.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, overload

from toondb import _btree
from toondb.errors import SQLError
from toondb.sql import ast
from toondb.sql import catalog as C

if TYPE_CHECKING:
    from toondb.sql.engine import Outcome

__all__ = ["SQLMixin", "Result"]


@functools.cache
def _engine() -> ModuleType:
    """toondb.sql.engine, imported on first use: it and the pyparsing grammar take
    about 0.2 s to import, which a program that never runs SQL should not pay."""
    from toondb.sql import engine

    return engine


@functools.cache
def _grammar() -> ModuleType:
    """toondb.sql.grammar, imported on first use (see _engine)."""
    from toondb.sql import grammar

    return grammar


class Result(Sequence):  # type: ignore[type-arg]
    """What a statement returned. For a SELECT: a sequence of dicts keyed by the
    output column names (``row["name"]``), with ``.columns`` and ``.rows``
    (tuples). For INSERT/UPDATE/DELETE: empty, with ``.rowcount`` (and
    ``.lastrowid`` for INSERT). Two output columns with the same name keep both:
    the second is ``name:1``."""

    __slots__ = ("columns", "rows", "rowcount", "lastrowid", "_keys", "_dicts")

    def __init__(
        self,
        columns: list[str] | None,
        rows: list[tuple[Any, ...]] | None,
        rowcount: int = -1,
        lastrowid: int | None = None,
    ) -> None:
        self.columns = columns if columns is not None else []
        self.rows = rows if rows is not None else []
        self.rowcount = rowcount if rows is None else len(self.rows)
        self.lastrowid = lastrowid
        self._keys: list[str] | None = None
        self._dicts: list[dict[str, Any]] | None = None

    @property
    def keys(self) -> list[str]:
        """The dict keys of the rows: the column names, a repeated one as name:1, name:2..."""
        if self._keys is None:
            self._keys = _unique_keys(self.columns)
        return self._keys

    def _all(self) -> list[dict[str, Any]]:
        if self._dicts is None:
            keys = self.keys
            self._dicts = [dict(zip(keys, r)) for r in self.rows]
        return self._dicts

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, i: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, i: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, i: int | slice) -> Any:
        return self._all()[i]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self._dicts is not None:
            return iter(self._dicts)
        keys = self.keys
        return (dict(zip(keys, r)) for r in self.rows)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Result):
            return self.columns == other.columns and self.rows == other.rows
        if isinstance(other, list):
            return self._all() == other
        return NotImplemented

    def __repr__(self) -> str:
        if not self.columns:
            return f"<Result rowcount={self.rowcount}>"
        return repr(self._all())

    def scalar(self) -> Any:
        """The first column of the first row (None when there is no row)."""
        return self.rows[0][0] if self.rows else None


def _unique_keys(columns: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for c in columns:
        if c in seen:
            n = seen[c]
            key = f"{c}:{n}"
            while key in seen:
                n += 1
                key = f"{c}:{n}"
            seen[c] = n + 1
            seen[key] = 1
            out.append(key)
        else:
            seen[c] = 1
            out.append(c)
    return out


class _State:
    """Per handle and thread: the open SQL transaction and PRAGMA settings."""

    def __init__(self) -> None:
        self.txn: Any = None
        self.foreign_keys = False


_txn_states: threading.local = threading.local()


def _is_batch(params: Any) -> bool:
    if not isinstance(params, (list, tuple)) or not params:
        return False
    first = params[0]
    return isinstance(first, (list, tuple, dict))


class SQLMixin:
    """execute_sql / execute / executemany for Database and Transaction."""

    # ---- state

    def _sql_state(self) -> _State:
        if isinstance(self, _btree.Txn):
            st = getattr(_txn_states, "state", None)
            if st is None:
                st = _txn_states.state = _State()
            return st
        local = self.__dict__.get("_sql_local")
        if local is None:
            local = self.__dict__.setdefault("_sql_local", threading.local())
        st = getattr(local, "state", None)
        if st is None:
            st = local.state = _State()
        return st

    # ---- public

    @overload
    def execute_sql(self, sql: str, params: Any = None, *, format: None = None) -> Result: ...

    @overload
    def execute_sql(self, sql: str, params: Any = None, *, format: str) -> str: ...

    def execute_sql(self, sql: str, params: Any = None, *, format: str | None = None) -> Any:
        """Run SQL (one statement, or several separated by ';': the last one's
        result is returned). params: a sequence for ``?``, a dict for ``:name``;
        a list of those runs the statement once per item (see executemany).
        format="toon" / "json": the result as a TOON (spec v4.0) / JSON document
        instead, for an LLM prompt (see toondb.query.format_result)."""
        if format is not None:
            from toondb.query import format_result

            return format_result(self.execute_sql(sql, params), format)
        if _is_batch(params):
            return self.executemany(sql, params)
        stmts = _grammar().parse(sql)
        if len(stmts) == 1:
            return self._run(stmts[0], 0, params, False)
        if not stmts:
            return Result(None, None, 0)
        if params:
            raise SQLError("parameters can only be bound to a single statement")
        for i, parsed in enumerate(stmts):
            out = self._run(parsed, i, params, False)
        return out

    execute = execute_sql

    def executemany(self, sql: str, seq_of_params: Any) -> Result:
        """Run one statement once per parameter set (parsed and planned once; atomic)."""
        stmts = _grammar().parse(sql)
        if len(stmts) != 1:
            raise SQLError("executemany takes exactly one statement")
        return self._run(stmts[0], 0, seq_of_params, True)

    # ---- machinery

    def _run(self, parsed: ast.Parsed, index: int, params: Any, many: bool) -> Result:
        stmt = parsed.statement
        state = self._sql_state()
        in_txn = isinstance(self, _btree.Txn)
        if isinstance(stmt, ast.TxnControl):
            if in_txn:
                raise SQLError(
                    f"{stmt.action} inside a Transaction: use the Transaction's commit() or abort()"
                )
            return self._txn_control(stmt, state)
        if in_txn:
            return self._in_txn(self, parsed, index, params, many, state)
        if state.txn is not None:
            if state.txn.closed:
                state.txn = None
            else:
                return self._in_txn(state.txn, parsed, index, params, many, state)
        read_only = parsed.read_only
        if read_only and not many:
            txn = self.begin_transaction(read_only=True)  # type: ignore[attr-defined]
            try:
                return self._exec(txn, parsed, index, params, False, None, state)
            finally:
                txn.abort()
        txn = self.begin_transaction(immediate=True)  # type: ignore[attr-defined]
        try:
            res = self._exec(txn, parsed, index, params, many, None, state)
        except BaseException:
            txn.abort()
            raise
        txn.commit()
        return res

    def _in_txn(
        self, txn: Any, parsed: ast.Parsed, index: int, params: Any, many: bool, state: _State
    ) -> Result:
        undo: list[Any] | None = None if txn.read_only else []
        try:
            return self._exec(txn, parsed, index, params, many, undo, state)
        except BaseException:
            if undo and not txn.closed:
                _engine().undo_writes(undo)
            raise

    @staticmethod
    def _exec(
        txn: Any,
        parsed: ast.Parsed,
        index: int,
        params: Any,
        many: bool,
        undo: list[Any] | None,
        state: _State,
    ) -> Result:
        engine = _engine()
        catalog = C.load(txn)
        compiled = engine.compiled_for(parsed, index, catalog, state.foreign_keys)
        if many:
            if isinstance(compiled, engine.CompiledInsert):
                out: Outcome = compiled.run_many(txn, params, undo, state)
            else:
                total = 0
                out = engine.Outcome(rowcount=0)
                for p in params:
                    out = compiled.run(txn, p, undo, state)
                    total += max(out.rowcount, 0)
                out.rowcount = total
        else:
            out = compiled.run(txn, params, undo, state)
        return Result(out.columns, out.rows, out.rowcount, out.lastrowid)

    def _txn_control(self, stmt: ast.TxnControl, state: _State) -> Result:
        if stmt.action == "BEGIN":
            if state.txn is not None and not state.txn.closed:
                raise SQLError("cannot start a transaction within a transaction")
            state.txn = self.begin_transaction(  # type: ignore[attr-defined]
                immediate=stmt.mode in ("IMMEDIATE", "EXCLUSIVE")
            )
            return Result(None, None, 0)
        txn = state.txn
        if txn is None or txn.closed:
            state.txn = None
            raise SQLError(f"cannot {stmt.action.lower()} - no transaction is active")
        state.txn = None
        if stmt.action == "COMMIT":
            txn.commit()
        else:
            txn.abort()
        return Result(None, None, 0)
