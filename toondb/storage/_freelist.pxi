# The freelist (invariants 1 and 3), in memory as of transaction e.fl_txnid:
# e.fl_free, the reusable pages (sorted descending, so the smallest is popped
# from the end), and e.fl_pend, groups of pages that some snapshot may still
# see, each freed by its transaction id or by older ones merged into it.
# fl_load reads it from a snapshot's freelist extent ("Freelist extent" in
# _format.pxi); fl_release moves a group to the reusable set once no reader,
# and for pinned pages no durable snapshot, can see it (invariant 1);
# fl_push_merged adds the pages a commit freed, merged into the newest group
# of their kind when both would be released together; fl_alloc hands out
# pages, reused ones first; commit writes it back as a new extent (fl_build, _commit.pxi), so that every page
# not reachable from the meta is listed (invariant 3). _read_freelist decodes
# an extent for stats() and check(). Each pending group keeps its pages encoded
# as runs (fl_encode) from the first commit that writes it until it changes, so
# that a commit encodes only the groups it changed, not every group pending.

cdef void fl_clear(EnvC* e) noexcept nogil:
    cdef size_t i
    for i in range(e.fl_npend):
        free(e.fl_pend[i].pages)
        free(e.fl_pend[i].enc)
    e.fl_npend = 0
    e.fl_nfree = 0
    e.fl_txnid = 0

cdef int fl_reserve_free(EnvC* e, size_t n) noexcept nogil:
    cdef size_t cap
    cdef uint32_t* nf
    if n <= e.fl_capfree:
        return 0
    cap = e.fl_capfree * 2 if e.fl_capfree else 1024
    while cap < n:
        cap *= 2
    nf = <uint32_t*>realloc(e.fl_free, cap * 4)
    if nf == NULL:
        return nomem(e)
    e.fl_free = nf
    e.fl_capfree = cap
    return 0

cdef void sort_u32(uint32_t* a, size_t n, bint descending) noexcept nogil:
    """Sort page ids: insertion sort for the few of a small commit, else qsort."""
    cdef size_t i, j
    cdef uint32_t v
    if n > 24:
        qsort(a, n, 4, cmp_desc_u32 if descending else cmp_asc_u32)
        return
    for i in range(1, n):
        v = a[i]
        j = i
        while j > 0 and ((a[j - 1] < v) if descending else (a[j - 1] > v)):
            a[j] = a[j - 1]
            j -= 1
        a[j] = v

cdef int cmp_desc_u32(const void* a, const void* b) noexcept nogil:
    cdef uint32_t x = (<const uint32_t*>a)[0], y = (<const uint32_t*>b)[0]
    return (x < y) - (x > y)

cdef int cmp_asc_u32(const void* a, const void* b) noexcept nogil:
    cdef uint32_t x = (<const uint32_t*>a)[0], y = (<const uint32_t*>b)[0]
    return (x > y) - (x < y)

cdef int fl_push_pending(EnvC* e, uint64_t txnid, const uint32_t* pages, uint32_t n) noexcept nogil:
    cdef Pending* np
    cdef size_t cap
    if n == 0:
        return 0
    if e.fl_npend >= e.fl_cappend:
        cap = e.fl_cappend * 2 if e.fl_cappend else 16
        np = <Pending*>realloc(e.fl_pend, cap * sizeof(Pending))
        if np == NULL:
            return nomem(e)
        e.fl_pend = np
        e.fl_cappend = cap
    e.fl_pend[e.fl_npend].pages = <uint32_t*>malloc(<size_t>n * 4)
    if e.fl_pend[e.fl_npend].pages == NULL:
        return nomem(e)
    memcpy(e.fl_pend[e.fl_npend].pages, pages, <size_t>n * 4)
    e.fl_pend[e.fl_npend].n = n
    e.fl_pend[e.fl_npend].txnid = txnid
    e.fl_pend[e.fl_npend].enc = NULL
    e.fl_pend[e.fl_npend].nruns = 0
    e.fl_npend += 1
    return 0

cdef bint fl_readers_between(EnvC* e, uint64_t lo, uint64_t hi, int own_slot) noexcept nogil:
    """Does a reader slot other than own_slot hold a snapshot in [lo, hi)?"""
    cdef int i, used
    cdef uint64_t t
    if e.nolock:
        return False
    used = tdb_aload32(<uint32_t*>(e.lmap + LF_USED))
    if used > <int>e.nslots:
        used = e.nslots
    for i in range(used):
        if i == own_slot or tdb_aload32(slot_pid(e, i)) == 0:
            continue
        t = tdb_aload64(slot_txn(e, i))
        if t != 0 and lo <= t < hi:
            return True
    return False

