# Filtered k-NN (included by _hnsw.pyx, after _search.pxi).
#
# Owns: IdFilter (the allowed records of a filtered query as a bitmap over
# internal ids and their sorted list, made once and shared by the queries that
# use it), the three strategies of a filtered query and the choice between them:
#
#   exact   the distance to every allowed vector (a scan of the id list):
#           exact, and costs n_allowed distances whatever the graph's size.
#   graph   hnswlib's filtered search (Algorithm 2 with the filter applied to
#           the result set only): every neighbour's distance is computed, the
#           search goes on until ef allowed records are found. Best when most
#           records pass.
#   acorn   ACORN-1 (Patel et al., SIGMOD 2024): distances only to allowed
#           records; a rejected neighbour is not a candidate, but its own
#           allowed neighbours are (two hops), so a sparse allowed set stays
#           connected through the records it excludes.
#
# The choice (choose_strategy), by n (allowed live records) and s = n / live,
# measured on 30k and 100k x 384 "real-looking" embeddings, m=16 (bench/):
#   - exact when n <= EXACT_PER_EF * ef: a graph search computes about as many
#     distances as that at best, each a random read (the scan reads in order);
#   - exact when s < ACORN_FROM too: below a few percent ACORN-1's recall falls
#     under 0.95 (0.97 at 3%, 0.86 at 1% on 100k rows, ef=64), and the plain
#     filtered search visits about ef / s records, more than the scan;
#   - graph when s >= GRAPH_FROM (it is then as fast as an unfiltered search);
#   - acorn in between (2-3x the plain filtered search at 10-20%);
#   - but for the ip metric, exact in between: under the inner product a short
#     vector is nobody's nearest, so the graph keeps few links to it, and a
#     filter that leaves mostly short vectors finds them poorly by any
#     traversal (recall 0.94 at 10% with ef=256 on a Gaussian mixture).
#
# Widening: the graph and ACORN searches go on until ef allowed records are in
# their result set (or the reachable part of the graph is exhausted); if they
# still hold fewer than min(k, n) (a filter whose records the graph cannot
# reach from the entry point), the exact scan answers instead.
#
# Invariants (cited where they are kept as "(F<n>)"):
#   F1  an IdFilter holds internal ids < the count of the graph it was made
#       for, each of a record that was live when it was made; bit i is set
#       exactly when i is in its sorted, duplicate-free id list. A search
#       checks that the graph's (count, deleted) are still those (a write since
#       would make the bits stale).
#   F2  a filtered query returns exactly min(k, n) records, all allowed,
#       ascending by distance: the exact scan completes a graph search that
#       found fewer.

cdef enum:
    STRATEGY_AUTO = 0
    STRATEGY_EXACT = 1
    STRATEGY_GRAPH = 2
    STRATEGY_ACORN = 3

_STRATEGIES = {"auto": STRATEGY_AUTO, "exact": STRATEGY_EXACT, "graph": STRATEGY_GRAPH,
               "acorn": STRATEGY_ACORN}
_STRATEGY_NAMES = {STRATEGY_EXACT: "exact", STRATEGY_GRAPH: "graph", STRATEGY_ACORN: "acorn"}

# the cost model (above)
cdef double EXACT_PER_EF = 40.0
cdef double ACORN_FROM = 0.05
cdef double GRAPH_FROM = 0.4


cdef extern from *:
    int __builtin_ctzll(unsigned long long x) nogil


cdef int choose_strategy(const Graph *g, size_t n, size_t ef) noexcept nogil:
    cdef double live = <double>(g.count - g.deleted) if g.count > g.deleted else 1.0
    cdef double s = <double>n / live
    if <double>n <= EXACT_PER_EF * <double>ef or s < ACORN_FROM:
        return STRATEGY_EXACT
    if s >= GRAPH_FROM:
        return STRATEGY_GRAPH
    return STRATEGY_EXACT if g.metric == 1 else STRATEGY_ACORN


def _strategy_code(strategy):
    try:
        return _STRATEGIES[strategy]
    except (KeyError, TypeError):
        raise ValueError(f"unknown strategy {strategy!r}: use 'auto', 'exact', 'graph' "
                         "or 'acorn'") from None


