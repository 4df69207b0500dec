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

Storage layout
==============

One index is one named tree, ``b"vec:" + name.encode()``, holding the four
regions of the HNSW kernel (toondb/_hnsw.pyx documents their bytes) and two
small values of its own. Keys and values:

==============  ==============================================================
key             value
==============  ==============================================================
``meta``        64 bytes, the META table below
``header``      the kernel's 128-byte header (count, entry point, max level, ...)
``l0:%08d``     level-0 chunk i: the fixed-size records of internal ids
                ``[i << chunk_shift, (i + 1) << chunk_shift)``, the last chunk
                cut at count (``count | neighbours | vector | label`` each)
``upper``       the upper-links arena (levels >= 1)
``nodes``       the node table: count x u64 (level << 56 | arena offset)
``labels``      the live ids: n x u64 ascending, then n x u32 their internal ids
                (n = len // 12; searched with numpy.searchsorted on the mapping)
==============  ==============================================================

META (little-endian)::

    off  size  field
      0     8  magic b"tdbvec\\x00\\x01"
      8     4  format version (1)
     12     4  dimension
     16     4  metric: 0 l2, 1 ip, 2 cosine (the kernel's codes)
     20     4  m
     24     4  ef_construction
     28     4  chunk_shift: records per level-0 chunk = 1 << chunk_shift
     32     8  seed of the level generator (its state continues in the header)
     40     8  incarnation: random, drawn when the index is created
     48     8  version: + 1 by every write of the index (add, upsert, delete)
     56     8  live vectors (= n of ``labels``)

Values larger than about a quarter page are overflow extents (contiguous pages,
the value 24 bytes into its first page, so 8-byte aligned): the kernel's
``HnswGraph.view`` points straight into the mapping, and opening an index
costs one lookup per chunk whatever its size. A chunk is about 128-256 KiB
(``_chunk_shift``), so a write rewrites only the chunks it touched.

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

import math
import os
import struct
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Union

import numpy as np
import numpy.typing as npt

from toondb.errors import (
    CorruptionError,
    ReadOnlyError,
    TransactionClosedError,
    VectorIndexError,
)
from toondb.storage import _btree
from toondb.vector._hnsw import HnswGraph, Neighbor, neighbors

__all__ = [
    "VectorIndex",
    "Neighbor",
    "IndexInfo",
    "METRICS",
    "MAX_ID",
]

METRICS = ("cosine", "l2", "ip")
_METRIC_CODE = {"l2": 0, "ip": 1, "cosine": 2}
_METRIC_NAME = {v: k for k, v in _METRIC_CODE.items()}
MAX_ID = 2**63 - 1  # ids are 0 .. 2**63-1 (int64 in arrays; -1 pads missing results)
TREE_PREFIX = b"vec:"
FORMAT_VERSION = 1
DEFAULT_SEED = 100  # hnswlib's default random_seed: a 1-thread build draws its levels

MAGIC = b"tdbvec\x00\x01"
_META = struct.Struct("<8sIIIIIIQQQQ")
assert _META.size == 64
K_META, K_HEADER, K_UPPER, K_NODES, K_LABELS = b"meta", b"header", b"upper", b"nodes", b"labels"
_HDR_COUNT = struct.Struct("<Q")  # header offset 32: count
_HDR_SHIFT = struct.Struct("<I")  # header offset 28: chunk_shift

IdsLike = Union[Sequence[int], npt.ArrayLike, Iterable[int]]
Filter = Union[None, Iterable[int], npt.ArrayLike, Callable[[int], bool]]


def _chunk_key(i: int) -> bytes:
    return b"l0:%08d" % i


def _chunk_shift(dim: int, m: int) -> int:
    """Records per level-0 chunk (log2): chunks of 128-256 KiB, between 16 and 65536
    records. Small enough that a write rewrites few of them, large enough that a
    big index is a few thousand values."""
    m0 = 2 * m
    vec_off = (4 + 4 * m0 + 7) & ~7
    record = ((vec_off + 4 * dim + 7) & ~7) + 8
    return max(4, min(16, int(math.floor(math.log2(max(1, (256 << 10) // record))))))


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


# ---------------------------------------------------------------------------------------
# meta
# ---------------------------------------------------------------------------------------


class _Meta:
    __slots__ = (
        "dim",
        "metric",
        "m",
        "ef_construction",
        "chunk_shift",
        "seed",
        "incarnation",
        "version",
        "live",
    )

    def __init__(
        self,
        dim: int,
        metric: int,
        m: int,
        ef_construction: int,
        chunk_shift: int,
        seed: int,
        incarnation: int,
        version: int,
        live: int,
    ) -> None:
        self.dim = dim
        self.metric = metric
        self.m = m
        self.ef_construction = ef_construction
        self.chunk_shift = chunk_shift
        self.seed = seed
        self.incarnation = incarnation
        self.version = version
        self.live = live

    @classmethod
    def new(cls, dim: int, metric: str, m: int, ef_construction: int, seed: int) -> _Meta:
        inc = int.from_bytes(os.urandom(8), "little")
        # version 0: the first write_graph (the empty graph, at creation) makes it 1
        return cls(
            dim, _METRIC_CODE[metric], m, ef_construction, _chunk_shift(dim, m), seed, inc, 0, 0
        )

    @classmethod
    def unpack(cls, raw: bytes | None, name: str) -> _Meta:
        if raw is None or len(raw) != _META.size:
            raise CorruptionError(f"vector index {name!r}: its meta value is missing or damaged")
        magic, fmt, dim, metric, m, efc, shift, seed, inc, version, live = _META.unpack(raw)
        if magic != MAGIC:
            raise CorruptionError(f"vector index {name!r}: bad meta magic (not a vector index)")
        if fmt != FORMAT_VERSION:
            raise VectorIndexError(
                f"vector index {name!r} has format version {fmt}; this toondb reads version "
                f"{FORMAT_VERSION} (upgrade toondb, or rebuild the index)"
            )
        if metric not in _METRIC_NAME:
            raise CorruptionError(f"vector index {name!r}: unknown metric code {metric}")
        return cls(dim, metric, m, efc, shift, seed, inc, version, live)

    def pack(self) -> bytes:
        return _META.pack(
            MAGIC,
            FORMAT_VERSION,
            self.dim,
            self.metric,
            self.m,
            self.ef_construction,
            self.chunk_shift,
            self.seed,
            self.incarnation,
            self.version,
            self.live,
        )

    def bumped(self, live: int) -> _Meta:
        return _Meta(
            self.dim,
            self.metric,
            self.m,
            self.ef_construction,
            self.chunk_shift,
            self.seed,
            self.incarnation,
            self.version + 1,
            live,
        )

    @property
    def metric_name(self) -> str:
        return _METRIC_NAME[self.metric]

    @property
    def key(self) -> tuple[int, int]:
        return (self.incarnation, self.version)


# ---------------------------------------------------------------------------------------
# argument checks (each raises before anything is written)
# ---------------------------------------------------------------------------------------


def _tree_name(name: str) -> bytes:
    if not isinstance(name, str):
        raise TypeError(f"a vector index name must be a str, not {type(name).__name__}")
    if not name or "\x00" in name or len(name.encode("utf-8")) > 200:
        raise ValueError(
            f"invalid vector index name {name!r}: 1 to 200 bytes of UTF-8, without NUL"
        )
    return TREE_PREFIX + name.encode("utf-8")


def check_metric(metric: str) -> str:
    if not isinstance(metric, str) or metric not in _METRIC_CODE:
        raise ValueError(
            f"unknown metric {metric!r}: use 'cosine' (1 - cosine similarity), 'l2' (squared "
            "Euclidean distance) or 'ip' (1 - inner product)"
        )
    return metric


def check_params(dimension: int, m: int, ef_construction: int) -> None:
    for what, v, lo, hi in (
        ("dimension", dimension, 1, 65536),
        ("m", m, 2, 4096),
        ("ef_construction", ef_construction, 1, 1 << 20),
    ):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
            raise TypeError(f"{what} must be an integer, not {type(v).__name__}")
        if not lo <= v <= hi:
            raise ValueError(f"{what} must be in {lo}..{hi}, got {v}")


def check_search(k: int, ef_search: int) -> None:
    for what, v in (("k", k), ("ef_search", ef_search)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
            raise TypeError(f"{what} must be an integer, not {type(v).__name__}")
        if v < 1:
            raise ValueError(f"{what} must be >= 1, got {v}")


def as_ids(ids: Any, what: str = "ids") -> np.ndarray:
    """ids as a 1-D uint64 array; each must be an integer in 0 .. 2**63-1."""
    if not isinstance(ids, (np.ndarray, list, tuple, range, str, bytes)) and isinstance(
        ids, Iterable
    ):
        ids = list(ids)  # a set, a dict's keys, a generator
    try:
        a = np.asarray(ids)
    except (OverflowError, ValueError) as e:
        raise ValueError(f"{what} must be integers in 0..2**63-1 ({e})") from None
    if a.ndim == 0:
        a = a.reshape(1)
    if a.ndim != 1:
        raise ValueError(f"{what} must be a 1-D sequence of integers, got shape {a.shape}")
    if a.size == 0:
        return np.empty(0, np.uint64)
    if a.dtype == np.bool_ or a.dtype.kind not in "iu":
        items = a.tolist() if a.dtype.kind == "O" else ids if isinstance(ids, (list, tuple)) else []
        if (
            a.dtype.kind in "fO"
            and items
            and all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in items)
        ):
            # Python ints beyond int64, which NumPy made objects or floats
            raise ValueError(f"{what} must be integers in 0..2**63-1")
        raise TypeError(f"{what} must be integers, got dtype {a.dtype}")
    if a.dtype.kind == "i" and int(a.min()) < 0:
        raise ValueError(f"{what} must be >= 0, got {int(a.min())}")
    if a.dtype.kind == "u" and int(a.max()) > MAX_ID:
        raise ValueError(f"{what} must be <= 2**63-1, got {int(a.max())}")
    return np.ascontiguousarray(a, dtype=np.uint64)


def as_vectors(vectors: Any, dim: int | None, what: str = "vectors", ndim: int = 2) -> np.ndarray:
    """vectors as a C-contiguous float32 array of ndim dimensions (the last one dim):
    real dtypes are converted; NaN, infinity, and values too large for float32 raise."""
    a = vectors if isinstance(vectors, np.ndarray) else np.asarray(vectors)
    if a.dtype != np.float32:
        if a.dtype == np.bool_ or a.dtype.kind not in "fiu":
            raise TypeError(f"{what} must be real numbers (float32 preferred), got dtype {a.dtype}")
        with np.errstate(over="ignore", invalid="ignore"):
            a = a.astype(np.float32)
    if a.ndim != ndim:
        shape = f"({dim or 'dimension'},)" if ndim == 1 else f"(n, {dim or 'dimension'})"
        raise ValueError(f"{what} must be a {ndim}-D array {shape}, got shape {a.shape}")
    if dim is not None and a.shape[-1] != dim:
        raise VectorIndexError(
            f"{what}: dimension {a.shape[-1]}, but the index holds {dim}-dimensional vectors"
        )
    a = np.ascontiguousarray(a)
    if a.size and not np.isfinite(a).all():
        raise ValueError(f"{what} contain NaN or infinity (or values too large for float32)")
    return a


def _unique_or_raise(labels: np.ndarray) -> None:
    if labels.size > 1:
        s = np.sort(labels)
        dup = s[1:][s[1:] == s[:-1]]
        if dup.size:
            raise ValueError(f"duplicate ids in one batch: {int(dup[0])}")


def _db_of_txn(txn: Any) -> Any:
    """The Database a transaction belongs to (for pinning the mapping)."""
    return txn.database


def _stamp_reader(db: Any) -> Callable[[], Any]:
    """A function returning the database's commit stamp: the newest committed
    transaction id, which any commit in any process changes."""
    return db._commit_stamp


def _threads(threads: int | None) -> int:
    if threads is None:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except (AttributeError, OSError):  # pragma: no cover - not Linux
            return max(1, os.cpu_count() or 1)
    if not isinstance(threads, (int, np.integer)) or isinstance(threads, bool) or threads < 1:
        raise ValueError(
            f"threads must be an integer >= 1 (or None for every core), got {threads!r}"
        )
    return int(threads)


# ---------------------------------------------------------------------------------------
# a state of one index: the graph, the label table, the meta
# ---------------------------------------------------------------------------------------


class _State:
    """One readable state of an index. A view state holds zero-copy views of one
    transaction's values (valid while `holder`, that transaction, is open); an owned
    state holds a mutable copy (a write transaction's working graph)."""

    __slots__ = ("meta", "graph", "labels", "lids", "holder", "stamp", "owned", "name")

    def __init__(
        self,
        name: str,
        meta: _Meta,
        graph: HnswGraph,
        labels: np.ndarray,
        lids: np.ndarray,
        holder: Any = None,
        stamp: Any = None,
        owned: bool = False,
    ) -> None:
        self.name = name
        self.meta = meta
        self.graph = graph
        self.labels = labels
        self.lids = lids
        self.holder = holder
        self.stamp = stamp
        self.owned = owned

    def find(self, labels: np.ndarray) -> np.ndarray:
        """Internal ids of labels (int64), -1 where a label is not live."""
        L = self.labels
        if L.size == 0 or labels.size == 0:
            return np.full(labels.shape, -1, np.int64)
        pos = np.searchsorted(L, labels)
        pos_c = np.minimum(pos, L.size - 1)
        hit = L[pos_c] == labels
        out = np.where(hit, self.lids[pos_c].astype(np.int64), -1)
        if hit.any() and int(out.max()) >= self.graph.count:
            raise CorruptionError(f"vector index {self.name!r}: its id table points past the graph")
        return out

    def nbytes(self) -> int:
        return int(self.graph.nbytes) + 12 * int(self.labels.size) + _META.size


def _read_state(txn: Any, name: str, tname: bytes) -> _State:
    """The index `name` as stored in txn: views of its values (zero copy where the engine
    maps them), checked against each other."""
    try:
        tree = txn.tree(tname)
    except KeyError:
        raise VectorIndexError(f"no vector index named {name!r}") from None
    meta = _Meta.unpack(tree.get(K_META), name)
    get = tree._get_view
    header = tree.get(K_HEADER)
    if header is None or len(header) != 128:
        raise CorruptionError(f"vector index {name!r}: its header is missing or damaged")
    count = _HDR_COUNT.unpack_from(header, 32)[0]
    shift = _HDR_SHIFT.unpack_from(header, 28)[0]
    if shift != meta.chunk_shift or count >= 1 << 32:
        raise CorruptionError(f"vector index {name!r}: header and meta disagree")
    n_chunks = (count + (1 << shift) - 1) >> shift
    # the level-0 chunks are most of an index: they are mapped without the
    # checksum pass, and the kernel checks each one when a search first reaches
    # it, so opening costs the same for a thousand vectors or a million
    extents = [tree._get_extent(_chunk_key(i)) for i in range(n_chunks)]
    chunks = [x[0] if x is not None else None for x in extents]
    upper, nodes, lab = get(K_UPPER), get(K_NODES), get(K_LABELS)
    missing = [
        what for what, v in (("upper", upper), ("nodes", nodes), ("labels", lab)) if v is None
    ] + [f"chunk {i}" for i, c in enumerate(chunks) if c is None]
    if missing:
        raise CorruptionError(f"vector index {name!r}: missing {', '.join(missing[:5])}")
    checks = [
        (span, crc) if span is not None else (data, _btree._crc32c(data))
        for data, span, crc in extents
    ]
    try:
        graph = HnswGraph.view(header, chunks, upper, nodes, level0_checks=checks)
    except CorruptionError as e:
        raise CorruptionError(f"vector index {name!r}: {e}") from e
    if (
        graph.dim != meta.dim
        or graph.metric != meta.metric_name
        or graph.m != meta.m
        or graph.ef_construction != meta.ef_construction
    ):
        raise CorruptionError(f"vector index {name!r}: header and meta disagree")
    nl = len(lab) // 12
    if len(lab) != 12 * nl or nl != graph.count - graph.deleted_count or nl != meta.live:
        raise CorruptionError(f"vector index {name!r}: its id table does not match the graph")
    labels = np.frombuffer(lab, np.uint64, nl, 0)
    lids = np.frombuffer(lab, np.uint32, nl, 8 * nl)
    return _State(name, meta, graph, labels, lids)


def _empty_graph(meta: _Meta) -> HnswGraph:
    return HnswGraph(
        meta.dim,
        meta.metric_name,
        meta.m,
        meta.ef_construction,
        capacity=0,
        seed=meta.seed,
        chunk_shift=meta.chunk_shift,
    )


def write_graph(
    tree: Any, graph: HnswGraph, meta: _Meta, labels: np.ndarray, lids: np.ndarray, *, full: bool
) -> _Meta:
    """Write a graph's regions into an index tree (every chunk when full, else the dirty
    ones); returns the meta written (version + 1)."""
    regs = graph.level0_regions()
    try:
        chunks = range(len(regs)) if full else graph.dirty_chunks().tolist()
        for i in chunks:
            tree.put(_chunk_key(i), regs[i])
    finally:
        del regs
    if full or graph.upper_dirty:
        tree.put(K_UPPER, graph.upper_region())
        tree.put(K_NODES, graph.node_region())
    tree.put(K_HEADER, graph.header_bytes())
    table = np.empty(12 * labels.size, np.uint8)
    table[: 8 * labels.size] = labels.view(np.uint8)
    table[8 * labels.size :] = lids.astype(np.uint32, copy=False).view(np.uint8)
    tree.put(K_LABELS, table)
    new = meta.bumped(int(labels.size))
    tree.put(K_META, new.pack())
    graph.clear_dirty()
    return new


def _merge(labels: np.ndarray, lids: np.ndarray, new_l: np.ndarray, new_i: np.ndarray):
    """The label table with (new_l -> new_i) set (new ones inserted, present ones re-pointed)."""
    order = np.argsort(new_l, kind="stable")
    nl, ni = new_l[order], new_i[order].astype(np.uint32)
    if labels.size == 0:
        return nl.copy(), ni.copy()
    pos = np.searchsorted(labels, nl)
    pos_c = np.minimum(pos, labels.size - 1)
    hit = labels[pos_c] == nl
    labels = np.array(labels, copy=True)
    lids = np.array(lids, copy=True)
    lids[pos_c[hit]] = ni[hit]
    miss = ~hit
    if miss.any():
        labels = np.insert(labels, pos[miss], nl[miss])
        lids = np.insert(lids, pos[miss], ni[miss])
    return labels, lids


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
    ) -> list[Neighbor] | list[list[Neighbor]]:
        """The k nearest vectors to query, nearest first, as ``Neighbor(id, distance)``.

        query: one vector (dimension,) gives one list; a batch (n, dimension) gives one
        list per row, searched in parallel over `threads` (default: every core).
        ef_search: the candidate list size (>= k is used): higher is more accurate
        and slower. filter: an id collection (only those ids are returned; the search
        still finds k when k of them exist), or a predicate ``callable(id) -> bool``
        (the search over-fetches and grows until k pass or the index is exhausted).
        Fewer than k come back when the index (or the filter) holds fewer."""
        if (
            filter is None
            and type(query) is np.ndarray
            and query.ndim == 1
            and type(k) is int
            and type(ef_search) is int
        ):  # the fast path: the kernel checks the rest (k, ef >= 1, dtype, NaN)
            s = self._acquire()
            try:
                return s.graph.search_neighbors(query, k, ef_search)  # type: ignore[no-any-return]
            finally:
                self._release()
        check_search(k, ef_search)
        q = np.asarray(query) if not isinstance(query, np.ndarray) else query
        if q.ndim == 1:
            q = as_vectors(q, self.dimension, "query", 1)
            return self._search_one(q, k, ef_search, filter)
        qs = as_vectors(q, self.dimension, "queries", 2)
        if callable(filter) and not isinstance(filter, np.ndarray):
            return [self._search_one(row, k, ef_search, filter) for row in qs]
        labels, dists = self._search_batch(qs, k, ef_search, filter, threads)
        return [neighbors(lr, dr) for lr, dr in zip(labels, dists)]

    def search_arrays(
        self,
        queries: npt.ArrayLike,
        k: int = 10,
        ef_search: int = 64,
        filter: Filter = None,
        threads: int | None = None,
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
            allowed = None if filter is None else as_ids(filter, "filter")
            s = self._acquire()
            try:
                labels, dists = s.graph.search(q, k, ef_search, allowed)
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
        labels, dists = self._search_batch(qs, k, ef_search, filter, threads)
        return labels.view(np.int64), dists

    def _search_batch(
        self, qs: np.ndarray, k: int, ef: int, filter: Filter, threads: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        allowed = None if filter is None else as_ids(filter, "filter")
        t = _threads(threads)
        s = self._acquire()
        try:
            return s.graph.search_batch(qs, k, ef, threads=t, filter=allowed)  # type: ignore[no-any-return]
        finally:
            self._release()

    def _search_one(self, q: np.ndarray, k: int, ef: int, filter: Filter) -> list[Neighbor]:
        if filter is None or not callable(filter) or isinstance(filter, np.ndarray):
            allowed = None if filter is None else as_ids(filter, "filter")
            s = self._acquire()
            try:
                return s.graph.search_neighbors(q, k, ef, allowed)  # type: ignore[no-any-return]
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
                    and _Meta.unpack(tree_meta, self._name).key == old.meta.key
                ):  # type: ignore[union-attr]
                    # the index did not change: its pages are the same ones, reachable
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
        d = self._txn.__dict__.get("_vec_states")
        if d is None:
            d = self._txn.__dict__["_vec_states"] = {}
        return d  # type: ignore[no-any-return]

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
            # half of the index's values may be written: the transaction cannot commit
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
            s.labels, s.lids = _merge(
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
                tree.delete(_chunk_key(i))
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


# ---------------------------------------------------------------------------------------
# Database and Transaction methods
# ---------------------------------------------------------------------------------------


def create_in_txn(
    txn: Any,
    name: str,
    dimension: int,
    metric: str,
    m: int,
    ef_construction: int,
    *,
    exist_ok: bool = False,
    seed: int = DEFAULT_SEED,
) -> bool:
    """Create the index in txn; False when it exists (exist_ok) with the same parameters."""
    tname = _tree_name(name)
    check_metric(metric)
    check_params(dimension, m, ef_construction)
    if txn.has_tree(tname):
        if not exist_ok:
            raise VectorIndexError(f"a vector index named {name!r} already exists")
        meta = _Meta.unpack(txn.tree(tname).get(K_META), name)
        want = (dimension, metric, m, ef_construction)
        have = (meta.dim, meta.metric_name, meta.m, meta.ef_construction)
        if want != have:
            raise VectorIndexError(
                f"the vector index {name!r} exists with dimension={have[0]}, metric={have[1]!r}, "
                f"m={have[2]}, ef_construction={have[3]}; asked for dimension={want[0]}, "
                f"metric={want[1]!r}, m={want[2]}, ef_construction={want[3]}"
            )
        return False
    meta = _Meta.new(int(dimension), metric, int(m), int(ef_construction), int(seed))
    g = _empty_graph(meta)
    tree = txn.tree(tname, create=True)
    e = np.empty(0, np.uint64)
    write_graph(tree, g, meta, e, e.astype(np.uint32), full=True)
    txn.__dict__.get("_vec_states", {}).pop(tname, None)
    return True
