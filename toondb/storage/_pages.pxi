# Pages as the C layer sees them: how an error is reported (every C function
# returns -1 and leaves a code, a page and a message in the EnvC; raise_err
# turns them into the exception), how a committed page is verified before use
# (invariant 6: checksum, own id and structure, once per process, remembered
# in the verified bitmap; verify_node checks invariant 5 within a page), and
# the accessors of cells and the binary searches within a page. Layouts:
# _format.pxi.

# ----------------------------------------------------------------------------
# Errors: C functions return -1 and leave (code, page, message) in the EnvC
# ----------------------------------------------------------------------------

cdef enum:
    # error codes of the C layer; raise_err() turns them into exceptions
    E_CORRUPT = 1
    E_NOMEM = 2
    E_IO = 3
    E_FULL = 4
    E_READERS = 5
    E_LOCKED = 6
    E_CONFLICT = 7
    E_INTERNAL = 8

cdef int set_err(EnvC* e, int code, uint32_t page, const char* msg) noexcept nogil:
    e.err = code
    e.err_page = page
    snprintf(e.errmsg, sizeof(e.errmsg), "%s", msg)
    return -1

cdef int corrupt(EnvC* e, uint32_t page, const char* what) noexcept nogil:
    e.err = E_CORRUPT
    e.err_page = page
    snprintf(e.errmsg, sizeof(e.errmsg), "page %u: %s", page, what)
    return -1

cdef int io_err(EnvC* e, const char* what) noexcept nogil:
    cdef int code = errno
    e.err = E_IO
    e.err_page = 0
    snprintf(e.errmsg, sizeof(e.errmsg), "%s: %s (errno %d)", what, strerror(code), code)
    return -1

cdef int nomem(EnvC* e) noexcept nogil:
    return set_err(e, E_NOMEM, 0, "out of memory")

cdef object raise_err(EnvC* e):
    cdef str msg = e.errmsg.decode("utf-8", "replace")
    cdef int code = e.err
    e.err = 0
    if code == E_CORRUPT:
        err = CorruptionError(
            f"the database file is damaged: {msg}. Restore it from a backup; "
            "'toondb check' lists every damaged page.")
        err.page = e.err_page
        raise err
    if code == E_NOMEM:
        raise MemoryError(msg)
    if code == E_IO:
        raise OSError(msg)
    if code == E_FULL:
        raise DatabaseFullError(msg)
    if code == E_READERS:
        raise ReadersFullError(msg)
    if code == E_LOCKED:
        raise DatabaseLockedError(msg)
    if code == E_CONFLICT:
        raise TransactionConflictError(msg)
    raise ToonDBError(f"internal error: {msg}")

# ----------------------------------------------------------------------------
# Page access. Invariant 6: a clean page is verified once per process before use.
# ----------------------------------------------------------------------------

cdef inline bint vbit(EnvC* e, uint32_t pg) noexcept nogil:
    return (pg >> 6) < e.vwords and (e.vbits[pg >> 6] >> (pg & 63)) & 1

cdef int vbits_set(EnvC* e, uint32_t pg, uint32_t n) noexcept nogil:
    cdef size_t need = ((<size_t>pg + n) >> 6) + 1
    cdef size_t newwords
    cdef uint64_t* nb
    cdef uint32_t i
    if need > e.vwords:
        newwords = e.vwords * 2 if e.vwords * 2 > need else need + 1024
        nb = <uint64_t*>realloc(e.vbits, newwords * 8)
        if nb == NULL:
            return nomem(e)
        memset(nb + e.vwords, 0, (newwords - e.vwords) * 8)
        e.vbits = nb
        e.vwords = newwords
    for i in range(pg, pg + n):
        e.vbits[i >> 6] |= (<uint64_t>1) << (i & 63)
    return 0

cdef inline uint32_t leaf_cell_size(const char* c) noexcept nogil:
    cdef uint32_t v = tdb_ld32(c + 2)
    if v & TDB_OVF:
        return 10 + tdb_ld16(c)
    return 6 + tdb_ld16(c) + v

cdef inline uint32_t branch_cell_size(const char* c) noexcept nogil:
    return 6 + tdb_ld16(c + 4)

