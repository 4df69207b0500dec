"""``Database`` and ``Transaction``: the public face, assembled from the layers below.

The storage engine (``toondb.storage``) gives the key-value core: both classes are
its Python face (``StorageEnvironment``, ``StorageTransaction``), so ``get``,
``put``, ``delete`` and scans run in C with no Python object per page or per key.
Each front end is reached by delegation, and imported on first use so that
``import toondb`` stays light for key-value programs:

============================  ====================================================
methods                       front end
============================  ====================================================
``execute_sql``, ``execute``,  ``toondb.sql.session`` (pyparsing grammar, planner,
``executemany``               operators over B+tree cursors)
``query``                     ``toondb.toon.query`` (the query builder)
``format="toon" | "json"``    ``toondb.toon.results``
``create_vector_index``, ...  ``toondb.vector.api`` (NumPy and the HNSW kernel)
``connection``                ``toondb.dbapi`` (PEP 249, as sqlite3)
============================  ====================================================

A ``Database`` runs each call in a transaction of its own; a ``Transaction`` runs
them inside itself, together with its key-value writes.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, overload

from toondb.errors import TransactionError
from toondb.storage.env import DATA_FILE, LOCK_FILE, StorageEnvironment, StorageTransaction

if TYPE_CHECKING:
    from toondb.dbapi.connection import Connection
    from toondb.sql.result import Result
    from toondb.sql.session import Session
    from toondb.toon.query import Prefix, Query
    from toondb.vector.index import VectorIndex

__all__ = ["Database", "Transaction", "DATA_FILE", "LOCK_FILE"]


@functools.cache
def _sql() -> ModuleType:
    from toondb.sql import fulltext, hnsw, session

    hnsw.register(_hnsw_method)  # the HNSW indexes of SQL tables live in toondb.vector
    fulltext.register(_fulltext_method)  # full-text tables' indexes live in toondb.text
    return session


def _hnsw_method() -> Any:
    from toondb.vector.sql_index import HNSW

    return HNSW


def _fulltext_method() -> Any:
    from toondb.text.sql_table import SQL_FULLTEXT

    return SQL_FULLTEXT


@functools.cache
def _sql_integrity() -> ModuleType:
    from toondb.sql import integrity

    _sql()  # the front ends' SQL parts registered (full-text tables' indexes)

    return integrity


@functools.cache
def _vectors() -> ModuleType:
    from toondb.vector import api

    return api


def _format(result: Result, format: str) -> str:
    from toondb.toon.results import format_result

    return format_result(result, format)


def _query(source: Any, prefix: Prefix) -> Query:
    from toondb.toon.query import Query

    return Query(source, prefix)


class Savepoint:
    """An open savepoint (``Transaction.savepoint()``); a context manager."""

    __slots__ = ("txn", "name")

    def __init__(self, txn: Transaction, name: str) -> None:
        self.txn = txn
        self.name = name

    def rollback(self) -> None:
        """Undo the changes made since this savepoint was opened (it stays open)."""
        self.txn.rollback_to(self.name)

    def release(self) -> None:
        """Close this savepoint, keeping its changes."""
        self.txn.release(self.name)

    def __enter__(self) -> Savepoint:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self.txn.closed:
            return
        if exc_type is not None:
            self.txn.rollback_to(self.name)
        self.txn.release(self.name)


class Transaction(StorageTransaction):
    """A transaction: every write is applied atomically at ``commit()``, or not at all.

    Reads see the snapshot taken when the transaction began plus its own writes;
    a scan merges them in key order. Isolation is snapshot isolation with
    first-committer-wins: if another transaction committed a write to a key this
    one also wrote, after this one began, ``commit()`` raises
    ``TransactionConflictError`` and applies nothing (retry it). An
    ``immediate=True`` transaction takes the write lock when it begins and never
    conflicts. Used as a context manager it commits on success and aborts on an
    exception.
    """

    def __enter__(self) -> Transaction:
        return self

    def commit(self) -> int:
        """Apply every change atomically; returns the new transaction id (see the
        class). First the front ends' before-commit callables run (``_before_commit``
        in the transaction's ``__dict__``): writes they keep in memory until the
        commit, such as the rows a full-text index accumulates
        (toondb/text/sql_table.py); if one raises, nothing commits. After the commit
        the after-commit callables run (``_after_commit``, each given the id):
        caches that keep what the transaction made, such as an SQL HNSW index's
        working graph (toondb/vector/sql_index.py), which is only valid once
        committed."""
        d = self.__dict__
        if not d:  # no callables registered: the common case
            return super().commit()
        before = d.pop("_before_commit", None)
        if before:
            for hook in before:
                hook()
        txnid: int = super().commit()
        hooks = d.pop("_after_commit", None)
        if hooks:
            for hook in hooks:
                hook(txnid)
        return txnid

    # ---- savepoints (the undo records of toondb/storage/_txn.pxi)

    def savepoint(self, name: str = "savepoint") -> Savepoint:
        """Open a savepoint named name inside this transaction, as SQL's ``SAVEPOINT``:
        ``rollback_to(name)`` later undoes every change made since (key-value, SQL rows,
        indexes, named trees), ``release(name)`` keeps them. Savepoints nest; names
        compare case-insensitively and the newest of a name wins, as in SQLite. As a
        context manager the savepoint is released on success and rolled back (then
        released) on an exception, which propagates; the transaction stays open.
        While a savepoint is open every write also records the value it replaces.
        First the front ends' on-savepoint callables run (``_on_savepoint`` in the
        transaction's ``__dict__``): writes they keep in memory go to the pages, where
        the savepoint's undo records cover them (a full-text index's pending rows,
        toondb/text/sql_table.py); ``rollback_to`` then runs ``_on_rollback_to``."""
        if not isinstance(name, str) or not name:
            raise TypeError("a savepoint's name is a non-empty str")
        for hook in self.__dict__.get("_on_savepoint", ()):
            hook()
        mark = self._savepoint()
        stack = self.__dict__.setdefault("_savepoints", [])
        stack.append((name.lower(), mark))
        return Savepoint(self, name)

    def _savepoint_index(self, name: str) -> int:
        stack = self.__dict__.get("_savepoints") or []
        key = name.lower() if isinstance(name, str) else name
        for i in range(len(stack) - 1, -1, -1):
            if stack[i][0] == key:
                return i
        raise TransactionError(f"no such savepoint: {name}")

    def rollback_to(self, name: str) -> None:
        """Undo every change made since savepoint name was opened; it stays open (the
        savepoints opened after it are closed), as SQL's ``ROLLBACK TO``."""
        i = self._savepoint_index(name)
        stack = self.__dict__["_savepoints"]
        self._rollback_to(stack[i][1])
        del stack[i + 1 :]
        states = self.__dict__.get("_vec_states")
        if states:  # working graphs of what was undone: re-read from the pages
            states.clear()
        for hook in self.__dict__.get("_on_rollback_to", ()):
            hook()

    def release(self, name: str) -> None:
        """Close savepoint name and every one opened after it, keeping their changes,
        as SQL's ``RELEASE``."""
        i = self._savepoint_index(name)
        stack = self.__dict__["_savepoints"]
        del stack[i:]
        if not stack:
            self._end_savepoints()

    # ---- SQL (toondb.sql.session)

    @overload
    def execute_sql(self, sql: str, params: Any = None, *, format: None = None) -> Result: ...

    @overload
    def execute_sql(self, sql: str, params: Any = None, *, format: str) -> str: ...

    def execute_sql(self, sql: str, params: Any = None, *, format: str | None = None) -> Any:
        """Run SQL in this transaction (see ``Database.execute_sql``). If a statement
        fails, its own writes are undone and the transaction stays usable."""
        result = _sql().execute_in(self, sql, params)
        return result if format is None else _format(result, format)

    execute = execute_sql

    def executemany(self, sql: str, seq_of_params: Any) -> Result:
        """Run one statement once per parameter set (parsed and planned once)."""
        return _sql().execute_in(self, sql, seq_of_params, many=True)  # type: ignore[no-any-return]

    def executescript(
        self, sql: str, *, progress: Callable[[int, int], None] | None = None
    ) -> None:
        """Run the statements of a script (separated by ';') in this transaction.
        A statement that fails stops the script: its error says which statement
        and line; its own writes are undone, the ones before it stay in the
        transaction. BEGIN / COMMIT in the script are refused; savepoints act on
        this transaction. progress(done, total): as ``Database.executescript``."""
        _sql().execute_script_in(self, sql, progress)

    def iterdump(self) -> Iterator[str]:
        """The SQL statements that make the database this transaction sees,
        one per item, as sqlite3's ``Connection.iterdump()`` (toondb/sql/dump.py)."""
        from toondb.sql.dump import iterdump

        return iterdump(self.execute_sql)

    # ---- the query builder (toondb.toon.query)

    def query(self, prefix: Prefix = "") -> Query:
        """A query builder over the JSON documents stored under prefix, in this transaction."""
        return _query(self, prefix)

    # ---- vector indexes (toondb.vector.api)

    def create_vector_index(
        self,
        name: str,
        dimension: int,
        metric: str = "cosine",
        m: int = 16,
        ef_construction: int = 100,
        *,
        exist_ok: bool = False,
    ) -> VectorIndex:
        """Create an empty vector index in this transaction (see ``Database.create_vector_index``)."""
        api = _vectors()
        api.create(self, name, dimension, metric, m, ef_construction, exist_ok)
        return api.index_in_txn(self, name)  # type: ignore[no-any-return]

    def vector_index(self, name: str) -> VectorIndex:
        """The vector index `name`, read and written in this transaction."""
        return _vectors().index_in_txn(self, name)  # type: ignore[no-any-return]

    def vector_indexes(self) -> list[str]:
        """The names of the vector indexes this transaction sees, sorted."""
        return _vectors().names(self)  # type: ignore[no-any-return]

    def drop_vector_index(self, name: str) -> bool:
        """Delete the vector index `name` and its vectors; True if it existed."""
        return _vectors().drop(self, name)  # type: ignore[no-any-return]


