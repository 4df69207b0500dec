"""Running SQL text against the storage engine: the entry points of the SQL front end.

``Session`` belongs to one ``Database`` handle: ``execute(sql, params)`` runs SQL in
its own transaction (autocommit): a read-only snapshot for a SELECT, an immediate
write transaction (the write lock taken at begin, so it never conflicts) for
anything else. ``BEGIN`` opens a transaction that later statements of the same
handle *in the same thread* run in, until ``COMMIT`` or ``ROLLBACK`` (as a sqlite3
connection per thread would; another thread of the same handle is not in it).
``BEGIN`` is optimistic (its COMMIT may raise TransactionConflictError, and then
nothing of it is applied), ``BEGIN IMMEDIATE`` / ``EXCLUSIVE`` take the write
lock at once.

``execute_in(txn, sql, params)`` runs SQL inside a storage transaction, together
with its key-value writes: they commit or abort together. If a statement fails,
its own writes are undone and the transaction stays usable.

Batch: ``many=True`` runs one statement once per parameter set, parsed and planned
once; the whole batch is atomic. A list/tuple of sequences or dicts as params of
``execute`` is such a batch.

The grammar and the engine are imported on the first statement: they take about
0.2 s to import, which a program that never runs SQL should not pay.
"""

from __future__ import annotations

import functools
import threading
from types import ModuleType
from typing import TYPE_CHECKING, Any

from toondb.errors import SQLError
from toondb.sql import ast
from toondb.sql import catalog as C
from toondb.sql.hnsw import DEFAULT_EF_SEARCH
from toondb.sql.result import Result

if TYPE_CHECKING:
    from toondb.sql.engine import Outcome

__all__ = ["Session", "execute_in", "Result"]


@functools.cache
def _engine() -> ModuleType:
    from toondb.sql import engine

    return engine


@functools.cache
def _grammar() -> ModuleType:
    from toondb.sql import grammar

    return grammar


class _State:
    """Per handle and thread: the open SQL transaction and PRAGMA settings."""

    def __init__(self) -> None:
        self.txn: Any = None
        self.foreign_keys = False
        self.hnsw_ef_search = DEFAULT_EF_SEARCH  # PRAGMA hnsw_ef_search


# the state of SQL run inside a Transaction object: per thread
_txn_states: threading.local = threading.local()


def _txn_state() -> _State:
    st = getattr(_txn_states, "state", None)
    if st is None:
        st = _txn_states.state = _State()
    return st


def _is_batch(params: Any) -> bool:
    if not isinstance(params, (list, tuple)) or not params:
        return False
    first = params[0]
    return isinstance(first, (list, tuple, dict))


def _parse(sql: str, many: bool) -> list[ast.Parsed]:
    stmts: list[ast.Parsed] = _grammar().parse(sql)
    if many and len(stmts) != 1:
        raise SQLError("executemany takes exactly one statement")
    return stmts


def _run_all(stmts: list[ast.Parsed], params: Any, many: bool, run: Any) -> Result:
    """run(parsed, index, params, many) for each statement: the last one's result."""
    if len(stmts) == 1:
        return run(stmts[0], 0, params, many)  # type: ignore[no-any-return]
    if not stmts:
        return Result(None, None, 0)
    if params:
        raise SQLError("parameters can only be bound to a single statement")
    out = Result(None, None, 0)
    for i, parsed in enumerate(stmts):
        out = run(parsed, i, params, False)
    return out


def execute_in(txn: Any, sql: str, params: Any = None, *, many: bool = False) -> Result:
    """Run SQL inside the storage transaction txn (see the module's docstring)."""
    if not many and _is_batch(params):
        many = True
    state = _txn_state()

    def run(parsed: ast.Parsed, index: int, p: Any, m: bool) -> Result:
        if isinstance(parsed.statement, ast.TxnControl):
            raise SQLError(
                f"{parsed.statement.action} inside a Transaction: use the Transaction's "
                "commit() or abort()"
            )
        return _in_txn(txn, parsed, index, p, m, state)

    return _run_all(_parse(sql, many), params, many, run)


class Session:
    """The SQL front end of one database handle (see the module's docstring)."""

    __slots__ = ("_db", "_local")

    def __init__(self, db: Any) -> None:
        self._db = db
        self._local = threading.local()

    def _state(self) -> _State:
        st = getattr(self._local, "state", None)
        if st is None:
            st = self._local.state = _State()
        return st

    @property
    def in_transaction(self) -> bool:
        """True while a transaction opened with SQL BEGIN is open in this thread."""
        txn = self._state().txn
        return txn is not None and not txn.closed

    def current_transaction(self) -> Any:
        """The transaction SQL BEGIN opened in this thread, or None."""
        txn = self._state().txn
        return txn if txn is not None and not txn.closed else None

    def rollback(self) -> bool:
        """Abort the transaction SQL BEGIN opened in this thread; True if there was one."""
        state = self._state()
        txn, state.txn = state.txn, None
        if txn is None or txn.closed:
            return False
        txn.abort()
        return True

    def execute(self, sql: str, params: Any = None, *, many: bool = False) -> Result:
        """Run SQL (one statement, or several separated by ';': the last one's result)."""
        if not many and _is_batch(params):
            many = True
        return _run_all(_parse(sql, many), params, many, self._run)

    def _run(self, parsed: ast.Parsed, index: int, params: Any, many: bool) -> Result:
        stmt = parsed.statement
        state = self._state()
        if isinstance(stmt, ast.TxnControl):
            return self._txn_control(stmt, state)
        if state.txn is not None:
            if state.txn.closed:
                state.txn = None
            else:
                return _in_txn(state.txn, parsed, index, params, many, state)
        db = self._db
        if parsed.read_only and not many:
            txn = db.begin_transaction(read_only=True)
            try:
                return _exec(txn, parsed, index, params, False, None, state)
            finally:
                txn.abort()
        txn = db.begin_transaction(immediate=True)
        try:
            res = _exec(txn, parsed, index, params, many, None, state)
        except BaseException:
            txn.abort()
            raise
        txn.commit()
        return res

    def _txn_control(self, stmt: ast.TxnControl, state: _State) -> Result:
        if stmt.action == "BEGIN":
            if state.txn is not None and not state.txn.closed:
                raise SQLError("cannot start a transaction within a transaction")
            state.txn = self._db.begin_transaction(
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


def _in_txn(
    txn: Any, parsed: ast.Parsed, index: int, params: Any, many: bool, state: _State
) -> Result:
    undo: list[Any] | None = None if txn.read_only else []
    try:
        return _exec(txn, parsed, index, params, many, undo, state)
    except BaseException:
        if undo and not txn.closed:
            _engine().undo_writes(undo)
        raise


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
    compiled.ctx.engine = state  # the PRAGMA settings a statement reads (hnsw_ef_search)
    if many:
        run_many = getattr(compiled, "run_many", None)  # INSERTs: one statement, many rows
        if run_many is not None:
            out: Outcome = run_many(txn, params, undo, state)
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