cdef class IdFilter:
    """The records a filtered search may return: a bitmap over one graph's
    internal ids and the sorted list of them (F1). Made by
    ``HnswGraph.id_filter(labels)`` or ``id_filter(ids=...)``; valid for that
    graph until it is written (add, mark_deleted)."""
    cdef uint64_t *bits
    cdef uint32_t *ids
    cdef size_t n
    cdef uint64_t count
    cdef uint64_t deleted
    cdef object graph

    def __dealloc__(self):
        free(self.bits)
        free(self.ids)

    def __len__(self):
        return self.n

    @property
    def size(self):
        """The number of allowed (live) records."""
        return self.n

    def internal_ids(self):
        """The allowed internal ids, ascending (uint32, a copy)."""
        out = np.empty(self.n, dtype=np.uint32)
        if self.n:
            memcpy(cnp.PyArray_DATA(<cnp.ndarray>out), self.ids, self.n * sizeof(uint32_t))
        return out

    def __repr__(self):
        return f"<IdFilter {self.n} of {self.count} records>"


cdef IdFilter make_filter(HnswGraph graph, const int64_t *ids, Py_ssize_t n):
    """The filter of internal ids (each already checked < count): deleted records
    are left out, duplicates counted once (F1)."""
    cdef Graph *g = &graph.g
    cdef IdFilter f = IdFilter.__new__(IdFilter)
    cdef uint64_t words = (g.count + 63) >> 6
    cdef uint64_t w, b, i
    cdef Py_ssize_t j
    cdef size_t m = 0
    cdef bint has_del = g.deleted > 0
    f.graph = graph
    f.count = g.count
    f.deleted = g.deleted
    f.bits = <uint64_t *>calloc(words if words else 1, sizeof(uint64_t))
    if f.bits == NULL:
        raise MemoryError()
    with nogil:
        pthread_rwlock_rdlock(&graph.rw)  # (G1)
        for j in range(n):
            i = <uint64_t>ids[j]
            if has_del and ((<uint32_t *>rec_at(g, <uint32_t>i))[0] & HNSW_DELETED_BIT):
                continue
            if not (f.bits[i >> 6] >> (i & 63)) & 1:
                f.bits[i >> 6] |= (<uint64_t>1) << (i & 63)
                m += 1
        pthread_rwlock_unlock(&graph.rw)
    f.n = m
    f.ids = <uint32_t *>malloc((m if m else 1) * sizeof(uint32_t))
    if f.ids == NULL:
        raise MemoryError()
    m = 0
    with nogil:
        for w in range(words):
            b = f.bits[w]
            while b:
                f.ids[m] = <uint32_t>((w << 6) + <uint64_t>__builtin_ctzll(b))
                m += 1
                b &= b - 1
    return f


cdef int check_filter(HnswGraph graph, IdFilter f) except -1:
    if f.graph is not graph:
        raise ValueError("this IdFilter was made for another graph")
    if f.count != graph.g.count or f.deleted != graph.g.deleted:  # (F1)
        raise ValueError("the graph was written since this IdFilter was made: make a new one")
    return 0


# ---------------------------------------------------------------------------
# The exact scan: distances to the allowed vectors, the k nearest kept in c.top.

cdef Py_ssize_t exact_scan(const Graph *g, Ctx *c, const float *q, size_t k, const Filter *f,
                           uint64_t *out_labels, float *out_dists) noexcept nogil:
    cdef hnsw_heap *top = &c.top
    cdef hnsw_dist_fn dist = g.dist
    cdef size_t dim = g.dim, vbytes = g.dim * sizeof(float)
    cdef size_t j, n = f.n
    cdef uint32_t i
    cdef float d
    top.n = 0
    for j in range(n):
        i = f.ids[j]
        if j + 2 < n:
            hnsw_prefetch_span(vec_at(g, f.ids[j + 2]), vbytes)
        if HNSW_UNLIKELY(ensure_chunk(g, i) != OK):  # (S4)
            return ERR_CHECKSUM
        d = dist(q, vec_at(g, i), dim)
        if top.n < k:
            if hnsw_max_push(top, d, i):
                return ERR_NOMEM
        elif d < top.a[0].d:
            hnsw_max_replace_top(top, d, i)
    return drain(g, c, k, out_labels, out_dists)


# ---------------------------------------------------------------------------
# ACORN-1's search of level 0: only allowed records are candidates and get a
# distance; the allowed neighbours of a rejected neighbour are taken in its
# place. Leaves at most ef records in c.top (S3).

