# Search primitives of the HNSW graph (included by _hnsw.pyx).
#
# Owns: the choice of distance kernels, the per-thread scratch (Ctx: visited
# tags, the two heaps, small buffers), the search of one layer (Algorithm 2 of
# Malkov & Yashunin 2018), the greedy descent through the upper levels, the k-NN
# query (hnswlib's searchKnn), and _Job, the shared state of a parallel build or
# batch search. Everything here runs without the GIL and touches no Python object.
#
# Invariants (cited where they are kept as "(S<n>)"):
#   S1  a Ctx's visited array covers every id: vcap >= capacity (HnswGraph.ctx_get
#       drops a smaller Ctx; growth empties the pool).
#   S2  visited[i] == tag exactly when i was reached by the current search; tag 0
#       is never current (the u16 epoch clears the array when it wraps).
#   S3  c.top holds at most ef accepted ids (not deleted when deleted_count > 0,
#       in the filter when there is one) as a max-heap; lb is its farthest
#       distance once it holds any.
#   S4  a search reads a record only after checking its id (< count; the
#       descent also checks the level, L4) and its chunk (ensure_chunk, R3); a
#       neighbour count above the list's maximum is corruption (L3). A build's
#       graph had every list checked before (check_links, R2).
#   S5  nothing here raises: failures are the status codes of _layout.pxi,
#       raised by the caller with the GIL (_raise).

# The best kernels this CPU runs; TOONDB_HNSW_SIMD=generic|avx2|avx512 caps the
# choice (to test the portable path on a machine with AVX-512).
cdef int _SIMD = hnsw_cpu_level()
_cap = {"generic": 0, "avx2": 1, "avx512": 2}.get(os.environ.get("TOONDB_HNSW_SIMD", ""), 2)
if _cap < _SIMD:
    _SIMD = _cap

_SIMD_NAMES = {0: "generic", 1: "avx2", 2: "avx512"}


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


cdef inline bint accepted(const Graph *g, uint32_t i, const Filter *f, bint has_del) noexcept nogil:
    if f != NULL and f.bits != NULL:  # live allowed records only (F1): no record read
        return (f.bits[i >> 6] >> (i & 63)) & 1
    if has_del and ((<uint32_t *>rec_at(g, i))[0] & HNSW_DELETED_BIT):
        return False
    return True


# ---------------------------------------------------------------------------
# Per-thread context