cdef int verify_node(EnvC* e, uint32_t pg, const char* p) noexcept nogil:
    """Structural check of a branch or leaf page (invariant 5 within the page)."""
    cdef uint32_t ps = e.psize
    cdef uint32_t n = tdb_ld16(p + PH_NKEYS)
    cdef uint32_t lower = tdb_ld16(p + PH_LOWER)
    cdef uint32_t upper = tdb_ld16(p + PH_UPPER)
    cdef uint32_t i, off, sz, klen, prevlen = 0
    cdef const char* c
    cdef const unsigned char* prevkey = NULL
    cdef bint leaf = p[PH_TYPE] == P_LEAF
    if lower != PH_SIZE + 2 * n or lower > upper or upper > ps:
        return corrupt(e, pg, "bad page header (cell count or free space bounds)")
    if not leaf and (tdb_ld32(p + PH_AUX) & TDB_DIRTY or tdb_ld32(p + PH_AUX) < 2):
        return corrupt(e, pg, "branch names an impossible leftmost child page id")
    for i in range(n):
        off = tdb_ld16(p + PH_SIZE + 2 * i)
        if off < lower or off + 6 > ps:
            return corrupt(e, pg, "cell offset out of bounds")
        c = p + off
        if leaf:
            klen = tdb_ld16(c)
            sz = leaf_cell_size(c)
        else:
            klen = tdb_ld16(c + 4)
            sz = branch_cell_size(c)
        if off + sz > ps or klen == 0 or klen > e.max_key:
            return corrupt(e, pg, "cell extends past the page or has a bad key length")
        # page ids stored in committed pages are real ids: bit 31 marks a page of
        # a write transaction's memory and can only come from damage
        if not leaf:
            if tdb_ld32(c) & TDB_DIRTY or tdb_ld32(c) < 2:
                return corrupt(e, pg, "branch cell names an impossible child page id")
        elif tdb_ld32(c + 2) & TDB_OVF:
            if tdb_ld32(c + 6 + klen) & TDB_DIRTY or tdb_ld32(c + 6 + klen) < 2:
                return corrupt(e, pg, "leaf cell names an impossible overflow page id")
        elif p[PH_FLAGS] & F_CATALOG:
            if tdb_ld32(c + 2) != 16 or tdb_ld32(c + 6 + klen) & TDB_DIRTY:
                return corrupt(e, pg, "catalog entry is not a valid tree descriptor")
        if prevkey != NULL and tdb_keycmp(prevkey, prevlen, <const unsigned char*>(c + 6), klen) >= 0:
            return corrupt(e, pg, "keys out of order")
        prevkey = <const unsigned char*>(c + 6)
        prevlen = klen
    return 0

cdef const char* verify_page(EnvC* e, uint32_t limit, uint32_t pg, uint32_t* npages) noexcept nogil:
    """Check page pg's checksum, own id and structure; its address, or NULL."""
    cdef const char* p
    cdef uint32_t n = 1, t
    cdef uint64_t bytes_
    if pg < 2 or pg >= limit:
        corrupt(e, pg, "page id out of range of the snapshot")
        return NULL
    p = e.map + <size_t>pg * e.psize
    t = <uint8_t>p[PH_TYPE]
    if t == P_OVERFLOW or t == P_FREELIST:
        n = tdb_ld32(p + PH_AUX)
        if n == 0 or <uint64_t>pg + n > limit:
            corrupt(e, pg, "extent length out of range")
            return NULL
    elif t != P_BRANCH and t != P_LEAF:
        corrupt(e, pg, "unknown page type")
        return NULL
    bytes_ = <uint64_t>n * e.psize
    if tdb_crc32c(0, p + 4, bytes_ - 4) != tdb_ld32(p):
        corrupt(e, pg, "checksum mismatch")
        return NULL
    if tdb_ld32(p + PH_PGNO) != pg:
        corrupt(e, pg, "page carries another page's id (misdirected write)")
        return NULL
    if (t == P_BRANCH or t == P_LEAF) and verify_node(e, pg, p) < 0:
        return NULL
    npages[0] = n
    return p

