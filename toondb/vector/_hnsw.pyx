# cython: language_level=3
"""HNSW (Malkov & Yashunin 2018) kernel of toondb's vector index.

The graph is kept in C structures laid out so that a later phase can place it
in pages of the page file and search it in place through an mmap. Four
regions, all native little-endian:

HEADER (128 bytes, hnsw_header_t in _hnsw_kernels.h)
    off  size  field
      0   u32  magic            0x4e484454 ("TDHN")
      4   u32  version          1
      8   u32  dim
     12   u32  metric           0 l2 (squared), 1 ip (1 - dot), 2 cosine (normalized, 1 - dot)
     16   u32  m                max links per node on levels >= 1
     20   u32  m0               max links on level 0 (2 * m)
     24   u32  ef_construction
     28   u32  chunk_shift      records per level-0 chunk = 1 << chunk_shift
     32   u64  count            nodes (internal ids 0 .. count-1)
     40   u64  capacity         records allocated (owned graph; informative in a view)
     48   u32  entry_point      0xffffffff when empty
     52   i32  max_level        -1 when empty; == level of entry_point
     56   u32  record_size      bytes of one level-0 record
     60   u32  vector_offset    = align8(4 + 4*m0)
     64   u32  label_offset     = align8(vector_offset + 4*dim)
     68   u32  upper_block      = 4 + 4*m, bytes of one upper level of one node
     72   u64  level0_bytes     = count * record_size
     80   u64  upper_bytes      bytes used in the upper-links arena
     88   u64  nodes_bytes      = count * 8
     96   u64  deleted_count
    104   f64  level_mult       1 / ln(m)
    112   u64  rng_state        level generator state (to continue a build)
    120   u64  reserved

LEVEL 0: fixed-size records, internal id i at
    chunk_base[i >> chunk_shift] + (i & ((1 << chunk_shift) - 1)) * record_size
  one record:
    off                size        field
      0                u32         word: bits 0-15 level-0 neighbour count,
                                   bit 16 deleted (bits 17-23 zero),
                                   bits 24-31 the build's spinlock byte of
                                   this node (zero at rest, so in any region)
      4                m0 x u32    neighbour internal ids (count used)
      vector_offset    dim x f32   the vector (normalized for cosine)
      label_offset     u64         external id (label)
  The chunk bases may all point into one contiguous buffer (chunk i at
  i << chunk_shift records) or into separate extents; the last chunk may be
  short (only the records < count are needed).

NODE TABLE: count x u64, node i: bits 56-63 its level L, bits 0-55 the byte
  offset of its block in the upper-links arena (0 and unused when L == 0).

UPPER-LINKS ARENA: for each node with L >= 1 a block of L x upper_block bytes;
  level l (1..L) at arena + offset + (l-1) * upper_block:
      u32 count | m x u32 neighbour internal ids

The label -> internal id mapping used by add (duplicates) and mark_deleted
is an open-addressing hash table (u64 label -> u32 id, multiplicative
splitmix hash, linear probing, load <= 1/2) owned by the in-memory graph and
NOT part of the regions: a read-only view does not need it (search reads the
label from the record). Label 2**64-1 is reserved (it pads search_batch). A
store that needs labels without a hash keeps label_table() beside the regions
(toondb/vector.py). A label may name several records, all but the newest
marked deleted: add() accepts a label whose records are all deleted and points
it at the new record (an upsert is mark_deleted + add).

For a store that writes the regions back after a change (toondb/vector.py):
copy() / from_regions() make an owned, mutable graph from a view (every
neighbour list checked, since a build writes through them); an owned graph
flags each level-0 chunk that add() or mark_deleted() writes (dirty_chunks(),
upper_dirty, clear_dirty()), so only those are rewritten.

Concurrency: add() takes a write lock; search()/search_batch() a read lock,
so searches never run concurrently with a build. Inside add() the build runs
over several threads as hnswlib does: a per-node spinlock (byte 3 of the
record's word) guards the node's neighbour lists on every level (held only
while one list is read or rewritten, never two at once, so no lock order can
deadlock), a global mutex guards the entry point and max level (held for a
whole insertion that raises the max level), levels are drawn up front with
hnswlib's generator (the same levels for the same seed), and records
(vector, label, level) are written before the threads start, so a thread
that reaches a node through a fresh link always finds its data. Memory for
level 0 is one slab per growth (huge pages where Linux gives them), with the
chunk bases pointing into it.

The deleted bits are honoured when the header's deleted_count > 0 (as
hnswlib checks its num_deleted).
"""

from cpython.buffer cimport PyBUF_WRITABLE, PyBuffer_FillInfo
from libc.math cimport INFINITY, isfinite, log, sqrt
from libc.stdint cimport int32_t, int64_t, uint16_t, uint32_t, uint64_t, uintptr_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcpy, memset

import os
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np

cimport numpy as cnp

from toondb.errors import HnswCorruptionError

cnp.import_array()

__all__ = ["HnswGraph", "HnswCorruptionError", "Neighbor", "neighbors", "simd_level"]




cdef extern from "_hnsw_kernels.h" nogil:
    int hnsw_cpu_level()
    hnsw_dist_fn hnsw_kernel(int metric, int level)
    void hnsw_prefetch(const void *p)
    void hnsw_prefetch_span(const void *p, size_t bytes)
    void hnsw_normalize(const float *src, float *dst, size_t n)
    void hnsw_spin_lock(unsigned char *l)
    void hnsw_spin_unlock(unsigned char *l)
    uint64_t hnsw_fetch_add(uint64_t *p, uint64_t v)
    void hnsw_set_flag(unsigned char *p)
    int hnsw_load_flag(const int *p)
    int hnsw_heap_reserve(hnsw_heap *h, size_t cap)
    void hnsw_heap_free(hnsw_heap *h)
    int hnsw_max_push(hnsw_heap *h, float d, uint32_t id)
    void hnsw_max_pop(hnsw_heap *h)
    void hnsw_max_replace_top(hnsw_heap *h, float d, uint32_t id)
    int hnsw_min_push(hnsw_heap *h, float d, uint32_t id)
    void hnsw_min_pop(hnsw_heap *h)
    size_t hnsw_max_drain_sorted(hnsw_heap *h, hnsw_pair *out)
    void hnsw_sort_pairs(hnsw_pair *a, size_t n)
    uint64_t hnsw_load_u64(const void *p)
    void hnsw_store_u64(void *p, uint64_t v)
    uint64_t hnsw_splitmix64(uint64_t *s)
    uint64_t hnsw_minstd_seed(uint64_t seed)
    double hnsw_level_uniform(uint64_t *state)
    uint64_t hnsw_mix64(uint64_t z)
    int hnsw_sorted_contains(const uint64_t *a, size_t n, uint64_t x)
    void *hnsw_aligned_calloc(size_t n)
    void *hnsw_alloc_slab(size_t n)
    int hnsw_rwlock_init(pthread_rwlock_t *l)
    bint HNSW_UNLIKELY(bint x)
    void hnsw_flag_set(unsigned char *p)
    int hnsw_flag_get(const unsigned char *p)
    const uint64_t OFF_MASK "HNSW_OFF_MASK"


cdef enum:
    MAX_LEVEL = 255
    OK = 0
    ERR_NOMEM = -1
    ERR_CORRUPT = -2
    ERR_NONFINITE = -3
    ERR_CHECKSUM = -4

cdef extern from "_btree_support.h" nogil:
    void tdb_crc_init()
    uint32_t tdb_crc32c(uint32_t crc, const void *buf, size_t n)

tdb_crc_init()


def _raise(Py_ssize_t code, what):
    if code == ERR_NOMEM:
        raise MemoryError()
    if code == ERR_NONFINITE:
        raise ValueError(f"{what} contain NaN or infinity")
    if code == ERR_CHECKSUM:
        raise HnswCorruptionError("corrupt HNSW graph: a level-0 chunk fails its checksum "
                                  "(the file is damaged)")
    raise HnswCorruptionError("corrupt HNSW graph: a neighbour count or id is out of range")

# The best kernels this CPU runs; TOONDB_HNSW_SIMD=generic|avx2|avx512 caps the
# choice (to test the portable path on a machine with AVX-512).
cdef int _SIMD = hnsw_cpu_level()
_cap = {"generic": 0, "avx2": 1, "avx512": 2}.get(os.environ.get("TOONDB_HNSW_SIMD", ""), 2)
if _cap < _SIMD:
    _SIMD = _cap

_METRICS = {"l2": 0, "ip": 1, "cosine": 2}
_METRIC_NAMES = {0: "l2", 1: "ip", 2: "cosine"}
_SIMD_NAMES = {0: "generic", 1: "avx2", 2: "avx512"}
cdef uint64_t LABEL_NONE = 0xffffffffffffffff


def simd_level():
    """Name of the distance kernels picked at import: 'avx512', 'avx2' or 'generic'."""
    return _SIMD_NAMES[_SIMD]


def _distance(a, b, metric, level=None):
    """Testing hook: distance between two 1-D float32 vectors with the kernel
    of the given SIMD level (0 generic, 1 avx2, 2 avx512; clamped to the CPU)."""
    cdef const float[::1] x = np.ascontiguousarray(a, dtype=np.float32)
    cdef const float[::1] y = np.ascontiguousarray(b, dtype=np.float32)
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError("vectors must have the same non-zero length")
    cdef hnsw_dist_fn f = hnsw_kernel(0 if metric == "l2" else 1, _SIMD if level is None else level)
    return f(&x[0], &y[0], x.shape[0])


