"""HNSW indexes on ``VECTOR(n)`` columns, as the SQL engine sees them.

``CREATE INDEX name ON t USING hnsw (col) WITH (metric = 'cosine', m = 16,
ef_construction = 100)`` makes one (``VectorIndexInfo`` in the catalog); the
planner searches it for ``ORDER BY vec_distance_<metric>(col, ?) LIMIT k``
(planner/knn.py). The index itself (an HNSW graph in a named tree of the page
file) is the vector package's: it sits above the SQL engine in the layers, so it
registers itself here (``register``; toondb/database.py does it when SQL first
runs) and the engine reaches it through the ``HnswMethod`` protocol below.

Maintenance (catalog invariant 5): the table's writer (writer.py) records, for
each row it writes, the row's new vector (or None: no entry) under its rowid in
the statement's ``PendingVectors`` (``Ctx.vectors``); when the statement has
written every row, ``flush`` hands each index its changes in one batch
(``HnswMethod.apply``: old records marked deleted, new ones inserted over every
core, the changed parts of the graph written to the transaction's tree). A
statement that fails before its flush has changed no index; the flush is the
last thing a statement does, so statement atomicity holds (a failure inside
``apply`` aborts the transaction, as a half-written index could not commit).
Rollback and crash recovery are the transaction's: the index lives in the same
page file and commits with the rows.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from toondb.errors import SQLError

__all__ = [
    "HnswMethod",
    "register",
    "method",
    "PendingVectors",
    "flush",
    "DEFAULT_EF_SEARCH",
    "METRICS",
    "DEFAULT_M",
    "DEFAULT_EF_CONSTRUCTION",
]

METRICS = ("cosine", "l2", "ip")
DEFAULT_M = 16
DEFAULT_EF_CONSTRUCTION = 100
DEFAULT_EF_SEARCH = 64  # PRAGMA hnsw_ef_search's default (docs/vector.md)
MAX_EF_SEARCH = 1 << 16


class HnswMethod(Protocol):
    """What the engine asks of the HNSW implementation (toondb/vector/sql_index.py).
    ``ix`` is the catalog's VectorIndexInfo; rowids are int64, vectors float32 blobs."""

    def build(self, txn: Any, ix: Any, rowids: Any, vectors: Any) -> None:
        """Create the index's tree holding these rows (rowids int64[n], vectors
        float32[n, dim]), built on every core."""

    def drop(self, txn: Any, ix: Any) -> None:
        """Delete the index's tree."""

    def apply(self, txn: Any, ix: Any, changes: dict[int, bytes | None]) -> None:
        """Move the index to the statement's changes: rowid -> its new vector, or None
        (the row is gone or its vector is NULL)."""

    def live(self, txn: Any, ix: Any) -> int:
        """The number of rows the index holds, as txn sees it."""

    def search(
        self, txn: Any, ix: Any, query: bytes, k: int, ef: int, allowed: Any = None
    ) -> tuple[Any, Any]:
        """The k nearest rows to query, nearest first: (rowids int64, distances
        float32); with allowed (rowids int64), only those, exactly min(k, how many of
        them the index holds)."""


_loader: Callable[[], HnswMethod] | None = None
_method: HnswMethod | None = None


def register(loader: Callable[[], HnswMethod]) -> None:
    """Make the HNSW implementation reachable: loader() returns it (called once, when
    a statement first needs it, so that NumPy and the kernel load only then)."""
    global _loader, _method
    _loader, _method = loader, None


def method() -> HnswMethod:
    global _method
    if _method is None:
        if _loader is None:
            raise SQLError(
                "HNSW indexes are not available here: open the database with toondb.Database"
            )
        _method = _loader()
    return _method


class PendingVectors:
    """The changes a statement makes to the HNSW indexes of the tables it writes:
    per index, rowid -> the row's vector blob, or None (no entry)."""

    __slots__ = ("changes",)

    def __init__(self) -> None:
        self.changes: dict[int, tuple[Any, dict[int, bytes | None]]] = {}

    def set(self, ix: Any, rowid: int, blob: bytes | None) -> None:
        entry = self.changes.get(id(ix))
        if entry is None:
            entry = self.changes[id(ix)] = (ix, {})
        entry[1][rowid] = blob

    def __bool__(self) -> bool:
        return bool(self.changes)


def flush(ctx: Any) -> None:
    """Apply the statement's pending changes to each index (the statement's last step)."""
    pending: PendingVectors | None = ctx.vectors
    if not pending:
        return
    ctx.vectors = None
    m = method()
    for ix, changes in pending.changes.values():
        m.apply(ctx.txn, ix, changes)


def ef_search(ctx: Any) -> int:
    """The ef of an HNSW search in this statement: PRAGMA hnsw_ef_search of the session."""
    state = ctx.engine
    ef = getattr(state, "hnsw_ef_search", None)
    return ef if type(ef) is int else DEFAULT_EF_SEARCH
