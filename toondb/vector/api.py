"""The vector-index operations the public ``Database`` and ``Transaction`` offer,
as functions of a storage transaction or environment (``toondb.database`` calls them).

Indexes live in named trees of the page file (``toondb.vector.store``); a handle
from a database is shared and sees every new commit, one from a transaction reads
and writes in that transaction.
"""

from __future__ import annotations

from typing import Any

from toondb.vector.index import VectorIndex, _DbIndex, _TxnIndex
from toondb.vector.store import TREE_PREFIX, _tree_name, create_in_txn

__all__ = ["create", "index_in_txn", "index_of_db", "names", "drop"]


def create(
    txn: Any, name: str, dimension: int, metric: str, m: int, ef_construction: int, exist_ok: bool
) -> None:
    """Create the index `name` in txn (see ``Database.create_vector_index``)."""
    create_in_txn(txn, name, dimension, metric, m, ef_construction, exist_ok=exist_ok)


def index_in_txn(txn: Any, name: str) -> VectorIndex:
    """A handle on the index `name` that reads and writes in txn."""
    return _TxnIndex(txn, name)


def index_of_db(db: Any, handles: dict[str, Any], name: str) -> VectorIndex:
    """The shared handle on the index `name` of db, kept in handles (one per name)."""
    h = handles.get(name)
    if h is None:
        h = handles[name] = _DbIndex(db, name)
    else:
        h._peek_state()  # raises VectorIndexError if it was dropped since
    return h


def names(txn: Any) -> list[str]:
    """The names of the vector indexes txn sees, sorted."""
    return [
        n[len(TREE_PREFIX) :].decode("utf-8", "surrogateescape")
        for n in txn.tree_names(TREE_PREFIX)
    ]


def drop(txn: Any, name: str) -> bool:
    """Delete the index `name` and its vectors in txn; True if it existed."""
    tname = _tree_name(name)
    txn.__dict__.get("_vec_states", {}).pop(tname, None)
    return bool(txn.drop_tree(tname))
