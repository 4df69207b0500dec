"""The HNSW indexes of SQL tables (``CREATE INDEX ... USING hnsw``): the implementation of
``toondb.sql.hnsw.HnswMethod`` over the vector package's stored indexes.

An index is a vector index (toondb/vector/store.py: the same keys, META and kernel
regions) in the tree the catalog names (``sql:h:<table id>.<n>``). Its labels are the
rows' rowids with the sign bit flipped, read as u64 (``rowid ^ 2**63``: the order is
kept and negative rowids fit); the rowid 2**63-1 would map to the kernel's reserved
label 2**64-1 and is refused.

Reading: in a transaction that changed the index, its working copy (``_vec_states`` of
the transaction, as ``VectorIndex`` handles keep theirs); otherwise views of the stored
state, cached per database by the index's (incarnation, version): a state with an
unchanged key is the same pages, reachable from every later snapshot (store V4), so a
query reuses the mapped graph, its label table and the chunks already verified, rather
than mapping them again for every statement.

Writing: ``apply`` marks the old records of the changed rows deleted and inserts the new
vectors in one batch, through ``_TxnIndex``'s working copy and its store. The copy is
made on a transaction's first change (O(index size)), unless the process kept the
working graph of the transaction that committed the current state: a
``toondb.Transaction`` runs its after-commit callables once it committed, and the one
registered here keeps the index's working graph under its (incarnation, version), a
key no other state has (a committed version is written by one transaction: a second
writer of it conflicts or waits). The next transaction that writes the index takes
that graph (out of the cache: one transaction at a time uses it) instead of copying
the stored one, so a stream of one-row autocommit INSERTs costs what the row changes,
not the size of the index (docs/vector.md gives the costs).
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import numpy as np

from toondb.errors import SQLError, VectorValueError
from toondb.vector import store
from toondb.vector._hnsw import HnswGraph
from toondb.vector.checks import _threads
from toondb.vector.index import _TxnIndex
from toondb.vector.store import (
    DEFAULT_SEED,
    K_META,
    _chunk_shift,
    _Meta,
    _read_state,
    _State,
    write_graph,
)

__all__ = ["HNSW", "SqlHnsw", "labels_of", "rowids_of"]

_BIAS = np.uint64(1 << 63)
_I64_MAX = (1 << 63) - 1
# a batch this large is inserted on every core (a thread pool costs more for a few rows)
PARALLEL_FROM = 256


def labels_of(rowids: Any) -> np.ndarray:
    """The kernel labels of rowids (uint64)."""
    a = np.asarray(rowids, dtype=np.int64).reshape(-1)
    if a.size and int(a.max()) == _I64_MAX:
        raise SQLError("the rowid 9223372036854775807 cannot be in an HNSW index")
    labels: np.ndarray = a.view(np.uint64) ^ _BIAS
    return labels


def rowids_of(labels: np.ndarray) -> np.ndarray:
    """The rowids of kernel labels (int64)."""
    rowids: np.ndarray = (np.asarray(labels, dtype=np.uint64) ^ _BIAS).view(np.int64)
    return rowids


class _SqlIndex(_TxnIndex):
    """_TxnIndex over an SQL index's tree: its working copy, store and discard."""

    __slots__ = ()

    def __init__(self, txn: Any, ix: Any) -> None:  # no super().__init__: another tree name
        self._name = ix.name
        self._tname = ix.tree
        self._txn = txn
        self._db = txn.database
        self._load()


