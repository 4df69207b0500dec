"""Every error toondb raises on purpose, in one place.

All of them derive from :class:`ToonDBError`, so ``except toondb.ToonDBError``
catches anything the database itself reports.

PEP 249 (the DB-API, ``toondb.dbapi``) names its own hierarchy: ``Warning``, ``Error``
and under it ``InterfaceError`` and ``DatabaseError`` (``DataError``,
``OperationalError``, ``IntegrityError``, ``InternalError``, ``ProgrammingError``,
``NotSupportedError``). Those classes are defined here too, under ``ToonDBError``, and
every toondb error also derives from the one of them that says what it is: a
``ConstraintError`` is an ``IntegrityError``, an ``SQLSyntaxError`` or a
``SchemaError`` a ``ProgrammingError``, a write conflict or a locked database an
``OperationalError``, damage a ``DatabaseError``, use after close a
``ProgrammingError`` (as sqlite3). So ``except toondb.dbapi.IntegrityError`` catches a
UNIQUE violation from ``Database.execute_sql`` as well as from a cursor, and no error
is wrapped on its way out. The PEP 249 names are not in ``__all__`` (``Warning`` would
hide the builtin, and ``toondb.Error`` says nothing): reach them as
``toondb.dbapi.<Name>`` or ``toondb.errors.<Name>`` (listed in ``DBAPI_ERRORS``). Misuse of an argument is reported
with Python's own ``TypeError`` / ``ValueError`` (a ``str`` where ``bytes`` is
needed, an empty key, an unknown config key), because that is what Python
programmers expect; those never leave the database changed.

Each message says what happened and what to do about it.
"""

from __future__ import annotations

import builtins

__all__ = [
    "ToonDBError",
    "ClosedError",
    "ReadOnlyError",
    "DatabaseLockedError",
    "DatabaseFullError",
    "ReadersFullError",
    "CursorLimitError",
    "CorruptionError",
    "NotADatabaseError",
    "TransactionError",
    "TransactionClosedError",
    "TransactionConflictError",
    "TransactionTimeoutError",
    "ForkedHandleError",
    "SQLError",
    "SQLSyntaxError",
    "MultipleStatementsError",
    "SchemaError",
    "ConstraintError",
    "IntegerOverflowError",
    "RowFormatError",
    "FullTextError",
    "VectorIndexError",
    "VectorValueError",
    "HnswCorruptionError",
    "ShardedIndexError",
    "ShardChecksumError",
    "ShardUnavailableError",
    "ToonDecodeError",
    "ServerConnectionError",
    "ProtocolError",
    "CLIError",
    "ReplicationError",
    "ObjectStoreError",
]
# PEP 249's names, in the order of its hierarchy (see the module docstring)
DBAPI_ERRORS = (
    "Warning",
    "Error",
    "InterfaceError",
    "DatabaseError",
    "DataError",
    "OperationalError",
    "IntegrityError",
    "InternalError",
    "ProgrammingError",
    "NotSupportedError",
)
# ``ConnectionError`` is also an attribute of this module and of ``toondb``: the name
# ServerConnectionError had before 0.4, kept for one release. It is not in __all__,
# so ``from toondb.errors import *`` does not hide the builtin ConnectionError.


class ToonDBError(Exception):
    """Base class of every error toondb raises on purpose."""


# ---- PEP 249 (the DB-API): every class below also derives from one of these


class Warning(ToonDBError):  # noqa: A001  (PEP 249's name; not in __all__)
    """PEP 249's Warning: an important warning (toondb raises none today)."""


class Error(ToonDBError):
    """PEP 249's Error: the base class of every DB-API error."""


class InterfaceError(Error):
    """The database interface failed rather than the database: the server's frames
    do not follow the protocol."""


class DatabaseError(Error):
    """An error of the database itself (PEP 249's DatabaseError)."""


class DataError(DatabaseError):
    """A value cannot be processed: out of range (an int beyond 64 bits), not valid
    in its format."""


class OperationalError(DatabaseError):
    """The database could not do what was asked, through nobody's programming fault:
    a write conflict, a locked or full or read-only database, a lost server connection,
    or an SQL statement that failed while running (as sqlite3's OperationalError)."""