cdef const char* clean_page(EnvC* e, uint32_t limit, uint32_t pg) noexcept nogil:
    """The mapped address of committed page pg, verified once (invariant 6); NULL on error."""
    cdef const char* p
    cdef uint32_t n
    if pg < 2 or pg >= limit:
        corrupt(e, pg, "page id out of range of the snapshot")
        return NULL
    if vbit(e, pg):
        return e.map + <size_t>pg * e.psize
    p = verify_page(e, limit, pg, &n)
    # only an extent's first page is marked: an id that points inside an extent
    # is never a page, and must be verified (and fail) as one
    if p == NULL or vbits_set(e, pg, 1) < 0:
        return NULL
    return p

cdef inline const char* page_of(EnvC* e, WTxn* w, uint32_t limit, uint32_t pg) noexcept nogil:
    """A page of a snapshot, or of a write transaction's dirty set."""
    cdef uint32_t i
    if pg & TDB_DIRTY:
        i = pg & ~TDB_DIRTY
        if w == NULL or i >= w.ndirty or w.dirty[i].buf == NULL:
            set_err(e, E_INTERNAL, pg, "dangling dirty page reference")
            return NULL
        return w.dirty[i].buf
    return clean_page(e, limit, pg)

# ---- cell accessors --------------------------------------------------------

cdef inline const char* cell_at(const char* p, uint32_t i) noexcept nogil:
    return p + tdb_ld16(p + PH_SIZE + 2 * i)

cdef inline uint32_t nkeys(const char* p) noexcept nogil:
    return tdb_ld16(p + PH_NKEYS)

cdef inline uint32_t child_at(const char* p, uint32_t i) noexcept nogil:
    if i == 0:
        return tdb_ld32(p + PH_AUX)
    return tdb_ld32(cell_at(p, i - 1))

cdef inline void set_child_at(char* p, uint32_t i, uint32_t child) noexcept nogil:
    if i == 0:
        tdb_st32(p + PH_AUX, child)
    else:
        tdb_st32(<char*>cell_at(p, i - 1), child)

cdef inline uint32_t branch_upper(const char* p, const unsigned char* key, size_t klen) noexcept nogil:
    """The child index for key: the number of separators <= key."""
    cdef uint32_t lo = 0, hi = nkeys(p), mid
    cdef const char* c
    while lo < hi:
        mid = (lo + hi) >> 1
        c = cell_at(p, mid)
        if tdb_keycmp(<const unsigned char*>(c + 6), tdb_ld16(c + 4), key, klen) <= 0:
            lo = mid + 1
        else:
            hi = mid
    return lo

cdef inline uint32_t leaf_lower(const char* p, const unsigned char* key, size_t klen, bint* found) noexcept nogil:
    """The index of the first cell whose key is >= key."""
    cdef uint32_t lo = 0, n = nkeys(p), hi = n, mid
    cdef const char* c
    cdef int r
    while lo < hi:
        mid = (lo + hi) >> 1
        c = cell_at(p, mid)
        if tdb_keycmp(<const unsigned char*>(c + 6), tdb_ld16(c), key, klen) < 0:
            lo = mid + 1
        else:
            hi = mid
    found[0] = False
    if lo < n:
        c = cell_at(p, lo)
        found[0] = tdb_keycmp(<const unsigned char*>(c + 6), tdb_ld16(c), key, klen) == 0
    return lo

cdef int leaf_value(EnvC* e, WTxn* w, uint32_t limit, const char* c,
                    const char** vp, size_t* vlen) noexcept nogil:
    """Where the value of leaf cell c lives (inline, or in its overflow extent)."""
    cdef uint32_t klen = tdb_ld16(c)
    cdef uint32_t v = tdb_ld32(c + 2)
    cdef uint32_t pg
    cdef const char* op
    if not (v & TDB_OVF):
        vp[0] = c + 6 + klen
        vlen[0] = v
        return 0
    v &= ~TDB_OVF
    pg = tdb_ld32(c + 6 + klen)
    op = page_of(e, w, limit, pg)
    if op == NULL:
        return -1
    if <uint8_t>op[PH_TYPE] != P_OVERFLOW or <uint64_t>tdb_ld32(op + PH_AUX) * e.psize < <uint64_t>v + OV_DATA:
        return corrupt(e, pg, "overflow extent too short for its value")
    vp[0] = op + OV_DATA
    vlen[0] = v
    return 0