# ---------------------------------------------------------------------------
# Addressing

cdef inline char *rec_at(const Graph *g, uint32_t i) noexcept nogil:
    return g.chunks[i >> g.chunk_shift] + <size_t>(i & g.chunk_mask) * g.record_size

cdef inline float *vec_at(const Graph *g, uint32_t i) noexcept nogil:
    return <float *>(rec_at(g, i) + g.vec_off)

cdef inline uint64_t label_at(const Graph *g, uint32_t i) noexcept nogil:
    return hnsw_load_u64(rec_at(g, i) + g.label_off)

cdef inline int level_of(const Graph *g, uint32_t i) noexcept nogil:
    return <int>(g.nodes[i] >> 56)

cdef inline uint32_t *list_at(const Graph *g, uint32_t i, int level) noexcept nogil:
    if level == 0:
        return <uint32_t *>rec_at(g, i)
    return <uint32_t *>(g.upper + (g.nodes[i] & OFF_MASK) + <size_t>(level - 1) * g.upper_block)

# The build's per-node spinlock: byte 3 of the record's first word (zero at
# rest), in the cache line of the neighbour count it guards; it guards the
# node's lists on every level.
cdef inline unsigned char *lock_of(const Graph *g, uint32_t i) noexcept nogil:
    return <unsigned char *>rec_at(g, i) + 3

cdef int verify_chunk(const Graph *g, uint64_t c) noexcept nogil:
    """Check level-0 chunk c of a view against its extent's checksum, once."""
    if tdb_crc32c(0, g.chk_span[c], g.chk_len[c]) != g.chk_crc[c]:
        return ERR_CHECKSUM
    hnsw_flag_set(&g.chk_ok[c])
    return OK

cdef inline int ensure_chunk(const Graph *g, uint32_t i) noexcept nogil:
    """Before a search reads record i of a view: its chunk's checksum holds.
    Every record a search reads is the entry point or a neighbour it reached,
    and both pass here first."""
    cdef uint64_t c
    if g.chk_ok == NULL:
        return OK
    c = i >> g.chunk_shift
    if HNSW_UNLIKELY(not hnsw_flag_get(&g.chk_ok[c])):
        return verify_chunk(g, c)
    return OK

cdef inline bint accepted(const Graph *g, uint32_t i, const Filter *f, bint has_del) noexcept nogil:
    cdef char *r = rec_at(g, i)
    if has_del and ((<uint32_t *>r)[0] & HNSW_DELETED_BIT):
        return False
    if f != NULL and f.allowed != NULL:
        return hnsw_sorted_contains(f.allowed, f.n, hnsw_load_u64(r + g.label_off))
    return True


# ---------------------------------------------------------------------------
# Per-thread context

cdef Ctx *ctx_new(const Graph *g) noexcept nogil:
    cdef Ctx *c = <Ctx *>calloc(1, sizeof(Ctx))
    if c == NULL:
        return NULL
    cdef size_t big = g.ef_construction if g.ef_construction > g.m0 + 1 else g.m0 + 1
    c.vcap = g.capacity if g.capacity > 0 else 1
    c.visited = <uint16_t *>calloc(c.vcap, sizeof(uint16_t))
    c.tag = 0
    c.sorted = <hnsw_pair *>malloc(big * sizeof(hnsw_pair))
    c.sel = <hnsw_pair *>malloc((g.m0 + 1) * sizeof(hnsw_pair))
    c.tmp = <hnsw_pair *>malloc((g.m0 + 1) * sizeof(hnsw_pair))
    c.sel2 = <hnsw_pair *>malloc((g.m0 + 1) * sizeof(hnsw_pair))
    c.ids = <uint32_t *>malloc((g.m0 + 1) * sizeof(uint32_t))
    c.ids2 = <uint32_t *>malloc((g.m0 + 1) * sizeof(uint32_t))
    c.qbuf = <float *>hnsw_aligned_calloc(g.dim * sizeof(float))
    if (c.visited == NULL or c.sorted == NULL or c.sel == NULL or c.tmp == NULL
            or c.sel2 == NULL or c.ids == NULL or c.ids2 == NULL or c.qbuf == NULL
            or hnsw_heap_reserve(&c.top, big + 1) or hnsw_heap_reserve(&c.cand, 4 * big + 64)):
        ctx_free(c)
        return NULL
    return c

cdef void ctx_free(Ctx *c) noexcept nogil:
    if c == NULL:
        return
    free(c.visited)
    free(c.sorted)
    free(c.sel)
    free(c.tmp)
    free(c.sel2)
    free(c.ids)
    free(c.ids2)
    free(c.qbuf)
    hnsw_heap_free(&c.top)
    hnsw_heap_free(&c.cand)
    free(c)

cdef inline uint16_t next_tag(Ctx *c) noexcept nogil:
    c.tag += 1
    if c.tag == 0:  # the epoch wrapped: clear once every 65535 searches
        memset(c.visited, 0, c.vcap * sizeof(uint16_t))
        c.tag = 1
    return c.tag


# ---------------------------------------------------------------------------
# Search of one layer (Algorithm 2), used by queries (level 0) and by the build
# (any level, with locks). Leaves at most ef results in c.top (a max-heap).

cdef int search_layer(const Graph *g, Ctx *c, const float *q, uint32_t ep, int level,
                      size_t ef, const Filter *f, bint has_del, bint build) noexcept nogil:
    cdef uint16_t tag = next_tag(c)
    cdef uint16_t *vis = c.visited
    cdef hnsw_heap *top = &c.top
    cdef hnsw_heap *cand = &c.cand
    cdef hnsw_dist_fn dist = g.dist
    cdef size_t dim = g.dim
    cdef size_t vbytes = dim * sizeof(float)
    cdef uint32_t count = <uint32_t>g.count
    cdef uint32_t maxm = g.m0 if level == 0 else g.m
    cdef bint filtering = build or has_del or (f != NULL and f.allowed != NULL)
    cdef bint lock = build
    cdef float d, lb
    cdef uint32_t cur, cnt, j, m, nid
    cdef uint32_t *lst
    cdef uint32_t *ids
    cdef uint32_t *ids2 = c.ids2
    top.n = 0
    cand.n = 0
    d = dist(q, vec_at(g, ep), dim)
    vis[ep] = tag
    if accepted(g, ep, f, has_del):
        hnsw_max_push(top, d, ep)
        lb = d
    else:
        lb = INFINITY
    if hnsw_min_push(cand, d, ep):
        return ERR_NOMEM
    while cand.n:
        if cand.a[0].d > lb and (top.n >= ef or not filtering):
            break
        cur = cand.a[0].id
        hnsw_min_pop(cand)
        lst = list_at(g, cur, level)
        if lock:
            hnsw_spin_lock(lock_of(g, cur))
            cnt = lst[0] & HNSW_COUNT_MASK
            if cnt > maxm:
                cnt = maxm + 1  # reported below, after the unlock
            else:
                memcpy(c.ids, lst + 1, cnt * sizeof(uint32_t))
            hnsw_spin_unlock(lock_of(g, cur))
            ids = c.ids
        else:
            cnt = lst[0] & HNSW_COUNT_MASK
            ids = lst + 1
        if HNSW_UNLIKELY(cnt > maxm):
            return ERR_CORRUPT
        # pass 1: keep the unvisited neighbours, start fetching their vectors
        m = 0
        for j in range(cnt):
            nid = ids[j]
            if HNSW_UNLIKELY(nid >= count):
                return ERR_CORRUPT
            if vis[nid] != tag:
                if HNSW_UNLIKELY(ensure_chunk(g, nid) != OK):
                    return ERR_CHECKSUM
                vis[nid] = tag
                ids2[m] = nid
                m += 1
                hnsw_prefetch(vec_at(g, nid))
        # pass 2: distances
        for j in range(m):
            nid = ids2[j]
            if j + 1 < m:
                hnsw_prefetch_span(vec_at(g, ids2[j + 1]), vbytes)
            d = dist(q, vec_at(g, nid), dim)
            if top.n < ef or d < lb:
                if hnsw_min_push(cand, d, nid):
                    return ERR_NOMEM
                hnsw_prefetch(rec_at(g, cand.a[0].id))
                if accepted(g, nid, f, has_del):
                    if top.n < ef:
                        hnsw_max_push(top, d, nid)
                    else:
                        hnsw_max_replace_top(top, d, nid)
                if top.n:
                    lb = top.a[0].d
    return OK


# Greedy descent through the levels above `stop` (no locks: queries only).
cdef int descend(const Graph *g, const float *q, uint32_t *ep_io, int top, int stop,
                 bint lock) noexcept nogil:
    cdef uint32_t cur = ep_io[0]
    cdef uint32_t count = <uint32_t>g.count
    cdef float curd = g.dist(q, vec_at(g, cur), g.dim)
    cdef float d
    cdef int level
    cdef bint changed
    cdef uint32_t cnt, j, nid
    cdef uint32_t *lst
    cdef uint32_t buf[4096]
    level = top
    while level > stop:
        changed = True
        while changed:
            changed = False
            lst = list_at(g, cur, level)
            if lock:
                hnsw_spin_lock(lock_of(g, cur))
            cnt = lst[0] & HNSW_COUNT_MASK
            if cnt <= g.m:
                memcpy(buf, lst + 1, cnt * sizeof(uint32_t))
            if lock:
                hnsw_spin_unlock(lock_of(g, cur))
            if HNSW_UNLIKELY(cnt > g.m):
                return ERR_CORRUPT
            for j in range(cnt):
                nid = buf[j]
                if HNSW_UNLIKELY(nid >= count or level_of(g, nid) < level):
                    return ERR_CORRUPT
                if HNSW_UNLIKELY(ensure_chunk(g, nid) != OK):
                    return ERR_CHECKSUM
                d = g.dist(q, vec_at(g, nid), g.dim)
                if d < curd:
                    curd = d
                    cur = nid
                    changed = True
        level -= 1
    ep_io[0] = cur
    return OK