class Database(StorageEnvironment):
    """An open toondb database: key-value pairs, SQL tables and vector indexes in
    one crash-safe page file.

    Open it with ``Database.open(path)``, preferably as a context manager. Any
    number of threads and processes may open the same database; one writes at a
    time, all read concurrently from snapshots.
    """

    transaction_class = Transaction
    _sql_session: Session | None = None
    _vector_handles: dict[str, VectorIndex] | None = None

    def begin_transaction(self, *, read_only: bool = False, immediate: bool = False) -> Transaction:
        """A new transaction; finish it with commit() or abort().

        read_only=True: a snapshot for reads only. immediate=True: take the write
        lock now (waiting up to lock_timeout), so the commit can never conflict."""
        txn = self.begin(write=not read_only, immediate=immediate)
        session = self._sql_session
        if session is not None:  # the SQL run in it calls the handle's functions
            txn.__dict__["_functions"] = session.functions
        return txn  # type: ignore[return-value]

    def transaction(self, *, read_only: bool = False, immediate: bool = False) -> Transaction:
        """A transaction as a context manager: commits on success, aborts on an exception."""
        return self.begin_transaction(read_only=read_only, immediate=immediate)

    def create_function(
        self,
        name: str,
        narg: int,
        func: Callable[..., Any] | None,
        *,
        deterministic: bool = False,
    ) -> None:
        """Define the SQL function ``name`` of ``narg`` arguments (-1: any number)
        as the Python callable ``func`` (None removes it), for the SQL run
        through this handle, as sqlite3's ``create_function``: it is found before
        a built-in of the same name and number of arguments; it takes and
        returns SQL values (None, int, float, str, bytes); an exception it
        raises fails the statement with SQLError "user-defined function raised
        exception". Not stored in the file: each handle defines its own (see
        toondb/sql/user_functions.py)."""
        self._session().functions.define(name, narg, func, deterministic)

    def create_aggregate(self, name: str, n_arg: int, aggregate_class: Any) -> None:
        """Define the SQL aggregate ``name`` of ``n_arg`` arguments (-1: any
        number) as sqlite3's ``create_aggregate``: for each group a new
        ``aggregate_class()`` has ``step(*args)`` called per row (NULLs too) and
        ``finalize()`` gives the value (a group of no rows is NULL); None removes
        it. An exception in either fails the statement with SQLError naming the
        method. Not a window function (as in sqlite3). See create_function."""
        self._session().functions.define_aggregate(name, n_arg, aggregate_class)

    # ---- maintenance

    def check(self, deep: bool = False) -> dict[str, Any]:
        """Verify the whole file: every checksum, key order and separator, one leaf
        depth, every page reachable exactly once or free. deep=True also decodes
        every row of every SQL table and every index entry, and checks that each
        index holds exactly the entries its rows imply (toondb.sql.integrity; a
        few times slower). Raises CorruptionError listing every problem
        (``.problems``); returns counts when all is well."""
        counts = super().check()
        if deep:
            txn = self.begin(write=False)
            try:
                counts.update(_sql_integrity().check_sql(txn))
            finally:
                txn.abort()
        return counts

    def stats(self) -> dict[str, Any]:
        """Counts that describe the database now (see StorageEnvironment.stats); on a
        replica (made by ``toondb restore`` or kept by ``toondb follow``) also
        "replica": its source, the primary's transaction it holds and its lag."""
        out = super().stats()
        from toondb.replication.replica import replica_info

        info = replica_info(self.path)
        if info is not None:
            out["replica"] = info
        return out

    # ---- SQL (toondb.sql.session)

    def _session(self) -> Session:
        session = self._sql_session
        if session is None:
            session = self._sql_session = _sql().Session(self)
        return session

    @property
    def in_transaction(self) -> bool:
        """True while a transaction opened with SQL ``BEGIN`` is open in this thread."""
        return self._sql_session is not None and self._sql_session.in_transaction

    def current_transaction(self) -> Transaction | None:
        """The transaction an SQL ``BEGIN`` opened in this thread, or None."""
        if self._sql_session is None:
            return None
        return self._sql_session.current_transaction()  # type: ignore[no-any-return]

    def rollback(self) -> bool:
        """Roll back the transaction an SQL ``BEGIN`` opened in this thread (as SQL
        ``ROLLBACK`` does); True if there was one, False (and nothing done) if not."""
        return self._sql_session is not None and self._sql_session.rollback()

    @overload
    def execute_sql(self, sql: str, params: Any = None, *, format: None = None) -> Result: ...

    @overload
    def execute_sql(self, sql: str, params: Any = None, *, format: str) -> str: ...

    def execute_sql(self, sql: str, params: Any = None, *, format: str | None = None) -> Any:
        """Run one SQL statement (MultipleStatementsError for more, as sqlite3's
        execute: a script goes to ``executescript``). params: a sequence for ``?``, a dict for ``:name``;
        a list of those runs the statement once per item (see executemany).
        format="toon" / "json": the result as a TOON (spec v4.0) / JSON document
        instead, for an LLM prompt (see toondb.toon.results.format_result).

        Each statement runs in its own transaction, unless an SQL ``BEGIN`` opened
        one in this thread (see toondb.sql.session)."""
        result = self._session().execute(sql, params)
        return result if format is None else _format(result, format)

    execute = execute_sql

    def executemany(self, sql: str, seq_of_params: Any) -> Result:
        """Run one statement once per parameter set (parsed and planned once; atomic)."""
        return self._session().execute(sql, seq_of_params, many=True)

    def executescript(
        self, sql: str, *, progress: Callable[[int, int], None] | None = None
    ) -> None:
        """Run the statements of a script (separated by ';'), as sqlite3's
        executescript: each in its own transaction, or in the one a ``BEGIN`` of
        the script (or before it) opened; ``BEGIN`` / ``COMMIT`` in it are
        honoured, so a dump of ``sqlite3 DB .dump`` or ``iterdump()`` loads in one
        call. A statement that fails stops the script; its error (of its own
        type) says which statement and line failed (``statement`` / ``line``
        attributes). What the script committed before it stays committed; a
        transaction the script began and had not ended is rolled back.
        progress(done, total), if given, is called with the characters of the
        script run so far, every few hundred statements and at the end (the CLI
        draws its progress bar with it)."""
        self._session().executescript(sql, progress)

    def iterdump(self) -> Iterator[str]:
        """The SQL statements that make this database again (one snapshot), one
        per item, as sqlite3's ``Connection.iterdump()``: ``executescript`` of
        their join loads them (toondb/sql/dump.py). The CLI's ``toondb dump``
        and the shell's ``.dump`` write them."""
        txn = self.begin_transaction(read_only=True)
        try:
            yield from txn.iterdump()
        finally:
            txn.abort()

    # ---- the DB-API (toondb.dbapi)

    def connection(self, **options: Any) -> Connection:
        """A PEP 249 connection over this open database, as sqlite3's (cursors, rows as
        tuples, transactions begun before DML and ended by commit() / rollback());
        closing it leaves the database open. options: toondb.dbapi.connect's
        (isolation_level, autocommit, detect_types, check_same_thread, factory)."""
        from toondb.dbapi.backend import Embedded
        from toondb.dbapi.connection import Connection

        make = options.pop("factory", None) or Connection
        return make(Embedded(self, owned=False), **options)

    # ---- the query builder (toondb.toon.query)

    def query(self, prefix: Prefix = "") -> Query:
        """A query builder over the JSON documents stored under prefix (see toondb.toon.query)."""
        return _query(self, prefix)

    # ---- vector indexes (toondb.vector.api)

    def create_vector_index(
        self,
        name: str,
        dimension: int,
        metric: str = "cosine",
        m: int = 16,
        ef_construction: int = 100,
        *,
        exist_ok: bool = False,
    ) -> VectorIndex:
        """Create an empty vector index `name` for vectors of `dimension` floats and
        return it. metric: "cosine" (1 - cosine similarity), "l2" (squared Euclidean)
        or "ip" (1 - inner product). m: links per node (16; 2*m on the bottom layer);
        ef_construction: build-time candidate list (100). A name that exists raises
        VectorIndexError, unless exist_ok=True and its parameters are the same."""
        with self.transaction(immediate=True) as txn:
            _vectors().create(txn, name, dimension, metric, m, ef_construction, exist_ok)
        return self.vector_index(name)

    def vector_index(self, name: str) -> VectorIndex:
        """The vector index `name` (VectorIndexError if there is none). The handle is
        shared and sees every new commit."""
        if self._vector_handles is None:
            self._vector_handles = {}
        return _vectors().index_of_db(self, self._vector_handles, name)  # type: ignore[no-any-return]

    def vector_indexes(self) -> list[str]:
        """The names of the vector indexes, sorted."""
        txn = self.begin(write=False)
        try:
            return _vectors().names(txn)  # type: ignore[no-any-return]
        finally:
            txn.abort()

    def drop_vector_index(self, name: str) -> bool:
        """Delete the vector index `name` and its vectors; True if it existed."""
        with self.transaction(immediate=True) as txn:
            return _vectors().drop(txn, name)  # type: ignore[no-any-return]
