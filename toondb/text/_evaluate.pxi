# Query evaluation: term doclists, the expression node state machine, and the
# per-row phrase position lists that bm25, highlight and snippet read.
# Included by _postings.pyx.
#
# The state machine is FTS5's (fts5_expr.c), rowid-ascending: every node has
# (rowid, eof, nomatch) and advances with next(from_valid, from); a phrase keeps
# its position list from the last row its node tested, and reports it for a
# row only when its node stands on that row (sqlite3Fts5ExprPoslist). Keeping
# the same machine keeps FTS5's exact instance lists, including a NEAR group
# that fails halfway and leaves its later phrases' lists from an earlier row
# when an OR sibling matched. Positions are (column << 32 | offset).

DEF N_TERM = 1
DEF N_STRING = 2
DEF N_AND = 3
DEF N_OR = 4
DEF N_NOT = 5
DEF N_EOF = 6

NODE_KINDS = {"term": N_TERM, "string": N_STRING, "and": N_AND, "or": N_OR,
              "not": N_NOT, "eof": N_EOF}


cdef class DocList:
    """A term's rows and their (column-filtered) positions, decoded once."""
    cdef int64_t* rowid
    cdef int32_t* pstart     # n + 1 offsets into pos
    cdef int64_t* pos
    cdef readonly Py_ssize_t n
    cdef readonly Py_ssize_t npos
    cdef readonly bint zero_colset   # filtered to no column at all (see Iter.zero)

    def __cinit__(self):
        self.rowid = NULL
        self.pstart = NULL
        self.pos = NULL

    def __dealloc__(self):
        free(self.rowid)
        free(self.pstart)
        free(self.pos)

    def rows(self) -> list:
        """[(rowid, [position, ...]), ...]: for tests."""
        cdef Py_ssize_t i, k
        return [(self.rowid[i], [self.pos[k] for k in range(self.pstart[i], self.pstart[i + 1])])
                for i in range(self.n)]


cdef struct RowPos:
    int64_t rowid
    int64_t pos


cdef int _cmp_rowpos(const void* a, const void* b) noexcept nogil:
    cdef const RowPos* x = <const RowPos*>a
    cdef const RowPos* y = <const RowPos*>b
    if x.rowid != y.rowid:
        return -1 if x.rowid < y.rowid else 1
    if x.pos != y.pos:
        return -1 if x.pos < y.pos else 1
    return 0


cdef int64_t positions_decode(const uint8_t* p, Py_ssize_t n, const uint8_t* keep, int nkeep,
                              Buf* out) noexcept nogil:
    """Append the positions of one poslist (columns in keep[0:nkeep], or all
    when keep is NULL) to out as int64; the count appended, or an E_ code."""
    cdef Py_ssize_t i = 0
    cdef uint64_t v
    cdef int64_t col = 0
    cdef int64_t off = 0
    cdef int64_t count = 0
    cdef bint take = keep == NULL or (nkeep > 0 and keep[0])
    while True:
        if get_varint(p, n, &i, &v) < 0:
            return E_POSLIST
        if v == 0:
            return count
        if v == 1:
            if get_varint(p, n, &i, &v) < 0:
                return E_COLUMN
            col = <int64_t>v
            off = 0
            take = keep == NULL or (col < nkeep and keep[col])
            continue
        off += <int64_t>v - 2
        if take:
            if out.n + 8 > out.cap and buf_grow(out, 8) < 0:
                return E_NOMEM
            (<int64_t*>(out.p + out.n))[0] = (col << 32) | (off & 0xFFFFFFFFLL)
            out.n += 8
            count += 1


cdef struct Src:                  # one stored block of a term
    const uint8_t* p
    Py_ssize_t n
    int64_t first