cdef int search_layer_acorn(const Graph *g, Ctx *c, const float *q, uint32_t ep, size_t ef,
                            const Filter *f) noexcept nogil:
    cdef uint16_t tag = next_tag(c)
    cdef uint16_t *vis = c.visited
    cdef hnsw_heap *top = &c.top
    cdef hnsw_heap *cand = &c.cand
    cdef hnsw_dist_fn dist = g.dist
    cdef size_t dim = g.dim
    cdef size_t vbytes = dim * sizeof(float)
    cdef uint32_t count = <uint32_t>g.count
    cdef uint32_t maxm = g.m0
    cdef uint32_t *hop = c.hop2
    cdef float d, lb = INFINITY
    cdef uint32_t cur, cnt, cnt2, j, j2, m, nid, n2
    cdef uint32_t *lst
    cdef uint32_t *lst2
    top.n = 0
    cand.n = 0
    d = dist(q, vec_at(g, ep), dim)
    vis[ep] = tag
    if accepted(g, ep, f, False):
        hnsw_max_push(top, d, ep)
        lb = d
    if hnsw_min_push(cand, d, ep):
        return ERR_NOMEM
    while cand.n:
        if cand.a[0].d > lb and top.n >= ef:
            break
        cur = cand.a[0].id
        hnsw_min_pop(cand)
        lst = list_at(g, cur, 0)
        cnt = lst[0] & HNSW_COUNT_MASK
        if HNSW_UNLIKELY(cnt > maxm):  # (S4, L3)
            return ERR_CORRUPT
        # pass 1: the allowed neighbours, and those two hops away through a
        # rejected one (at most m0 * (m0 + 1) ids: hop's size)
        m = 0
        for j in range(cnt):
            nid = lst[1 + j]
            if HNSW_UNLIKELY(nid >= count):  # (S4, L4)
                return ERR_CORRUPT
            if vis[nid] == tag:
                continue
            vis[nid] = tag
            if HNSW_UNLIKELY(ensure_chunk(g, nid) != OK):
                return ERR_CHECKSUM
            if accepted(g, nid, f, False):
                hop[m] = nid
                m += 1
                hnsw_prefetch(vec_at(g, nid))
                continue
            lst2 = list_at(g, nid, 0)
            cnt2 = lst2[0] & HNSW_COUNT_MASK
            if HNSW_UNLIKELY(cnt2 > maxm):
                return ERR_CORRUPT
            for j2 in range(cnt2):
                n2 = lst2[1 + j2]
                if HNSW_UNLIKELY(n2 >= count):
                    return ERR_CORRUPT
                if vis[n2] != tag and accepted(g, n2, f, False):
                    if HNSW_UNLIKELY(ensure_chunk(g, n2) != OK):
                        return ERR_CHECKSUM
                    vis[n2] = tag
                    hop[m] = n2
                    m += 1
                    hnsw_prefetch(vec_at(g, n2))
        # pass 2: distances
        for j in range(m):
            nid = hop[j]
            if j + 1 < m:
                hnsw_prefetch_span(vec_at(g, hop[j + 1]), vbytes)
            d = dist(q, vec_at(g, nid), dim)
            if top.n < ef or d < lb:
                if hnsw_min_push(cand, d, nid):
                    return ERR_NOMEM
                if top.n < ef:
                    if hnsw_max_push(top, d, nid):
                        return ERR_NOMEM
                else:
                    hnsw_max_replace_top(top, d, nid)
                lb = top.a[0].d
    return OK


# ---------------------------------------------------------------------------
# A filtered query (q normalized for cosine, ef >= k): the strategy asked for,
# or chosen by the cost model; the exact scan when a graph search found fewer
# than min(k, n) (F2).

cdef Py_ssize_t knn_filtered(const Graph *g, Ctx *c, const float *q, size_t k, size_t ef,
                             const Filter *f, int strategy, uint64_t *out_labels,
                             float *out_dists) noexcept nogil:
    cdef size_t want = k if k < f.n else f.n
    cdef int rc
    if f.n == 0:
        return 0
    if strategy == STRATEGY_AUTO:
        strategy = choose_strategy(g, f.n, ef)
    if strategy != STRATEGY_EXACT:
        rc = graph_search(g, c, q, ef, f, strategy == STRATEGY_ACORN)
        if rc != OK:
            return rc
        if c.top.n >= want:
            return drain(g, c, k, out_labels, out_dists)
    return exact_scan(g, c, q, k, f, out_labels, out_dists)  # (F2)