class SqlHnsw:
    """toondb.sql.hnsw.HnswMethod (see the module docstring)."""

    def __init__(self) -> None:
        # database -> {tree name: the cached view _State}
        self._views: weakref.WeakKeyDictionary[Any, dict[bytes, _State]] = (
            weakref.WeakKeyDictionary()
        )
        # database -> {tree name: the committed working graph (an owned _State)}
        self._owned: weakref.WeakKeyDictionary[Any, dict[bytes, _State]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    # -- states

    def _state(self, txn: Any, ix: Any) -> _State:
        """The index as txn sees it: its working copy, or (cached) views of its pages."""
        own = txn.__dict__.get("_vec_states")
        if own is not None:
            s = own.get(ix.tree)
            if s is not None:
                return s  # type: ignore[no-any-return]
        db = txn.database
        raw = txn.tree(ix.tree).get(K_META)
        key = _Meta.unpack(raw, ix.name).key
        with self._lock:
            views = self._views.get(db)
            if views is None:
                views = self._views[db] = {}
            s = views.get(ix.tree)
        if s is not None and s.meta.key == key:
            return s
        s = _read_state(txn, ix.name, ix.tree)
        with self._lock:
            if len(views) > 64:
                views.clear()
            views[ix.tree] = s
        return s

    def _take_owned(self, txn: Any, ix: Any) -> _State | None:
        """The working graph kept from the commit of the state txn sees, taken out of
        the cache (None when there is none, or it is of another state)."""
        with self._lock:
            owned = self._owned.get(txn.database)
            s = owned.pop(ix.tree, None) if owned is not None else None
        if s is None:
            return None
        raw = txn.tree(ix.tree).get(K_META)
        return s if _Meta.unpack(raw, ix.name).key == s.meta.key else None

    def _keep_after_commit(self, txn: Any, tree: bytes) -> None:
        """Once txn commits, keep its working graph of tree (the module's docstring)."""
        hooks = txn.__dict__.setdefault("_after_commit", [])
        if tree in txn.__dict__.setdefault("_sql_hnsw_kept", set()):
            return
        txn.__dict__["_sql_hnsw_kept"].add(tree)
        db = txn.database
        states = txn.__dict__.setdefault("_vec_states", {})

        def keep(_txnid: int) -> None:
            s = states.get(tree)
            if s is not None and s.owned:
                with self._lock:
                    owned = self._owned.get(db)
                    if owned is None:
                        owned = self._owned[db] = {}
                    owned[tree] = s

        hooks.append(keep)

    # -- HnswMethod

    def build(self, txn: Any, ix: Any, rowids: Any, vectors: Any) -> None:
        labels = labels_of(rowids)
        n = labels.size
        x = np.frombuffer(vectors, dtype="<f4").reshape(n, ix.dim) if n else None
        meta = _Meta.new(ix.dim, ix.metric, ix.m, ix.ef_construction, DEFAULT_SEED)
        g = HnswGraph(
            ix.dim,
            ix.metric,
            ix.m,
            ix.ef_construction,
            capacity=max(n, 1),
            seed=DEFAULT_SEED,
            chunk_shift=_chunk_shift(ix.dim, ix.m),
        )
        if x is not None:  # n > 0
            g.add(x, labels, threads=_threads(None))
        order = np.argsort(labels, kind="stable")
        labels, lids = labels[order], order.astype(np.uint32)
        tree = txn.tree(ix.tree, create=True)
        new = write_graph(tree, g, meta, labels, lids, full=True)
        states = txn.__dict__.setdefault("_vec_states", {})
        states[ix.tree] = _State(ix.name, new, g, labels, lids, owned=True)
        self._keep_after_commit(txn, ix.tree)

    def drop(self, txn: Any, ix: Any) -> None:
        txn.__dict__.get("_vec_states", {}).pop(ix.tree, None)
        txn.drop_tree(ix.tree)

    def apply(self, txn: Any, ix: Any, changes: dict[int, bytes | None]) -> None:
        labels = labels_of(np.fromiter(changes.keys(), np.int64, len(changes)))
        blobs = list(changes.values())
        keep = np.array([b is not None for b in blobs], dtype=bool)
        new = labels[keep]
        # the working graph: this transaction's, or the one kept from the commit of the
        # state it sees, or a copy made from the (cached) views of its pages
        states = txn.__dict__.setdefault("_vec_states", {})
        if ix.tree not in states:
            states[ix.tree] = self._take_owned(txn, ix) or self._state(txn, ix)
        h = _SqlIndex(txn, ix)
        s = h._owned(int(new.size))
        try:
            present = labels[s.find(labels) >= 0]
            if present.size:
                s.graph.mark_deleted(present)
                stay = ~np.isin(s.labels, present)
                s.labels, s.lids = s.labels[stay], s.lids[stay]
            if new.size:
                x = np.frombuffer(b"".join(b for b in blobs if b is not None), dtype="<f4")
                first = s.graph.count
                threads = _threads(None) if new.size >= PARALLEL_FROM else 1
                s.graph.add(x.reshape(new.size, ix.dim), new, threads=threads)
                s.labels, s.lids = store._merge(
                    s.labels, s.lids, new, np.arange(first, first + new.size)
                )
        except BaseException:
            h._discard()
            raise
        h._store(s)
        self._keep_after_commit(txn, ix.tree)

    def live(self, txn: Any, ix: Any) -> int:
        return int(self._state(txn, ix).meta.live)

    def search(
        self, txn: Any, ix: Any, query: bytes, k: int, ef: int, allowed: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        if len(query) != 4 * ix.dim:
            raise VectorValueError(
                f"the query vector of index {ix.name} has {len(query) // 4} dimensions; "
                f"the column holds VECTOR({ix.dim})"
            )
        q = np.frombuffer(query, dtype="<f4")
        s = self._state(txn, ix)
        db = txn.database
        db._pin()
        try:
            f = None
            if allowed is not None:
                lids = s.find(np.sort(labels_of(allowed)))  # sorted: searchsorted walks in order
                f = s.graph.id_filter(ids=lids[lids >= 0])
                if len(f) == 0:
                    return np.empty(0, np.int64), np.empty(0, np.float32)
            labels, dists = s.graph.search(q, k, ef, f)
        finally:
            db._unpin()
        return rowids_of(labels), dists


HNSW = SqlHnsw()