# ---------------------------------------------------------------------------
# Build (Algorithms 1 and 4)

# The heuristic of Algorithm 4 (hnswlib's getNeighborsByHeuristic2): walk the
# candidates by increasing distance to the base, keep one if it is closer to
# the base than to every one already kept. `cand` is sorted ascending.
cdef size_t select_neighbors(const Graph *g, const hnsw_pair *cand, size_t n, size_t mx,
                             hnsw_pair *out) noexcept nogil:
    cdef size_t i, s, r = 0
    cdef bint good
    cdef const float *v
    if n < mx:
        memcpy(out, cand, n * sizeof(hnsw_pair))
        return n
    for i in range(n):
        if r >= mx:
            break
        v = vec_at(g, cand[i].id)
        good = True
        for s in range(r):
            if g.dist(vec_at(g, out[s].id), v, g.dim) < cand[i].d:
                good = False
                break
        if good:
            out[r] = cand[i]
            r += 1
    return r


# Link `cur` into the list of `n` at `level`; prune with the heuristic if full.
cdef int connect(Graph *g, Ctx *c, uint32_t n, uint32_t cur, float d_nc, int level) noexcept nogil:
    cdef uint32_t maxm = g.m0 if level == 0 else g.m
    cdef uint32_t *lst = list_at(g, n, level)
    cdef uint32_t w, cnt, j, e
    cdef size_t r
    cdef const float *vn
    if level == 0 and g.dirty != NULL:
        hnsw_set_flag(g.dirty + (n >> g.chunk_shift))
    hnsw_spin_lock(lock_of(g, n))
    w = lst[0]
    cnt = w & HNSW_COUNT_MASK
    if cnt < maxm:
        lst[1 + cnt] = cur
        (<uint16_t *>lst)[0] = <uint16_t>(cnt + 1)
    else:
        vn = vec_at(g, n)
        c.tmp[0].d = d_nc
        c.tmp[0].id = cur
        for j in range(cnt):
            hnsw_prefetch(vec_at(g, lst[1 + j]))
        for j in range(cnt):
            e = lst[1 + j]
            if j + 1 < cnt:
                hnsw_prefetch_span(vec_at(g, lst[2 + j]), g.dim * sizeof(float))
            c.tmp[1 + j].d = g.dist(vn, vec_at(g, e), g.dim)
            c.tmp[1 + j].id = e
        hnsw_sort_pairs(c.tmp, cnt + 1)
        r = select_neighbors(g, c.tmp, cnt + 1, maxm, c.sel2)
        for j in range(r):  # farthest first, as hnswlib stores them
            lst[1 + j] = c.sel2[r - 1 - j].id
        (<uint16_t *>lst)[0] = <uint16_t>r
    hnsw_spin_unlock(lock_of(g, n))
    return OK


cdef int insert(Graph *g, Ctx *c, pthread_mutex_t *glock, uint32_t cur) noexcept nogil:
    cdef int level = level_of(g, cur)
    cdef const float *q = vec_at(g, cur)
    cdef int maxl, l, rc
    cdef uint32_t ep, ep0
    cdef bint hold, ep_deleted
    cdef size_t n, r, j, cap
    cdef float d0
    cdef uint32_t *lst
    pthread_mutex_lock(glock)
    maxl = g.max_level
    ep = g.entry
    hold = level > maxl
    if not hold:
        pthread_mutex_unlock(glock)
    if ep == HNSW_NO_ENTRY:
        g.entry = cur
        g.max_level = level
        pthread_mutex_unlock(glock)
        return OK
    rc = OK
    # A deleted entry point is never a search result, so (as hnswlib's addPoint
    # does) it is offered as a candidate on every level: without it a node added
    # after the entry point's deletion could get no links and be unreachable.
    ep0 = ep
    ep_deleted = g.deleted > 0 and ((<uint32_t *>rec_at(g, ep0))[0] & HNSW_DELETED_BIT) != 0
    d0 = g.dist(q, vec_at(g, ep0), g.dim) if ep_deleted else 0
    cap = g.ef_construction if g.ef_construction > g.m0 + 1 else g.m0 + 1
    if level < maxl:
        rc = descend(g, q, &ep, maxl, level, True)
    l = level if level < maxl else maxl
    while rc == OK and l >= 0:
        rc = search_layer(g, c, q, ep, l, g.ef_construction, NULL, g.deleted > 0, True)
        if rc != OK:
            break
        n = hnsw_max_drain_sorted(&c.top, c.sorted)
        if ep_deleted and (n < g.ef_construction or d0 < c.sorted[n - 1].d):
            if n == g.ef_construction or n == cap:
                n -= 1  # the farthest makes room, as hnswlib pops it
            j = n
            while j > 0 and c.sorted[j - 1].d > d0:
                c.sorted[j] = c.sorted[j - 1]
                j -= 1
            c.sorted[j].d = d0
            c.sorted[j].id = ep0
            n += 1
        if n == 0:  # only deleted nodes reached (cannot happen with the above)
            l -= 1
            continue
        r = select_neighbors(g, c.sorted, n, g.m, c.sel)
        lst = list_at(g, cur, l)
        hnsw_spin_lock(lock_of(g, cur))
        for j in range(r):  # farthest first, as hnswlib stores them
            lst[1 + j] = c.sel[r - 1 - j].id
        (<uint16_t *>lst)[0] = <uint16_t>r
        hnsw_spin_unlock(lock_of(g, cur))
        for j in range(r):
            connect(g, c, c.sel[j].id, cur, c.sel[j].d, l)
        ep = c.sel[0].id
        l -= 1
    if hold:
        g.entry = cur
        g.max_level = level
        pthread_mutex_unlock(glock)
    return rc


# ---------------------------------------------------------------------------
# Query (searchKnn): greedy descent, then ef-search on level 0. Results, at
# most k, ascending, into out_labels / out_dists; returns their number or an
# error code (< 0).

cdef Py_ssize_t knn(const Graph *g, Ctx *c, const float *query, size_t k, size_t ef,
                    const Filter *f, uint64_t *out_labels, float *out_dists) noexcept nogil:
    cdef const float *q = query
    cdef size_t i, n
    cdef double s
    cdef uint32_t ep
    cdef int rc
    for i in range(g.dim):
        if not isfinite(query[i]):
            return ERR_NONFINITE
    if g.count == 0 or g.entry == HNSW_NO_ENTRY:
        return 0
    if g.metric == 2:
        hnsw_normalize(query, c.qbuf, g.dim)
        q = c.qbuf
    ep = g.entry
    if ensure_chunk(g, ep) != OK:
        return ERR_CHECKSUM
    rc = descend(g, q, &ep, g.max_level, 0, False)
    if rc != OK:
        return rc
    if ef < k:
        ef = k
    rc = search_layer(g, c, q, ep, 0, ef, f, g.deleted > 0, False)
    if rc != OK:
        return rc
    while c.top.n > k:
        hnsw_max_pop(&c.top)
    n = c.top.n
    while c.top.n:
        i = c.top.n - 1
        out_labels[i] = label_at(g, c.top.a[0].id)
        out_dists[i] = c.top.a[0].d
        hnsw_max_pop(&c.top)
    return <Py_ssize_t>n


# ---------------------------------------------------------------------------
# label -> id hash (owned graphs)

cdef inline uint64_t hslot(const Graph *g, uint64_t label) noexcept nogil:
    return hnsw_mix64(label) & (g.hcap - 1)

cdef Py_ssize_t hfind(const Graph *g, uint64_t label) noexcept nogil:
    if g.hcap == 0:
        return -1
    cdef uint64_t s = hslot(g, label)
    while g.hkeys[s] != LABEL_NONE:
        if g.hkeys[s] == label:
            return g.hvals[s]
        s = (s + 1) & (g.hcap - 1)
    return -1

cdef void hput(Graph *g, uint64_t label, uint32_t v) noexcept nogil:
    cdef uint64_t s = hslot(g, label)
    while g.hkeys[s] != LABEL_NONE and g.hkeys[s] != label:
        s = (s + 1) & (g.hcap - 1)
    g.hkeys[s] = label
    g.hvals[s] = v

cdef int hreserve(Graph *g, uint64_t n) noexcept nogil:
    cdef uint64_t cap = 16, i, old_cap = g.hcap
    cdef uint64_t *old_k = g.hkeys
    cdef uint32_t *old_v = g.hvals
    while cap < 2 * n:
        cap *= 2
    if cap <= g.hcap:
        return OK
    g.hkeys = <uint64_t *>malloc(cap * sizeof(uint64_t))
    g.hvals = <uint32_t *>malloc(cap * sizeof(uint32_t))
    if g.hkeys == NULL or g.hvals == NULL:
        free(g.hkeys)
        free(g.hvals)
        g.hkeys = old_k
        g.hvals = old_v
        return ERR_NOMEM
    memset(g.hkeys, 0xff, cap * sizeof(uint64_t))
    g.hcap = cap
    for i in range(old_cap):
        if old_k[i] != LABEL_NONE:
            hput(g, old_k[i], old_v[i])
    free(old_k)
    free(old_v)
    return OK