cdef Ctx *ctx_new(const Graph *g) noexcept nogil:
    cdef Ctx *c = <Ctx *>calloc(1, sizeof(Ctx))
    if c == NULL:
        return NULL
    cdef size_t big = g.ef_construction if g.ef_construction > g.m0 + 1 else g.m0 + 1
    c.vcap = g.capacity if g.capacity > 0 else 1  # (S1)
    c.visited = <uint16_t *>calloc(c.vcap, sizeof(uint16_t))
    c.tag = 0
    c.sorted = <hnsw_pair *>malloc(big * sizeof(hnsw_pair))
    c.sel = <hnsw_pair *>malloc((g.m0 + 1) * sizeof(hnsw_pair))
    c.tmp = <hnsw_pair *>malloc((g.m0 + 1) * sizeof(hnsw_pair))
    c.sel2 = <hnsw_pair *>malloc((g.m0 + 1) * sizeof(hnsw_pair))
    c.ids = <uint32_t *>malloc((g.m0 + 1) * sizeof(uint32_t))
    c.ids2 = <uint32_t *>malloc((g.m0 + 1) * sizeof(uint32_t))
    c.hop2 = <uint32_t *>malloc((g.m0 + 1) * (g.m0 + 1) * sizeof(uint32_t))
    c.qbuf = <float *>hnsw_aligned_calloc(g.dim * sizeof(float))
    if (c.visited == NULL or c.sorted == NULL or c.sel == NULL or c.tmp == NULL
            or c.sel2 == NULL or c.ids == NULL or c.ids2 == NULL or c.hop2 == NULL
            or c.qbuf == NULL
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
    free(c.hop2)
    free(c.qbuf)
    hnsw_heap_free(&c.top)
    hnsw_heap_free(&c.cand)
    free(c)

cdef inline uint16_t next_tag(Ctx *c) noexcept nogil:
    c.tag += 1
    if c.tag == 0:  # the epoch wrapped: clear once every 65535 searches (S2)
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
    cdef bint filtering = build or has_del or (f != NULL and f.bits != NULL)
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
        if HNSW_UNLIKELY(cnt > maxm):  # (S4, L3)
            return ERR_CORRUPT
        # pass 1: keep the unvisited neighbours, start fetching their vectors
        m = 0
        for j in range(cnt):
            nid = ids[j]
            if HNSW_UNLIKELY(nid >= count):  # (S4, L4)
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
                if accepted(g, nid, f, has_del):  # (S3)
                    if top.n < ef:
                        hnsw_max_push(top, d, nid)
                    else:
                        hnsw_max_replace_top(top, d, nid)
                if top.n:
                    lb = top.a[0].d
    return OK


# Greedy descent through the levels above `stop` (with the spinlocks when the
# build calls it). Checks each id it follows (S4).
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
                if HNSW_UNLIKELY(nid >= count or level_of(g, nid) < level):  # (S4, L4)
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
# Query (searchKnn): greedy descent, then ef-search on level 0. Results, at
# most k, ascending, into out_labels / out_dists; returns their number or an
# error code (< 0). With a filter (f.bits set) the strategy is knn_filtered's
# (_filter.pxi).

cdef Py_ssize_t knn(const Graph *g, Ctx *c, const float *query, size_t k, size_t ef,
                    const Filter *f, int strategy, uint64_t *out_labels,
                    float *out_dists) noexcept nogil:
    cdef const float *q = query
    cdef size_t i
    for i in range(g.dim):  # (L9)
        if not isfinite(query[i]):
            return ERR_NONFINITE
    if g.count == 0 or g.entry == HNSW_NO_ENTRY:
        return 0
    if g.metric == 2:
        hnsw_normalize(query, c.qbuf, g.dim)
        q = c.qbuf
    if ef < k:
        ef = k
    if f != NULL and f.bits != NULL:
        return knn_filtered(g, c, q, k, ef, f, strategy, out_labels, out_dists)
    cdef int rc = graph_search(g, c, q, ef, NULL, False)
    if rc != OK:
        return rc
    return drain(g, c, k, out_labels, out_dists)


# The descent and the level-0 search of a query (already normalized for
# cosine); leaves the accepted records in c.top. acorn: ACORN-1's level-0
# search (_filter.pxi) instead of Algorithm 2.
cdef int graph_search(const Graph *g, Ctx *c, const float *q, size_t ef, const Filter *f,
                      bint acorn) noexcept nogil:
    cdef uint32_t ep = g.entry
    cdef int rc
    if ensure_chunk(g, ep) != OK:  # (S4)
        return ERR_CHECKSUM
    rc = descend(g, q, &ep, g.max_level, 0, False)
    if rc != OK:
        return rc
    if acorn:
        return search_layer_acorn(g, c, q, ep, ef, f)
    return search_layer(g, c, q, ep, 0, ef, f, g.deleted > 0, False)


# The k nearest of c.top, ascending, into the outputs (c.top is left empty).
cdef Py_ssize_t drain(const Graph *g, Ctx *c, size_t k, uint64_t *out_labels,
                      float *out_dists) noexcept nogil:
    cdef size_t i, n
    while c.top.n > k:
        hnsw_max_pop(&c.top)
    n = c.top.n
    while c.top.n:
        i = c.top.n - 1
        out_labels[i] = label_at(g, c.top.a[0].id)
        out_dists[i] = c.top.a[0].d
        hnsw_max_pop(&c.top)
    return <Py_ssize_t>n


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
    cdef int strategy
    cdef uint64_t *out_labels
    cdef float *out_dists