class IntegrityError(DatabaseError):
    """A constraint would break (UNIQUE, NOT NULL, CHECK, FOREIGN KEY, a datatype
    mismatch on a rowid)."""


class InternalError(DatabaseError):
    """The database hit an internal inconsistency (toondb raises none today)."""


class ProgrammingError(DatabaseError):
    """The program is wrong: an SQL syntax error, a table that does not exist or
    already does, the wrong number of parameters, use after close."""


class NotSupportedError(DatabaseError):
    """A method or an SQL feature toondb does not provide (savepoints, user-defined
    SQL functions)."""


# ---- toondb's own errors


class ClosedError(ProgrammingError):
    """The database (or client) was used after ``close()``. Open it again."""


class ReadOnlyError(OperationalError):
    """A write was attempted through a handle opened with ``read_only=True``."""


class DatabaseLockedError(OperationalError):
    """Another writer held the database's write lock for longer than ``lock_timeout``
    seconds (or another live server serves the database)."""


class DatabaseFullError(OperationalError):
    """The page file would grow past ``map_size``; reopen with a larger ``map_size``."""


class ReadersFullError(OperationalError):
    """Every slot of the shared reader table is taken by a live reader; close some
    iterators or transactions, or reopen with a larger ``max_readers``."""


class CursorLimitError(ReadersFullError):
    """A toondb-server connection asked for more open scans than the server allows
    one connection (``--max-cursors``); exhaust or close some. Also a
    ``ReadersFullError``: each open scan outside a transaction holds a reader slot."""


class CorruptionError(DatabaseError):
    """The page file is damaged: a checksum, a page header or a structural invariant
    does not hold. The message names the page. Restore from a backup; ``toondb check``
    lists every damaged page."""


class NotADatabaseError(CorruptionError):
    """The file is not a toondb page file: neither meta page starts with toondb's
    header (a wrong path: a CSV, an image; or a file damaged past recognition).
    Raised before anything is created beside the file (no lock file). Also a
    ``CorruptionError``, which earlier versions raised; SQLite's SQLITE_NOTADB."""


class TransactionError(DatabaseError):
    """Base class for errors about the life of a transaction."""


class TransactionClosedError(TransactionError, ProgrammingError):
    """A transaction was used after ``commit()`` or ``abort()``; begin a new one."""


class TransactionConflictError(TransactionError, OperationalError):
    """Another transaction committed a write to a key this transaction also wrote,
    after this one began (first committer wins). Nothing of this transaction was
    applied; retry it."""


class TransactionTimeoutError(TransactionClosedError, OperationalError):
    """toondb-server aborted this connection's transaction: it held the write lock
    and sent no request for longer than ``--idle-transaction-timeout`` seconds.
    Nothing of it was applied; begin a new one."""


class ForkedHandleError(ProgrammingError):
    """A handle opened before ``os.fork()`` was used in the child process. The child
    must open the database itself: ``Database.open(path)``."""


class SQLError(DatabaseError):
    """Base class for errors reported by the SQL engine."""


class SQLSyntaxError(SQLError, ProgrammingError):
    """The SQL text does not parse; the message shows the line, the column and a
    caret under the offending token."""


class MultipleStatementsError(SQLError, ProgrammingError):
    """``execute`` / ``execute_sql`` was given more than one statement, as sqlite3's
    ``execute`` refuses ("You can only execute one statement at a time"): run a
    script with ``executescript``."""


class SchemaError(SQLError, ProgrammingError):
    """A statement names a table, column or index that does not exist (or one that
    already exists), or is otherwise inconsistent with the schema."""


class ConstraintError(SQLError, IntegrityError):
    """A statement would break a constraint (NOT NULL, UNIQUE, PRIMARY KEY, CHECK,
    FOREIGN KEY); the message names the constraint and the offending values. The
    statement changed nothing."""


class FullTextError(SQLError):
    """A full-text index (toondb.text, SQLite's FTS5) refused an operation, with
    FTS5's own message: a query that does not parse (``fts5: syntax error near
    "x"``, ``unterminated string``, ``no such column: x``), an unknown tokenizer or
    option (``no such tokenizer: x``, ``error in tokenizer constructor``), or an
    index name that does not exist."""