cdef int fl_push_merged(EnvC* e, uint64_t txnid, const uint32_t* pages, uint32_t n,
                        uint64_t durable, int own_slot) noexcept nogil:
    """Add a pending group (pages ascending) of transaction txnid, the newest
    commit, merged into the newest group of its kind (pinned or not) when no
    snapshot in use, nor for pinned pages the durable one, lies between the two
    transactions: fl_release would free both groups at the same commit, since
    the reader horizon and the durable snapshot only move to snapshots >= txnid
    from there (a reader that starts at txnid - 1 during this commit at worst
    delays the older pages; invariant 1 holds either way, as the merged group
    carries the newer id). The freelist extent then stays proportional to the
    pages pending, not to the commits since the last sync point or since the
    oldest reader began."""
    cdef size_t k, a, b, o
    cdef uint64_t last, kind = txnid & TDB_PINNED, f = txnid & ~TDB_PINNED
    cdef uint32_t* grown
    cdef Pending* g
    if n == 0:
        return 0
    k = e.fl_npend
    while k > 0 and (e.fl_pend[k - 1].txnid & TDB_PINNED) != kind:
        k -= 1
    if k == 0:
        return fl_push_pending(e, txnid, pages, n)
    g = &e.fl_pend[k - 1]
    last = g.txnid & ~TDB_PINNED
    if last > f or fl_readers_between(e, last, f, own_slot) or (
            kind and durable != 0 and last <= durable < f):
        return fl_push_pending(e, txnid, pages, n)
    grown = <uint32_t*>realloc(g.pages, (<size_t>g.n + n) * 4)
    if grown == NULL:
        return nomem(e)
    g.pages = grown
    # merge two ascending arrays in place, from the large end
    a = g.n
    b = n
    o = <size_t>g.n + n
    while b > 0:
        if a > 0 and g.pages[a - 1] > pages[b - 1]:
            g.pages[o - 1] = g.pages[a - 1]
            a -= 1
        else:
            g.pages[o - 1] = pages[b - 1]
            b -= 1
        o -= 1
    g.n += n
    g.txnid = txnid
    free(g.enc)  # its runs changed: encoded again by the next fl_build
    g.enc = NULL
    return 0

cdef int fl_load(EnvC* e, const State* st) noexcept nogil:
    """Load the freelist of snapshot st into memory."""
    cdef const char* p
    cdef const char* q
    cdef const char* end
    cdef uint32_t nruns, ngroups, i, j, start, cnt, gruns
    cdef uint64_t txnid
    cdef size_t total
    cdef uint32_t* tmp
    fl_clear(e)
    if st.fl_pgno == 0:
        e.fl_txnid = st.txnid
        return 0
    p = clean_page(e, st.page_count, st.fl_pgno)
    if p == NULL:
        return -1
    if <uint8_t>p[PH_TYPE] != P_FREELIST or tdb_ld32(p + PH_AUX) != st.fl_npages:
        return corrupt(e, st.fl_pgno, "expected the freelist extent")
    end = p + <size_t>st.fl_npages * e.psize
    nruns = tdb_ld32(p + FL_NRUNS)
    ngroups = tdb_ld32(p + FL_NGROUPS)
    q = p + FL_RUNS
    total = 0
    if q + <size_t>nruns * 8 > end:
        return corrupt(e, st.fl_pgno, "freelist runs extend past the extent")
    for i in range(nruns):
        total += tdb_ld32(q + 8 * i + 4)
    if total > st.page_count:
        return corrupt(e, st.fl_pgno, "freelist lists more pages than the file has")
    if fl_reserve_free(e, total) < 0:
        return -1
    for i in range(nruns):
        start = tdb_ld32(q)
        cnt = tdb_ld32(q + 4)
        q += 8
        if start < 2 or <uint64_t>start + cnt > st.page_count:
            return corrupt(e, st.fl_pgno, "freelist run out of range")
        for j in range(cnt):
            e.fl_free[e.fl_nfree] = start + j
            e.fl_nfree += 1
    qsort(e.fl_free, e.fl_nfree, 4, cmp_desc_u32)
    for i in range(ngroups):
        if q + 12 > end:
            return corrupt(e, st.fl_pgno, "freelist group extends past the extent")
        txnid = tdb_ld64(q)
        gruns = tdb_ld32(q + 8)
        q += 12
        if q + <size_t>gruns * 8 > end:
            return corrupt(e, st.fl_pgno, "freelist group extends past the extent")
        total = 0
        for j in range(gruns):
            total += tdb_ld32(q + 8 * j + 4)
        if total > st.page_count:
            return corrupt(e, st.fl_pgno, "freelist group lists more pages than the file has")
        tmp = <uint32_t*>malloc(total * 4 + 4)
        if tmp == NULL:
            return nomem(e)
        total = 0
        for j in range(gruns):
            start = tdb_ld32(q)
            cnt = tdb_ld32(q + 4)
            q += 8
            if start < 2 or <uint64_t>start + cnt > st.page_count:
                free(tmp)
                return corrupt(e, st.fl_pgno, "freelist run out of range")
            while cnt > 0:
                tmp[total] = start
                total += 1
                start += 1
                cnt -= 1
        if fl_push_pending(e, txnid, tmp, <uint32_t>total) < 0:
            free(tmp)
            return -1
        free(tmp)
    e.fl_txnid = st.txnid
    return 0