cdef inline int push_row(Buf* rows, Buf* starts, int64_t rowid, int32_t start) noexcept nogil:
    if buf_grow(rows, 8) < 0 or buf_grow(starts, 4) < 0:
        return E_NOMEM
    (<int64_t*>(rows.p + rows.n))[0] = rowid
    rows.n += 8
    (<int32_t*>(starts.p + starts.n))[0] = start
    starts.n += 4
    return 0


cdef int doclist_fill(const Src* src, Py_ssize_t nsrc, bint several, const uint8_t* keep,
                      int nkeep, bint skip_empty, Buf* rows, Buf* starts, Buf* pos) noexcept nogil:
    """Decode the blocks into rows / starts / positions (see build_doclist)."""
    cdef Entries es
    cdef Buf pairs
    cdef Py_ssize_t k, j
    cdef int64_t cnt
    cdef int32_t start = 0
    cdef int rc = 0
    cdef RowPos* rp
    cdef RowPos* rp_end
    cdef int64_t cur
    es.e = NULL
    es.n = es.cap = 0
    pairs.p = NULL
    pairs.n = pairs.cap = 0
    for k in range(nsrc):
        rc = entries_decode(src[k].p, src[k].n, src[k].first, True, &es)
        if rc < 0:
            break
    if rc == 0 and not several:
        for k in range(es.n):
            cnt = positions_decode(es.e[k].pl, es.e[k].npl, keep, nkeep, pos)
            if cnt < 0:
                rc = <int>cnt
                break
            if cnt == 0 and skip_empty:
                continue
            rc = push_row(rows, starts, es.e[k].rowid, start)
            if rc < 0:
                break
            start += <int32_t>cnt
    elif rc == 0:
        # a prefix over several terms: gather (rowid, position), sort, group
        for k in range(es.n):
            j = pos.n
            cnt = positions_decode(es.e[k].pl, es.e[k].npl, keep, nkeep, pos)
            if cnt < 0:
                rc = <int>cnt
                break
            if buf_grow(&pairs, (cnt + 1) * sizeof(RowPos)) < 0:
                rc = E_NOMEM
                break
            while j < pos.n:
                rp = <RowPos*>(pairs.p + pairs.n)
                rp.rowid = es.e[k].rowid
                rp.pos = (<int64_t*>(pos.p + j))[0]
                pairs.n += sizeof(RowPos)
                j += 8
            if cnt == 0 and not skip_empty:
                rp = <RowPos*>(pairs.p + pairs.n)   # a row with no position
                rp.rowid = es.e[k].rowid
                rp.pos = -1
                pairs.n += sizeof(RowPos)
        pos.n = 0
        if rc == 0:
            qsort(pairs.p, pairs.n // sizeof(RowPos), sizeof(RowPos), _cmp_rowpos)
            rp = <RowPos*>pairs.p
            rp_end = <RowPos*>(pairs.p + pairs.n)
            while rp < rp_end and rc == 0:
                cur = rp.rowid
                rc = push_row(rows, starts, cur, start)
                while rc == 0 and rp < rp_end and rp.rowid == cur:
                    if rp.pos >= 0:
                        if buf_grow(pos, 8) < 0:
                            rc = E_NOMEM
                            break
                        (<int64_t*>(pos.p + pos.n))[0] = rp.pos
                        pos.n += 8
                        start += 1
                    rp += 1
    if rc == 0:
        if buf_grow(starts, 4) < 0:
            rc = E_NOMEM
        else:
            (<int32_t*>(starts.p + starts.n))[0] = <int32_t>(pos.n // 8)
            starts.n += 4
    free(es.e)
    free(pairs.p)
    return rc


def build_doclist(list sources, colset, bint skip_empty) -> DocList:
    """The doclist of one query term. sources: one list of stored blocks
    [(first_rowid, value), ...] per index term (several for a prefix scanned in
    the main index, merged: positions of one row unite). colset: the columns
    kept (None: all). skip_empty: drop rows left with no position (FTS5 does
    for a scanned prefix; a plain term keeps them, as empty poslists). The
    decoding runs without the GIL."""
    cdef Buf posbuf, rowbuf, startbuf
    cdef uint8_t* keep = NULL
    cdef int nkeep = 0
    cdef Src* src = NULL
    cdef Py_ssize_t nsrc = sum(len(b) for b in sources)
    cdef Py_ssize_t k = 0
    cdef bint several = len(sources) > 1
    cdef bytes v
    cdef int rc
    cdef DocList dl = DocList()
    posbuf.p = rowbuf.p = startbuf.p = NULL
    posbuf.n = posbuf.cap = rowbuf.n = rowbuf.cap = startbuf.n = startbuf.cap = 0
    keepalive = []
    try:
        if colset is not None:
            nkeep = (max(colset) + 1) if colset else 0
            keep = <uint8_t*>malloc(nkeep if nkeep else 1)
            if keep == NULL:
                raise MemoryError()
            memset(keep, 0, nkeep if nkeep else 1)
            for c in colset:
                keep[c] = 1
        src = <Src*>malloc(max(1, nsrc) * sizeof(Src))
        if src == NULL:
            raise MemoryError()
        for blocks in sources:
            for first, value in blocks:
                v = _b(value)
                keepalive.append(v)
                src[k].p = <const uint8_t*>PyBytes_AS_STRING(v)
                src[k].n = PyBytes_GET_SIZE(v)
                src[k].first = first
                k += 1
        with nogil:
            rc = doclist_fill(src, nsrc, several, keep, nkeep, skip_empty, &rowbuf, &startbuf, &posbuf)
        if rc < 0:
            raise decode_error(rc)
        dl.n = rowbuf.n // 8
        dl.npos = posbuf.n // 8
        dl.zero_colset = colset is not None and len(colset) == 0 and not skip_empty
        dl.rowid = <int64_t*>rowbuf.p
        dl.pstart = <int32_t*>startbuf.p
        dl.pos = <int64_t*>posbuf.p
        rowbuf.p = startbuf.p = posbuf.p = NULL
        return dl
    finally:
        free(src)
        free(keep)
        free(posbuf.p)
        free(rowbuf.p)
        free(startbuf.p)


# ---------------------------------------------------------------------------
# The evaluator
# ---------------------------------------------------------------------------

cdef struct Iter:
    const int64_t* rowid
    const int32_t* pstart
    const int64_t* pos
    Py_ssize_t n
    Py_ssize_t i
    bint eof
    bint first               # ^: only offset 0 counts (the phrase's first term)
    bint zero                # an empty column filter: FTS5's iterator then never
                             # sets its rowid, which stays 0 while it advances


cdef struct PosBuf:
    int64_t* a
    Py_ssize_t n
    Py_ssize_t cap


cdef struct Phr:
    int nterm
    int term0                # index of the first term in Ev.iters
    int node
    PosBuf pl


cdef struct Nd:
    int kind
    int nchild
    int child0               # index into Ev.child
    int phrase0
    int nphrase
    int64_t nnear
    bint colset
    int64_t rowid
    bint eof
    bint nomatch


cdef struct LReader:          # FTS5's lookahead reader over a position list
    const int64_t* a
    Py_ssize_t n
    Py_ssize_t i
    int64_t pos
    int64_t ahead


cdef struct Ev:
    Nd* nodes
    int* child
    Phr* phr
    Iter* iters
    int nphrase
    int root
    int oom
    LReader* lr               # scratch: one per phrase of a NEAR group
    PosBuf* lrcopy
    int nlr


cdef inline int pos_reserve(PosBuf* b, Py_ssize_t n) noexcept nogil:
    cdef int64_t* na
    cdef Py_ssize_t cap
    if n <= b.cap:
        return 0
    cap = b.cap * 2 if b.cap else 16
    while cap < n:
        cap *= 2
    na = <int64_t*>realloc(b.a, cap * sizeof(int64_t))
    if na == NULL:
        return -1
    b.a = na
    b.cap = cap
    return 0


cdef inline int64_t it_rowid(Iter* it) noexcept nogil:
    if it.zero:
        return 0
    return it.rowid[it.i]


cdef inline void it_next(Iter* it) noexcept nogil:
    it.i += 1
    if it.i >= it.n:
        it.eof = True


cdef inline void it_next_from(Iter* it, int64_t target) noexcept nogil:
    """Advance at least one row, then to the first rowid >= target."""
    cdef Py_ssize_t lo, hi, mid, step
    it.i += 1
    if it.i >= it.n:
        it.eof = True
        return
    if it.rowid[it.i] >= target:
        return
    # gallop, then binary search
    lo = it.i
    step = 1
    hi = lo + step
    while hi < it.n and it.rowid[hi] < target:
        lo = hi
        step *= 2
        hi = lo + step
    if hi > it.n:
        hi = it.n
    # rowid[lo] < target; answer in (lo, hi]
    while lo + 1 < hi:
        mid = (lo + hi) >> 1
        if it.rowid[mid] < target:
            lo = mid
        else:
            hi = mid
    it.i = hi
    if it.i >= it.n:
        it.eof = True


cdef inline Py_ssize_t it_npos(Iter* it) noexcept nogil:
    if it.eof:
        return 0
    return it.pstart[it.i + 1] - it.pstart[it.i]


cdef inline const int64_t* it_pos(Iter* it) noexcept nogil:
    return it.pos + it.pstart[it.i]


cdef int pl_copy_iter(Ev* ev, Phr* p, Iter* it) noexcept nogil:
    cdef Py_ssize_t n = it_npos(it)
    if pos_reserve(&p.pl, n) < 0:
        ev.oom = 1
        return -1
    if n:
        memcpy(p.pl.a, it_pos(it), n * sizeof(int64_t))
    p.pl.n = n
    return 0


cdef void set_eof(Ev* ev, int ni) noexcept nogil:
    cdef Nd* nd = &ev.nodes[ni]
    cdef int k
    nd.eof = True
    nd.nomatch = False
    for k in range(nd.nchild):
        set_eof(ev, ev.child[nd.child0 + k])


cdef void zero_poslists(Ev* ev, int ni) noexcept nogil:
    cdef Nd* nd = &ev.nodes[ni]
    cdef int k
    if nd.kind == N_TERM or nd.kind == N_STRING:
        for k in range(nd.nphrase):
            ev.phr[nd.phrase0 + k].pl.n = 0
    else:
        for k in range(nd.nchild):
            zero_poslists(ev, ev.child[nd.child0 + k])


cdef int phrase_is_match(Ev* ev, Phr* p) noexcept nogil:
    """All term iterators stand on the row: compute the phrase's positions (its
    first token's), honouring ^; 1 when there is at least one."""
    cdef LReader rd[16]
    cdef LReader* r = rd
    cdef int t, k
    cdef int64_t ipos, adj
    cdef bint match
    cdef bint first = ev.iters[p.term0].first
    cdef Iter* it
    p.pl.n = 0
    if p.nterm > 16:
        r = <LReader*>malloc(p.nterm * sizeof(LReader))
        if r == NULL:
            ev.oom = 1
            return 0
    try:
        for t in range(p.nterm):
            it = &ev.iters[p.term0 + t]
            r[t].a = it_pos(it) if not it.eof else NULL
            r[t].n = it_npos(it)
            r[t].i = 0
            if r[t].n == 0:
                return 0
            r[t].pos = r[t].a[0]
        while True:
            ipos = r[0].pos
            while True:
                match = True
                for t in range(p.nterm):
                    adj = ipos + t
                    if r[t].pos != adj:
                        match = False
                        while r[t].pos < adj:
                            r[t].i += 1
                            if r[t].i >= r[t].n:
                                return p.pl.n > 0
                            r[t].pos = r[t].a[r[t].i]
                        if r[t].pos > adj:
                            ipos = r[t].pos - t
                if match:
                    break
            if not first or (ipos & 0xFFFFFFFFLL) == 0:
                if pos_reserve(&p.pl, p.pl.n + 1) < 0:
                    ev.oom = 1
                    return 0
                p.pl.a[p.pl.n] = ipos
                p.pl.n += 1
            for t in range(p.nterm):
                r[t].i += 1
                if r[t].i >= r[t].n:
                    return p.pl.n > 0
                r[t].pos = r[t].a[r[t].i]
    finally:
        if r != rd:
            free(r)


cdef inline bint lr_next(LReader* r) noexcept nogil:
    r.pos = r.ahead
    if r.i < r.n:
        r.ahead = r.a[r.i]
        r.i += 1
    else:
        r.ahead = EOF_POS
    return r.pos == EOF_POS


cdef int near_is_match(Ev* ev, Nd* nd) noexcept nogil:
    """Every phrase of the NEAR group has positions on the row: keep only the
    instances within the distance of one another (FTS5's trimming, in place)."""
    cdef int n = nd.nphrase
    cdef int k, adv
    cdef int64_t imax, imin
    cdef bint match
    cdef Phr* p
    cdef LReader* r
    cdef int result
    if n > ev.nlr:
        if grow_scratch(ev, n) < 0:
            return 0
    for k in range(n):
        p = &ev.phr[nd.phrase0 + k]
        # read from a copy, write the kept instances back into the phrase list
        if pos_reserve(&ev.lrcopy[k], p.pl.n) < 0:
            ev.oom = 1
            return 0
        memcpy(ev.lrcopy[k].a, p.pl.a, p.pl.n * sizeof(int64_t))
        r = &ev.lr[k]
        r.a = ev.lrcopy[k].a
        r.n = p.pl.n
        r.i = 0
        r.ahead = 0
        lr_next(r)
        lr_next(r)
        p.pl.n = 0
    while True:
        imax = ev.lr[0].pos
        while True:
            match = True
            for k in range(n):
                r = &ev.lr[k]
                imin = imax - ev.phr[nd.phrase0 + k].nterm - nd.nnear
                if r.pos < imin or r.pos > imax:
                    match = False
                    while r.pos < imin:
                        if lr_next(r):
                            return ev.phr[nd.phrase0].pl.n > 0
                    if r.pos > imax:
                        imax = r.pos
            if match:
                break
        for k in range(n):
            p = &ev.phr[nd.phrase0 + k]
            if p.pl.n == 0 or ev.lr[k].pos != p.pl.a[p.pl.n - 1]:
                p.pl.a[p.pl.n] = ev.lr[k].pos     # room: the list only shrinks
                p.pl.n += 1
        adv = 0
        imin = ev.lr[0].ahead
        for k in range(n):
            if ev.lr[k].ahead < imin:
                imin = ev.lr[k].ahead
                adv = k
        if lr_next(&ev.lr[adv]):
            return ev.phr[nd.phrase0].pl.n > 0


cdef int grow_scratch(Ev* ev, int n) noexcept nogil:
    cdef LReader* lr = <LReader*>realloc(ev.lr, n * sizeof(LReader))
    cdef PosBuf* cp
    cdef int k
    if lr == NULL:
        ev.oom = 1
        return -1
    ev.lr = lr
    cp = <PosBuf*>realloc(ev.lrcopy, n * sizeof(PosBuf))
    if cp == NULL:
        ev.oom = 1
        return -1
    for k in range(ev.nlr, n):
        cp[k].a = NULL
        cp[k].n = cp[k].cap = 0
    ev.lrcopy = cp
    ev.nlr = n
    return 0


cdef bint near_test(Ev* ev, Nd* nd) noexcept nogil:
    cdef int k
    cdef Phr* p
    for k in range(nd.nphrase):
        p = &ev.phr[nd.phrase0 + k]
        if p.nterm > 1 or nd.colset or ev.iters[p.term0].first:
            if not phrase_is_match(ev, p):
                return False
        else:
            if pl_copy_iter(ev, p, &ev.iters[p.term0]) < 0:
                return False
    return nd.nphrase == 1 or near_is_match(ev, nd)


cdef void near_init(Ev* ev, Nd* nd) noexcept nogil:
    cdef int k, t
    cdef Phr* p
    cdef Iter* it
    for k in range(nd.nphrase):
        p = &ev.phr[nd.phrase0 + k]
        if p.nterm == 0:
            nd.eof = True
            return
        for t in range(p.nterm):
            it = &ev.iters[p.term0 + t]
            it.i = 0
            it.eof = it.n == 0
            if it.eof:
                nd.eof = True
                return
    nd.eof = False


cdef void test_term(Ev* ev, Nd* nd) noexcept nogil:
    cdef Phr* p = &ev.phr[nd.phrase0]
    cdef Iter* it = &ev.iters[p.term0]
    pl_copy_iter(ev, p, it)
    nd.rowid = it_rowid(it)
    nd.nomatch = p.pl.n == 0


cdef void next_term(Ev* ev, Nd* nd, bint from_valid, int64_t target) noexcept nogil:
    cdef Iter* it = &ev.iters[ev.phr[nd.phrase0].term0]
    if from_valid:
        it_next_from(it, target)
    else:
        it_next(it)
    if not it.eof:
        test_term(ev, nd)
    else:
        nd.eof = True
        nd.nomatch = False


cdef void test_string(Ev* ev, Nd* nd) noexcept nogil:
    cdef Phr* p0 = &ev.phr[nd.phrase0]
    cdef Iter* it = &ev.iters[p0.term0]
    cdef int64_t last = it_rowid(it)
    cdef bint match
    cdef int k, t
    cdef Phr* p
    while True:
        match = True
        for k in range(nd.nphrase):
            p = &ev.phr[nd.phrase0 + k]
            for t in range(p.nterm):
                it = &ev.iters[p.term0 + t]
                if it.eof or it_rowid(it) == last:
                    continue
                match = False
                if last > it_rowid(it):
                    it_next_from(it, last)
                    if it.eof:
                        nd.eof = True
                        return
                last = it_rowid(it)
        if match:
            break
    nd.rowid = last
    nd.nomatch = not near_test(ev, nd)


cdef void next_string(Ev* ev, Nd* nd, bint from_valid, int64_t target) noexcept nogil:
    cdef Iter* it = &ev.iters[ev.phr[nd.phrase0].term0]
    nd.nomatch = False
    if from_valid:
        it_next_from(it, target)
    else:
        it_next(it)
    nd.eof = it.eof
    if not nd.eof:
        test_string(ev, nd)


cdef inline int node_cmp(Nd* a, Nd* b) noexcept nogil:
    if b.eof:
        return -1
    if a.eof:
        return 1
    if a.rowid < b.rowid:
        return -1
    return 1 if a.rowid > b.rowid else 0


cdef void test_and(Ev* ev, int ni) noexcept nogil:
    cdef Nd* nd = &ev.nodes[ni]
    cdef int64_t last = nd.rowid
    cdef bint match
    cdef int k
    cdef Nd* ch
    while True:
        nd.nomatch = False
        match = True
        for k in range(nd.nchild):
            ch = &ev.nodes[ev.child[nd.child0 + k]]
            if last > ch.rowid:
                node_next(ev, ev.child[nd.child0 + k], True, last)
            if ch.eof:
                set_eof(ev, ni)
                match = True
                break
            elif last != ch.rowid:
                match = False
                last = ch.rowid
            if ch.nomatch:
                nd.nomatch = True
        if match:
            break
    if nd.nomatch and ni != ev.root:
        zero_poslists(ev, ni)
    nd.rowid = last


cdef void test_or(Ev* ev, Nd* nd) noexcept nogil:
    cdef Nd* best = &ev.nodes[ev.child[nd.child0]]
    cdef Nd* ch
    cdef int k, c
    for k in range(1, nd.nchild):
        ch = &ev.nodes[ev.child[nd.child0 + k]]
        c = node_cmp(best, ch)
        if c > 0 or (c == 0 and not ch.nomatch):
            best = ch
    nd.rowid = best.rowid
    nd.eof = best.eof
    nd.nomatch = best.nomatch


cdef void next_or(Ev* ev, Nd* nd, bint from_valid, int64_t target) noexcept nogil:
    cdef int64_t last = nd.rowid
    cdef int k
    cdef Nd* ch
    for k in range(nd.nchild):
        ch = &ev.nodes[ev.child[nd.child0 + k]]
        if not ch.eof:
            if ch.rowid == last or (from_valid and ch.rowid < target):
                node_next(ev, ev.child[nd.child0 + k], from_valid, target)
    test_or(ev, nd)


cdef void test_not(Ev* ev, Nd* nd) noexcept nogil:
    cdef int i1 = ev.child[nd.child0]
    cdef int i2 = ev.child[nd.child0 + 1]
    cdef Nd* p1 = &ev.nodes[i1]
    cdef Nd* p2 = &ev.nodes[i2]
    cdef int c
    while not p1.eof and not ev.oom:
        c = node_cmp(p1, p2)
        if c > 0:
            node_next(ev, i2, True, p1.rowid)
            c = node_cmp(p1, p2)
        if c != 0 or p2.nomatch:
            break
        node_next(ev, i1, False, 0)
    nd.eof = p1.eof
    nd.nomatch = p1.nomatch
    nd.rowid = p1.rowid
    if p1.eof:
        zero_poslists(ev, i2)


cdef void node_next(Ev* ev, int ni, bint from_valid, int64_t target) noexcept nogil:
    cdef Nd* nd = &ev.nodes[ni]
    if nd.kind == N_TERM:
        next_term(ev, nd, from_valid, target)
    elif nd.kind == N_STRING:
        next_string(ev, nd, from_valid, target)
    elif nd.kind == N_AND:
        node_next(ev, ev.child[nd.child0], from_valid, target)
        test_and(ev, ni)
    elif nd.kind == N_OR:
        next_or(ev, nd, from_valid, target)
    elif nd.kind == N_NOT:
        node_next(ev, ev.child[nd.child0], from_valid, target)
        test_not(ev, nd)


cdef void node_test(Ev* ev, int ni) noexcept nogil:
    cdef Nd* nd = &ev.nodes[ni]
    if nd.eof:
        return
    if nd.kind == N_TERM:
        test_term(ev, nd)
    elif nd.kind == N_STRING:
        test_string(ev, nd)
    elif nd.kind == N_AND:
        test_and(ev, ni)
    elif nd.kind == N_OR:
        test_or(ev, nd)
    elif nd.kind == N_NOT:
        test_not(ev, nd)


cdef void node_first(Ev* ev, int ni) noexcept nogil:
    cdef Nd* nd = &ev.nodes[ni]
    cdef int k, neof = 0
    nd.eof = False
    nd.nomatch = False
    if nd.kind == N_TERM or nd.kind == N_STRING:
        near_init(ev, nd)
    elif nd.kind == N_EOF:
        nd.eof = True
    else:
        for k in range(nd.nchild):
            node_first(ev, ev.child[nd.child0 + k])
            neof += ev.nodes[ev.child[nd.child0 + k]].eof
        nd.rowid = ev.nodes[ev.child[nd.child0]].rowid
        if nd.kind == N_AND:
            if neof > 0:
                set_eof(ev, ni)
        elif nd.kind == N_OR:
            if neof == nd.nchild:
                set_eof(ev, ni)
        else:
            nd.eof = ev.nodes[ev.child[nd.child0]].eof
    node_test(ev, ni)
