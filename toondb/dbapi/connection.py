"""``Connection``: a PEP 249 connection with sqlite3's transaction control.

Transactions belong to the connection (not to its thread, as SQL ``BEGIN`` through
``Database.execute_sql`` does): each connection holds at most one toondb
transaction, and runs its statements in it while it is open, or each in a
transaction of its own (autocommit) while none is. What opens and closes it:

- ``autocommit=LEGACY_TRANSACTION_CONTROL`` (the default, as sqlite3): with
  ``isolation_level`` "" / "DEFERRED" / "IMMEDIATE" / "EXCLUSIVE" a transaction is
  begun implicitly before an INSERT, UPDATE, DELETE or REPLACE when none is open,
  and lasts until ``commit()`` / ``rollback()``; other statements (SELECT, DDL) run
  in it if one is open, else in their own. ``isolation_level=None``: no implicit
  transactions; setting it to None commits the open one.
- ``autocommit=True``: no implicit transactions; ``commit()`` and ``rollback()`` do
  nothing; SQL ``BEGIN`` / ``COMMIT`` still work.
- ``autocommit=False`` (PEP 249's way): a transaction is always open; ``commit()``
  and ``rollback()`` begin the next one; ``close()`` rolls back.

Modes. A deferred begin (the default, "" or "DEFERRED", and SQL ``BEGIN``) opens the
toondb transaction at the connection's next statement, so its snapshot is taken
then, as SQLite's BEGIN DEFERRED takes its snapshot at the first read; it is
optimistic (toondb's ``BEGIN``): it takes no lock, and a commit that would overwrite
a key another transaction committed after it began raises ``OperationalError``
(``TransactionConflictError``) and applies nothing. "IMMEDIATE" / "EXCLUSIVE" take
the write lock at begin (waiting up to ``timeout`` seconds, then
``OperationalError``) and never conflict. ``SAVEPOINT`` / ``RELEASE`` /
``ROLLBACK TO`` work as in SQLite: a SAVEPOINT outside a transaction begins one, and
releasing its outermost savepoint commits it.

A failed statement inside a transaction is undone alone; the transaction goes on
(as in SQLite). A connection may be shared by threads (``threadsafety = 2``): its
statements are run one at a time; pass ``check_same_thread=True`` for sqlite3's
check instead.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Callable

from toondb import errors
from toondb.dbapi import script as S
from toondb.dbapi import types as T
from toondb.errors import (
    IntegrityError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    SQLError,
)

__all__ = ["Connection", "LEGACY_TRANSACTION_CONTROL"]

LEGACY_TRANSACTION_CONTROL = -1
_LEVELS = ("", "DEFERRED", "IMMEDIATE", "EXCLUSIVE")

# A plain SQLError (not one of its subclasses) is what SQLite calls SQLITE_ERROR,
# which sqlite3 raises as OperationalError; a few of them are PEP 249's
# ProgrammingError (the parameters do not fit the statement), IntegrityError
# (SQLite's SQLITE_MISMATCH) or DataError (a value out of range). Told by their
# messages until the engine raises classes of its own for them.
_REFINED = (
    ("Incorrect number of bindings", ProgrammingError),
    ("You did not supply a value for binding", ProgrammingError),
    ("positional parameters", ProgrammingError),
    ("parameters must be a sequence", ProgrammingError),
    ("unsupported parameter type", ProgrammingError),
    ("executemany takes exactly one statement", ProgrammingError),
    ("datatype mismatch", IntegrityError),
)


def refine(exc: SQLError) -> Exception:
    """The PEP 249 class a plain SQLError is raised as (see _REFINED); any other
    error is already one, and is returned as it is."""
    if type(exc) is not SQLError:
        return exc
    message = str(exc)
    for prefix, cls in _REFINED:
        if message.startswith(prefix):
            return cls(message)
    return OperationalError(message)


def _unsupported_type(exc: SQLError) -> bool:
    return type(exc) is SQLError and str(exc).startswith("unsupported parameter type")


class Connection:
    """A PEP 249 connection (see the module docstring); make one with
    ``toondb.dbapi.connect`` / ``connect_ipc`` or ``Database.connection()``."""

    Warning = errors.Warning
    Error = errors.Error
    InterfaceError = errors.InterfaceError
    DatabaseError = errors.DatabaseError
    DataError = errors.DataError
    OperationalError = errors.OperationalError
    IntegrityError = errors.IntegrityError
    InternalError = errors.InternalError
    ProgrammingError = errors.ProgrammingError
    NotSupportedError = errors.NotSupportedError

    def __init__(
        self,
        backend: Any,
        *,
        detect_types: int = 0,
        isolation_level: str | None = "",
        check_same_thread: bool = False,
        autocommit: bool | int = LEGACY_TRANSACTION_CONTROL,
    ) -> None:
        self._backend = backend
        self._session = backend.session
        self._txn: Any = None  # the toondb transaction open now
        self._pending = False  # a deferred begin: open one at the next statement
        self._savepoint_began = False  # the open transaction was begun by SAVEPOINT
        self._savepoint_names: list[str] = []  # open savepoints, oldest first (lower case)
        self._closed = False
        self._lock = threading.RLock()
        self._thread = threading.get_ident() if check_same_thread else None
        self._last_rowid = 0
        self._isolation_level = _check_level(isolation_level)
        self._autocommit = _check_autocommit(autocommit)
        self.detect_types = detect_types
        self.row_factory: Callable[[Any, tuple[Any, ...]], Any] | None = None
        self.text_factory: Any = str
        self.total_changes = 0
        if self._autocommit is False:
            self._pending = True

    # ---- state

    def _check(self) -> None:
        if self._closed:
            raise ProgrammingError("Cannot operate on a closed database.")
        if self._thread is not None and threading.get_ident() != self._thread:
            raise ProgrammingError(
                "toondb objects created in a thread can only be used in that same thread "
                "(the connection was made with check_same_thread=True)"
            )

    @property
    def in_transaction(self) -> bool:
        """True while a transaction is open (or begun and not yet used)."""
        txn = self._txn
        return self._pending or (txn is not None and not txn.closed)

    @property
    def isolation_level(self) -> str | None:
        """The implicit transactions' mode under legacy transaction control: "",
        "DEFERRED", "IMMEDIATE", "EXCLUSIVE", or None for none (commits the open one)."""
        return self._isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._check()
        level = _check_level(value)
        if level is None and self._autocommit == LEGACY_TRANSACTION_CONTROL:
            self._finish(commit=True)
        self._isolation_level = level

    @property
    def autocommit(self) -> bool | int:
        """True, False or LEGACY_TRANSACTION_CONTROL (see the module docstring);
        setting True commits the open transaction, setting False begins one."""
        return self._autocommit

    @autocommit.setter
    def autocommit(self, value: bool | int) -> None:
        self._check()
        value = _check_autocommit(value)
        with self._lock:
            if value is True:
                self._finish(commit=True)
            elif value is False and not self.in_transaction:
                self._pending = True
            self._autocommit = value

    # ---- PEP 249

    def cursor(self, factory: Callable[[Connection], Any] | None = None) -> Any:
        """A new cursor (factory: a Cursor subclass, called with this connection)."""
        self._check()
        if factory is None:
            from toondb.dbapi.cursor import Cursor

            factory = Cursor
        return factory(self)

    def commit(self) -> None:
        """Commit the open transaction, if any (nothing under autocommit=True)."""
        self._check()
        if self._autocommit is True:
            return
        with self._lock:
            try:
                self._finish(commit=True)
            finally:
                if self._autocommit is False:
                    self._pending = True

    def rollback(self) -> None:
        """Roll back the open transaction, if any (nothing under autocommit=True)."""
        self._check()
        if self._autocommit is True:
            return
        with self._lock:
            try:
                self._finish(commit=False)
            finally:
                if self._autocommit is False:
                    self._pending = True

    def close(self) -> None:
        """Roll back an open transaction and close; closing again does nothing (as
        sqlite3). A handle the connection did not open (Database.connection(), an
        IpcClient given to connect_ipc) stays open."""
        if self._closed:
            return
        with self._lock:
            try:
                self._finish(commit=False)
            finally:
                self._closed = True
                self._backend.close()

    # ---- sqlite3's shortcuts and extras

    def execute(self, sql: str, parameters: Any = ()) -> Any:
        """A new cursor's execute(sql, parameters)."""
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Any) -> Any:
        """A new cursor's executemany(sql, seq_of_parameters)."""
        return self.cursor().executemany(sql, seq_of_parameters)

    def executescript(self, sql_script: str) -> Any:
        """A new cursor's executescript(sql_script)."""
        return self.cursor().executescript(sql_script)

    def __enter__(self) -> Connection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Commit if the block succeeded, else roll back (the connection stays open)."""
        if exc_type is None:
            try:
                self.commit()
            except BaseException:
                self.rollback()
                raise
        else:
            self.rollback()

    def create_function(
        self, name: str, narg: int, func: Any, *, deterministic: bool = False
    ) -> None:
        """As sqlite3's: the SQL function ``name`` of ``narg`` arguments (-1: any)
        is the Python callable func (None removes it), for this connection's
        database handle (Database.create_function). Over a server connection the
        function could not run where the SQL runs: NotSupportedError."""
        self._check()
        if self._backend.remote:
            raise NotSupportedError(
                "create_function: SQL run by a toondb server cannot call this process's Python"
            )
        try:
            self._backend.session.create_function(name, narg, func, deterministic=deterministic)
        except SQLError as e:
            raise refine(e) from e

    def iterdump(self) -> Any:
        """As sqlite3's: the SQL statements that make the database again, as this
        connection sees it (its open transaction included), one per item
        (toondb/sql/dump.py)."""
        from toondb.sql.dump import iterdump

        cursor = self.cursor()
        return iterdump(cursor.execute)

    def create_aggregate(self, name: str, n_arg: int, aggregate_class: Any) -> None:
        """As sqlite3's: the SQL aggregate ``name`` of ``n_arg`` arguments made by
        aggregate_class (step/finalize), for this connection's database handle
        (Database.create_aggregate). Over a server connection: NotSupportedError."""
        self._check()
        if self._backend.remote:
            raise NotSupportedError(
                "create_aggregate: SQL run by a toondb server cannot call this process's Python"
            )
        try:
            self._backend.session.create_aggregate(name, n_arg, aggregate_class)
        except SQLError as e:
            raise refine(e) from e

    def create_collation(self, name: str, callable: Any) -> None:
        raise NotSupportedError("toondb has no user-defined collations")

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        where = "server" if self._backend.remote else "embedded"
        return f"<toondb.dbapi.Connection {where}, {state}>"

    # ---- running statements (called by Cursor)

    def _run(self, sql: str, params: Any, many: bool) -> tuple[Any, S.Statement]:
        """Run one statement: its Result (None for transaction control and empty
        text) and what classify() says of it."""
        self._check()
        info = S.classify(sql)
        if info.count > 1:
            raise ProgrammingError("You can only execute one statement at a time.")
        if many and (info.is_read or info.txn is not None):
            raise ProgrammingError("executemany() can only execute DML statements.")
        with self._lock:
            if info.txn is not None:
                self._transaction_statement(info, sql)
                return None, info
            if info.count == 0:
                return None, info
            if (
                info.is_dml
                and self._autocommit == LEGACY_TRANSACTION_CONTROL
                and self._isolation_level is not None
                and not self.in_transaction
            ):
                self._begin(self._isolation_level)
            result = self._statement(sql, params, many)
        if info.is_dml:
            self.total_changes += max(result.rowcount, 0)
            if result.lastrowid is not None and info.keyword in ("INSERT", "REPLACE"):
                self._last_rowid = result.lastrowid
        elif not info.is_read and not result.columns:
            self._backend.schema_changed()
        return result, info

    def _statement(self, sql: str, params: Any, many: bool) -> Any:
        runner = self._runner()
        try:
            if many:
                return self._many(runner, sql, params)
            params = _parameters(params)
            if params and T.needs_adapting(params):
                params = _adapted(params)
            return runner.execute_sql(sql, params if params else None)
        except SQLError as e:
            refined = refine(e)
            if refined is e:
                raise
            raise refined from e

    def _many(self, runner: Any, sql: str, params: Any) -> Any:
        batch = params if isinstance(params, (list, tuple)) else list(params)
        if T._plain_types_adapted[0]:
            batch = [_adapted(p) for p in batch]
        try:
            return runner.executemany(sql, batch)
        except SQLError as e:
            if not _unsupported_type(e):
                # the batch changed nothing (it is atomic); as sqlite3, the parameter
                # sets before the failing one stay done: run them one by one
                return self._one_by_one(runner, sql, batch)
        # a value the engine does not bind: adapt every parameter set and run again
        # (the failed run changed nothing)
        return runner.executemany(sql, [_adapted(p) for p in batch])

    def _one_by_one(self, runner: Any, sql: str, batch: Any) -> Any:
        for p in batch:
            result = runner.execute_sql(sql, p)
            self.total_changes += max(result.rowcount, 0)
            if result.lastrowid is not None:
                self._last_rowid = result.lastrowid
        raise AssertionError("executemany failed as a batch but not row by row")

    def _runner(self) -> Any:
        """Where the next statement runs: the open transaction, or the handle."""
        txn = self._txn
        if txn is not None:
            if not txn.closed:
                return txn
            self._txn = None
        if self._pending:
            self._pending = False
            self._txn = self._session.begin_transaction()
            return self._txn
        return self._session

    def _begin(self, mode: str | None) -> None:
        if mode in ("IMMEDIATE", "EXCLUSIVE"):
            self._txn = self._session.begin_transaction(immediate=True)
        else:
            self._pending = True

    def _finish(self, commit: bool) -> None:
        txn, self._txn = self._txn, None
        self._pending = False
        self._savepoint_began = False
        self._savepoint_names.clear()
        if txn is None or txn.closed:
            return
        if commit:
            txn.commit()
        else:
            txn.abort()

    def _transaction_statement(self, info: S.Statement, sql: str) -> None:
        action = info.txn
        if action == "BEGIN":
            if self.in_transaction:
                raise OperationalError("cannot start a transaction within a transaction")
            self._begin(info.mode)
            self._savepoint_began = False
        elif action in ("COMMIT", "ROLLBACK"):
            if not self.in_transaction:
                raise OperationalError(f"cannot {action.lower()} - no transaction is active")
            self._finish(commit=action == "COMMIT")
        else:
            # SAVEPOINT / RELEASE / ROLLBACK TO: run by the transaction itself; as
            # SQLite, a SAVEPOINT outside a transaction begins one, and releasing the
            # outermost savepoint of a transaction it began commits it
            if not self.in_transaction:
                if action != "SAVEPOINT":
                    raise OperationalError(f"no such savepoint: {_savepoint_name(sql, False)}")
                self._txn = self._session.begin_transaction()
                self._savepoint_began = True
            self._runner().execute_sql(sql)  # the engine checks the name (SQLError)
            name = _savepoint_name(sql)
            stack = self._savepoint_names
            if action == "SAVEPOINT":
                stack.append(name)
                return
            i = max(i for i, n in enumerate(stack) if n == name)
            del stack[i + (action == "ROLLBACK TO") :]
            if not stack and self._savepoint_began:
                self._finish(commit=True)

    def _executescript(self, sql_script: str) -> None:
        """Run every statement of a script (the one place that does; see
        toondb.dbapi.script.split). Legacy transaction control commits first, and
        begins nothing implicitly; BEGIN / COMMIT in the script work as SQL."""
        self._check()
        if not isinstance(sql_script, str):
            raise TypeError(f"script argument must be str, not {type(sql_script).__name__}")
        try:
            statements = S.split(sql_script)
        except SQLError as e:  # nested past SQLite's depth limit
            refined = refine(e)
            if refined is e:
                raise
            raise refined from e
        with self._lock:
            if self._autocommit == LEGACY_TRANSACTION_CONTROL:
                self._finish(commit=True)
            for sql in statements:
                info = S.classify(sql)
                if info.txn is not None:
                    self._transaction_statement(info, sql)
                    continue
                result = self._statement(sql, None, False)
                if info.is_dml:
                    self.total_changes += max(result.rowcount, 0)
                elif not info.is_read and not result.columns:
                    self._backend.schema_changed()

    def _declared_types(self, sql: str) -> list[str | None] | None:
        with self._lock:
            txn = self._txn if self._txn is not None and not self._txn.closed else None
            try:
                return self._backend.declared_types(sql, txn)  # type: ignore[no-any-return]
            except errors.ToonDBError:
                return None


def _savepoint_name(sql: str, fold: bool = True) -> str:
    """The savepoint a SAVEPOINT / RELEASE / ROLLBACK TO statement names (lower case
    with fold), as the SQL engine parses it."""
    from toondb.sql.grammar import parse

    stmt = parse(sql)[0].statement
    name = str(getattr(stmt, "name", ""))
    return name.lower() if fold else name


def _parameters(params: Any) -> Any:
    """params as the engine takes them: a tuple, list or dict (as sqlite3: any
    sequence, or any mapping for named parameters)."""
    if params is None or isinstance(params, (tuple, list, dict)):
        return params
    if isinstance(params, Mapping):
        return dict(params)
    if isinstance(params, (str, bytes)) or not isinstance(params, Sequence):
        raise ProgrammingError("parameters are of unsupported type")
    return tuple(params)


def _adapted(params: Any) -> Any:
    """params adapted; ProgrammingError naming the first value nothing can bind."""
    out = T.adapt_params(params)
    items = out.items() if isinstance(out, dict) else enumerate(out, 1)
    for key, value in items:
        if type(value) not in T._BINDABLE and not isinstance(
            value, (int, float, str, bytes, bytearray, memoryview)
        ):
            raise ProgrammingError(
                f"Error binding parameter {key if isinstance(key, int) else ':' + key}: "
                f"type '{type(value).__name__}' is not supported"
            )
    return out


def _check_level(value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError("isolation_level must be str or None")
    level = value.upper()
    if level not in _LEVELS:
        raise ValueError(
            "isolation_level string must be '', 'DEFERRED', 'IMMEDIATE', or 'EXCLUSIVE'"
        )
    return level


def _check_autocommit(value: Any) -> bool | int:
    if value is True or value is False:
        return value
    if value == LEGACY_TRANSACTION_CONTROL and not isinstance(value, bool):
        return LEGACY_TRANSACTION_CONTROL
    raise ValueError("autocommit must be True, False, or sqlite3.LEGACY_TRANSACTION_CONTROL")
