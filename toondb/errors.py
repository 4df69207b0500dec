"""Every error toondb raises on purpose, in one place.

All of them derive from :class:`ToonDBError`, so ``except toondb.ToonDBError``
catches anything the database itself reports. Misuse of an argument is reported
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
    "CorruptionError",
    "TransactionError",
    "TransactionClosedError",
    "TransactionConflictError",
    "ForkedHandleError",
    "SQLError",
    "SQLSyntaxError",
    "SchemaError",
    "ConstraintError",
    "RowFormatError",
    "VectorIndexError",
    "HnswCorruptionError",
    "ToonDecodeError",
    "ServerConnectionError",
    "ProtocolError",
    "CLIError",
    "ReplicationError",
    "ObjectStoreError",
]
# ``ConnectionError`` is also an attribute of this module and of ``toondb``: the name
# ServerConnectionError had before 0.4, kept for one release. It is not in __all__,
# so ``from toondb.errors import *`` does not hide the builtin ConnectionError.


class ToonDBError(Exception):
    """Base class of every error toondb raises on purpose."""


class ClosedError(ToonDBError):
    """The database (or client) was used after ``close()``. Open it again."""


class ReadOnlyError(ToonDBError):
    """A write was attempted through a handle opened with ``read_only=True``."""


class DatabaseLockedError(ToonDBError):
    """Another writer held the database's write lock for longer than ``lock_timeout``
    seconds (or another live server serves the database)."""


class DatabaseFullError(ToonDBError):
    """The page file would grow past ``map_size``; reopen with a larger ``map_size``."""


class ReadersFullError(ToonDBError):
    """Every slot of the shared reader table is taken by a live reader; close some
    iterators or transactions, or reopen with a larger ``max_readers``."""


class CorruptionError(ToonDBError):
    """The page file is damaged: a checksum, a page header or a structural invariant
    does not hold. The message names the page. Restore from a backup; ``toondb check``
    lists every damaged page."""


class TransactionError(ToonDBError):
    """Base class for errors about the life of a transaction."""


class TransactionClosedError(TransactionError):
    """A transaction was used after ``commit()`` or ``abort()``; begin a new one."""


class TransactionConflictError(TransactionError):
    """Another transaction committed a write to a key this transaction also wrote,
    after this one began (first committer wins). Nothing of this transaction was
    applied; retry it."""


class ForkedHandleError(ToonDBError):
    """A handle opened before ``os.fork()`` was used in the child process. The child
    must open the database itself: ``Database.open(path)``."""


class SQLError(ToonDBError):
    """Base class for errors reported by the SQL engine."""


class SQLSyntaxError(SQLError):
    """The SQL text does not parse; the message shows the line, the column and a
    caret under the offending token."""


class SchemaError(SQLError):
    """A statement names a table, column or index that does not exist (or one that
    already exists), or is otherwise inconsistent with the schema."""


class ConstraintError(SQLError):
    """A statement would break a constraint (NOT NULL, UNIQUE, PRIMARY KEY, CHECK,
    FOREIGN KEY); the message names the constraint and the offending values. The
    statement changed nothing."""


class RowFormatError(CorruptionError):
    """A stored SQL row or index key does not decode (a bad tag, a truncated value,
    a wrong column count): the page holding it is intact by its checksum, but its
    contents are not what toondb wrote."""


class VectorIndexError(ToonDBError, ValueError):
    """A vector index operation failed: a file that is not an index, a dimension or
    metric mismatch with an existing index, or an index name that does not exist.
    Also a ``ValueError``: each is a bad argument for the index at hand."""


class HnswCorruptionError(CorruptionError, ValueError):
    """The regions of a stored HNSW graph are not a consistent graph (a bad header
    field, a region too short, a neighbour id out of range, a chunk whose checksum
    fails)."""


class ToonDecodeError(ToonDBError, ValueError):
    """The text is not valid TOON (or breaks a strict-mode rule of spec §14).

    ``line`` is the 1-based line number where the problem was found (``None`` when it
    concerns the document as a whole); the message starts with it.
    """

    def __init__(self, message: str, line: int | None = None) -> None:
        self.line = line
        self.reason = message
        super().__init__(f"line {line}: {message}" if line is not None else message)


class ServerConnectionError(ToonDBError, builtins.ConnectionError):
    """The connection to a toondb server failed or was lost (the server is not
    running, was killed, or closed the connection). Also a builtin ``ConnectionError``."""


ConnectionError = ServerConnectionError  # the name before 0.4 (see __all__)


class ProtocolError(ToonDBError):
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
