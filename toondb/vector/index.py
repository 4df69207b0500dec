"""Vector indexes inside a toondb database: HNSW graphs whose records live in
pages of the page file, searched in place through the mmap.

::

    with Database.open("./db") as db:
        index = db.create_vector_index("docs", dimension=768, metric="cosine")
        index.add(ids, vectors)                      # one atomic commit
        for hit in index.search(query, k=10):        # nearest first
            print(hit.id, hit.distance)
        with db.transaction() as txn:                # with key-value and SQL writes
            txn.vector_index("docs").upsert([7], [vector])
            txn.put(b"doc:7", body)

The stored form of an index (its named tree, keys, META and label table) is in
``toondb.vector.store``; the checks of arguments in ``toondb.vector.checks``; the
HNSW kernel in ``toondb.vector._hnsw``. This module holds the handles:
``VectorIndex`` and its two forms, bound to a Database (``_DbIndex``) or to a
Transaction (``_TxnIndex``).

Reading
=======

An index handle from a Database (``db.vector_index(name)``) keeps a read-only
transaction and the views of one committed state. Before each search it reads
the transaction ids of the two meta pages through a private read-only mapping
of the file's first two pages (a tenth of a microsecond): when they moved,
another commit happened (in any process) and the handle takes a new snapshot;
when the index's (incarnation, version) did not change, it keeps its graph
(the same pages, still reachable from the new snapshot) and only drops the old
snapshot, so a long-lived handle never holds old pages back. Searches pin the
database (``close()`` waits for them) and release the GIL.

Writing
=======

A write (add, upsert, delete) in a transaction copies the graph into owned
memory once (``HnswGraph.copy``: O(size), with every neighbour list checked),
applies the batch, and writes back into the transaction's tree the chunks the
kernel marked dirty, the upper arena and node table when they changed, the
header, the label table and the meta (version + 1). Later writes in the same
transaction reuse the owned graph. Commit and abort are the transaction's: the
index changes atomically with the key-value and SQL writes made beside it. A
failure while the values are being written aborts the transaction (it would
otherwise hold half an index); a failure before that (bad input, an interrupted
build) leaves the transaction as it was.

Deleted vectors (delete, and the old record of an upsert) stay in the graph
as tombstones, traversed but never returned, as in hnswlib.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from toondb.errors import ReadOnlyError, TransactionClosedError, VectorIndexError
from toondb.vector import store
from toondb.vector._hnsw import HnswGraph, IdFilter, Neighbor, neighbors
from toondb.vector.checks import (
    MAX_ID,
    METRICS,
    Filter,
    IdsLike,
    _threads,
    _unique_or_raise,
    as_ids,
    as_vectors,
    check_search,
)
from toondb.vector.store import (
    FORMAT_VERSION,
    K_META,
    _chunk_key,
    _Meta,
    _read_state,
    _State,
    _tree_name,
    write_graph,
)

__all__ = [
    "VectorIndex",
    "Neighbor",
    "IndexInfo",
    "METRICS",
    "MAX_ID",
]


# ---------------------------------------------------------------------------------------
# results and descriptions
# ---------------------------------------------------------------------------------------


# Neighbor (toondb.vector._hnsw): one search result, ``.id`` and ``.distance`` (cosine:
# 1 - cosine similarity; l2: squared Euclidean; ip: 1 - inner product); it behaves as
# the tuple (id, distance). Made in C by the search.


@dataclass(frozen=True)
class IndexInfo:
    """What an index holds and how it was built (``VectorIndex.info()``, ``bulk_info``).

    ``vectors``: live vectors; ``deleted``: tombstones still in the graph;
    ``levels``: layers of the graph (max level + 1; 0 when empty); ``bytes``:
    bytes of the index's values in the page file; ``file_bytes``: size of the
    whole page file."""

    name: str
    vectors: int
    dimension: int
    metric: str
    m: int
    ef_construction: int
    levels: int
    bytes: int
    deleted: int
    file_bytes: int
    format_version: int = FORMAT_VERSION

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _db_of_txn(txn: Any) -> Any:
    """The Database a transaction belongs to (for pinning the mapping)."""
    return txn.database


def _stamp_reader(db: Any) -> Callable[[], Any]:
    """A function returning the database's commit stamp: the newest committed
    transaction id, which any commit in any process changes."""
    stamp: Callable[[], Any] = db._commit_stamp
    return stamp


def _id_filter(s: _State, filter: Filter) -> IdFilter | None:
    """The kernel's filter of the live records whose ids are in `filter` (an id
    collection), mapped through the state's id table (no label hash is built)."""
    if filter is None:
        return None
    lids = s.find(as_ids(filter, "filter"))
    return s.graph.id_filter(ids=lids[lids >= 0])