cdef int fl_release(EnvC* e, uint64_t horizon, uint64_t durable, bint honor_pins) noexcept nogil:
    """Move to the reusable set the pages freed by transactions f <= horizon (no
    reader can see them) and, for pages the durable snapshot sees, f <= durable."""
    cdef size_t i, k = 0, add = 0, a, b, o
    cdef uint32_t* merged
    cdef uint64_t f
    cdef bint* ready = <bint*>malloc(e.fl_npend * sizeof(bint) + 1)
    if ready == NULL:
        return nomem(e)
    for i in range(e.fl_npend):
        f = e.fl_pend[i].txnid & ~TDB_PINNED
        ready[i] = f <= horizon and (not (e.fl_pend[i].txnid & TDB_PINNED) or not honor_pins or f <= durable)
        if ready[i]:
            add += e.fl_pend[i].n
    if add == 0:
        free(ready)
        return 0
    merged = <uint32_t*>malloc(add * 4 + 4)
    if merged == NULL:
        free(ready)
        return nomem(e)
    o = 0
    for i in range(e.fl_npend):
        if ready[i]:
            memcpy(merged + o, e.fl_pend[i].pages, e.fl_pend[i].n * 4)
            o += e.fl_pend[i].n
            free(e.fl_pend[i].pages)
            free(e.fl_pend[i].enc)
        else:
            e.fl_pend[k] = e.fl_pend[i]
            k += 1
    free(ready)
    e.fl_npend = k
    sort_u32(merged, add, True)
    if fl_reserve_free(e, e.fl_nfree + add) < 0:
        free(merged)
        return -1
    # merge two descending arrays in place, from the small end
    a = e.fl_nfree
    b = add
    o = e.fl_nfree + add
    while b > 0:
        if a > 0 and e.fl_free[a - 1] < merged[b - 1]:
            e.fl_free[o - 1] = e.fl_free[a - 1]
            a -= 1
        else:
            e.fl_free[o - 1] = merged[b - 1]
            b -= 1
        o -= 1
    e.fl_nfree += add
    free(merged)
    return 0

cdef uint32_t fl_alloc(EnvC* e, State* ns, uint32_t n) noexcept nogil:
    """n contiguous pages: from the reusable set (smallest first), else at the
    end of the file. 0 on error."""
    cdef size_t i, j
    cdef uint32_t pg
    if n == 1 and e.fl_nfree > 0:
        e.fl_nfree -= 1
        return e.fl_free[e.fl_nfree]
    if n > 1 and e.fl_nfree >= n:
        # a run of n consecutive ids; the array is descending, scan from the small end
        i = e.fl_nfree
        while i >= n:
            if e.fl_free[i - n] == e.fl_free[i - 1] + n - 1:
                pg = e.fl_free[i - 1]
                memmove(e.fl_free + i - n, e.fl_free + i, (e.fl_nfree - i) * 4)
                e.fl_nfree -= n
                return pg
            i -= 1
    if <uint64_t>ns.page_count + n > e.map_pages or <uint64_t>ns.page_count + n >= TDB_DIRTY:
        set_err(e, E_FULL, 0, "the database reached map_size; reopen it with a larger map_size")
        return 0
    pg = ns.page_count
    ns.page_count += n
    return pg