# ---------------------------------------------------------------------------
# Python side

cdef inline size_t align8(size_t x) noexcept nogil:
    return (x + 7) & ~(<size_t>7)


cdef class _Job:
    """Shared state of one parallel build or batch search."""
    cdef uint64_t next
    cdef uint64_t n
    cdef uint64_t first
    cdef int error
    cdef int cancel
    cdef const float *queries
    cdef size_t k, ef
    cdef Filter filt
    cdef uint64_t *out_labels
    cdef float *out_dists


cdef class _Region:
    """A read-only buffer over one region of a graph; keeps the graph alive and
    blocks add() (which may move memory) while exported."""
    cdef HnswGraph graph
    cdef char *ptr
    cdef Py_ssize_t size

    def __getbuffer__(self, Py_buffer *buf, int flags):
        if flags & PyBUF_WRITABLE:
            raise BufferError("HNSW regions are read-only")
        PyBuffer_FillInfo(buf, self, self.ptr, self.size, 1, flags)
        self.graph.exports += 1

    def __releasebuffer__(self, Py_buffer *buf):
        self.graph.exports -= 1

    def __len__(self):
        return self.size


cdef _region(HnswGraph graph, char *ptr, Py_ssize_t size):
    cdef _Region r = _Region.__new__(_Region)
    r.graph = graph
    r.ptr = ptr
    r.size = size
    return memoryview(r)


cdef class Neighbor:
    """One search result: ``id`` (int) and ``distance`` (float), nearest first in
    a result list. Behaves as the tuple ``(id, distance)``: unpacks, indexes,
    compares equal to it. Made in C by the search (a NamedTuple costs ~0.3 us
    apiece, a third of a fast query's time at k=10)."""
    cdef readonly object id
    cdef readonly double distance

    def __init__(self, id, distance):
        self.id = int(id)
        self.distance = float(distance)

    def __iter__(self):
        yield self.id
        yield self.distance

    def __len__(self):
        return 2

    def __getitem__(self, i):
        return (self.id, self.distance)[i]

    def _tuple(self):
        return (self.id, self.distance)

    def __eq__(self, other):
        if isinstance(other, Neighbor):
            return self.id == (<Neighbor>other).id and self.distance == (<Neighbor>other).distance
        if isinstance(other, tuple):
            return (self.id, self.distance) == other
        return NotImplemented

    def __hash__(self):
        return hash((self.id, self.distance))

    def __repr__(self):
        return f"Neighbor(id={self.id!r}, distance={self.distance!r})"

    def __reduce__(self):
        return (Neighbor, (self.id, self.distance))


cdef object _neighbors_of(cnp.ndarray labels, cnp.ndarray dists, Py_ssize_t n):
    cdef const uint64_t *lp = <const uint64_t *>cnp.PyArray_DATA(labels)
    cdef const float *dp = <const float *>cnp.PyArray_DATA(dists)
    cdef list out = [None] * n
    cdef Py_ssize_t i
    cdef Neighbor nb
    for i in range(n):
        nb = Neighbor.__new__(Neighbor)
        nb.id = lp[i]
        nb.distance = dp[i]
        out[i] = nb
    return out


def neighbors(labels, dists):
    """[Neighbor(id, distance)] from a result row (uint64 labels, float32 distances),
    stopping at the first padding label (2**64-1)."""
    cdef cnp.ndarray l = np.ascontiguousarray(labels, dtype=np.uint64)
    cdef cnp.ndarray d = np.ascontiguousarray(dists, dtype=np.float32)
    if l.ndim != 1 or d.ndim != 1 or l.shape[0] != d.shape[0]:
        raise ValueError("labels and dists must be 1-D arrays of the same length")
    cdef Py_ssize_t n = 0, m = l.shape[0]
    cdef const uint64_t *lp = <const uint64_t *>cnp.PyArray_DATA(l)
    while n < m and lp[n] != LABEL_NONE:
        n += 1
    return _neighbors_of(l, d, n)


def _as_vectors(x, Py_ssize_t dim, int ndim, what):
    a = np.asarray(x)
    if a.dtype != np.float32:
        if a.dtype == np.bool_ or not (np.issubdtype(a.dtype, np.floating)
                                       or np.issubdtype(a.dtype, np.integer)):
            raise TypeError(f"{what} must be real numbers (float32 preferred), got dtype {a.dtype}")
        a = a.astype(np.float32)
    if a.ndim != ndim:
        shape = f"({dim},)" if ndim == 1 else f"(n, {dim})"
        raise ValueError(f"{what} must be a {ndim}-D array {shape}, got shape {a.shape}")
    if a.shape[ndim - 1] != dim:
        raise ValueError(f"{what}: dimension {a.shape[ndim - 1]}, but the index holds {dim}-dimensional vectors")
    a = np.ascontiguousarray(a)
    if not np.isfinite(a).all():
        raise ValueError(f"{what} contain NaN or infinity")
    return a


def _as_labels(x, what="labels"):
    a = np.asarray(x)
    if a.ndim == 0:
        a = a.reshape(1)
    if a.ndim != 1:
        raise ValueError(f"{what} must be 1-D, got shape {a.shape}")
    if a.dtype != np.uint64:
        if a.size == 0:
            a = a.astype(np.uint64)
        elif not np.issubdtype(a.dtype, np.integer):
            raise TypeError(f"{what} must be integers (uint64), got dtype {a.dtype}")
        else:
            if a.min() < 0:
                raise ValueError(f"{what} must be >= 0")
            a = a.astype(np.uint64)
    return np.ascontiguousarray(a)


