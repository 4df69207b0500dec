# Write transactions from begin to commit: their lifecycle (buffers, the log
# of keys written, named tree slots), commit (invariant 1: only pages no
# snapshot can see are reused; invariant 3: every page the commit stops using
# enters the new freelist; invariant 4: data before the meta that points at
# it), sync points, the rebase of an optimistic transaction onto a newer
# snapshot, and, while a replicator is attached, the record of each commit's
# changes in the change log (cl_capture, cl_publish: _changelog.pxi). The
# caller holds the write lock (invariant 7) for commit_locked, sync_point and
# rebase.
#
# Durability
# ==========
#
# ``full``: pages, fsync, meta, fsync: a commit that returned survives power loss.
# ``normal``: no fsync per commit. A commit is in the OS page cache when it
# returns, so it survives a crash of the process. Every ``sync_interval`` seconds
# or ``memtable_size_bytes`` of writes (and at checkpoint, and at close when the
# handle wrote since its last one: made by the next holder of the write lock
# when it is busy, invariant 10) a sync point fsyncs the data, writes both meta
# pages with the durable state = this one, and fsyncs again. Until the next sync point the pages of the durable snapshot are
# pinned like a reader's (invariant 1). A meta records the boot id of its writer;
# an open after a reboot (different boot id) whose newest meta is not durable
# falls back to the durable state, which is intact on disk.
# ``off``: no fsync at all; nothing is pinned; after an OS crash the newest
# commits may be damaged (reads report CorruptionError, never wrong data).

cdef enum:
    SYNC_OFF = 0
    SYNC_NORMAL = 1
    SYNC_FULL = 2

    # records of a write transaction's log (replayed by rebase)
    LOG_KEY = 0
    LOG_CREATE = 1
    LOG_DROP = 2

# ----------------------------------------------------------------------------
# Write transaction lifecycle
# ----------------------------------------------------------------------------

