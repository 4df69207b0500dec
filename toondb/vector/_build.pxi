# Insertion and the parallel build of an owned HNSW graph (included by _hnsw.pyx).
#
# Owns: the neighbour selection heuristic (Algorithm 4), linking a node into a
# neighbour's list, the insertion of one node (Algorithm 1, as hnswlib's
# addPoint), growth of the owned memory, and HnswGraph.add(): writing a batch's
# records, then inserting them over several threads with the GIL released.
#
# The build runs as hnswlib's does: a per-node spinlock (byte 3 of the record's
# word) guards the node's neighbour lists on every level, a global mutex (glock)
# guards the entry point and max level, levels are drawn up front with hnswlib's
# generator, and the records are written before the threads start. Memory for
# level 0 is one slab per growth (huge pages where Linux gives them), with the
# chunk bases pointing into it.
#
# Invariants (cited where they are kept as "(B<n>)"):
#   B1  add() holds the graph's write lock for the whole batch (no search sees a
#       half-built graph, G1) and refuses while regions are exported: growth may
#       move memory (R4).
#   B2  a batch's records (zeroed links, vector, label, node-table entry) are
#       all written before a thread starts: a thread that reaches a node through
#       a fresh link finds its data. The arena has room for the whole batch
#       first, so it never moves during a build.
#   B3  levels are drawn in batch order from the generator state kept in the
#       header: a seed gives the same levels whatever the thread count.
#   B4  a thread holds at most one spinlock, and only while one list is read or
#       rewritten; glock is taken before any spinlock (held for a whole insertion
#       only when it raises the max level): no lock order can deadlock.
#   B5  lists are stored farthest first (as hnswlib) and a full list is pruned
#       with the heuristic, so a count never exceeds its maximum (L3); links go
#       only to nodes found on that level (L4).
#   B6  every level-0 chunk a write touches is flagged dirty (new records,
#       rewritten lists, deleted bits) and upper_dirty is set when the arena or
#       node table change: a store rewrites only those (R6).
#   B7  a deleted entry point is offered as a candidate on every level (as
#       hnswlib's addPoint): without it a node added after the entry point's
#       deletion could get no links and be unreachable.

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
        hnsw_set_flag(g.dirty + (n >> g.chunk_shift))  # (B6)
    hnsw_spin_lock(lock_of(g, n))  # the only lock held (B4)
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
        for j in range(r):  # farthest first, as hnswlib stores them (B5)
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
    pthread_mutex_lock(glock)  # before any spinlock (B4)
    maxl = g.max_level
    ep = g.entry
    hold = level > maxl
    if not hold:
        pthread_mutex_unlock(glock)
    if ep == HNSW_NO_ENTRY:  # the first node (L6)
        g.entry = cur
        g.max_level = level
        pthread_mutex_unlock(glock)
        return OK
    rc = OK
    # A deleted entry point is never a search result, so it is offered as a
    # candidate on every level (B7).
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
        r = select_neighbors(g, c.sorted, n, g.m, c.sel)  # found on level l (B5)
        lst = list_at(g, cur, l)
        hnsw_spin_lock(lock_of(g, cur))
        for j in range(r):  # farthest first, as hnswlib stores them (B5)
            lst[1 + j] = c.sel[r - 1 - j].id
        (<uint16_t *>lst)[0] = <uint16_t>r
        hnsw_spin_unlock(lock_of(g, cur))
        for j in range(r):
            connect(g, c, c.sel[j].id, cur, c.sel[j].d, l)
        ep = c.sel[0].id
        l -= 1
    if hold:  # the new top node, still under glock (L6)
        g.entry = cur
        g.max_level = level
        pthread_mutex_unlock(glock)
    return rc


# ---------------------------------------------------------------------------
# Python side: growth, a batch's records, the threads

cdef int grow(HnswGraph self, Py_ssize_t need) except -1:
    """Room for `need` records in an owned graph (under the write lock, B1)."""
    cdef Graph *g = &self.g
    cdef uint64_t chunk = 1 << g.chunk_shift
    cdef uint64_t cap = g.capacity
    cdef size_t n_chunks, i
    cdef char **chunks
    cdef char *slab
    cdef void *p
    if <uint64_t>need <= cap:
        return 0
    if need >= 0xffffffff:  # (L2)
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
    self.pool_clear()  # every Ctx was sized for the old capacity (S1)
    return 0


cdef int add_batch(HnswGraph self, vectors, labels, int threads, progress) except -1:
    """HnswGraph.add(): check the batch, write its records (B2, B3), build."""
    if self.ro:  # (G2)
        raise ValueError("this HnswGraph is a read-only view")
    if self.exports:  # (B1)
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
        return 0
    if np.unique(labs).shape[0] != n:
        raise ValueError("duplicate labels in one add() batch")
    if (labs == LABEL_NONE).any():  # (L8)
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
        pthread_rwlock_wrlock(&self.rw)  # (B1)
    try:
        for i in range(n):  # one live record per label (L8)
            old = hfind(g, L[i])
            if old >= 0 and not ((<uint32_t *>rec_at(g, <uint32_t>old))[0] & HNSW_DELETED_BIT):
                raise ValueError(f"label {L[i]} is already in the graph")
        first = g.count
        grow(self, first + n)
        if hreserve(g, first + n) != OK:  # (L10)
            raise MemoryError()
        # levels, drawn in order so a seed gives the same graph (B3)
        levels = np.empty(n, dtype=np.int32)
        LV = levels
        need_upper = 0
        for i in range(n):
            u = hnsw_level_uniform(&g.rng)
            s = -log(u) * g.level_mult if u > 0 else <double>MAX_LEVEL
            lev = MAX_LEVEL if s > MAX_LEVEL else <int>s
            LV[i] = lev
            need_upper += <uint64_t>lev * g.upper_block
        if g.upper_bytes + need_upper > g.upper_cap:  # room for the batch (B2)
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
            if g.metric == 2:  # (L9)
                hnsw_normalize(v, v, g.dim)
            hnsw_store_u64(r + g.label_off, L[i])
            if lev > 0:
                g.nodes[id_] = (<uint64_t>lev << 56) | g.upper_bytes
                memset(g.upper + g.upper_bytes, 0, <size_t>lev * g.upper_block)
                g.upper_bytes += <uint64_t>lev * g.upper_block
            else:
                g.nodes[id_] = 0
            hput(g, L[i], <uint32_t>id_)  # the newest record wins (L8)
            g.dirty[id_ >> g.chunk_shift] = 1  # (B6)
        g.count = first + n
        g.upper_dirty = True  # (B6)
        run_build(self, first, n, threads, progress)
    finally:
        with nogil:
            pthread_rwlock_unlock(&self.rw)
    return 0


cdef int run_build(HnswGraph self, uint64_t first, Py_ssize_t n, int threads, progress) except -1:
    """Insert records first .. first+n-1 (already written) over `threads` threads."""
    cdef _Job job = _Job.__new__(_Job)
    job.next = 0
    job.n = n
    job.first = first
    job.error = 0
    job.cancel = 0
    if threads > n // 4:
        threads = max(1, <int>(n // 4))
    if threads == 1 and progress is None:
        _build_worker(self, job)
    else:
        # the workers release the GIL; this thread reports progress and
        # stops them (cancel flag) if it is interrupted meanwhile
        with ThreadPoolExecutor(max_workers=threads) as ex:
            futs = [ex.submit(_build_worker, self, job) for _ in range(threads)]
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
    return 0


def _build_worker(HnswGraph self, _Job job):
    """One build thread: insert the job's next record until none is left."""
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
