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

``execute`` runs one statement (more: MultipleStatementsError, as sqlite3);
``executescript`` / ``execute_script_in`` run a script's statements one by one
(``run_script``), each as ``execute`` would.

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
from itertools import chain
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable

from toondb.errors import MultipleStatementsError, SQLError, ToonDBError, TransactionError
from toondb.sql import ast
from toondb.sql import catalog as C
from toondb.sql.fn_datetime import pin_now, unpin_now
from toondb.sql.hnsw import DEFAULT_EF_SEARCH
from toondb.sql.result import Result
from toondb.sql.types import JsonText, plain
from toondb.sql.user_functions import UserFunctions

if TYPE_CHECKING:
    from toondb.sql.engine import Outcome
    from toondb.sql.statements import Prepared

__all__ = ["Session", "execute_in", "Result"]


@functools.cache
def _engine() -> ModuleType:
    from toondb.sql import engine

    return engine


@functools.cache
def _depth() -> ModuleType:
    from toondb.sql import depth

    return depth


@functools.cache
def _lexer() -> ModuleType:
    from toondb.sql import lexer

    return lexer


@functools.cache
def _statements() -> ModuleType:
    from toondb.sql import statements

    return statements


class _State:
    """Per handle and thread: the open SQL transaction and PRAGMA settings."""

    def __init__(self) -> None:
        self.txn: Any = None
        self.savepoint_began = False  # txn was begun by SAVEPOINT: RELEASE of the last commits
        self.foreign_keys = False
        self.hnsw_ef_search = DEFAULT_EF_SEARCH  # PRAGMA hnsw_ef_search
        # PRAGMA cache_size / temp_store / mmap_size as set (sql/pragmas.py)
        self.settings: dict[str, int] = {}
        self.functions: UserFunctions | None = None  # the handle's (sql/user_functions.py)


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


def _parse(sql: str, many: bool) -> tuple[Prepared, ...]:
    stmts: tuple[Prepared, ...] = _statements().prepare(sql)
    if many and len(stmts) != 1:
        raise SQLError("executemany takes exactly one statement")
    return stmts


def _run_all(stmts: tuple[Prepared, ...], params: Any, many: bool, run: Any) -> Result:
    """run(prepared, 0, params, many) for the one statement of a text (none: an
    empty result; more than one: refused, as sqlite3's execute refuses them)."""
    if len(stmts) == 1:
        return run(stmts[0], 0, params, many)  # type: ignore[no-any-return]
    if not stmts:
        return Result(None, None, 0)
    raise MultipleStatementsError(
        "You can only execute one statement at a time (use executescript for a script)"
    )


PROGRESS_EVERY = 256  # statements between two progress calls of a script


def run_script(sql: str, run: Any, progress: Callable[[int, int], None] | None = None) -> None:
    """run(prepared, index, None, False) for each statement of the script sql, in
    order. A statement that fails stops the script: its error is raised with the
    statement's number and line added to its message (and as ``statement`` /
    ``line`` attributes); what ran before it stays done. progress(done, total), if
    given, hears how many characters of the script have run, every PROGRESS_EVERY
    statements and at the end."""
    if not isinstance(sql, str):
        raise TypeError(f"SQL must be a str, not {type(sql).__name__}")
    S = _statements()
    tokenize_statement = _lexer().tokenize_statement
    line, counted, n, pos = 1, 0, 0, 0
    while pos >= 0:
        start, end = pos, len(sql)
        try:
            # the script is cut one statement at a time (the lexer stops at ';')
            t, pos = tokenize_statement(sql, pos)
            if not t:
                continue  # an empty statement
            start, end = t.starts[0], t.ends[-1]
            if progress is not None and n and n % PROGRESS_EVERY == 0:
                progress(start, len(sql))
            prep = S.prepare_tokens(t)
            if prep.parsed.key is sql:  # cached plans keep the statement, not the script
                prep.parsed.key = prep.parsed.text = sql[start:end]
            run(prep, n, None, False)
        except ToonDBError as e:
            line += sql.count("\n", counted, start)
            text = sql[start:end].strip()
            if len(text) > 80:
                text = text[:77] + "..."
            msg = str(e.args[0]) if e.args else type(e).__name__
            e.args = (f"{msg}\n  in statement {n + 1} of the script, at line {line}: {text}",)
            e.statement = n + 1  # type: ignore[attr-defined]
            e.line = line  # type: ignore[attr-defined]
            raise
        n += 1
    if progress is not None:
        progress(len(sql), len(sql))


