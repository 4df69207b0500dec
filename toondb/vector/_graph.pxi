# The Python face of the HNSW kernel (included by _hnsw.pyx): Neighbor,
# neighbors(), the argument conversions, and the HnswGraph class.
#
# Owns: an HnswGraph's lifetime (its memory, locks and pool of per-thread
# contexts), its properties, searches (one query, or a batch over threads with
# the GIL released), deletion, reading records back (labels, vectors, the label
# table) and the dirty-chunk tracking a store reads. The longer bodies live with
# their part: add() in _build.pxi, view()/copy() and the region exports in
# _regions.pxi.
#
# Invariants (cited where they are kept as "(G<n>)"):
#   G1  writers (add, mark_deleted) hold the write lock; searches and reads of
#       records (search, search_batch, vectors, label_table, copy) a read lock:
#       a search never runs with a build. The lock is taken without the GIL.
#   G2  a view is read-only: add() and mark_deleted() raise (R1).
#   G3  results are ascending by distance, at most k, never a deleted record
#       (L7) nor one outside the filter (and with a filter, min(k, allowed):
#       F2); search_batch pads its rows with label 2**64-1 and distance inf (L8).
#   G4  a Ctx taken from the pool is returned to it (or freed) before the call
#       ends; growth frees the pool (S1).


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
    graph over existing memory (_layout.pxi documents the layout).
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
        g.vec_off = <uint32_t>align8(4 + 4 * g.m0)  # (L1)
        g.label_off = <uint32_t>align8(g.vec_off + 4 * <size_t>dim)
        g.record_size = g.label_off + 8
        g.upper_block = 4 + 4 * g.m
        g.level_mult = 1.0 / log(<double>m)
        g.rng = hnsw_minstd_seed(<uint64_t>(int(seed) & 0xffffffffffffffff))
        g.dist = hnsw_kernel(0 if g.metric == 0 else 1, self.simd_lvl)
        self.ro = False
        self.owns_memory = True
        grow(self, capacity)

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
        if c != NULL and c.vcap < self.g.capacity:  # (S1)
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
        add_batch(self, vectors, labels, threads, progress)

    # -- delete -----------------------------------------------------------------

    def mark_deleted(self, labels):
        """Mark labels deleted: they are still traversed but never returned.
        Unknown labels raise KeyError (nothing is marked); marking twice is a no-op."""
        if self.ro:  # (G2)
            raise ValueError("this HnswGraph is a read-only view")
        labs = _as_labels(labels)
        cdef const uint64_t[::1] L = labs
        cdef Py_ssize_t i, idx
        cdef uint32_t *w
        with nogil:
            pthread_rwlock_wrlock(&self.rw)  # (G1)
        try:
            ids = np.empty(L.shape[0], dtype=np.int64)
            for i in range(L.shape[0]):
                idx = hfind(&self.g, L[i])
                if idx < 0:
                    raise KeyError(f"label {L[i]} is not in the graph")
                ids[i] = idx
            for idx in ids:
                w = <uint32_t *>rec_at(&self.g, <uint32_t>idx)
                if not (w[0] & HNSW_DELETED_BIT):  # count each record once (L7)
                    w[0] |= HNSW_DELETED_BIT
                    self.g.deleted += 1
                    self.g.dirty[<uint32_t>idx >> self.g.chunk_shift] = 1  # (B6)
        finally:
            with nogil:
                pthread_rwlock_unlock(&self.rw)

    def _ensure_map(self):
        # a view has no label map (not part of the regions): build it on first use
        cdef uint64_t i
        if self.ro and self.g.hcap == 0 and self.g.count:
            verify_all(self)  # (R3)
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
        verify_all(self)  # (R3)
        out = np.empty(self.g.count, dtype=np.uint64)
        cdef uint64_t[::1] o = out
        cdef uint64_t i
        for i in range(self.g.count):
            o[i] = label_at(&self.g, <uint32_t>i)
        return out

    def vector(self, Py_ssize_t i):
        """A copy of the stored vector of internal id i (float32, (dim,); for
        cosine the normalized vector). IndexError when i is out of range."""
        verify_all(self)  # (R3)
        if i < 0 or <uint64_t>i >= self.g.count:
            raise IndexError(f"internal id {i} out of range (count {self.g.count})")
        out = np.empty(self.g.dim, dtype=np.float32)
        cdef float[::1] o = out
        memcpy(&o[0], vec_at(&self.g, <uint32_t>i), self.g.dim * sizeof(float))
        return out

    def vectors(self, ids):
        """Copies of the stored vectors of internal ids (float32, (n, dim))."""
        verify_all(self)  # (R3)
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
            pthread_rwlock_rdlock(&self.rw)  # (G1)
            for i in range(n):
                memcpy(op + i * self.g.dim, vec_at(&self.g, <uint32_t>ip[i]), vb)
            pthread_rwlock_unlock(&self.rw)
        return out

    def label_table(self):
        """The live records as (labels uint64[n], ids uint32[n]) sorted by label:
        the label -> internal id map a store keeps beside the regions (searched
        with numpy.searchsorted, so a view needs no hash). Deleted records are
        left out; a label with two live records raises HnswCorruptionError."""
        verify_all(self)  # (R3)
        cdef Graph *g = &self.g
        cdef uint64_t live = g.count - g.deleted if g.deleted <= g.count else 0
        cdef uint64_t i, j = 0
        cdef bint has_del = g.deleted > 0
        labels = np.empty(live, dtype=np.uint64)
        ids = np.empty(live, dtype=np.uint32)
        cdef uint64_t[::1] L = labels
        cdef uint32_t[::1] I = ids
        with nogil:
            pthread_rwlock_rdlock(&self.rw)  # (G1)
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
        if j != live:  # (L7)
            raise HnswCorruptionError("deleted_count does not match the records' deleted bits")
        order = np.argsort(labels, kind="stable")
        labels = labels[order]
        ids = ids[order]
        if live > 1 and not (labels[1:] != labels[:live - 1]).all():
            raise HnswCorruptionError("a label has two live records")  # (L8)
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

    def copy(self, Py_ssize_t capacity=0):
        """An owned, mutable deep copy of this graph (a view or an owned graph),
        with room for `capacity` records (at least its count): the same chunk
        layout, levels generator state and label map (the newest record of a
        label wins), no dirty chunks. Every neighbour list is checked first
        (HnswCorruptionError), since add() writes through them."""
        return copy_graph(self, capacity)

    @staticmethod
    def from_regions(header, level0, upper, nodes, Py_ssize_t capacity=0):
        """An owned, mutable graph copied from regions (as view() takes them):
        view(...).copy(capacity)."""
        return HnswGraph.view(header, level0, upper, nodes).copy(capacity)

    # -- search -----------------------------------------------------------------

    def id_filter(self, labels=None, *, ids=None):
        """An IdFilter of the live records with these labels (unknown and deleted
        ones are left out), or with these internal ids (``ids=``, each < count).
        A filter serves any number of searches of this graph until it is written."""
        if (labels is None) == (ids is None):
            raise TypeError("id_filter takes labels or ids=, one of them")
        cdef cnp.ndarray a
        cdef int64_t *ap
        cdef Py_ssize_t i, n, idx
        if labels is not None:
            labs = np.unique(_as_labels(labels, "filter"))
            self._ensure_map()
            a = np.empty(labs.shape[0], dtype=np.int64)
            ap = <int64_t *>cnp.PyArray_DATA(a)
            n = 0
            for lab in labs:
                idx = hfind(&self.g, <uint64_t>lab)
                if idx >= 0:
                    ap[n] = idx
                    n += 1
            return make_filter(self, ap, n)
        a = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        n = a.shape[0]
        ap = <int64_t *>cnp.PyArray_DATA(a)
        for i in range(n):
            if ap[i] < 0 or <uint64_t>ap[i] >= self.g.count:
                raise IndexError(f"internal id {ap[i]} out of range (count {self.g.count})")
        return make_filter(self, ap, n)

    def _as_filter(self, filter):
        if filter is None or isinstance(filter, IdFilter):
            if filter is not None:
                check_filter(self, <IdFilter>filter)
            return filter
        return self.id_filter(filter)

    def filter_strategy(self, filter, int ef=64):
        """The strategy a search with this filter (an IdFilter or labels) and ef
        takes under strategy="auto": 'exact', 'graph' or 'acorn' (_filter.pxi)."""
        cdef IdFilter f = self._as_filter(filter)
        if ef < 1:
            raise ValueError(f"ef must be >= 1, got {ef}")
        return _STRATEGY_NAMES[choose_strategy(&self.g, f.n, ef)]

    def search(self, query, int k=10, int ef=64, filter=None, strategy="auto"):
        """The k nearest labels of one query (dim,), ascending by distance:
        (labels uint64[k'], distances float32[k']) with k' <= k.

        filter: None, an IdFilter of this graph (id_filter()) or an array of
        allowed labels: only those are returned, and exactly min(k, allowed
        live records) of them (F2). strategy: how a filtered search runs:
        'auto' (by the allowed fraction), 'exact', 'graph' or 'acorn'."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if ef < 1:
            raise ValueError(f"ef must be >= 1, got {ef}")
        cdef int strat = STRATEGY_AUTO if strategy == "auto" else _strategy_code(strategy)
        cdef cnp.ndarray q
        if (type(query) is np.ndarray and cnp.PyArray_TYPE(<cnp.ndarray>query) == cnp.NPY_FLOAT32
                and cnp.PyArray_NDIM(<cnp.ndarray>query) == 1
                and cnp.PyArray_DIM(<cnp.ndarray>query, 0) == self.g.dim
                and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>query)):
            q = <cnp.ndarray>query  # fast path: finiteness is checked in C
        else:
            q = _as_vectors(query, self.g.dim, 1, "query")
        cdef Filter filt
        cdef IdFilter idf = None
        filt.bits = NULL
        filt.ids = NULL
        filt.n = 0
        if filter is not None:
            idf = self._as_filter(filter)
            if idf.n == 0:
                return np.empty(0, np.uint64), np.empty(0, np.float32)
            filt.bits = idf.bits
            filt.ids = idf.ids
            filt.n = idf.n
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
            pthread_rwlock_rdlock(&self.rw)  # (G1)
            c = self.ctx_get()
            if c == NULL:
                n = ERR_NOMEM
            else:
                n = knn(&self.g, c, qp, kk, ef, &filt, strat, olp, odp)
                self.ctx_put(c)  # (G4)
            pthread_rwlock_unlock(&self.rw)
        if n < 0:
            _raise(n, "query")  # (S5)
        if <size_t>n == kk:
            return out_l, out_d
        return out_l[:n], out_d[:n]

    def search_neighbors(self, query, int k=10, int ef=64, filter=None, strategy="auto"):
        """search() as a list of Neighbor(id, distance), nearest first."""
        cdef cnp.ndarray labels, dists
        labels, dists = self.search(query, k, ef, filter, strategy)
        return _neighbors_of(labels, dists, cnp.PyArray_DIM(labels, 0))

    def search_batch(self, queries, int k=10, int ef=64, int threads=1, filter=None,
                     strategy="auto"):
        """search() for each row of queries (nq, dim) over `threads` threads with
        the GIL released: (labels uint64[nq, k], distances float32[nq, k]), rows
        padded with label 2**64-1 and distance inf when fewer than k are found."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if ef < 1:
            raise ValueError(f"ef must be >= 1, got {ef}")
        if threads < 1:
            raise ValueError("threads must be >= 1")
        cdef int strat = _strategy_code(strategy)
        qs = _as_vectors(queries, self.g.dim, 2, "queries")
        cdef IdFilter idf = self._as_filter(filter)
        cdef Py_ssize_t nq = qs.shape[0]
        out_l = np.full((nq, k), LABEL_NONE, dtype=np.uint64)  # padding (G3)
        out_d = np.full((nq, k), np.inf, dtype=np.float32)
        if nq == 0 or (idf is not None and idf.n == 0):
            return out_l, out_d
        cdef _Job job = _Job.__new__(_Job)
        cdef const float[:, ::1] Q = qs
        cdef uint64_t[:, ::1] OL = out_l
        cdef float[:, ::1] OD = out_d
        job.next = 0
        job.n = nq
        job.error = 0
        job.queries = &Q[0, 0]
        job.k = k
        job.ef = ef
        job.out_labels = &OL[0, 0]
        job.out_dists = &OD[0, 0]
        job.strategy = strat
        job.filt.bits = NULL
        job.filt.ids = NULL
        job.filt.n = 0
        if idf is not None:
            job.filt.bits = idf.bits
            job.filt.ids = idf.ids
            job.filt.n = idf.n
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
            _raise(job.error, "queries")  # (S5)
        return out_l, out_d

    def _search_worker(self, _Job job):
        # one thread of search_batch: the next query until none is left (G1, G4)
        cdef Ctx *c
        cdef uint64_t i
        cdef Py_ssize_t r
        cdef size_t dim = self.g.dim
        with nogil:
            pthread_rwlock_rdlock(&self.rw)  # (G1)
            c = self.ctx_get()
            if c == NULL:
                job.error = ERR_NOMEM
            else:
                while True:
                    i = hnsw_fetch_add(&job.next, 1)
                    if i >= job.n:
                        break
                    r = knn(&self.g, c, job.queries + i * dim, job.k, job.ef, &job.filt,
                            job.strategy, job.out_labels + i * job.k,
                            job.out_dists + i * job.k)
                    if r < 0:
                        job.error = <int>r
                        break
                self.ctx_put(c)  # (G4)
            pthread_rwlock_unlock(&self.rw)

    # -- regions (the bodies are in _regions.pxi) ------------------------------------

    def header_bytes(self):
        """The 128-byte header (a copy)."""
        cdef hnsw_header_t h = graph_header(self)
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
        return open_view(header, level0, upper, nodes, owner, level0_checks)