cdef int fl_encode(EnvC* e, Pending* g) noexcept nogil:
    """Encode g's pages as runs into g.enc (kept until g changes)."""
    cdef char* enc
    if g.enc != NULL:
        return 0
    enc = <char*>malloc(8 * <size_t>g.n + 8)
    if enc == NULL:
        return nomem(e)
    g.nruns = <uint32_t>runs_of(g.pages, g.n, enc)
    g.enc = enc
    return 0

cdef size_t runs_of(const uint32_t* pages, size_t n, char* out) noexcept nogil:
    """Write ascending pages as (first, count) runs; returns the number of runs.
    With out NULL only counts. Free pages are mostly scattered: the loops have
    no data-dependent branch (a mispredicted one per page cost more than the
    rest of a small commit's freelist)."""
    cdef size_t i, runs = 0, si = 0
    cdef uint32_t start, brk
    if n == 0:
        return 0
    if out == NULL:
        for i in range(1, n):
            runs += pages[i] != pages[i - 1] + 1
        return runs + 1
    # the current run's first page and count are rewritten at each page
    start = pages[0]
    for i in range(1, n):
        tdb_st32(out + 8 * runs, start)
        tdb_st32(out + 8 * runs + 4, <uint32_t>(i - si))
        brk = pages[i] != pages[i - 1] + 1
        runs += brk
        si = i if brk else si
        start = pages[i] if brk else start
    tdb_st32(out + 8 * runs, start)
    tdb_st32(out + 8 * runs + 4, <uint32_t>(n - si))
    return runs + 1

cdef size_t runs_of_desc(const uint32_t* pages, size_t n, char* out) noexcept nogil:
    """runs_of for pages sorted descending (the runs still written ascending)."""
    cdef size_t i, runs = 0, si = 0
    cdef uint32_t start, brk
    if n == 0:
        return 0
    if out == NULL:
        for i in range(1, n):
            runs += pages[n - 1 - i] != pages[n - i] + 1
        return runs + 1
    start = pages[n - 1]
    for i in range(1, n):
        tdb_st32(out + 8 * runs, start)
        tdb_st32(out + 8 * runs + 4, <uint32_t>(i - si))
        brk = pages[n - 1 - i] != pages[n - i] + 1
        runs += brk
        si = i if brk else si
        start = pages[n - 1 - i] if brk else start
    tdb_st32(out + 8 * runs, start)
    tdb_st32(out + 8 * runs + 4, <uint32_t>(n - si))
    return runs + 1

cdef tuple _read_freelist(EnvC* e, State* st):
    """(reusable runs, [(txnid, runs)] of pending groups) of st's freelist extent."""
    cdef const char* p
    cdef uint32_t nruns, ngroups, i, j, gr
    cdef size_t off
    free_pages = []
    pending = []
    if st.fl_pgno == 0:
        return free_pages, pending
    p = clean_page(e, st.page_count, st.fl_pgno)
    if p == NULL:
        raise_err(e)
    if <uint8_t>p[PH_TYPE] != P_FREELIST:
        raise CorruptionError(f"page {st.fl_pgno}: expected the freelist extent")
    end = <size_t>st.fl_npages * e.psize
    nruns = tdb_ld32(p + FL_NRUNS)
    ngroups = tdb_ld32(p + FL_NGROUPS)
    off = FL_RUNS
    if off + <size_t>nruns * 8 > end:
        raise CorruptionError(f"page {st.fl_pgno}: freelist runs extend past the extent")
    for i in range(nruns):
        free_pages.append((tdb_ld32(p + off), tdb_ld32(p + off + 4)))
        off += 8
    for i in range(ngroups):
        if off + 12 > end:
            raise CorruptionError(f"page {st.fl_pgno}: freelist group extends past the extent")
        txnid = tdb_ld64(p + off) & ~TDB_PINNED
        gr = tdb_ld32(p + off + 8)
        off += 12
        if off + <size_t>gr * 8 > end:
            raise CorruptionError(f"page {st.fl_pgno}: freelist group extends past the extent")
        runs = []
        for j in range(gr):
            runs.append((tdb_ld32(p + off), tdb_ld32(p + off + 4)))
            off += 8
        pending.append((txnid, runs))
    return free_pages, pending
