# Meta pages: loading and storing a state and a tree descriptor (the offset
# tables "Meta page", "State" and "Tree descriptor" in _format.pxi), validating
# a meta page, picking the newest valid one (invariant 2; after a reboot, its
# durable state when the newest was never synced: "Durability" in
# _commit.pxi), checking its root pages against the transactions it records
# for them (M_ROOTS, invariant 2), writing one, and refusing a snapshot that
# names pages beyond the end of the file.

cdef void state_load(const char* b, State* s) noexcept nogil:
    # offsets: the "State" and "Tree descriptor" tables in _format.pxi
    s.txnid = tdb_ld64(b)
    s.page_count = tdb_ld32(b + 8)
    s.fl_pgno = tdb_ld32(b + 12)
    s.fl_npages = tdb_ld32(b + 16)
    s.kv.root = tdb_ld32(b + 24)
    s.kv.depth = tdb_ld16(b + 28)
    s.kv.flags = 0
    s.kv.entries = tdb_ld64(b + 32)
    s.cat.root = tdb_ld32(b + 40)
    s.cat.depth = tdb_ld16(b + 44)
    s.cat.flags = 0
    s.cat.entries = tdb_ld64(b + 48)
    s.kv_root_txn = 0  # stored outside the state (M_ROOTS): roots_load
    s.cat_root_txn = 0

cdef void state_store(char* b, const State* s) noexcept nogil:
    memset(b, 0, STATE_SIZE)
    tdb_st64(b, s.txnid)
    tdb_st32(b + 8, s.page_count)
    tdb_st32(b + 12, s.fl_pgno)
    tdb_st32(b + 16, s.fl_npages)
    tdb_st32(b + 24, s.kv.root)
    tdb_st16(b + 28, s.kv.depth)
    tdb_st64(b + 32, s.kv.entries)
    tdb_st32(b + 40, s.cat.root)
    tdb_st16(b + 44, s.cat.depth)
    tdb_st64(b + 48, s.cat.entries)

cdef void roots_load(const char* m, State* cur, State* dur) noexcept nogil:
    # offsets: M_ROOTS in the "Meta page" table of _format.pxi
    cur.kv_root_txn = tdb_ld64(m + M_ROOTS)
    cur.cat_root_txn = tdb_ld64(m + M_ROOTS + 8)
    dur.kv_root_txn = tdb_ld64(m + M_ROOTS + 16)
    dur.cat_root_txn = tdb_ld64(m + M_ROOTS + 24)

cdef void roots_store(char* m, const State* cur, const State* dur) noexcept nogil:
    tdb_st64(m + M_ROOTS, cur.kv_root_txn)
    tdb_st64(m + M_ROOTS + 8, cur.cat_root_txn)
    tdb_st64(m + M_ROOTS + 16, dur.kv_root_txn)
    tdb_st64(m + M_ROOTS + 24, dur.cat_root_txn)

cdef inline void desc_store(char* b, const TreeDesc* d) noexcept nogil:
    tdb_st32(b, d.root)
    tdb_st16(b + 4, d.depth)
    tdb_st16(b + 6, d.flags)
    tdb_st64(b + 8, d.entries)

cdef inline void desc_load(const char* b, TreeDesc* d) noexcept nogil:
    d.root = tdb_ld32(b)
    d.depth = tdb_ld16(b + 4)
    d.flags = tdb_ld16(b + 6)
    d.entries = tdb_ld64(b + 8)

cdef bint meta_valid(EnvC* e, const char* m) noexcept nogil:
    if memcmp(m + M_MAGIC, b"toondb\x00\x1a", 8) != 0:
        return False
    if tdb_ld32(m + M_VERSION) != FORMAT_VERSION or tdb_ld32(m + M_PSIZE) != e.psize:
        return False
    return tdb_crc32c(0, m + 4, META_USED - 4) == tdb_ld32(m)

cdef bint meta_valid_cached(EnvC* e, int slot) noexcept nogil:
    """meta_valid of meta page `slot`, skipping the checksum when the bytes are
    those this process last verified (every read begins by reading both metas)."""
    cdef const char* m = e.map + <size_t>slot * e.psize
    if e.meta_ok[slot] and memcmp(m, e.meta_seen[slot], META_USED) == 0:
        return True
    memcpy(e.meta_seen[slot], m, META_USED)
    e.meta_ok[slot] = meta_valid(e, e.meta_seen[slot])
    return e.meta_ok[slot]