cdef class HnswGraph:
    """An HNSW graph over float32 vectors with u64 labels.

    HnswGraph(dim, metric="l2", m=16, ef_construction=200, capacity=1024,
              seed=100, chunk_shift=10) builds an empty, growable graph;
    HnswGraph.view(header, level0, upper, nodes, owner=None) maps a read-only
    graph over existing memory (see the module docstring for the layout).
    """

    def __cinit__(self, *args, **kwargs):
        memset(&self.g, 0, sizeof(Graph))
        self.g.entry = HNSW_NO_ENTRY
        self.g.max_level = -1
        self.pool = NULL
        self.slabs = NULL
        self.n_slabs = 0
        self.ro = True
        self.owns_memory = False
        self.exports = 0
        self.simd_lvl = _SIMD
        pthread_mutex_init(&self.glock, NULL)
        pthread_mutex_init(&self.pool_lock, NULL)
        hnsw_rwlock_init(&self.rw)

    def __init__(self, int dim, metric="l2", int m=16, int ef_construction=200,
                 Py_ssize_t capacity=1024, seed=100, int chunk_shift=10):
        if metric not in _METRICS:
            raise ValueError(f"unknown metric {metric!r}: use 'l2', 'ip' or 'cosine'")
        if dim < 1 or dim > 65536:
            raise ValueError(f"dim must be in 1..65536, got {dim}")
        if m < 2 or m > 4096:
            raise ValueError(f"m must be in 2..4096, got {m}")
        if ef_construction < 1 or ef_construction > 1 << 20:
            raise ValueError(f"ef_construction must be in 1..2**20, got {ef_construction}")
        if capacity < 0:
            raise ValueError("capacity must be >= 0")
        if chunk_shift < 0 or chunk_shift > 24:
            raise ValueError(f"chunk_shift must be in 0..24, got {chunk_shift}")
        if self.owns_memory or self.g.count:
            raise RuntimeError("HnswGraph.__init__ called twice")
        cdef Graph *g = &self.g
        g.dim = dim
        g.metric = _METRICS[metric]
        g.m = m
        g.m0 = 2 * m
        g.ef_construction = ef_construction
        g.chunk_shift = chunk_shift
        g.chunk_mask = (1 << chunk_shift) - 1
        g.vec_off = <uint32_t>align8(4 + 4 * g.m0)
        g.label_off = <uint32_t>align8(g.vec_off + 4 * <size_t>dim)
        g.record_size = g.label_off + 8
        g.upper_block = 4 + 4 * g.m
        g.level_mult = 1.0 / log(<double>m)
        g.rng = hnsw_minstd_seed(<uint64_t>(int(seed) & 0xffffffffffffffff))
        g.dist = hnsw_kernel(0 if g.metric == 0 else 1, self.simd_lvl)
        self.ro = False
        self.owns_memory = True
        self._grow(capacity)

    def __dealloc__(self):
        cdef size_t i
        self.pool_clear()
        if self.owns_memory:
            for i in range(self.n_slabs):
                free(self.slabs[i])
            free(self.g.nodes)
            free(self.g.upper)
        free(self.slabs)
        free(self.g.chunks)
        free(self.g.hkeys)
        free(self.g.hvals)
        free(self.g.dirty)
        free(self.g.chk_ok)
        free(<void *>self.g.chk_span)
        free(self.g.chk_len)
        free(self.g.chk_crc)
        pthread_mutex_destroy(&self.glock)
        pthread_mutex_destroy(&self.pool_lock)
        pthread_rwlock_destroy(&self.rw)

    # -- contexts ---------------------------------------------------------

    cdef Ctx *ctx_get(self) noexcept nogil:
        cdef Ctx *c
        pthread_mutex_lock(&self.pool_lock)
        c = self.pool
        if c != NULL:
            self.pool = c.next
        pthread_mutex_unlock(&self.pool_lock)
        if c != NULL and c.vcap < self.g.capacity:
            ctx_free(c)
            c = NULL
        if c == NULL:
            c = ctx_new(&self.g)
        return c

    cdef void ctx_put(self, Ctx *c) noexcept nogil:
        pthread_mutex_lock(&self.pool_lock)
        c.next = self.pool
        self.pool = c
        pthread_mutex_unlock(&self.pool_lock)

    cdef void pool_clear(self) noexcept nogil:
        cdef Ctx *c
        pthread_mutex_lock(&self.pool_lock)
        while self.pool != NULL:
            c = self.pool
            self.pool = c.next
            ctx_free(c)
        pthread_mutex_unlock(&self.pool_lock)

    # -- growth (owned graph, under the write lock) -------------------------

    def _grow(self, Py_ssize_t need):
        cdef Graph *g = &self.g
        cdef uint64_t chunk = 1 << g.chunk_shift
        cdef uint64_t cap = g.capacity
        cdef size_t n_chunks, i
        cdef char **chunks
        cdef char *slab
        cdef void *p
        if <uint64_t>need <= cap:
            return
        if need >= 0xffffffff:
            raise ValueError("an HNSW graph holds at most 2**32-2 vectors")
        if cap * 2 > <uint64_t>need and cap > 0:
            need = min(cap * 2, 0xfffffffe)
        n_chunks = (<uint64_t>need + chunk - 1) >> g.chunk_shift
        chunks = <char **>realloc(g.chunks, n_chunks * sizeof(char *))
        if chunks == NULL:
            raise MemoryError()
        g.chunks = chunks
        p = realloc(g.dirty, n_chunks)
        if p == NULL:
            raise MemoryError()
        g.dirty = <unsigned char *>p
        memset(g.dirty + g.n_chunks, 0, n_chunks - g.n_chunks)
        # the new chunks are carved from one slab (huge pages where the OS
        # gives them: fewer TLB misses on random access to records)
        p = realloc(self.slabs, (self.n_slabs + 1) * sizeof(void *))
        if p == NULL:
            raise MemoryError()
        self.slabs = <void **>p
        slab = <char *>hnsw_alloc_slab((n_chunks - g.n_chunks) * chunk * g.record_size)
        if slab == NULL:
            raise MemoryError()
        self.slabs[self.n_slabs] = slab
        self.n_slabs += 1
        for i in range(g.n_chunks, n_chunks):
            chunks[i] = slab + (i - g.n_chunks) * chunk * g.record_size
        g.n_chunks = n_chunks
        cap = n_chunks << g.chunk_shift
        p = realloc(g.nodes, cap * sizeof(uint64_t))
        if p == NULL:
            raise MemoryError()
        g.nodes = <uint64_t *>p
        g.capacity = cap
        self.pool_clear()

    # -- properties -----------------------------------------------------------

    @property
    def count(self):
        """Number of vectors in the graph (deleted ones included)."""
        return self.g.count

    def __len__(self):
        return self.g.count

    @property
    def dim(self):
        return self.g.dim

    @property
    def metric(self):
        return _METRIC_NAMES[self.g.metric]

    @property
    def m(self):
        return self.g.m

    @property
    def m0(self):
        return self.g.m0

    @property
    def ef_construction(self):
        return self.g.ef_construction

    @property
    def max_level(self):
        return self.g.max_level

    @property
    def entry_point(self):
        """Internal id of the entry point (None when empty)."""
        return None if self.g.entry == HNSW_NO_ENTRY else self.g.entry

    @property
    def capacity(self):
        return self.g.capacity

    @property
    def deleted_count(self):
        return self.g.deleted

    @property
    def readonly(self):
        return self.ro

    @property
    def chunk_shift(self):
        return self.g.chunk_shift

    @property
    def record_size(self):
        return self.g.record_size

    @property
    def simd(self):
        """The distance kernels in use: 'avx512', 'avx2' or 'generic'."""
        return _SIMD_NAMES[self.simd_lvl]

    def __repr__(self):
        return (f"HnswGraph(dim={self.g.dim}, metric={self.metric!r}, m={self.g.m}, "
                f"ef_construction={self.g.ef_construction}, count={self.g.count}"
                f"{', view' if self.ro else ''})")

    # -- add --------------------------------------------------------------------

    def add(self, vectors, labels, int threads=1, progress=None):
        """Insert vectors (n, dim) with unique uint64 labels (n,), over `threads`
        threads with the GIL released. Labels must be new, or have only deleted
        records (the label then names the new record: an upsert is
        mark_deleted + add); a label given twice or live in the graph raises
        ValueError and nothing is added.

        progress: a callable given the number of vectors inserted so far, called
        from this thread about every 0.2 s while the build runs (and at its end);
        an exception in this thread meanwhile (KeyboardInterrupt, or raised by
        progress) stops the build early and is re-raised: the graph is then
        incomplete and must be discarded."""
        if self.ro:
            raise ValueError("this HnswGraph is a read-only view")
        if self.exports:
            raise BufferError("regions of this graph are exported (memoryviews alive): release them before add()")
        cdef Graph *g = &self.g
        vecs = _as_vectors(vectors, g.dim, 2, "vectors")
        labs = _as_labels(labels)
        if labs.shape[0] != vecs.shape[0]:
            raise ValueError(f"{vecs.shape[0]} vectors but {labs.shape[0]} labels")
        if threads < 1:
            raise ValueError("threads must be >= 1")
        cdef Py_ssize_t n = vecs.shape[0]
        if n == 0:
            return
        if np.unique(labs).shape[0] != n:
            raise ValueError("duplicate labels in one add() batch")
        if (labs == LABEL_NONE).any():
            raise ValueError("label 2**64-1 is reserved")
        cdef const float[:, ::1] V = vecs
        cdef const uint64_t[::1] L = labs
        cdef Py_ssize_t i, j
        cdef uint64_t first, id_, off, need_upper, lab
        cdef int lev
        cdef double u, s
        cdef int32_t[::1] LV
        cdef char *r
        cdef float *v
        cdef void *p
        cdef Py_ssize_t old
        with nogil:
            pthread_rwlock_wrlock(&self.rw)
        try:
            for i in range(n):
                old = hfind(g, L[i])
                if old >= 0 and not ((<uint32_t *>rec_at(g, <uint32_t>old))[0] & HNSW_DELETED_BIT):
                    raise ValueError(f"label {L[i]} is already in the graph")
            first = g.count
            self._grow(first + n)
            if hreserve(g, first + n) != OK:
                raise MemoryError()
            # levels, drawn in order so a seed gives the same graph
            levels = np.empty(n, dtype=np.int32)
            LV = levels
            need_upper = 0
            for i in range(n):
                u = hnsw_level_uniform(&g.rng)
                s = -log(u) * g.level_mult if u > 0 else <double>MAX_LEVEL
                lev = MAX_LEVEL if s > MAX_LEVEL else <int>s
                LV[i] = lev
                need_upper += <uint64_t>lev * g.upper_block
            if g.upper_bytes + need_upper > g.upper_cap:
                off = max(g.upper_cap * 2, g.upper_bytes + need_upper, <uint64_t>4096)
                p = realloc(g.upper, off)
                if p == NULL:
                    raise MemoryError()
                g.upper = <char *>p
                g.upper_cap = off
            for i in range(n):
                id_ = first + i
                lev = LV[i]
                r = rec_at(g, <uint32_t>id_)
                memset(r, 0, g.vec_off)
                v = <float *>(r + g.vec_off)
                memcpy(v, &V[i, 0], g.dim * sizeof(float))
                if g.metric == 2:
                    hnsw_normalize(v, v, g.dim)
                hnsw_store_u64(r + g.label_off, L[i])
                if lev > 0:
                    g.nodes[id_] = (<uint64_t>lev << 56) | g.upper_bytes
                    memset(g.upper + g.upper_bytes, 0, <size_t>lev * g.upper_block)
                    g.upper_bytes += <uint64_t>lev * g.upper_block
                else:
                    g.nodes[id_] = 0
                hput(g, L[i], <uint32_t>id_)
                g.dirty[id_ >> g.chunk_shift] = 1
            g.count = first + n
            g.upper_dirty = True
            self._build(first, n, threads, progress)
        finally:
            with nogil:
                pthread_rwlock_unlock(&self.rw)

    def _build(self, uint64_t first, Py_ssize_t n, int threads, progress=None):
        cdef _Job job = _Job.__new__(_Job)
        job.next = 0
        job.n = n
        job.first = first
        job.error = 0
        job.cancel = 0
        if threads > n // 4:
            threads = max(1, <int>(n // 4))
        if threads == 1 and progress is None:
            self._build_worker(job)
        else:
            # the workers release the GIL; this thread reports progress and
            # stops them (cancel flag) if it is interrupted meanwhile
            with ThreadPoolExecutor(max_workers=threads) as ex:
                futs = [ex.submit(self._build_worker, job) for _ in range(threads)]
                try:
                    while True:
                        _, pending = wait(futs, timeout=0.2)
                        if progress is not None:
                            progress(int(min(job.next, job.n)))
                        if not pending:
                            break
                except BaseException:
                    job.cancel = 1
                    wait(futs)
                    raise
                for fu in futs:
                    fu.result()
        if job.error == ERR_NOMEM:
            raise MemoryError("out of memory during the HNSW build (the graph may miss links)")
        if job.error:
            raise HnswCorruptionError("the graph is inconsistent (build)")

    def _build_worker(self, _Job job):
        cdef Ctx *c
        cdef uint64_t i
        cdef int rc = OK
        with nogil:
            c = self.ctx_get()
            if c == NULL:
                job.error = ERR_NOMEM
            else:
                while not hnsw_load_flag(&job.cancel):
                    i = hnsw_fetch_add(&job.next, 1)
                    if i >= job.n:
                        break
                    rc = insert(&self.g, c, &self.glock, <uint32_t>(job.first + i))
                    if rc != OK:
                        job.error = rc
                        break
                self.ctx_put(c)

    # -- delete -----------------------------------------------------------------

    def mark_deleted(self, labels):
        """Mark labels deleted: they are still traversed but never returned.
        Unknown labels raise KeyError (nothing is marked); marking twice is a no-op."""
        if self.ro:
            raise ValueError("this HnswGraph is a read-only view")
        labs = _as_labels(labels)
        cdef const uint64_t[::1] L = labs
        cdef Py_ssize_t i, idx
        cdef uint32_t *w
        with nogil:
            pthread_rwlock_wrlock(&self.rw)
        try:
            ids = np.empty(L.shape[0], dtype=np.int64)
            for i in range(L.shape[0]):
                idx = hfind(&self.g, L[i])
                if idx < 0:
                    raise KeyError(f"label {L[i]} is not in the graph")
                ids[i] = idx
            for idx in ids:
                w = <uint32_t *>rec_at(&self.g, <uint32_t>idx)
                if not (w[0] & HNSW_DELETED_BIT):
                    w[0] |= HNSW_DELETED_BIT
                    self.g.deleted += 1
                    self.g.dirty[<uint32_t>idx >> self.g.chunk_shift] = 1
        finally:
            with nogil:
                pthread_rwlock_unlock(&self.rw)

    def _verify_all(self):
        """A view with lazy chunk checksums: verify every chunk now (before an
        operation that reads records outside a search: labels, copies, ...)."""
        cdef uint64_t c
        if self.g.chk_ok == NULL:
            return
        for c in range(self.g.n_chunks):
            if not self.g.chk_ok[c] and verify_chunk(&self.g, c) != OK:
                _raise(ERR_CHECKSUM, "")

    def _ensure_map(self):
        # a view has no label map (not part of the regions): build it on first use
        cdef uint64_t i
        if self.ro and self.g.hcap == 0 and self.g.count:
            self._verify_all()
            if hreserve(&self.g, self.g.count) != OK:
                raise MemoryError()
            for i in range(self.g.count):
                hput(&self.g, label_at(&self.g, <uint32_t>i), <uint32_t>i)

    def is_deleted(self, label):
        self._ensure_map()
        cdef Py_ssize_t idx = hfind(&self.g, <uint64_t>label)
        if idx < 0:
            raise KeyError(f"label {label} is not in the graph")
        return bool((<uint32_t *>rec_at(&self.g, <uint32_t>idx))[0] & HNSW_DELETED_BIT)

    def __contains__(self, label):
        if label < 0 or label >= LABEL_NONE:
            return False
        self._ensure_map()
        return hfind(&self.g, <uint64_t>label) >= 0

    def labels(self):
        """All labels in internal-id order (a copy)."""
        self._verify_all()
        out = np.empty(self.g.count, dtype=np.uint64)
        cdef uint64_t[::1] o = out
        cdef uint64_t i
        for i in range(self.g.count):
            o[i] = label_at(&self.g, <uint32_t>i)
        return out

    def vector(self, Py_ssize_t i):
        """A copy of the stored vector of internal id i (float32, (dim,); for
        cosine the normalized vector). IndexError when i is out of range."""
        self._verify_all()
        if i < 0 or <uint64_t>i >= self.g.count:
            raise IndexError(f"internal id {i} out of range (count {self.g.count})")
        out = np.empty(self.g.dim, dtype=np.float32)
        cdef float[::1] o = out
        memcpy(&o[0], vec_at(&self.g, <uint32_t>i), self.g.dim * sizeof(float))
        return out

    def vectors(self, ids):
        """Copies of the stored vectors of internal ids (float32, (n, dim))."""
        self._verify_all()
        cdef cnp.ndarray a = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        cdef Py_ssize_t n = a.shape[0], i
        cdef const int64_t *ip = <const int64_t *>cnp.PyArray_DATA(a)
        for i in range(n):
            if ip[i] < 0 or <uint64_t>ip[i] >= self.g.count:
                raise IndexError(f"internal id {ip[i]} out of range (count {self.g.count})")
        out = np.empty((n, self.g.dim), dtype=np.float32)
        cdef float *op = <float *>cnp.PyArray_DATA(<cnp.ndarray>out)
        cdef size_t vb = self.g.dim * sizeof(float)
        with nogil:
            pthread_rwlock_rdlock(&self.rw)
            for i in range(n):
                memcpy(op + i * self.g.dim, vec_at(&self.g, <uint32_t>ip[i]), vb)
            pthread_rwlock_unlock(&self.rw)
        return out

    def label_table(self):
        """The live records as (labels uint64[n], ids uint32[n]) sorted by label:
        the label -> internal id map a store keeps beside the regions (searched
        with numpy.searchsorted, so a view needs no hash). Deleted records are
        left out; a label with two live records raises HnswCorruptionError."""
        self._verify_all()
        cdef Graph *g = &self.g
        cdef uint64_t live = g.count - g.deleted if g.deleted <= g.count else 0
        cdef uint64_t i, j = 0
        cdef bint has_del = g.deleted > 0
        labels = np.empty(live, dtype=np.uint64)
        ids = np.empty(live, dtype=np.uint32)
        cdef uint64_t[::1] L = labels
        cdef uint32_t[::1] I = ids
        with nogil:
            pthread_rwlock_rdlock(&self.rw)
            for i in range(g.count):
                if has_del and ((<uint32_t *>rec_at(g, <uint32_t>i))[0] & HNSW_DELETED_BIT):
                    continue
                if j >= live:
                    j = live + 1
                    break
                L[j] = label_at(g, <uint32_t>i)
                I[j] = <uint32_t>i
                j += 1
            pthread_rwlock_unlock(&self.rw)
        if j != live:
            raise HnswCorruptionError("deleted_count does not match the records' deleted bits")
        order = np.argsort(labels, kind="stable")
        labels = labels[order]
        ids = ids[order]
        if live > 1 and not (labels[1:] != labels[:live - 1]).all():
            raise HnswCorruptionError("a label has two live records")
        return labels, ids

    # -- dirty tracking (owned graphs) --------------------------------------------

    def dirty_chunks(self):
        """Indices (int64, ascending) of the level-0 chunks written by add() or
        mark_deleted() since the graph was made or clear_dirty() was called: a
        store rewrites only these. Empty for a view."""
        if self.g.dirty == NULL:
            return np.empty(0, dtype=np.int64)
        cdef uint64_t chunk = <uint64_t>1 << self.g.chunk_shift
        cdef uint64_t n_used = (self.g.count + chunk - 1) >> self.g.chunk_shift
        flags = np.frombuffer((<char *>self.g.dirty)[:n_used], dtype=np.uint8)
        return np.flatnonzero(flags).astype(np.int64)

    @property
    def upper_dirty(self):
        """True when add() changed the upper-links arena and node table since the
        graph was made or clear_dirty() was called."""
        return bool(self.g.upper_dirty)

    def clear_dirty(self):
        """Forget which chunks were written (after they were stored)."""
        if self.g.dirty != NULL:
            memset(self.g.dirty, 0, self.g.n_chunks)
        self.g.upper_dirty = False

    # -- owned copies ---------------------------------------------------------------

    def _check_links(self):
        # every neighbour list in range, as a build that writes through them needs
        # (a search checks as it goes; a build must not write out of bounds)
        cdef Graph *g = &self.g
        cdef uint64_t i
        cdef uint32_t w, cnt, j, nid
        cdef int lev, l
        cdef uint32_t *lst
        cdef Py_ssize_t bad = -1
        with nogil:
            for i in range(g.count):
                w = (<uint32_t *>rec_at(g, <uint32_t>i))[0]
                cnt = w & HNSW_COUNT_MASK
                if cnt > g.m0 or (w & 0xfffe0000u):
                    bad = i
                    break
                lst = <uint32_t *>rec_at(g, <uint32_t>i)
                for j in range(cnt):
                    if lst[1 + j] >= g.count:
                        bad = i
                        break
                if bad >= 0:
                    break
                lev = level_of(g, <uint32_t>i)
                for l in range(1, lev + 1):
                    lst = list_at(g, <uint32_t>i, l)
                    cnt = lst[0] & HNSW_COUNT_MASK
                    if cnt > g.m or (lst[0] & ~HNSW_COUNT_MASK):
                        bad = i
                        break
                    for j in range(cnt):
                        nid = lst[1 + j]
                        if nid >= g.count or level_of(g, nid) < l:
                            bad = i
                            break
                    if bad >= 0:
                        break
                if bad >= 0:
                    break
        if bad >= 0:
            raise HnswCorruptionError(f"corrupt HNSW graph: node {bad} has a neighbour list out of range")

    def copy(self, Py_ssize_t capacity=0):
        """An owned, mutable deep copy of this graph (a view or an owned graph),
        with room for `capacity` records (at least its count): the same chunk
        layout, levels generator state and label map (the newest record of a
        label wins), no dirty chunks. Every neighbour list is checked first
        (HnswCorruptionError), since add() writes through them."""
        cdef Graph *s = &self.g
        cdef HnswGraph out
        cdef Graph *d
        cdef uint64_t chunk, n_used, i
        cdef void *p
        if s.m0 != 2 * s.m:
            raise HnswCorruptionError(f"m0 {s.m0} is not 2 * m ({s.m}): cannot continue this graph")
        self._verify_all()
        with nogil:
            pthread_rwlock_rdlock(&self.rw)
        try:
            self._check_links()
            out = HnswGraph(s.dim, _METRIC_NAMES[s.metric], s.m, s.ef_construction,
                            max(capacity, <Py_ssize_t>s.count, 1), 0, s.chunk_shift)
            d = &out.g
            chunk = <uint64_t>1 << s.chunk_shift
            n_used = (s.count + chunk - 1) >> s.chunk_shift
            for i in range(n_used):
                memcpy(d.chunks[i], s.chunks[i], min(chunk, s.count - i * chunk) * s.record_size)
            if s.count:
                memcpy(d.nodes, s.nodes, s.count * sizeof(uint64_t))
            if s.upper_bytes:
                p = malloc(max(s.upper_bytes, <uint64_t>4096))
                if p == NULL:
                    raise MemoryError()
                memcpy(p, s.upper, s.upper_bytes)
                d.upper = <char *>p
                d.upper_cap = max(s.upper_bytes, <uint64_t>4096)
                d.upper_bytes = s.upper_bytes
            d.count = s.count
            d.entry = s.entry
            d.max_level = s.max_level
            d.deleted = s.deleted
            d.level_mult = s.level_mult
            d.rng = s.rng
            if hreserve(d, s.count) != OK:
                raise MemoryError()
            for i in range(s.count):  # ascending: an upsert's newer record wins
                hput(d, label_at(d, <uint32_t>i), <uint32_t>i)
        finally:
            with nogil:
                pthread_rwlock_unlock(&self.rw)
        return out

    @staticmethod
    def from_regions(header, level0, upper, nodes, Py_ssize_t capacity=0):
        """An owned, mutable graph copied from regions (as view() takes them):
        view(...).copy(capacity)."""
        return HnswGraph.view(header, level0, upper, nodes).copy(capacity)

    # -- search -----------------------------------------------------------------

    def _filter(self, filter):
        if filter is None:
            return None
        f = np.unique(_as_labels(filter, "filter"))
        return np.ascontiguousarray(f)

    def search(self, query, int k=10, int ef=64, filter=None):
        """The k nearest labels of one query (dim,), ascending by distance:
        (labels uint64[k'], distances float32[k']) with k' <= k. `filter` is an
        optional array of allowed labels: others are traversed, never returned."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if ef < 1:
            raise ValueError(f"ef must be >= 1, got {ef}")
        cdef cnp.ndarray q
        if (type(query) is np.ndarray and cnp.PyArray_TYPE(<cnp.ndarray>query) == cnp.NPY_FLOAT32
                and cnp.PyArray_NDIM(<cnp.ndarray>query) == 1
                and cnp.PyArray_DIM(<cnp.ndarray>query, 0) == self.g.dim
                and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>query)):
            q = <cnp.ndarray>query  # fast path: finiteness is checked in C
        else:
            q = _as_vectors(query, self.g.dim, 1, "query")
        cdef Filter filt
        cdef cnp.ndarray fl
        filt.allowed = NULL
        filt.n = 0
        if filter is not None:
            fl = self._filter(filter)
            filt.n = cnp.PyArray_DIM(fl, 0)
            if filt.n == 0:
                return np.empty(0, np.uint64), np.empty(0, np.float32)
            filt.allowed = <const uint64_t *>cnp.PyArray_DATA(fl)
        cdef size_t kk = k
        if kk > self.g.count:
            kk = self.g.count if self.g.count > 0 else 1
        cdef cnp.npy_intp dims[1]
        dims[0] = <cnp.npy_intp>kk
        cdef cnp.ndarray out_l = cnp.PyArray_EMPTY(1, dims, cnp.NPY_UINT64, 0)
        cdef cnp.ndarray out_d = cnp.PyArray_EMPTY(1, dims, cnp.NPY_FLOAT32, 0)
        cdef const float *qp = <const float *>cnp.PyArray_DATA(q)
        cdef uint64_t *olp = <uint64_t *>cnp.PyArray_DATA(out_l)
        cdef float *odp = <float *>cnp.PyArray_DATA(out_d)
        cdef Py_ssize_t n
        cdef Ctx *c
        with nogil:
            pthread_rwlock_rdlock(&self.rw)
            c = self.ctx_get()
            if c == NULL:
                n = ERR_NOMEM
            else:
                n = knn(&self.g, c, qp, kk, ef, &filt, olp, odp)
                self.ctx_put(c)
            pthread_rwlock_unlock(&self.rw)
        if n < 0:
            _raise(n, "query")
        if <size_t>n == kk:
            return out_l, out_d
        return out_l[:n], out_d[:n]

    def search_neighbors(self, query, int k=10, int ef=64, filter=None):
        """search() as a list of Neighbor(id, distance), nearest first."""
        cdef cnp.ndarray labels, dists
        labels, dists = self.search(query, k, ef, filter)
        return _neighbors_of(labels, dists, cnp.PyArray_DIM(labels, 0))

    def search_batch(self, queries, int k=10, int ef=64, int threads=1, filter=None):
        """search() for each row of queries (nq, dim) over `threads` threads with
        the GIL released: (labels uint64[nq, k], distances float32[nq, k]), rows
        padded with label 2**64-1 and distance inf when fewer than k are found."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if ef < 1:
            raise ValueError(f"ef must be >= 1, got {ef}")
        if threads < 1:
            raise ValueError("threads must be >= 1")
        qs = _as_vectors(queries, self.g.dim, 2, "queries")
        fl = self._filter(filter)
        cdef Py_ssize_t nq = qs.shape[0]
        out_l = np.full((nq, k), LABEL_NONE, dtype=np.uint64)
        out_d = np.full((nq, k), np.inf, dtype=np.float32)
        if nq == 0 or (fl is not None and fl.shape[0] == 0):
            return out_l, out_d
        cdef _Job job = _Job.__new__(_Job)
        cdef const float[:, ::1] Q = qs
        cdef uint64_t[:, ::1] OL = out_l
        cdef float[:, ::1] OD = out_d
        cdef const uint64_t[::1] F
        job.next = 0
        job.n = nq
        job.error = 0
        job.queries = &Q[0, 0]
        job.k = k
        job.ef = ef
        job.out_labels = &OL[0, 0]
        job.out_dists = &OD[0, 0]
        job.filt.allowed = NULL
        job.filt.n = 0
        if fl is not None:
            F = fl
            job.filt.allowed = &F[0]
            job.filt.n = F.shape[0]
        if threads > nq:
            threads = <int>nq
        if threads == 1:
            self._search_worker(job)
        else:
            with ThreadPoolExecutor(max_workers=threads) as ex:
                futs = [ex.submit(self._search_worker, job) for _ in range(threads)]
                for fu in futs:
                    fu.result()
        if job.error:
            _raise(job.error, "queries")
        return out_l, out_d

    def _search_worker(self, _Job job):
        cdef Ctx *c
        cdef uint64_t i
        cdef Py_ssize_t r
        cdef size_t dim = self.g.dim
        with nogil:
            pthread_rwlock_rdlock(&self.rw)
            c = self.ctx_get()
            if c == NULL:
                job.error = ERR_NOMEM
            else:
                while True:
                    i = hnsw_fetch_add(&job.next, 1)
                    if i >= job.n:
                        break
                    r = knn(&self.g, c, job.queries + i * dim, job.k, job.ef, &job.filt,
                            job.out_labels + i * job.k, job.out_dists + i * job.k)
                    if r < 0:
                        job.error = <int>r
                        break
                self.ctx_put(c)
            pthread_rwlock_unlock(&self.rw)

    # -- serialization ----------------------------------------------------------

    cdef hnsw_header_t _header(self) noexcept:
        cdef hnsw_header_t h
        cdef Graph *g = &self.g
        if self.ro:
            h = self.view_header
            h.deleted_count = g.deleted
            return h
        memset(&h, 0, sizeof(h))
        h.magic = HNSW_MAGIC
        h.version = HNSW_VERSION
        h.dim = g.dim
        h.metric = g.metric
        h.m = g.m
        h.m0 = g.m0
        h.ef_construction = g.ef_construction
        h.chunk_shift = g.chunk_shift
        h.count = g.count
        h.capacity = g.capacity
        h.entry_point = g.entry
        h.max_level = g.max_level
        h.record_size = g.record_size
        h.vector_offset = g.vec_off
        h.label_offset = g.label_off
        h.upper_block = g.upper_block
        h.level0_bytes = g.count * g.record_size
        h.upper_bytes = g.upper_bytes
        h.nodes_bytes = g.count * 8
        h.deleted_count = g.deleted
        h.level_mult = g.level_mult
        h.rng_state = g.rng
        return h

    def header_bytes(self):
        """The 128-byte header (a copy)."""
        cdef hnsw_header_t h = self._header()
        return (<char *>&h)[:sizeof(hnsw_header_t)]

    def level0_regions(self):
        """One read-only memoryview per level-0 chunk, the last one cut at count."""
        cdef Graph *g = &self.g
        cdef uint64_t chunk = 1 << g.chunk_shift
        cdef uint64_t i, n_used = (g.count + chunk - 1) >> g.chunk_shift
        out = []
        for i in range(n_used):
            out.append(_region(self, g.chunks[i], min(chunk, g.count - i * chunk) * g.record_size))
        return out

    def upper_region(self):
        """The upper-links arena (read-only memoryview of upper_bytes)."""
        return _region(self, self.g.upper, self.g.upper_bytes)

    def node_region(self):
        """The node table: count x u64 (level << 56 | arena offset), read-only memoryview."""
        return _region(self, <char *>self.g.nodes, self.g.count * 8)

    def regions(self):
        """dict(header=bytes, level0=[memoryview], upper=memoryview, nodes=memoryview)."""
        return {"header": self.header_bytes(), "level0": self.level0_regions(),
                "upper": self.upper_region(), "nodes": self.node_region()}

    @property
    def nbytes(self):
        """Total bytes of the four regions (what a save writes)."""
        return (sizeof(hnsw_header_t) + self.g.count * self.g.record_size
                + self.g.upper_bytes + self.g.count * 8)

    @staticmethod
    def view(header, level0, upper, nodes, owner=None, level0_checks=None):
        """A read-only, searchable HnswGraph over existing memory, without copying.

        Each region is a buffer object (bytes, mmap, memoryview, ...) or an
        (address, nbytes) tuple of ints; with addresses, `owner` is kept alive
        as long as the view and must keep that memory valid. `level0` is one
        region holding all records contiguously, or a list with one region per
        chunk. Every structural field is checked (HnswCorruptionError); neighbour
        ids are checked during search. `level0_checks`, with a list of chunks:
        one (span, crc) per chunk, span a buffer that contains the chunk and
        whose CRC-32C must be crc; a chunk is verified when a search first
        reaches it (or before any other read of records), so opening costs
        nothing per chunk and a damaged chunk raises HnswCorruptionError."""
        cdef HnswGraph self = HnswGraph.__new__(HnswGraph)
        cdef hnsw_header_t h
        cdef Graph *g = &self.g
        cdef uint64_t i, chunk, n_chunks, need, lev, off, x
        cdef uintptr_t sa
        keep = [owner]
        self.keep = keep

        def region(obj, what, uint64_t need, int align):
            cdef uintptr_t addr
            cdef Py_ssize_t size
            cdef const unsigned char[::1] mv
            if isinstance(obj, tuple):
                if len(obj) != 2:
                    raise TypeError(f"{what}: an (address, nbytes) tuple expected")
                addr = <uintptr_t>int(obj[0])
                size = int(obj[1])
            else:
                m = memoryview(obj)
                if not m.c_contiguous:
                    raise ValueError(f"{what}: the buffer must be contiguous")
                m = m.cast("B")
                keep.append(m)
                size = m.nbytes
                if size:
                    mv = m
                    addr = <uintptr_t>&mv[0]
                else:
                    addr = 0
            if <uint64_t>size < need:
                raise HnswCorruptionError(f"{what}: {size} bytes, the header needs {need}")
            if need and (addr == 0 or addr % align):
                raise HnswCorruptionError(f"{what}: address must be non-null and {align}-byte aligned")
            return addr

        cdef uintptr_t ha = region(header, "header", sizeof(hnsw_header_t), 1)
        memcpy(&h, <void *>ha, sizeof(hnsw_header_t))
        if h.magic != HNSW_MAGIC:
            raise HnswCorruptionError("not an HNSW header (bad magic)")
        if h.version != HNSW_VERSION:
            raise HnswCorruptionError(f"unsupported HNSW layout version {h.version}")
        if h.metric > 2:
            raise HnswCorruptionError(f"bad metric {h.metric}")
        if h.dim < 1 or h.dim > 65536:
            raise HnswCorruptionError(f"bad dim {h.dim}")
        if h.m < 2 or h.m > 4096 or h.m0 < h.m or h.m0 > 65535:
            raise HnswCorruptionError(f"bad m {h.m} / m0 {h.m0}")
        if h.ef_construction < 1 or h.ef_construction > 1 << 20:
            raise HnswCorruptionError("bad ef_construction")
        if h.chunk_shift > 30:
            raise HnswCorruptionError(f"bad chunk_shift {h.chunk_shift}")
        if (h.vector_offset != align8(4 + 4 * <size_t>h.m0)
                or h.label_offset != align8(h.vector_offset + 4 * <size_t>h.dim)
                or h.record_size != h.label_offset + 8
                or h.upper_block != 4 + 4 * h.m):
            raise HnswCorruptionError("record layout fields do not match dim / m0")
        if h.count >= 0xffffffff or h.count > h.capacity:
            raise HnswCorruptionError(f"bad count {h.count} (capacity {h.capacity})")
        if h.level0_bytes != h.count * h.record_size or h.nodes_bytes != h.count * 8:
            raise HnswCorruptionError("region sizes do not match count")
        if h.deleted_count > h.count:
            raise HnswCorruptionError("deleted_count > count")
        if h.count == 0:
            if h.entry_point != HNSW_NO_ENTRY or h.max_level != -1:
                raise HnswCorruptionError("empty graph with an entry point")
        elif h.entry_point >= h.count or h.max_level < 0 or h.max_level > MAX_LEVEL:
            raise HnswCorruptionError(f"bad entry point {h.entry_point} / max level {h.max_level}")
        if h.upper_bytes > (<uint64_t>1 << 56):
            raise HnswCorruptionError("bad upper_bytes")
        g.dim = h.dim
        g.metric = h.metric
        g.m = h.m
        g.m0 = h.m0
        g.ef_construction = h.ef_construction
        g.chunk_shift = h.chunk_shift
        g.chunk_mask = (<uint64_t>1 << h.chunk_shift) - 1
        g.record_size = h.record_size
        g.vec_off = h.vector_offset
        g.label_off = h.label_offset
        g.upper_block = h.upper_block
        g.count = h.count
        g.capacity = h.count
        g.entry = h.entry_point
        g.max_level = h.max_level
        g.deleted = h.deleted_count
        g.level_mult = h.level_mult
        g.rng = h.rng_state
        g.upper_bytes = h.upper_bytes
        g.dist = hnsw_kernel(0 if g.metric == 0 else 1, self.simd_lvl)
        # level 0
        chunk = <uint64_t>1 << h.chunk_shift
        n_chunks = (h.count + chunk - 1) >> h.chunk_shift
        g.chunks = <char **>calloc(n_chunks if n_chunks else 1, sizeof(char *))
        if g.chunks == NULL:
            raise MemoryError()
        if isinstance(level0, list):
            if <uint64_t>len(level0) < n_chunks:
                raise HnswCorruptionError(f"level0: {len(level0)} chunks, the header needs {n_chunks}")
            for i in range(n_chunks):
                need = min(chunk, h.count - i * chunk) * h.record_size
                g.chunks[i] = <char *><uintptr_t>region(level0[i], f"level0 chunk {i}", need, 8)
        else:
            base = region(level0, "level0", h.level0_bytes, 8)
            for i in range(n_chunks):
                g.chunks[i] = <char *><uintptr_t>base + i * chunk * h.record_size
        g.n_chunks = n_chunks
        if level0_checks is not None:
            if not isinstance(level0, list) or <uint64_t>len(level0_checks) < n_chunks:
                raise ValueError("level0_checks needs one (span, crc) per level-0 chunk")
            g.chk_ok = <unsigned char *>calloc(n_chunks if n_chunks else 1, 1)
            g.chk_span = <const char **>calloc(n_chunks if n_chunks else 1, sizeof(char *))
            g.chk_len = <size_t *>calloc(n_chunks if n_chunks else 1, sizeof(size_t))
            g.chk_crc = <uint32_t *>calloc(n_chunks if n_chunks else 1, sizeof(uint32_t))
            if g.chk_ok == NULL or g.chk_span == NULL or g.chk_len == NULL or g.chk_crc == NULL:
                raise MemoryError()
            for i in range(n_chunks):
                span, crc = level0_checks[i]
                sm = memoryview(span).cast("B")
                keep.append(sm)
                sa = <uintptr_t>region(sm, f"level0 check span {i}", 1, 1)
                need = min(chunk, h.count - i * chunk) * h.record_size
                if not (sa <= <uintptr_t>g.chunks[i] and
                        <uintptr_t>g.chunks[i] + need <= sa + <uint64_t>sm.nbytes):
                    raise ValueError(f"level0 check span {i} does not contain its chunk")
                g.chk_span[i] = <const char *><uintptr_t>sa
                g.chk_len[i] = sm.nbytes
                g.chk_crc[i] = <uint32_t>crc
        g.upper = <char *><uintptr_t>region(upper, "upper", h.upper_bytes, 4)
        g.nodes = <uint64_t *><uintptr_t>region(nodes, "nodes", h.nodes_bytes, 8)
        for i in range(h.count):
            x = g.nodes[i]
            lev = x >> 56
            off = x & OFF_MASK
            if <int64_t>lev > h.max_level:
                raise HnswCorruptionError(f"node {i}: level {lev} above max level {h.max_level}")
            if lev and (off % 4 or off + lev * h.upper_block > h.upper_bytes):
                raise HnswCorruptionError(f"node {i}: upper links out of the arena")
        if h.count and <int32_t>(g.nodes[h.entry_point] >> 56) != h.max_level:
            raise HnswCorruptionError("the entry point's level is not max_level")
        self.view_header = h
        self.ro = True
        self.owns_memory = False
        return self
