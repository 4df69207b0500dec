"""The stored form of a vector index: one named tree of the page file, its keys,
the META value, the label table, and reading or writing a whole state of it.

One index is one named tree, ``b"vec:" + name.encode()``, holding the four
regions of the HNSW kernel (toondb/vector/_layout.pxi documents their bytes) and
two small values of its own. Keys and values:

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

Invariants (cited where they are kept as "(V<n>)"):

V1  meta and header agree: dimension, metric, m, ef_construction and
    chunk_shift are the same in both; count < 2**32.
V2  the label table holds exactly the live records: n = meta.live = count -
    deleted_count; its ids ascend, each once, and each internal id is < count.
V3  the chunks ``l0:%08d`` exist for i < ceil(count / 2**chunk_shift), and no
    others (a rebuild deletes those past its new count).
V4  (incarnation, version) names one state: every write stores version + 1,
    and a new index draws a random incarnation, so a handle whose state has
    the same key still holds the current graph.
V5  a state is written whole, in one transaction: meta last, after the chunks,
    arena, node table, header and label table it describes.
"""

from __future__ import annotations

import math
import os
import struct
from typing import Any

import numpy as np

from toondb.errors import CorruptionError, VectorIndexError
from toondb.storage import _btree
from toondb.vector._hnsw import HnswGraph
from toondb.vector.checks import check_metric, check_params

__all__ = ["TREE_PREFIX", "FORMAT_VERSION", "DEFAULT_SEED", "write_graph", "create_in_txn"]

_METRIC_CODE = {"l2": 0, "ip": 1, "cosine": 2}
_METRIC_NAME = {v: k for k, v in _METRIC_CODE.items()}
TREE_PREFIX = b"vec:"
FORMAT_VERSION = 1
DEFAULT_SEED = 100  # hnswlib's default random_seed: a 1-thread build draws its levels

MAGIC = b"tdbvec\x00\x01"
_META = struct.Struct("<8sIIIIIIQQQQ")
assert _META.size == 64
K_META, K_HEADER, K_UPPER, K_NODES, K_LABELS = b"meta", b"header", b"upper", b"nodes", b"labels"
_HDR_COUNT = struct.Struct("<Q")  # header offset 32: count
_HDR_SHIFT = struct.Struct("<I")  # header offset 28: chunk_shift


def _tree_name(name: str) -> bytes:
    """The tree holding the index `name` (ValueError / TypeError for a bad name)."""
    if not isinstance(name, str):
        raise TypeError(f"a vector index name must be a str, not {type(name).__name__}")
    if not name or "\x00" in name or len(name.encode("utf-8")) > 200:
        raise ValueError(
            f"invalid vector index name {name!r}: 1 to 200 bytes of UTF-8, without NUL"
        )
    return TREE_PREFIX + name.encode("utf-8")


def _chunk_key(i: int) -> bytes:
    """The key of level-0 chunk i (V3)."""
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
# meta
# ---------------------------------------------------------------------------------------


class _Meta:
    """The META value (the table above)."""

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
        inc = int.from_bytes(os.urandom(8), "little")  # (V4)
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
        """The meta of the next version (V4), holding `live` vectors."""
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
        if hit.any() and int(out.max()) >= self.graph.count:  # (V2)
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
    if shift != meta.chunk_shift or count >= 1 << 32:  # (V1)
        raise CorruptionError(f"vector index {name!r}: header and meta disagree")
    n_chunks = (count + (1 << shift) - 1) >> shift  # (V3)
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
    ):  # (V1)
        raise CorruptionError(f"vector index {name!r}: header and meta disagree")
    nl = len(lab) // 12
    if len(lab) != 12 * nl or nl != graph.count - graph.deleted_count or nl != meta.live:  # (V2)
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
    ones); returns the meta written (version + 1, V4). The meta goes last (V5)."""
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


def _merge(
    labels: np.ndarray, lids: np.ndarray, new_l: np.ndarray, new_i: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The label table with (new_l -> new_i) set (new ones inserted, present ones re-pointed),
    still ascending with each id once (V2)."""
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
# creating an index
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