class IntegerOverflowError(SQLError, DataError, builtins.OverflowError):
    """A Python int outside SQLite's 64-bit INTEGER range was given as an SQL
    parameter. Also a builtin ``OverflowError``, with sqlite3's message, as
    ``sqlite3`` raises for the same call, and PEP 249's ``DataError`` (a value out
    of range)."""


class RowFormatError(CorruptionError):
    """A stored SQL row or index key does not decode (a bad tag, a truncated value,
    a wrong column count): the page holding it is intact by its checksum, but its
    contents are not what toondb wrote."""


class VectorIndexError(DatabaseError, ValueError):
    """A vector index operation failed: a file that is not an index, a dimension or
    metric mismatch with an existing index, or an index name that does not exist.
    Also a ``ValueError``: each is a bad argument for the index at hand."""


class VectorValueError(SQLError, DataError, ValueError):
    """A value is not a vector where SQL needs one: for a ``VECTOR(n)`` column (the
    message names the column) or an argument of a ``vec_`` function, a value of the
    wrong number of dimensions, one holding NaN or infinity, a blob whose length is not
    a multiple of 4, text that is not a JSON array of numbers, or another type. The
    statement changed nothing."""


class HnswCorruptionError(CorruptionError, ValueError):
    """The regions of a stored HNSW graph are not a consistent graph (a bad header
    field, a region too short, a neighbour id out of range, a chunk whose checksum
    fails)."""


class ShardedIndexError(VectorIndexError):
    """A sharded vector index (toondb.distributed) cannot be used as asked: a directory
    without a manifest (not a sharded index, or a build that did not finish), a manifest
    that does not parse, a shard file that is missing or is not the one the manifest
    describes, or a directory a build refuses to write into."""


class ShardChecksumError(CorruptionError):
    """A shard file of a sharded index does not have the SHA-256 its manifest records
    (``ShardedIndex.open(path, verify=True)``): it was damaged or replaced. ``shard`` is
    the shard's number, ``file`` its file name."""

    def __init__(self, message: str, shard: int = -1, file: str = "") -> None:
        self.shard = shard
        self.file = file
        super().__init__(message)

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (str(self), self.shard, self.file))


class ShardUnavailableError(ToonDBError):
    """One or more shards of a sharded index did not answer: no reply within the
    timeout (a hung or overloaded shard), or a worker that died and could not be
    restarted. Nothing was returned (pass ``allow_partial=True`` to get the other
    shards' results, flagged). ``shard`` is the first failed shard's number,
    ``shards`` all of them, ``reasons`` maps each to what happened."""

    def __init__(self, message: str, reasons: dict[int, str] | None = None) -> None:
        self.reasons = dict(reasons or {})
        self.shards = tuple(sorted(self.reasons))
        self.shard = self.shards[0] if self.shards else -1
        super().__init__(message)

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (str(self), self.reasons))


class ToonDecodeError(DataError, ValueError):
    """The text is not valid TOON (or breaks a strict-mode rule of spec §14).

    ``line`` is the 1-based line number where the problem was found (``None`` when it
    concerns the document as a whole); the message starts with it.
    """

    def __init__(self, message: str, line: int | None = None) -> None:
        self.line = line
        self.reason = message
        super().__init__(f"line {line}: {message}" if line is not None else message)


class ServerConnectionError(OperationalError, builtins.ConnectionError):
    """The connection to a toondb server failed or was lost (the server is not
    running, was killed, or closed the connection). Also a builtin ``ConnectionError``."""


ConnectionError = ServerConnectionError  # the name before 0.4 (see __all__)


class ProtocolError(InterfaceError):
    """A peer sent a frame that does not follow the toondb IPC protocol."""


class CLIError(ToonDBError):
    """A mistake in a ``toondb`` command line, or an operation it refused: the command
    reports it as one line and exits with status 1."""


class ReplicationError(ToonDBError):
    """Replication (``toondb replicate``, ``restore``, ``follow``) cannot do what was
    asked: nothing was replicated to the URL, no snapshot is held at or before the
    point asked for, the destination already holds something else, or another
    replicator ships the same database to the same place. The message says which."""


class ObjectStoreError(ReplicationError):
    """An object store (``s3://`` or ``file://``) failed or could not be reached.
    Replicators and followers retry with backoff (the primary never waits for the
    store); restore reports it once its retries are spent."""
