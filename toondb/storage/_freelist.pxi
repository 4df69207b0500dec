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
# that a commit encodes only the groups it changed, not every group pending;
# likewise the reusable set's runs as of the last fl_build (e.fl_fenc), of
# which the entries fl_free[0:fl_fenc_m], unchanged since, are reused
# (fl_free_runs): allocation and release change the small end.

cdef void fl_clear(EnvC* e) noexcept nogil:
    cdef size_t i
    for i in range(e.fl_npend):
        free(e.fl_pend[i].pages)
        free(e.fl_pend[i].enc)
    e.fl_npend = 0
    e.fl_nfree = 0
    e.fl_fenc_m = 0
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
    # merge two ascending arrays in place, from the large end: each new page
    # (few) finds its place by binary search, the old pages above it move at once
    a = g.n
    b = n
    while b > 0:
        o = upper_bound_u32(g.pages, a, pages[b - 1])
        memmove(g.pages + o + b, g.pages + o, (a - o) * 4)
        g.pages[o + b - 1] = pages[b - 1]
        a = o
        b -= 1
    g.n += n
    g.txnid = txnid
    if g.enc != NULL:
        # its runs with the new pages (the group is often large, the pages few)
        grown = <uint32_t*>malloc(8 * (<size_t>g.nruns + n) + 8)
        if grown == NULL:
            free(g.enc)  # no longer its runs
            g.enc = NULL
            return nomem(e)
        b = runs_insert(g.enc, g.nruns, pages, n, <char*>grown)
        free(g.enc)
        g.enc = <char*>grown
        g.nruns = <uint32_t>b
        if b == 0:  # a page already listed (not expected): encoded again by fl_build
            free(g.enc)
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
    if e.fl_fenc_m > a:
        e.fl_fenc_m = a  # fl_free[0:a] are unchanged
    free(merged)
    return 0

cdef uint32_t fl_alloc(EnvC* e, State* ns, uint32_t n) noexcept nogil:
    """n contiguous pages: from the reusable set (smallest first), else at the
    end of the file. 0 on error."""
    cdef size_t i, j
    cdef uint32_t pg
    if n == 1 and e.fl_nfree > 0:
        e.fl_nfree -= 1
        if e.fl_fenc_m > e.fl_nfree:
            e.fl_fenc_m = e.fl_nfree
        return e.fl_free[e.fl_nfree]
    if n > 1 and e.fl_nfree >= n:
        # a run of n consecutive ids; the array is descending, scan from the small end
        i = e.fl_nfree
        while i >= n:
            if e.fl_free[i - n] == e.fl_free[i - 1] + n - 1:
                pg = e.fl_free[i - 1]
                memmove(e.fl_free + i - n, e.fl_free + i, (e.fl_nfree - i) * 4)
                e.fl_nfree -= n
                if e.fl_fenc_m > i - n:
                    e.fl_fenc_m = i - n
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

cdef size_t upper_bound_u32(const uint32_t* a, size_t n, uint32_t v) noexcept nogil:
    """The first index of ascending a[0:n] whose value is > v (n if none)."""
    cdef size_t lo = 0, hi = n, mid
    while lo < hi:
        mid = (lo + hi) // 2
        if a[mid] <= v:
            lo = mid + 1
        else:
            hi = mid
    return lo

cdef size_t runs_insert(const char* runs, size_t nruns, const uint32_t* pages, size_t n,
                        char* out) noexcept nogil:
    """Write to out the ascending (first, count) runs of the pages of `runs` and
    of pages (ascending, none of them in `runs`), extending and joining runs as
    runs_of would; returns the number of runs written (at most nruns + n), 0 if
    a page is already in a run. Copies the runs between two new pages at once."""
    cdef size_t i = 0, j, o = 0, k, lo, hi, mid
    cdef uint32_t p, f, c
    for k in range(n):
        p = pages[k]
        # j: the first run at or after i that starts above p
        lo = i
        hi = nruns
        while lo < hi:
            mid = (lo + hi) // 2
            if tdb_ld32(runs + 8 * mid) <= p:
                lo = mid + 1
            else:
                hi = mid
        j = lo
        memcpy(out + 8 * o, runs + 8 * i, 8 * (j - i))
        o += j - i
        i = j
        if o > 0:
            f = tdb_ld32(out + 8 * (o - 1))
            c = tdb_ld32(out + 8 * (o - 1) + 4)
            if <uint64_t>p < <uint64_t>f + c:
                return 0
        if o > 0 and <uint64_t>f + c == p:
            tdb_st32(out + 8 * (o - 1) + 4, c + 1)
        else:
            tdb_st32(out + 8 * o, p)
            tdb_st32(out + 8 * o + 4, 1)
            o += 1
        if i < nruns and tdb_ld32(runs + 8 * i) == <uint64_t>p + 1:
            tdb_st32(out + 8 * (o - 1) + 4, tdb_ld32(out + 8 * (o - 1) + 4) + tdb_ld32(runs + 8 * i + 4))
            i += 1
    memcpy(out + 8 * o, runs + 8 * i, 8 * (nruns - i))
    return o + nruns - i

cdef size_t fl_free_runs(EnvC* e, char* out) noexcept nogil:
    """runs_of_desc(e.fl_free, e.fl_nfree, out): the pages below the ones
    unchanged since the last fl_build are encoded, the runs of the unchanged
    ones (the largest) copied from e.fl_fenc: the top of the run holding
    fl_free[m - 1], and every run after it."""
    cdef size_t m = e.fl_fenc_m, nlow, lo, hi, mid, r
    cdef uint32_t x, f, c
    if m == 0:
        return runs_of_desc(e.fl_free, e.fl_nfree, out)
    x = e.fl_free[m - 1]
    # r: the run of the cache that holds x (the last one starting at or below it)
    lo = 0
    hi = e.fl_fenc_runs
    while lo < hi:
        mid = (lo + hi) // 2
        if tdb_ld32(e.fl_fenc + 8 * mid) <= x:
            lo = mid + 1
        else:
            hi = mid
    r = lo - 1
    f = tdb_ld32(e.fl_fenc + 8 * r)
    c = tdb_ld32(e.fl_fenc + 8 * r + 4)
    nlow = runs_of_desc(e.fl_free + m, e.fl_nfree - m, out)
    if nlow > 0 and e.fl_free[m] + 1 == x:
        # the last low run continues into the run of x: join them
        if out != NULL:
            tdb_st32(out + 8 * (nlow - 1) + 4, tdb_ld32(out + 8 * (nlow - 1) + 4) + f + c - x)
        nlow -= 1
    elif out != NULL:
        tdb_st32(out + 8 * nlow, x)
        tdb_st32(out + 8 * nlow + 4, f + c - x)
    if out != NULL:
        memcpy(out + 8 * (nlow + 1), e.fl_fenc + 8 * (r + 1), 8 * (e.fl_fenc_runs - r - 1))
    return nlow + 1 + e.fl_fenc_runs - r - 1

cdef int fl_free_cache(EnvC* e, const char* runs, size_t nruns) noexcept nogil:
    """Keep runs, the reusable set's runs just written, for the next fl_build."""
    cdef char* nb
    if 8 * nruns > e.fl_fenc_cap:
        nb = <char*>realloc(e.fl_fenc, 8 * nruns + 4096)
        if nb == NULL:
            e.fl_fenc_m = 0
            return nomem(e)
        e.fl_fenc = nb
        e.fl_fenc_cap = 8 * nruns + 4096
    memcpy(e.fl_fenc, runs, 8 * nruns)
    e.fl_fenc_runs = nruns
    e.fl_fenc_m = e.fl_nfree
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