cdef WTxn* wtxn_new(EnvC* e) noexcept nogil:
    cdef WTxn* w = <WTxn*>calloc(1, sizeof(WTxn))
    if w == NULL:
        return NULL
    w.env = e
    w.slot = -1
    w.scratch = <char*>malloc(e.psize)
    w.cellbuf = <char*>malloc(e.psize)
    w.sepbuf = <char*>malloc(e.psize)
    w.cellptr = <const char**>malloc((e.psize // 2 + 2) * sizeof(char*))
    w.cellsize = <uint32_t*>malloc((e.psize // 2 + 2) * sizeof(uint32_t))
    w.captrees = 8
    w.trees = <TreeSlot*>calloc(w.captrees, sizeof(TreeSlot))
    w.pool = <char**>malloc(POOL_PAGES * sizeof(char*))
    if (w.scratch == NULL or w.cellbuf == NULL or w.sepbuf == NULL or w.cellptr == NULL
            or w.cellsize == NULL or w.trees == NULL or w.pool == NULL):
        wtxn_free(w)
        return NULL
    return w

cdef void wtxn_reset(WTxn* w) noexcept nogil:
    """Drop every change (abort), keeping the buffers for reuse."""
    cdef uint32_t i
    cdef int t
    for i in range(w.ndirty):
        if w.dirty[i].buf != NULL:
            buf_release(w, w.dirty[i].buf, w.dirty[i].npages)
    w.ndirty = 0
    w.nfreed = 0
    for t in range(2, w.ntrees):
        free(w.trees[t].name)
    w.ntrees = 0
    w.loglen = 0
    w.mods += 1
    w.last_leaf = 0
    w.last_idx = 0

cdef void wtxn_free(WTxn* w) noexcept nogil:
    if w == NULL:
        return
    wtxn_reset(w)
    while w.npool > 0:
        w.npool -= 1
        free(w.pool[w.npool])
    free(w.pool)
    free(w.dirty)
    free(w.freed)
    free(w.freedtx)
    free(w.trees)
    free(w.log)
    free(w.scratch)
    free(w.cellbuf)
    free(w.sepbuf)
    free(w.cellptr)
    free(w.cellsize)
    free(w)

cdef void wtxn_start(WTxn* w, const State* snap, int writable) noexcept nogil:
    wtxn_reset(w)
    w.snap = snap[0]
    w.writable = writable
    memset(w.trees, 0, 2 * sizeof(TreeSlot))
    w.trees[0].desc = snap.kv
    w.trees[0].orig = snap.kv
    w.trees[0].exists = 1
    w.trees[1].desc = snap.cat
    w.trees[1].orig = snap.cat
    w.trees[1].exists = 1
    w.trees[1].leaf_flags = F_CATALOG
    w.ntrees = 2

cdef bint wtxn_small(WTxn* w) noexcept nogil:
    """Are w's growable arrays small enough to keep for another transaction (a
    large one's are freed rather than held by an idle handle)?"""
    return w.capdirty <= 1024 and w.capfreed <= 4096 and w.logcap <= (64 << 10) and w.captrees <= 64

cdef bint wtxn_changed(WTxn* w) noexcept nogil:
    cdef int i
    if w.ndirty > 0 or w.nfreed > 0:
        return True
    for i in range(2, w.ntrees):
        if w.trees[i].dropped or w.trees[i].created or w.trees[i].modified:
            return True
    return False

cdef int log_add(WTxn* w, uint8_t kind, int ti, const unsigned char* key, size_t klen) noexcept nogil:
    cdef size_t need = w.loglen + 7 + klen
    cdef size_t cap
    cdef char* nl
    if need > w.logcap:
        cap = w.logcap * 2 if w.logcap else 4096
        while cap < need:
            cap *= 2
        nl = <char*>realloc(w.log, cap)
        if nl == NULL:
            return nomem(w.env)
        w.log = nl
        w.logcap = cap
    w.log[w.loglen] = <char>kind
    tdb_st32(w.log + w.loglen + 1, <uint32_t>ti)
    tdb_st16(w.log + w.loglen + 5, <uint16_t>klen)
    if klen:
        memcpy(w.log + w.loglen + 7, key, klen)
    w.loglen = need
    return 0

cdef int tree_slot_add(WTxn* w, const unsigned char* name, size_t namelen) noexcept nogil:
    cdef TreeSlot* nt
    cdef int i
    if w.ntrees >= w.captrees:
        nt = <TreeSlot*>realloc(w.trees, w.captrees * 2 * sizeof(TreeSlot))
        if nt == NULL:
            return nomem(w.env)
        w.trees = nt
        w.captrees *= 2
    i = w.ntrees
    memset(&w.trees[i], 0, sizeof(TreeSlot))
    w.trees[i].name = <uint8_t*>malloc(namelen)
    if w.trees[i].name == NULL:
        return nomem(w.env)
    memcpy(w.trees[i].name, name, namelen)
    w.trees[i].namelen = <uint32_t>namelen
    w.ntrees += 1
    return i

cdef int tree_open(WTxn* w, const unsigned char* name, size_t namelen, bint create, bint log) noexcept nogil:
    """The slot of named tree `name` in this transaction: >= 2, -2 when it does
    not exist (and create is false), -1 on error."""
    cdef int i, rc
    cdef const char* cell
    cdef const char* vp
    cdef size_t vlen
    cdef TreeSlot* ts
    for i in range(2, w.ntrees):
        ts = &w.trees[i]
        if ts.namelen == namelen and memcmp(ts.name, name, namelen) == 0:
            if ts.dropped:
                if not create:
                    return -2
                memset(&ts.desc, 0, sizeof(TreeDesc))
                ts.dropped = 0
                ts.created = 1
                ts.modified = 1
                if log and log_add(w, LOG_CREATE, i, NULL, 0) < 0:
                    return -1
            return i
    rc = tree_find(w.env, w, w.snap.page_count, &w.trees[1].desc, name, namelen, &cell)
    if rc < 0:
        return -1
    if rc == 0 and not create:
        return -2
    i = tree_slot_add(w, name, namelen)
    if i < 0:
        return -1
    ts = &w.trees[i]
    if rc == 1:
        if leaf_value(w.env, w, w.snap.page_count, cell, &vp, &vlen) < 0:
            return -1
        if vlen != 16:
            return corrupt(w.env, 0, "catalog entry is not a tree descriptor")
        desc_load(vp, &ts.desc)
        if not desc_sane(&ts.desc, w.snap.page_count):
            return corrupt(w.env, ts.desc.root, "catalog entry describes an impossible tree")
        ts.orig = ts.desc
        ts.exists = 1
    else:
        ts.created = 1
        ts.modified = 1
        if log and log_add(w, LOG_CREATE, i, NULL, 0) < 0:
            return -1
    return i

cdef int tree_drop(WTxn* w, int i, bint log) noexcept nogil:
    cdef TreeSlot* ts = &w.trees[i]
    if tree_free_all(w, ts.desc.root, ts.desc.depth) < 0:
        return -1
    memset(&ts.desc, 0, sizeof(TreeDesc))
    ts.dropped = 1
    ts.created = 0
    ts.modified = 0
    w.mods += 1
    if log and log_add(w, LOG_DROP, i, NULL, 0) < 0:
        return -1
    return 0

# ----------------------------------------------------------------------------
# Commit
# ----------------------------------------------------------------------------

cdef int cmp_dirty_real(const void* a, const void* b) noexcept nogil:
    cdef uint32_t x = (<const uint32_t*>a)[1], y = (<const uint32_t*>b)[1]
    return (x > y) - (x < y)

cdef int fixup_page(WTxn* w, char* p) noexcept nogil:
    """Replace dirty ids by the real page ids commit assigned. An id past the
    dirty set is damage copied from a committed page (a key-value leaf flagged as
    a catalog leaf, say): refused, never used as an index."""
    cdef uint32_t n, j, ref, klen, v
    cdef char* c
    cdef uint8_t t = <uint8_t>p[PH_TYPE]
    if t == P_BRANCH:
        n = nkeys(p)
        for j in range(n + 1):
            ref = child_at(p, j)
            if ref & TDB_DIRTY:
                if (ref & ~TDB_DIRTY) >= w.ndirty:
                    return corrupt(w.env, 0, "a branch names a page id with bit 31 set")
                if w.dirty[ref & ~TDB_DIRTY].buf == NULL:
                    return set_err(w.env, E_INTERNAL, ref, "branch refers to a dropped page")
                set_child_at(p, j, w.dirty[ref & ~TDB_DIRTY].real)
    elif t == P_LEAF:
        n = nkeys(p)
        if p[PH_FLAGS] & F_DIRTYREF:
            for j in range(n):
                c = <char*>cell_at(p, j)
                v = tdb_ld32(c + 2)
                klen = tdb_ld16(c)
                if v & TDB_OVF:
                    ref = tdb_ld32(c + 6 + klen)
                    if ref & TDB_DIRTY:
                        if (ref & ~TDB_DIRTY) >= w.ndirty:
                            return corrupt(w.env, 0, "a leaf names an overflow page id with bit 31 set")
                        tdb_st32(c + 6 + klen, w.dirty[ref & ~TDB_DIRTY].real)
            p[PH_FLAGS] = p[PH_FLAGS] & ~F_DIRTYREF
        if p[PH_FLAGS] & F_CATALOG:
            for j in range(n):
                c = <char*>cell_at(p, j)
                klen = tdb_ld16(c)
                ref = tdb_ld32(c + 6 + klen)
                if ref & TDB_DIRTY:
                    if (ref & ~TDB_DIRTY) >= w.ndirty:
                        return corrupt(w.env, 0, "a catalog entry names a root page id with bit 31 set")
                    tdb_st32(c + 6 + klen, w.dirty[ref & ~TDB_DIRTY].real)
    return 0

cdef int fl_build(WTxn* w, State* ns) noexcept:
    """Allocate and fill the new freelist extent (added to the dirty set). The
    pending groups' runs are encoded once per change of the group (fl_encode)
    and copied after the reusable runs; the reusable runs are counted, then
    written once the extent's own pages are taken from them (taking the lowest
    pages of a run never adds a run: fl_alloc, so the count bounds what is
    written)."""
    cdef EnvC* e = w.env
    cdef size_t runs, bytes_, grp, k
    cdef uint32_t npages, pg, id
    cdef char* buf
    cdef char* q
    if e.fl_nfree == 0 and e.fl_npend == 0:
        ns.fl_pgno = 0
        ns.fl_npages = 0
        return 0
    grp = 0
    for k in range(e.fl_npend):
        if fl_encode(e, &e.fl_pend[k]) < 0:
            return -1
        grp += 12 + 8 * <size_t>e.fl_pend[k].nruns
    bytes_ = FL_RUNS + 8 * (fl_free_runs(e, NULL) + 1) + grp
    npages = <uint32_t>((bytes_ + e.psize - 1) // e.psize)
    pg = fl_alloc(e, ns, npages)
    if pg == 0:
        return -1
    id = dirty_new(w, npages, &buf)
    if id == 0:
        return -1
    w.dirty[id & ~TDB_DIRTY].real = pg
    runs = fl_free_runs(e, buf + FL_RUNS)
    if fl_free_cache(e, buf + FL_RUNS, runs) < 0:
        return -1
    memset(buf, 0, FL_RUNS)
    buf[PH_TYPE] = P_FREELIST
    tdb_st32(buf + PH_AUX, npages)
    tdb_st32(buf + FL_NRUNS, <uint32_t>runs)
    tdb_st32(buf + FL_NGROUPS, <uint32_t>e.fl_npend)
    q = buf + FL_RUNS + 8 * runs
    for k in range(e.fl_npend):
        tdb_st64(q, e.fl_pend[k].txnid)
        tdb_st32(q + 8, e.fl_pend[k].nruns)
        memcpy(q + 12, e.fl_pend[k].enc, 8 * <size_t>e.fl_pend[k].nruns)
        q += 12 + 8 * <size_t>e.fl_pend[k].nruns
    memset(q, 0, <size_t>npages * e.psize - <size_t>(q - buf))
    ns.fl_pgno = pg
    ns.fl_npages = npages
    return 0

cdef int write_dirty(WTxn* w) noexcept:
    """Write every dirty page at its real id, in id order; a run of consecutive
    ids goes out in one pwritev."""
    cdef EnvC* e = w.env
    cdef uint32_t* order
    cdef uint32_t n = 0, i, j, k
    cdef size_t total
    cdef Dirty* d
    cdef iovec iov[64]
    order = <uint32_t*>malloc(<size_t>w.ndirty * 8 + 8)
    if order == NULL:
        return nomem(e)
    for i in range(w.ndirty):
        if w.dirty[i].buf != NULL:
            order[2 * n] = i
            order[2 * n + 1] = w.dirty[i].real
            n += 1
    if n > 24:
        qsort(order, n, 8, cmp_dirty_real)
    else:
        for i in range(1, n):
            j = i
            while j > 0 and order[2 * j - 1] > order[2 * j + 1]:
                k = order[2 * j]
                order[2 * j] = order[2 * j - 2]
                order[2 * j - 2] = k
                k = order[2 * j + 1]
                order[2 * j + 1] = order[2 * j - 1]
                order[2 * j - 1] = k
                j -= 1
    i = 0
    while i < n:
        j = i
        while (j + 1 < n and j - i < 63 and
               order[2 * (j + 1) + 1] == order[2 * j + 1] + w.dirty[order[2 * j]].npages):
            j += 1
        total = 0
        for k in range(i, j + 1):
            d = &w.dirty[order[2 * k]]
            iov[k - i].iov_base = d.buf
            iov[k - i].iov_len = <size_t>d.npages * e.psize
            total += iov[k - i].iov_len
        if io_writev(e, iov, j - i + 1, total, <uint64_t>w.dirty[order[2 * i]].real * e.psize) < 0:
            free(order)
            return -1
        i = j + 1
    free(order)
    for i in range(w.ndirty):
        if w.dirty[i].buf != NULL and vbits_set(e, w.dirty[i].real, 1) < 0:
            return -1
    return 0

cdef int push_freed(WTxn* w, uint64_t txnid, uint64_t durable) noexcept nogil:
    """The pages this transaction freed become two pending groups: those the
    durable snapshot can see (written at or before it: pinned until a sync
    point) and the rest (waiting only for readers)."""
    cdef EnvC* e = w.env
    cdef size_t i, npin = 0, nfree = 0
    cdef uint32_t* pin = <uint32_t*>malloc(w.nfreed * 4 + 4)
    cdef uint32_t* unpin = <uint32_t*>malloc(w.nfreed * 4 + 4)
    cdef int rc = 0
    if pin == NULL or unpin == NULL:
        free(pin)
        free(unpin)
        return nomem(e)
    for i in range(w.nfreed):
        if durable != 0 and w.freedtx[i] <= durable and e.sync_mode != SYNC_OFF:
            pin[npin] = w.freed[i]
            npin += 1
        else:
            unpin[nfree] = w.freed[i]
            nfree += 1
    sort_u32(pin, npin, False)
    sort_u32(unpin, nfree, False)
    if fl_push_merged(e, txnid | TDB_PINNED, pin, <uint32_t>npin, durable, w.slot) < 0 or \
            fl_push_merged(e, txnid, unpin, <uint32_t>nfree, durable, w.slot) < 0:
        rc = -1
    free(pin)
    free(unpin)
    return rc

cdef int commit_locked(WTxn* w, const State* ldur, uint64_t* out_txnid) noexcept:
    """Write the transaction as the new newest snapshot. The caller holds the
    write lock and has checked that w's snapshot is the newest one."""
    cdef EnvC* e = w.env
    cdef State ns, dur
    cdef char descbuf[16]
    cdef int i, rc
    cdef uint32_t real
    cdef uint64_t horizon
    cdef TreeSlot* ts
    cdef const char* flp
    cdef uint64_t ext_txn
    cdef State dloc
    cdef size_t need, pinned, deficit
    cdef bint syncpoint = False
    out_txnid[0] = w.snap.txnid
    for i in range(2, w.ntrees):
        ts = &w.trees[i]
        if ts.dropped:
            if ts.exists and tree_delete(w, &w.trees[1], ts.name, ts.namelen) < 0:
                return -1
        elif ts.modified or ts.created:
            desc_store(descbuf, &ts.desc)
            if tree_put(w, &w.trees[1], ts.name, ts.namelen, descbuf, 16) < 0:
                return -1
    if w.ndirty == 0 and w.nfreed == 0:
        return 0
    # while a replicator is attached: this commit's changes, into the change log
    # (published below, once the meta page is written: invariant 9)
    if cl_capture(w, w.snap.txnid + 1) < 0:
        return -1
    ns = w.snap
    ns.txnid = w.snap.txnid + 1
    ns.kv = w.trees[0].desc
    ns.cat = w.trees[1].desc
    if e.fl_txnid != w.snap.txnid and fl_load(e, &w.snap) < 0:
        fl_clear(e)
        return -1
    # invariant 1: reuse only pages no live snapshot can see
    horizon = reader_horizon(e, w.snap.txnid)
    dloc = ldur[0]
    if fl_release(e, horizon, dloc.txnid, e.sync_mode != SYNC_OFF) < 0:
        fl_clear(e)
        return -1
    if e.sync_mode == SYNC_NORMAL:
        # Rather than grow the file to keep the durable snapshot's pages, make
        # the newest snapshot durable (a sync point) when that frees enough
        # pages: the file then stays within about 2x of the data under steady
        # rewrites (the durable snapshot would otherwise be a third copy).
        need = 2
        for i in range(<int>w.ndirty):
            if w.dirty[i].buf != NULL:
                need += w.dirty[i].npages
        if need > e.fl_nfree:
            pinned = 0
            for i in range(<int>e.fl_npend):
                if (e.fl_pend[i].txnid & TDB_PINNED) and (e.fl_pend[i].txnid & ~TDB_PINNED) <= horizon:
                    pinned += e.fl_pend[i].n
            deficit = need - e.fl_nfree
            if pinned > 0 and (
                    (2 * pinned >= deficit and 16 * deficit >= w.snap.page_count and deficit >= 64)
                    or (8 * pinned >= w.snap.page_count and pinned * e.psize >= (16 << 20))):
                if sync_point(e, &w.snap) < 0:
                    fl_clear(e)
                    return -1
                dloc = w.snap
                if fl_release(e, horizon, dloc.txnid, True) < 0:
                    fl_clear(e)
                    return -1
    for i in range(<int>w.ndirty):
        if w.dirty[i].buf != NULL:
            real = fl_alloc(e, &ns, w.dirty[i].npages)
            if real == 0:
                fl_clear(e)
                return -1
            w.dirty[i].real = real
    # invariant 3: the old freelist extent is freed like every page replaced,
    # as written by the transaction in its header: the snapshot's own when this
    # handle's last commit made it (known without reading the page: a page
    # fault, the first time a new page is read through the mapping)
    if w.snap.fl_pgno:
        if e.fl_ext_pgno == w.snap.fl_pgno and e.fl_ext_txnid == w.snap.txnid:
            ext_txn = w.snap.txnid
        else:
            flp = clean_page(e, w.snap.page_count, w.snap.fl_pgno)
            if flp == NULL:
                fl_clear(e)
                return -1
            ext_txn = tdb_ld64(flp + PH_TXNID)
        if freed_add(w, w.snap.fl_pgno, w.snap.fl_npages, ext_txn) < 0:
            fl_clear(e)
            return -1
    if push_freed(w, ns.txnid, dloc.txnid) < 0 or fl_build(w, &ns) < 0:
        fl_clear(e)
        return -1
    for i in range(<int>w.ndirty):
        if w.dirty[i].buf != NULL:
            if fixup_page(w, w.dirty[i].buf) < 0:
                fl_clear(e)
                return -1
            tdb_st32(w.dirty[i].buf + PH_PGNO, w.dirty[i].real)
            tdb_st64(w.dirty[i].buf + PH_TXNID, ns.txnid)
            tdb_st32(w.dirty[i].buf, tdb_crc32c(0, w.dirty[i].buf + 4,
                                                <size_t>w.dirty[i].npages * e.psize - 4))
    if note_root_txns(w, &ns) < 0:
        fl_clear(e)
        return -1
    if ns.kv.root & TDB_DIRTY:
        ns.kv.root = w.dirty[ns.kv.root & ~TDB_DIRTY].real
    if ns.cat.root & TDB_DIRTY:
        ns.cat.root = w.dirty[ns.cat.root & ~TDB_DIRTY].real
    if write_dirty(w) < 0:
        fl_clear(e)
        return -1
    # invariant 4: data before the meta that points at it
    if e.sync_mode == SYNC_FULL:
        rc = io_sync(e)
        if rc == 0:
            rc = write_meta(e, <uint32_t>(ns.txnid & 1), &ns, &ns)
        if rc == 0:
            rc = io_sync(e)
        e.last_synced_txnid = ns.txnid
        if rc == 0:
            sync_request_clear(e)  # invariant 10: this commit synced the whole file
    elif e.sync_mode == SYNC_NORMAL:
        # invariant 10: a sync point a closed handle handed on is made here
        syncpoint = (e.unsynced_bytes >= e.sync_bytes
                     or tdb_monotonic() - e.last_sync >= e.sync_interval
                     or sync_requested(e))
        if syncpoint:
            rc = sync_point(e, &ns)
        else:
            rc = write_meta(e, <uint32_t>(ns.txnid & 1), &ns, &dloc)
    else:
        memset(&dur, 0, sizeof(State))
        rc = write_meta(e, <uint32_t>(ns.txnid & 1), &ns, &dur)
    if rc < 0:
        fl_clear(e)
        return -1
    e.fl_txnid = ns.txnid
    e.fl_ext_txnid = ns.txnid
    e.fl_ext_pgno = ns.fl_pgno
    cl_publish(e)  # the change log record of this commit, now that it is committed
    if ns.page_count > e.file_pages:
        e.file_pages = ns.page_count  # this commit's writes extended the file
    out_txnid[0] = ns.txnid
    return 0

cdef int sync_point(EnvC* e, const State* st) noexcept:
    """fsync the data, then make st the durable state in BOTH meta pages (the
    other slot first, so a reader always finds st or its predecessor intact),
    then fsync again. Afterwards no valid meta names an older durable state."""
    if io_sync(e) < 0:
        return -1
    if write_meta(e, <uint32_t>((st.txnid + 1) & 1), st, st) < 0:
        return -1
    if write_meta(e, <uint32_t>(st.txnid & 1), st, st) < 0:
        return -1
    if io_sync(e) < 0:
        return -1
    e.last_synced_txnid = st.txnid
    sync_request_clear(e)  # invariant 10: the sync point a closed handle owed is made
    return 0


cdef bint sync_requested(EnvC* e) noexcept nogil:
    """Did a closed handle hand its sync point to this holder of the write lock?
    (invariant 10; LF_SYNCREQ in the lock file)"""
    return e.lmap != NULL and tdb_aload32(<uint32_t*>(e.lmap + LF_SYNCREQ)) != 0


cdef void sync_request_clear(EnvC* e) noexcept nogil:
    if e.lmap != NULL:
        tdb_astore32(<uint32_t*>(e.lmap + LF_SYNCREQ), 0)


cdef void sync_request_set(EnvC* e) noexcept nogil:
    if e.lmap != NULL:
        tdb_astore32(<uint32_t*>(e.lmap + LF_SYNCREQ), 1)

cdef int values_equal(EnvC* e, WTxn* wa, uint32_t la, const TreeDesc* ta,
                      WTxn* wb, uint32_t lb, const TreeDesc* tb,
                      const unsigned char* key, size_t klen) noexcept nogil:
    """1 when key has the same value (or is absent) in both trees, 0 if not, -1 on error."""
    cdef const char* ca
    cdef const char* cb
    cdef const char* va
    cdef const char* vb
    cdef size_t lena, lenb
    cdef int ra = tree_find(e, wa, la, ta, key, klen, &ca)
    cdef int rb
    if ra < 0:
        return -1
    rb = tree_find(e, wb, lb, tb, key, klen, &cb)
    if rb < 0:
        return -1
    if ra != rb:
        return 0
    if ra == 0:
        return 1
    if leaf_value(e, wa, la, ca, &va, &lena) < 0 or leaf_value(e, wb, lb, cb, &vb, &lenb) < 0:
        return -1
    return lena == lenb and memcmp(va, vb, lena) == 0

cdef int rebase(WTxn* w, WTxn* w2, const State* latest) noexcept:
    """Replay w (begun at an older snapshot) onto w2 (begun at latest), or fail
    with E_CONFLICT when a key w wrote was changed by a commit after w began
    (first committer wins)."""
    cdef EnvC* e = w.env
    cdef size_t at = 0
    cdef uint8_t kind
    cdef uint32_t ti, klen
    cdef const unsigned char* key
    cdef int* tmap
    cdef int i, j, rc
    cdef TreeSlot* src
    cdef const char* cell
    cdef const char* vp
    cdef size_t vlen
    cdef TreeDesc empty
    memset(&empty, 0, sizeof(TreeDesc))
    wtxn_start(w2, latest, 1)
    tmap = <int*>malloc(w.ntrees * sizeof(int))
    if tmap == NULL:
        return nomem(e)
    tmap[0] = 0
    tmap[1] = 1
    for i in range(2, w.ntrees):
        tmap[i] = -1
    try:
        while at < w.loglen:
            kind = <uint8_t>w.log[at]
            ti = tdb_ld32(w.log + at + 1)
            klen = tdb_ld16(w.log + at + 5)
            key = <const unsigned char*>(w.log + at + 7)
            at += 7 + klen
            src = &w.trees[ti]
            if ti >= 2 and tmap[ti] == -1:
                j = tree_open(w2, src.name, src.namelen, False, False)
                if j == -1:
                    return -1
                if j == -2:
                    j = tree_open(w2, src.name, src.namelen, True, False)
                    if j < 0:
                        return -1
                    w2.trees[j].exists = 0
                    w2.trees[j].created = 0
                    w2.trees[j].modified = 0
                tmap[ti] = j
                # a tree created or dropped by another commit since w began, or one
                # w created or dropped whose content another commit changed
                if (w2.trees[j].exists != src.exists or
                        ((src.created or src.dropped) and src.exists and
                         memcmp(&w2.trees[j].orig, &src.orig, sizeof(TreeDesc)) != 0)):
                    return set_err(e, E_CONFLICT, 0, "another transaction created, dropped or "
                                   "changed a named tree that this transaction created or dropped, "
                                   "after it began; nothing was applied, retry it")
            j = tmap[ti]
            if kind == LOG_CREATE:
                if tree_open(w2, src.name, src.namelen, True, False) < 0:
                    return -1
                w2.trees[j].created = 1
                w2.trees[j].modified = 1
                if w2.trees[j].desc.root != 0:
                    if tree_drop(w2, j, False) < 0:
                        return -1
                    w2.trees[j].dropped = 0
                    w2.trees[j].created = 1
                    w2.trees[j].modified = 1
                continue
            if kind == LOG_DROP:
                if tree_drop(w2, j, False) < 0:
                    return -1
                continue
            rc = values_equal(e, w, w.snap.page_count, &src.orig if src.exists else &empty,
                              NULL, latest.page_count, &w2.trees[j].orig if w2.trees[j].exists else &empty,
                              key, klen)
            if rc < 0:
                return -1
            if rc == 0:
                return set_err(e, E_CONFLICT, 0, "another transaction committed a change to a key "
                               "this transaction also wrote, after it began (first committer wins); "
                               "nothing was applied, retry the transaction")
            rc = tree_find(e, w, w.snap.page_count, &src.desc, key, klen, &cell)
            if rc < 0:
                return -1
            if rc == 1:
                if leaf_value(e, w, w.snap.page_count, cell, &vp, &vlen) < 0:
                    return -1
                if tree_put(w2, &w2.trees[j], key, klen, vp, vlen) < 0:
                    return -1
            elif tree_delete(w2, &w2.trees[j], key, klen) < 0:
                return -1
    finally:
        free(tmap)
    return 0