cdef int read_meta(EnvC* e, State* cur, State* dur) noexcept nogil:
    """The newest valid meta (invariant 2); after a reboot, its durable state
    when the newest one was never synced (see Durability in _commit.pxi). The
    first time this process reads a meta, its root pages are checked against
    the transactions it records for them (roots_check)."""
    cdef bint v0, v1
    cdef int slot, tries
    cdef const char* m
    for tries in range(1000):
        v0 = meta_valid_cached(e, 0)
        v1 = meta_valid_cached(e, 1)
        if v0 and v1:
            slot = 0 if tdb_ld64(e.meta_seen[0] + M_STATE) >= tdb_ld64(e.meta_seen[1] + M_STATE) else 1
        elif v0:
            slot = 0
        elif v1:
            slot = 1
        else:
            return corrupt(e, 0, "neither meta page is valid (bad magic, version or checksum)")
        m = e.meta_seen[slot]
        state_load(m + M_STATE, cur)
        state_load(m + M_DURABLE, dur)
        roots_load(m, cur, dur)
        if (memcmp(m + M_BOOT, e.boot_id, 16) != 0 and dur.txnid != 0
                and dur.txnid != cur.txnid):
            cur[0] = dur[0]
        if not state_sane(cur):
            return corrupt(e, 0, "meta page describes an impossible state")
        if e.meta_ok[slot] == 2:
            return 0
        if roots_check(e, cur) == 0:
            e.meta_ok[slot] = 2
            return 0
        # A mismatch is damage unless a commit replaced a meta page meanwhile
        # (then the pages of the state read may have been reused: read again).
        if (memcmp(e.map, e.meta_seen[0], META_USED) == 0
                and memcmp(e.map + e.psize, e.meta_seen[1], META_USED) == 0):
            return -1
    return -1

cdef int root_check(EnvC* e, uint32_t limit, const TreeDesc* d, uint64_t want,
                    bint catalog, const char* which) noexcept nogil:
    cdef const char* p
    cdef uint64_t got
    cdef char msg[256]
    cdef bint leaf, flagged
    if d.root == 0:  # an empty tree
        return 0
    p = clean_page(e, limit, d.root)
    if p == NULL:
        # a damaged page: not this check's to report (its header says nothing);
        # the first read of the tree raises CorruptionError naming it
        e.err = 0
        return 0
    # the root is a node of this tree: a leaf exactly when the depth is 1, and a
    # catalog leaf exactly in the catalog (pages written by one commit share a
    # transaction id, so M_ROOTS alone cannot tell them apart)
    leaf = <uint8_t>p[PH_TYPE] == P_LEAF
    flagged = (p[PH_FLAGS] & F_CATALOG) != 0
    if leaf != (d.depth == 1) or (leaf and flagged != catalog):
        snprintf(msg, sizeof(msg), "the meta page names this page as its %s root (depth %u), "
                 "but it is not such a node (damaged or forged meta page)", which, d.depth)
        return corrupt(e, d.root, msg)
    got = tdb_ld64(p + PH_TXNID)
    if want == 0 or got == want:  # 0: not recorded (files of toondb <= 0.3)
        return 0
    snprintf(msg, sizeof(msg), "the meta page names this page as its %s root, written by "
             "transaction %llu, but the page was written by transaction %llu (the meta page "
             "points at another tree: damaged or forged)", which,
             <unsigned long long>want, <unsigned long long>got)
    return corrupt(e, d.root, msg)

cdef int roots_check(EnvC* e, const State* s) noexcept nogil:
    """Invariant 2: each root page of s is a node of its tree (its type and catalog
    flag agree with the tree and its depth) written by the transaction s records
    for it (M_ROOTS). -1 (E_CORRUPT) if not, or if the pages are not in the file."""
    if s.kv.root == 0 and s.cat.root == 0:
        return 0
    if check_file_size(e, s.page_count) < 0:
        return -1
    if root_check(e, s.page_count, &s.kv, s.kv_root_txn, False, "key-value tree") < 0:
        return -1
    return root_check(e, s.page_count, &s.cat, s.cat_root_txn, True, "catalog")