# ---------------------------------------------------------------------------------------
# the handle
# ---------------------------------------------------------------------------------------


class VectorIndex:
    """A vector index: approximate nearest-neighbour search (HNSW) over vectors with
    integer ids, stored in a toondb page file.

    Get one from ``db.vector_index(name)`` (reads see every new commit; each write
    is its own atomic commit), from ``txn.vector_index(name)`` (reads and writes
    inside that transaction), or ``toondb.vector.bulk.open_index(path)``.
    """

    __slots__ = ("_name", "_tname", "__weakref__")

    _name: str
    _tname: bytes

    # -- subclasses provide -------------------------------------------------------------

    def _acquire(self) -> _State:  # pragma: no cover - abstract
        """The current state, with the database pinned: pair with _release()."""
        raise NotImplementedError

    def _release(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _peek_state(self) -> _State:  # pragma: no cover - abstract
        """The current state, for reading its meta only (no pin: do not touch the
        graph or the id table through it, numpy may release the GIL)."""
        raise NotImplementedError

    def _file_bytes(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- description ------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return int(self._peek_state().meta.dim)

    @property
    def metric(self) -> str:
        return self._peek_state().meta.metric_name

    @property
    def m(self) -> int:
        return int(self._peek_state().meta.m)

    @property
    def ef_construction(self) -> int:
        return int(self._peek_state().meta.ef_construction)

    @property
    def count(self) -> int:
        """The number of (live) vectors."""
        return int(self._peek_state().meta.live)

    def __len__(self) -> int:
        return int(self._peek_state().meta.live)

    def _find(self, labels: np.ndarray) -> np.ndarray:
        s = self._acquire()
        try:
            return s.find(labels)
        finally:
            self._release()

    def __contains__(self, id: object) -> bool:
        if not isinstance(id, (int, np.integer)) or isinstance(id, bool) or not 0 <= id <= MAX_ID:
            return False
        return bool(self._find(np.array([id], np.uint64))[0] >= 0)

    def info(self) -> IndexInfo:
        s = self._peek_state()
        g = s.graph
        return IndexInfo(
            name=self._name,
            vectors=int(s.meta.live),
            dimension=int(s.meta.dim),
            metric=s.meta.metric_name,
            m=int(s.meta.m),
            ef_construction=int(s.meta.ef_construction),
            levels=int(g.max_level) + 1,
            bytes=s.nbytes(),
            deleted=int(g.deleted_count),
            file_bytes=self._file_bytes(),
        )

    def ids(self) -> np.ndarray:
        """Every live id, ascending (int64, a copy)."""
        s = self._acquire()
        try:
            return np.array(s.labels, dtype=np.int64)
        finally:
            self._release()

    def get(self, id: int) -> np.ndarray | None:
        """The stored vector of id (float32, a copy), or None. For the cosine metric
        the stored vector is the normalized one (unit length), not the one given."""
        if not isinstance(id, (int, np.integer)) or isinstance(id, bool):
            raise TypeError(f"an id is an integer, not {type(id).__name__}")
        if not 0 <= id <= MAX_ID:
            return None
        s = self._acquire()
        try:
            i = int(s.find(np.array([id], np.uint64))[0])
            return None if i < 0 else s.graph.vector(i)
        finally:
            self._release()

    def __repr__(self) -> str:
        try:
            s = self._peek_state()
            what = f"{s.meta.live} x {s.meta.dim} {s.meta.metric_name}"
        except Exception:  # noqa: BLE001 - a repr must not fail
            what = "unavailable"
        return f"<toondb VectorIndex {self._name!r} ({what})>"

    # -- search -------------------------------------------------------------------------

    def search(
        self,
        query: npt.ArrayLike,
        k: int = 10,
        ef_search: int = 64,
        filter: Filter = None,
        *,
        threads: int | None = None,
        strategy: str = "auto",
    ) -> list[Neighbor] | list[list[Neighbor]]:
        """The k nearest vectors to query, nearest first, as ``Neighbor(id, distance)``.

        query: one vector (dimension,) gives one list; a batch (n, dimension) gives one
        list per row, searched in parallel over `threads` (default: every core).
        ef_search: the candidate list size (>= k is used): higher is more accurate
        and slower. filter: an id collection (only those ids are returned, exactly
        min(k, how many of them are in the index)), or a predicate ``callable(id) ->
        bool`` (the search over-fetches and grows until k pass or the index is
        exhausted). Fewer than k come back when the index (or the filter) holds fewer.
        strategy: how a search with an id collection runs: "auto" chooses by the
        fraction of the index it allows (docs/vector.md, "Filtered search"); "exact",
        "graph" or "acorn" force one."""
        if (
            filter is None
            and type(query) is np.ndarray
            and query.ndim == 1
            and type(k) is int
            and type(ef_search) is int
        ):  # the fast path: the kernel checks the rest (k, ef >= 1, dtype, NaN)
            s = self._acquire()
            try:
                return s.graph.search_neighbors(query, k, ef_search)
            finally:
                self._release()
        check_search(k, ef_search)
        q = np.asarray(query) if not isinstance(query, np.ndarray) else query
        if q.ndim == 1:
            q = as_vectors(q, self.dimension, "query", 1)
            return self._search_one(q, k, ef_search, filter, strategy)
        qs = as_vectors(q, self.dimension, "queries", 2)
        if callable(filter) and not isinstance(filter, np.ndarray):
            return [self._search_one(row, k, ef_search, filter) for row in qs]
        labels, dists = self._search_batch(qs, k, ef_search, filter, threads, strategy)
        return [neighbors(lr, dr) for lr, dr in zip(labels, dists)]

    def search_arrays(
        self,
        queries: npt.ArrayLike,
        k: int = 10,
        ef_search: int = 64,
        filter: Filter = None,
        threads: int | None = None,
        strategy: str = "auto",
    ) -> tuple[np.ndarray, np.ndarray]:
        """search() returning NumPy arrays, for speed: ``(ids int64, distances float32)``.
        A batch (n, dimension) gives (n, k) arrays, rows padded with id -1 and distance
        inf where fewer than k were found; one query (dimension,) gives 1-D arrays of
        the results found (at most k)."""
        check_search(k, ef_search)
        q = queries if isinstance(queries, np.ndarray) else np.asarray(queries)
        if q.ndim == 1:
            q = as_vectors(q, self.dimension, "query", 1)
            if filter is not None and callable(filter) and not isinstance(filter, np.ndarray):
                res = self._search_one(q, k, ef_search, filter)
                return (
                    np.array([r.id for r in res], np.int64),
                    np.array([r.distance for r in res], np.float32),
                )
            s = self._acquire()
            try:
                labels, dists = s.graph.search(q, k, ef_search, _id_filter(s, filter), strategy)
            finally:
                self._release()
            return labels.view(np.int64), dists
        qs = as_vectors(q, self.dimension, "queries", 2)
        if filter is not None and callable(filter) and not isinstance(filter, np.ndarray):
            ids = np.full((len(qs), k), -1, np.int64)
            dists = np.full((len(qs), k), np.inf, np.float32)
            for r, row in enumerate(qs):
                res = self._search_one(row, k, ef_search, filter)
                ids[r, : len(res)] = [x.id for x in res]
                dists[r, : len(res)] = [x.distance for x in res]
            return ids, dists
        labels, dists = self._search_batch(qs, k, ef_search, filter, threads, strategy)
        return labels.view(np.int64), dists

    def _search_batch(
        self,
        qs: np.ndarray,
        k: int,
        ef: int,
        filter: Filter,
        threads: int | None,
        strategy: str = "auto",
    ) -> tuple[np.ndarray, np.ndarray]:
        t = _threads(threads)
        s = self._acquire()
        try:
            return s.graph.search_batch(
                qs, k, ef, threads=t, filter=_id_filter(s, filter), strategy=strategy
            )
        finally:
            self._release()

    def _search_one(
        self, q: np.ndarray, k: int, ef: int, filter: Filter, strategy: str = "auto"
    ) -> list[Neighbor]:
        if filter is None or not callable(filter) or isinstance(filter, np.ndarray):
            s = self._acquire()
            try:
                return s.graph.search_neighbors(q, k, ef, _id_filter(s, filter), strategy)
            finally:
                self._release()
        # a predicate: over-fetch, keep those that pass, grow until k pass or no more
        verdict: dict[int, bool] = {}
        kk = max(2 * k, 16)
        while True:
            s = self._acquire()
            try:
                labels, dists = s.graph.search(q, kk, max(ef, kk))
                live = int(s.meta.live)
            finally:
                self._release()
            out = []
            for lab, d in zip(labels.tolist(), dists.tolist()):
                ok = verdict.get(lab)
                if ok is None:
                    ok = verdict[lab] = bool(filter(lab))
                if ok:
                    out.append(Neighbor(lab, d))
                    if len(out) == k:
                        return out
            if len(labels) < kk or kk >= live:
                return out
            kk *= 4

    # -- writes -------------------------------------------------------------------------

    def add(self, ids: IdsLike, vectors: npt.ArrayLike, *, threads: int | None = None) -> int:
        """Insert vectors (n, dimension) under ids (n unique integers in 0..2**63-1;
        one id and one vector (dimension,) also work). An id already in the index
        raises VectorIndexError (use upsert). Atomic: all are added, or none.
        threads: build threads (default every core). Returns the number added."""
        raise NotImplementedError  # pragma: no cover - the subclasses implement it

    def upsert(self, ids: IdsLike, vectors: npt.ArrayLike, *, threads: int | None = None) -> int:
        """add(), replacing the vector of an id that is already in the index. Returns
        the number of vectors written."""
        raise NotImplementedError  # pragma: no cover

    def delete(self, ids: IdsLike) -> int:
        """Delete ids (absent ones are ignored); returns how many were deleted. A deleted
        id is never returned by a search; its record stays in the graph as a tombstone."""
        raise NotImplementedError  # pragma: no cover

    def rebuild(self, *, threads: int | None = None) -> int:
        """Rebuild the graph from the live vectors, dropping the tombstones that deletes
        and upserts left (``info().deleted``): the index then searches as a fresh build
        of its vectors. Atomic like every write. Returns the number of tombstones
        dropped."""
        raise NotImplementedError  # pragma: no cover


class _DbIndex(VectorIndex):
    """A handle bound to a Database: reads see every new commit, each write is its own
    immediate transaction."""

    __slots__ = ("_db", "_state", "_peek", "_lock", "_own_db")

    def __init__(self, db: Any, name: str, *, own_db: bool = False) -> None:
        self._name = name
        self._tname = _tree_name(name)
        self._db = db
        self._state: _State | None = None
        self._peek = _stamp_reader(db)
        self._lock = threading.Lock()
        self._own_db = own_db
        self._refresh()  # raises VectorIndexError when there is no such index

    def _refresh(self) -> _State:
        with self._lock:
            stamp = self._peek()  # before the snapshot: a commit in between shows next time
            old = self._state
            if old is not None and old.stamp == stamp:
                return old
            txn = self._db.begin(write=False)
            try:
                tree_meta = None
                if old is not None:
                    try:
                        tree_meta = txn.tree(self._tname).get(K_META)
                    except KeyError:
                        tree_meta = None
                if (
                    tree_meta is not None
                    and old is not None  # tree_meta is only read when there was an old state
                    and _Meta.unpack(tree_meta, self._name).key == old.meta.key
                ):
                    # the index did not change (store V4): its pages are the same ones, reachable
                    # from the new snapshot; keep the graph, hold the new snapshot
                    assert old is not None
                    s = _State(self._name, old.meta, old.graph, old.labels, old.lids, txn, stamp)
                else:
                    s = _read_state(txn, self._name, self._tname)
                    s.holder, s.stamp = txn, stamp
            except BaseException:
                txn.abort()
                self._state = None
                raise
            # the old state's snapshot is released when the last search using it returns
            self._state = s
            return s

    def _acquire(self) -> _State:
        s = self._state
        if s is None or s.stamp != self._peek():
            s = self._refresh()
        self._db._pin()
        return s

    def _release(self) -> None:
        self._db._unpin()

    def _peek_state(self) -> _State:
        s = self._state
        if self._db.closed:
            self._db._pin()  # raises ClosedError
        if s is None or s.stamp != self._peek():
            s = self._refresh()
        return s

    def _file_bytes(self) -> int:
        return os.path.getsize(self._db._data_path)

    def _write(self, op: str, *args: Any, **kw: Any) -> int:
        with self._db.transaction(immediate=True) as txn:
            h = _TxnIndex(txn, self._name)
            result: int = getattr(h, op)(*args, **kw)
        return result

    def add(self, ids: IdsLike, vectors: npt.ArrayLike, *, threads: int | None = None) -> int:
        return self._write("add", ids, vectors, threads=threads)

    def upsert(self, ids: IdsLike, vectors: npt.ArrayLike, *, threads: int | None = None) -> int:
        return self._write("upsert", ids, vectors, threads=threads)

    def delete(self, ids: IdsLike) -> int:
        return self._write("delete", ids)

    def rebuild(self, *, threads: int | None = None) -> int:
        return self._write("rebuild", threads=threads)

    @property
    def database(self) -> Any:
        """The Database this handle reads."""
        return self._db

    def close(self) -> None:
        """Drop this handle's snapshot (and close the database when the handle opened
        it: toondb.vector.bulk.open_index). Idempotent."""
        self._state = None
        if self._own_db:
            self._db.close()

    def __enter__(self) -> _DbIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _TxnIndex(VectorIndex):
    """A handle bound to a Transaction: reads see the transaction's own writes; writes
    commit or abort with it."""

    __slots__ = ("_txn", "_db")

    def __init__(self, txn: Any, name: str) -> None:
        self._name = name
        self._tname = _tree_name(name)
        self._txn = txn
        self._db = _db_of_txn(txn)
        self._load()  # raises VectorIndexError when there is no such index

    def _states(self) -> dict[bytes, _State]:
        d: dict[bytes, _State] | None = self._txn.__dict__.get("_vec_states")
        if d is None:
            d = self._txn.__dict__["_vec_states"] = {}
        return d

    def _load(self) -> _State:
        if self._txn.closed:
            raise TransactionClosedError(
                "this transaction was already committed or aborted; begin a new one"
            )
        states = self._states()
        s = states.get(self._tname)
        if s is None:
            s = states[self._tname] = _read_state(self._txn, self._name, self._tname)
        return s

    def _acquire(self) -> _State:
        s = self._load()
        self._db._pin()
        return s

    def _release(self) -> None:
        self._db._unpin()

    def _peek_state(self) -> _State:
        return self._load()

    def _file_bytes(self) -> int:
        return os.path.getsize(self._db._data_path)

    def _owned(self, extra: int) -> _State:
        """This transaction's working copy of the graph (made on the first write)."""
        s = self._load()
        if self._txn.read_only:
            raise ReadOnlyError(
                "this is a read-only transaction; begin one with write=True to write"
            )
        if not s.owned:
            self._db._pin()
            try:
                g = s.graph.copy(s.graph.count + extra)
            finally:
                self._db._unpin()
            s = _State(
                self._name,
                s.meta,
                g,
                np.array(s.labels, copy=True),
                np.array(s.lids, copy=True),
                owned=True,
            )
            self._states()[self._tname] = s
        return s

    def _discard(self) -> None:
        """Forget the working copy (after a failed change): the tree still holds the
        state written by the last successful change."""
        self._states().pop(self._tname, None)

    def _store(self, s: _State) -> None:
        try:
            tree = self._txn.tree(self._tname)
            s.meta = write_graph(tree, s.graph, s.meta, s.labels, s.lids, full=False)
        except BaseException:
            # half of the index's values may be written: the transaction cannot commit (store V5)
            self._discard()
            if not self._txn.closed:
                self._txn.abort()
            raise

    def _batch(self, ids: IdsLike, vectors: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        s = self._load()
        vecs = np.asarray(vectors) if not isinstance(vectors, np.ndarray) else vectors
        labels = as_ids(ids)
        if vecs.ndim == 1 and labels.size == 1:
            vecs = vecs.reshape(1, -1)
        vecs = as_vectors(vecs, s.meta.dim, "vectors", 2)
        if labels.size != len(vecs):
            raise ValueError(f"{len(vecs)} vectors but {labels.size} ids")
        _unique_or_raise(labels)
        return labels, vecs

    def add(self, ids: IdsLike, vectors: npt.ArrayLike, *, threads: int | None = None) -> int:
        labels, vecs = self._batch(ids, vectors)
        present = self._find(labels)
        if (present >= 0).any():
            dup = int(labels[np.flatnonzero(present >= 0)[0]])
            raise VectorIndexError(
                f"id {dup} is already in the vector index {self._name!r} (use upsert() to "
                "replace its vector)"
            )
        return self._insert(labels, vecs, threads, replace=False)

    def upsert(self, ids: IdsLike, vectors: npt.ArrayLike, *, threads: int | None = None) -> int:
        labels, vecs = self._batch(ids, vectors)
        return self._insert(labels, vecs, threads, replace=True)

    def _insert(
        self, labels: np.ndarray, vecs: np.ndarray, threads: int | None, *, replace: bool
    ) -> int:
        """Add the batch to the working graph (marking the ids' old records deleted
        first when replacing) and store what changed; on failure nothing is kept."""
        t = _threads(threads)
        if labels.size == 0:
            return 0
        s = self._owned(labels.size)
        first = s.graph.count
        try:
            if replace:
                present = s.find(labels)
                if (present >= 0).any():
                    s.graph.mark_deleted(labels[present >= 0])
            s.graph.add(vecs, labels, threads=t)
            # store._merge, looked up on the module: a test interrupts a change there
            s.labels, s.lids = store._merge(
                s.labels, s.lids, labels, np.arange(first, first + labels.size)
            )
        except BaseException:
            self._discard()
            raise
        self._store(s)
        return int(labels.size)

    def delete(self, ids: IdsLike) -> int:
        labels = np.unique(as_ids(ids))
        present = labels[self._find(labels) >= 0]
        if present.size == 0:
            if self._txn.read_only:
                raise ReadOnlyError(
                    "this is a read-only transaction; begin one with write=True to write"
                )
            return 0
        s = self._owned(0)
        try:
            s.graph.mark_deleted(present)
            keep = ~np.isin(s.labels, present)
            s.labels, s.lids = s.labels[keep], s.lids[keep]
        except BaseException:
            self._discard()
            raise
        self._store(s)
        return int(present.size)

    def rebuild(self, *, threads: int | None = None) -> int:
        t = _threads(threads)
        s = self._load()
        if self._txn.read_only:
            raise ReadOnlyError(
                "this is a read-only transaction; begin one with write=True to write"
            )
        self._db._pin()
        try:
            labels = np.array(s.labels, dtype=np.uint64)
            vecs = s.graph.vectors(np.asarray(s.lids, dtype=np.int64))
            dropped, old_count = int(s.graph.deleted_count), int(s.graph.count)
        finally:
            self._db._unpin()
        meta = s.meta
        g = HnswGraph(
            meta.dim,
            meta.metric_name,
            meta.m,
            meta.ef_construction,
            capacity=max(1, labels.size),
            seed=meta.seed,
            chunk_shift=meta.chunk_shift,
        )
        if labels.size:
            g.add(vecs, labels, threads=t)
        lids = np.arange(labels.size, dtype=np.uint32)  # records in id order
        try:
            tree = self._txn.tree(self._tname)
            new = write_graph(tree, g, meta, labels, lids, full=True)
            per = 1 << meta.chunk_shift
            for i in range((labels.size + per - 1) // per, (old_count + per - 1) // per):
                tree.delete(_chunk_key(i))  # no chunk past the new count (store V3)
        except BaseException:
            self._discard()
            if not self._txn.closed:
                self._txn.abort()
            raise
        self._states()[self._tname] = _State(self._name, new, g, labels, lids, owned=True)
        return dropped

    @property
    def transaction(self) -> Any:
        """The Transaction this handle reads and writes in."""
        return self._txn
