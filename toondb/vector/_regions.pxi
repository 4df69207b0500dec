# Views over stored regions, checksummed chunks, exports and owned copies
# (included by _hnsw.pyx).
#
# Owns: HnswGraph.view() (a read-only graph over memory it does not own: a
# store's pages through the mmap, bytes, or raw addresses), the lazy CRC-32C
# check of each level-0 chunk of such a view, the header a graph writes, the
# read-only buffers it exports (_Region), and copy(): an owned, mutable graph
# made from a view (or another graph) for a store that writes regions back. An
# owned graph flags the level-0 chunks add() and mark_deleted() write
# (dirty_chunks(), upper_dirty, clear_dirty()), so a store rewrites only those.
# These functions take the graph as `self`: they are HnswGraph's methods, out of
# the class body because Cython cannot split a class across include files.
#
# Invariants (cited where they are kept as "(R<n>)"):
#   R1  a view owns none of its memory and never writes a region; the buffers
#       and the owner it maps are kept alive in `keep` as long as it lives.
#   R2  a view checks every structural header field when it opens (L1, L2, L5,
#       L6, L7); neighbour ids are checked by the search as it reads them (S4),
#       and every list by check_links before a copy is built on (L3, L4).
#   R3  a level-0 chunk with a checksum is verified before any of its records
#       is read: on the search path by ensure_chunk (once: the chk_ok flag), by
#       verify_all before any other read (labels, vectors, the label map, copy).
#   R4  exported regions are read-only memoryviews counted in `exports`; add()
#       refuses to run while one is alive, since growth may move memory (B1).
#   R5  the header a graph writes describes the regions it exports (L1-L7); a
#       view re-exports the header it was opened with, its deleted_count current.
#   R6  copy() keeps the chunk layout and the level generator's state (building
#       on continues the same stream, B3), rebuilds the label map in id order
#       (the newest record of a label wins, L8) and starts with no dirty chunk.


# ---------------------------------------------------------------------------
# Chunk checksums (R3)

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


cdef int verify_all(HnswGraph self) except -1:
    """A view with lazy chunk checksums: verify every chunk now (before an
    operation that reads records outside a search: labels, copies, ...)."""
    cdef uint64_t c
    if self.g.chk_ok == NULL:
        return 0
    for c in range(self.g.n_chunks):
        if not self.g.chk_ok[c] and verify_chunk(&self.g, c) != OK:
            _raise(ERR_CHECKSUM, "")
    return 0


# ---------------------------------------------------------------------------
# Exports: the header and read-only buffers over the regions

cdef hnsw_header_t graph_header(HnswGraph self) noexcept:
    """The header describing this graph's regions (R5)."""
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


cdef class _Region:
    """A read-only buffer over one region of a graph; keeps the graph alive and
    blocks add() (which may move memory) while exported (R4)."""
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


# ---------------------------------------------------------------------------
# Views

cdef HnswGraph open_view(header, level0, upper, nodes, owner, level0_checks):
    """HnswGraph.view(): check the header and map the regions (R1, R2, R3)."""
    cdef HnswGraph self = HnswGraph.__new__(HnswGraph)
    cdef hnsw_header_t h
    cdef Graph *g = &self.g
    cdef uint64_t i, chunk, n_chunks, need, lev, off, x
    cdef uintptr_t sa
    keep = [owner]
    self.keep = keep  # (R1)

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
            or h.upper_block != 4 + 4 * h.m):  # (L1)
        raise HnswCorruptionError("record layout fields do not match dim / m0")
    if h.count >= 0xffffffff or h.count > h.capacity:  # (L2)
        raise HnswCorruptionError(f"bad count {h.count} (capacity {h.capacity})")
    if h.level0_bytes != h.count * h.record_size or h.nodes_bytes != h.count * 8:
        raise HnswCorruptionError("region sizes do not match count")
    if h.deleted_count > h.count:  # (L7)
        raise HnswCorruptionError("deleted_count > count")
    if h.count == 0:  # (L6)
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
    for i in range(h.count):  # (L5)
        x = g.nodes[i]
        lev = x >> 56
        off = x & OFF_MASK
        if <int64_t>lev > h.max_level:
            raise HnswCorruptionError(f"node {i}: level {lev} above max level {h.max_level}")
        if lev and (off % 4 or off + lev * h.upper_block > h.upper_bytes):
            raise HnswCorruptionError(f"node {i}: upper links out of the arena")
    if h.count and <int32_t>(g.nodes[h.entry_point] >> 56) != h.max_level:  # (L6)
        raise HnswCorruptionError("the entry point's level is not max_level")
    self.view_header = h
    self.ro = True
    self.owns_memory = False
    return self


# ---------------------------------------------------------------------------
# Owned copies

cdef int check_links(HnswGraph self) except -1:
    # every neighbour list in range (L3, L4), as a build that writes through
    # them needs (a search checks as it goes; a build must not write out of bounds)
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
    return 0


cdef HnswGraph copy_graph(HnswGraph self, Py_ssize_t capacity):
    """HnswGraph.copy(): an owned, mutable deep copy (R6)."""
    cdef Graph *s = &self.g
    cdef HnswGraph out
    cdef Graph *d
    cdef uint64_t chunk, n_used, i
    cdef void *p
    if s.m0 != 2 * s.m:  # (L1)
        raise HnswCorruptionError(f"m0 {s.m0} is not 2 * m ({s.m}): cannot continue this graph")
    verify_all(self)  # (R3)
    with nogil:
        pthread_rwlock_rdlock(&self.rw)
    try:
        check_links(self)  # (R2)
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
        for i in range(s.count):  # ascending: an upsert's newer record wins (L8)
            hput(d, label_at(d, <uint32_t>i), <uint32_t>i)
    finally:
        with nogil:
            pthread_rwlock_unlock(&self.rw)
    return out