cdef int note_root_txns(WTxn* w, State* ns) noexcept nogil:
    """Before commit resolves ns's dirty roots: record which transaction wrote
    each root page (M_ROOTS): ns's own for a root this commit writes, else the
    header of the committed page. A new root that is not a node of its tree (the
    check opening makes, roots_check) is refused before anything is written."""
    cdef const char* p
    cdef TreeDesc* d
    cdef uint64_t* out
    cdef int i
    for i in range(2):
        d = &ns.kv if i == 0 else &ns.cat
        out = &ns.kv_root_txn if i == 0 else &ns.cat_root_txn
        if d.root == 0:
            out[0] = 0
        elif d.root & TDB_DIRTY:
            out[0] = ns.txnid
            p = w.dirty[d.root & ~TDB_DIRTY].buf
            if (<uint8_t>p[PH_TYPE] == P_LEAF) != (d.depth == 1) or (
                    <uint8_t>p[PH_TYPE] == P_LEAF and ((p[PH_FLAGS] & F_CATALOG) != 0) != (i == 1)):
                return set_err(w.env, E_INTERNAL, d.root, "a commit's new root is not a node "
                               "of its tree (a bug: please report it); nothing was written")
        else:
            p = clean_page(w.env, w.snap.page_count, d.root)
            if p == NULL:
                return -1
            out[0] = tdb_ld64(p + PH_TXNID)
    return 0

cdef bint desc_sane(const TreeDesc* d, uint32_t page_count) noexcept nogil:
    if d.root == 0:
        return d.depth == 0 and d.entries == 0
    return (d.depth >= 1 and d.depth <= MAX_DEPTH and not (d.root & TDB_DIRTY)
            and d.root >= 2 and d.root < page_count)

cdef bint state_sane(const State* s) noexcept nogil:
    """Invariants of a snapshot's own fields (a damaged meta page whose
    checksum happens to match must not be used)."""
    if s.page_count < 2 or s.page_count >= TDB_DIRTY or s.txnid == 0 or s.txnid >= (<uint64_t>1 << 62):
        return False
    if (s.fl_pgno == 0) != (s.fl_npages == 0):
        return False
    if s.fl_pgno and (s.fl_pgno < 2 or <uint64_t>s.fl_pgno + s.fl_npages > s.page_count):
        return False
    return desc_sane(&s.kv, s.page_count) and desc_sane(&s.cat, s.page_count)

cdef int write_meta(EnvC* e, uint32_t slot, const State* cur, const State* dur) noexcept:
    cdef char buf[256]
    memset(buf, 0, 256)
    buf[M_TYPE] = P_META
    memcpy(buf + M_MAGIC, b"toondb\x00\x1a", 8)
    tdb_st32(buf + M_VERSION, FORMAT_VERSION)
    tdb_st32(buf + M_PSIZE, e.psize)
    state_store(buf + M_STATE, cur)
    state_store(buf + M_DURABLE, dur)
    memcpy(buf + M_BOOT, e.boot_id, 16)
    roots_store(buf, cur, dur)
    tdb_st32(buf, tdb_crc32c(0, buf + 4, META_USED - 4))
    return io_write(e, buf, 256, <uint64_t>slot * e.psize)

cdef int check_file_size(EnvC* e, uint32_t page_count) noexcept nogil:
    """Pages below page_count must exist in the file and fit the mapping: a
    truncated file is corruption, not a SIGBUS."""
    cdef stat st
    if page_count <= e.file_pages:
        return 0
    if fstat(e.fd, &st) < 0:
        return io_err(e, "fstat of the page file failed")
    e.file_pages = <uint64_t>st.st_size // e.psize
    if page_count > e.file_pages:
        return corrupt(e, page_count - 1, "the page file is shorter than its meta page says (truncated)")
    if page_count > e.map_pages:
        return set_err(e, E_FULL, 0, "the page file grew past this handle's map_size; "
                       "reopen the database with a larger map_size")
    return 0
