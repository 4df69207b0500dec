"""The vector-index methods of ``Database`` and ``Transaction`` (``VectorMixin``).

The index itself is ``toondb.vector`` (NumPy and the HNSW kernel); it is
imported on the first call here, so that opening a database for key-value or
SQL work does not import NumPy.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import TYPE_CHECKING

from toondb import _btree

if TYPE_CHECKING:
    from toondb.vector import VectorIndex

__all__ = ["VectorMixin"]


@functools.cache
def _v() -> ModuleType:
    from toondb import vector

    return vector


class VectorMixin:
    """The vector-index methods of Database and Transaction."""

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
        vector = _v()
        if isinstance(self, _btree.Txn):
            vector.create_in_txn(
                self, name, dimension, metric, m, ef_construction, exist_ok=exist_ok
            )
            return vector._TxnIndex(self, name)
        with self.transaction(immediate=True) as txn:  # type: ignore[attr-defined]
            vector.create_in_txn(
                txn, name, dimension, metric, m, ef_construction, exist_ok=exist_ok
            )
        return self.vector_index(name)

    def vector_index(self, name: str) -> VectorIndex:
        """The vector index `name` (VectorIndexError if there is none). From a Database
        the handle is shared and sees every new commit; from a Transaction it reads and
        writes in that transaction."""
        if isinstance(self, _btree.Txn):
            return _v()._TxnIndex(self, name)
        handles = self.__dict__.setdefault("_vec_handles", {})
        h = handles.get(name)
        if h is None:
            h = handles[name] = _v()._DbIndex(self, name)
        else:
            h._peek_state()  # raises VectorIndexError if it was dropped since
        return h  # type: ignore[no-any-return]

    def vector_indexes(self) -> list[str]:
        """The names of the vector indexes, sorted."""
        prefix = _v().TREE_PREFIX
        if isinstance(self, _btree.Txn):
            names = self.tree_names(prefix)
        else:
            txn = self.begin(write=False)  # type: ignore[attr-defined]
            try:
                names = txn.tree_names(prefix)
            finally:
                txn.abort()
        return [n[len(prefix) :].decode("utf-8", "surrogateescape") for n in names]

    def drop_vector_index(self, name: str) -> bool:
        """Delete the vector index `name` and its vectors; True if it existed."""
        tname = _v()._tree_name(name)
        if isinstance(self, _btree.Txn):
            self.__dict__.get("_vec_states", {}).pop(tname, None)
            return bool(self.drop_tree(tname))
        with self.transaction(immediate=True) as txn:  # type: ignore[attr-defined]
            return bool(txn.drop_tree(tname))