def execute_script_in(
    txn: Any, sql: str, progress: Callable[[int, int], None] | None = None
) -> None:
    """Run the statements of the script sql inside the storage transaction txn
    (BEGIN / COMMIT in it are refused: the transaction's owner ends it; savepoints
    act on txn)."""
    run_script(sql, _runner_in(txn), progress)


def _runner_in(txn: Any) -> Callable[[Prepared, int, Any, bool], Result]:
    """run(prepared, index, params, many) inside the storage transaction txn:
    BEGIN / COMMIT / ROLLBACK refused (the transaction's owner ends it), savepoints
    acting on txn."""
    state = _txn_state()
    functions = txn.__dict__.get("_functions")  # its handle's (Database.begin_transaction)

    def run(prep: Prepared, index: int, p: Any, m: bool) -> Result:
        stmt = prep.parsed.statement
        if isinstance(stmt, ast.TxnControl):
            if stmt.name is not None:
                return _savepoint_statement(txn, stmt)
            raise SQLError(
                f"{stmt.action} inside a Transaction: use the Transaction's commit() or abort()"
            )
        if isinstance(stmt, ast.Vacuum):
            raise SQLError("cannot VACUUM from within a transaction")
        state.functions = functions
        return _in_txn(txn, prep, index, p, m, state)

    return run


def execute_in(txn: Any, sql: str, params: Any = None, *, many: bool = False) -> Result:
    """Run SQL inside the storage transaction txn (see the module's docstring)."""
    if not many and _is_batch(params):
        many = True
    return _run_all(_parse(sql, many), params, many, _runner_in(txn))


class Session:
    """The SQL front end of one database handle (see the module's docstring)."""

    __slots__ = ("_db", "_local", "functions")

    def __init__(self, db: Any) -> None:
        self._db = db
        self._local = threading.local()
        self.functions = UserFunctions()  # Database.create_function

    def _state(self) -> _State:
        st = getattr(self._local, "state", None)
        if st is None:
            st = self._local.state = _State()
            st.functions = self.functions
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
        """Run one SQL statement (MultipleStatementsError for more: see executescript)."""
        if not many and isinstance(params, (list, tuple)) and params:  # _is_batch, inline
            many = isinstance(params[0], (list, tuple, dict))
        stmts = _statements().prepare(sql)
        if len(stmts) == 1:  # _parse and _run_all's common case, without their calls
            return self._run(stmts[0], 0, params, many)
        if many:
            raise SQLError("executemany takes exactly one statement")
        return _run_all(stmts, params, many, self._run)

    def executescript(self, sql: str, progress: Callable[[int, int], None] | None = None) -> None:
        """Run the statements of a script, each as execute would (its own
        transaction, or the one a BEGIN of the script or before it opened). A
        statement that fails stops the script (see run_script); a transaction
        the script began and had not ended is then rolled back."""
        state = self._state()
        outer = state.txn is not None and not state.txn.closed
        try:
            run_script(sql, self._run, progress)
        except BaseException:
            if not outer:
                self.rollback()
            raise

    def _run(self, prep: Prepared, index: int, params: Any, many: bool) -> Result:
        parsed = prep.parsed
        stmt = parsed.statement
        state = self._state()
        if isinstance(stmt, ast.TxnControl):
            return self._txn_control(stmt, state)
        if state.txn is not None:
            if state.txn.closed:
                state.txn = None
            else:
                return _in_txn(state.txn, prep, index, params, many, state)
        db = self._db
        run = _exec if parsed.deep else _exec_compiled
        # db.begin: begin_transaction's engine call, without its keyword wrapper
        if parsed.read_only and not many:
            txn = db.begin(False)
            try:
                return run(txn, prep, index, params, False, None, state)
            finally:
                txn.abort()
        txn = db.begin(True, True)
        try:
            res = run(txn, prep, index, params, many, None, state)
        except BaseException:
            txn.abort()
            raise
        txn.commit()
        return res

    def _txn_control(self, stmt: ast.TxnControl, state: _State) -> Result:
        active = state.txn is not None and not state.txn.closed
        if stmt.action == "BEGIN":
            if active:
                raise SQLError("cannot start a transaction within a transaction")
            state.txn = self._db.begin_transaction(
                immediate=stmt.mode in ("IMMEDIATE", "EXCLUSIVE")
            )
            state.savepoint_began = False
            return Result(None, None, 0)
        if stmt.action == "SAVEPOINT" and not active:
            # as SQLite: a SAVEPOINT outside a transaction begins one (deferred)
            state.txn = self._db.begin_transaction()
            state.savepoint_began = True
            active = True
        if stmt.name is not None:
            if not active:
                raise SQLError(f"no such savepoint: {stmt.name}")
            txn = state.txn
            out = _savepoint_statement(txn, stmt)
            if (
                stmt.action == "RELEASE"
                and state.savepoint_began
                and not txn.__dict__.get("_savepoints")
            ):
                state.txn = None  # the outermost savepoint of a transaction it began
                txn.commit()
            return out
        txn = state.txn
        if not active:
            state.txn = None
            raise SQLError(f"cannot {stmt.action.lower()} - no transaction is active")
        state.txn = None
        if stmt.action == "COMMIT":
            txn.commit()
        else:
            txn.abort()
        return Result(None, None, 0)


def _savepoint_statement(txn: Any, stmt: ast.TxnControl) -> Result:
    """SAVEPOINT / RELEASE / ROLLBACK TO name on txn (toondb.database.Transaction)."""
    if txn.read_only:
        raise SQLError(f"{stmt.action} in a read-only transaction")
    try:
        if stmt.action == "SAVEPOINT":
            txn.savepoint(stmt.name)
        elif stmt.action == "RELEASE":
            txn.release(stmt.name)
        else:
            txn.rollback_to(stmt.name)
    except TransactionError as e:
        raise SQLError(str(e)) from None
    return Result(None, None, 0)


def _in_txn(txn: Any, prep: Prepared, index: int, params: Any, many: bool, state: _State) -> Result:
    undo: list[Any] | None = None if txn.read_only else []
    try:
        return _exec(txn, prep, index, params, many, undo, state)
    except BaseException:
        if undo and not txn.closed:
            _engine().undo_writes(undo)
        raise


def _exec(
    txn: Any,
    prep: Prepared,
    index: int,
    params: Any,
    many: bool,
    undo: list[Any] | None,
    state: _State,
) -> Result:
    if prep.parsed.deep:
        with _depth().headroom():
            return _exec_compiled(txn, prep, index, params, many, undo, state)
    return _exec_compiled(txn, prep, index, params, many, undo, state)


def _exec_compiled(
    txn: Any,
    prep: Prepared,
    index: int,
    params: Any,
    many: bool,
    undo: list[Any] | None,
    state: _State,
) -> Result:
    engine = _engine()
    compiled = engine.compiled_for(
        prep.parsed, index, C.load(txn), state.foreign_keys, txn, state.functions
    )
    compiled.slots = prep.values
    compiled.ctx.engine = state  # the PRAGMA settings a statement reads (hnsw_ef_search)
    if not compiled.reads_clock and not many:
        out = compiled.run(txn, params, undo, state)
    else:
        clock = pin_now()  # 'now' and CURRENT_*: one value per statement
        try:
            if many:
                out = _run_compiled(engine, compiled, txn, params, many, undo, state)
            else:
                out = compiled.run(txn, params, undo, state)
        finally:
            unpin_now(clock)
    rows = out.rows
    if rows:
        _strip_subtypes(rows)
    columns = out.columns if prep.names is None else prep.columns(out.columns)
    return Result(columns, rows, out.rowcount, out.lastrowid)


def _strip_subtypes(rows: list[tuple[Any, ...]]) -> None:
    """Replace, in place, each row holding a JsonText (the JSON functions'
    internal marker of SQLite's subtype) by one of plain str: callers get str."""
    jt = JsonText
    if jt not in set(map(type, chain.from_iterable(rows))):  # the common case, at C speed
        return
    for i, r in enumerate(rows):
        if jt in map(type, r):
            rows[i] = tuple([plain(v) for v in r])


def _run_compiled(
    engine: Any,
    compiled: Any,
    txn: Any,
    params: Any,
    many: bool,
    undo: list[Any] | None,
    state: _State,
) -> Outcome:
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
            out = engine.Outcome(out.columns, out.rows, total, out.lastrowid)
    else:
        out = compiled.run(txn, params, undo, state)
    return out
