# The Python face of the evaluator (_evaluate.pxi): a compiled query over
# decoded doclists, run once over the index, its matches kept as flat arrays,
# and FTS5's bm25 over them. Included by _postings.pyx.

cdef inline int push64(PosBuf* b, int64_t v) noexcept nogil:
    if b.n == b.cap and pos_reserve(b, b.n + 1) < 0:
        return -1
    b.a[b.n] = v
    b.n += 1
    return 0


cdef class Matcher:
    """A query compiled for one run: nodes, phrases and term iterators.

    nodes: [(kind, [child node indexes], phrase0, nphrase, near, has_colset)],
    phrases: [(node index, first term index, term count)],
    terms: [(DocList, first)], root: the root node index (nodes and phrases
    listed so that each node's phrases are phrase0 .. phrase0 + nphrase - 1)."""

    cdef Ev ev
    cdef list doclists
    cdef int nnode
    cdef PosBuf m_rowid
    cdef PosBuf m_off
    cdef PosBuf m_pos
    cdef readonly Py_ssize_t nmatch

    def __cinit__(self):
        memset(&self.ev, 0, sizeof(Ev))
        memset(&self.m_rowid, 0, sizeof(PosBuf))
        memset(&self.m_off, 0, sizeof(PosBuf))
        memset(&self.m_pos, 0, sizeof(PosBuf))

    def __dealloc__(self):
        cdef int k
        if self.ev.phr != NULL:
            for k in range(self.ev.nphrase):
                free(self.ev.phr[k].pl.a)
        if self.ev.lrcopy != NULL:
            for k in range(self.ev.nlr):
                free(self.ev.lrcopy[k].a)
        free(self.ev.nodes)
        free(self.ev.child)
        free(self.ev.phr)
        free(self.ev.iters)
        free(self.ev.lr)
        free(self.ev.lrcopy)
        free(self.m_rowid.a)
        free(self.m_off.a)
        free(self.m_pos.a)

    def __init__(self, list nodes, list phrases, list terms, int root):
        cdef int k, c
        cdef int nchild = sum(len(n[1]) for n in nodes)
        cdef DocList dl
        self.nnode = len(nodes)
        self.doclists = [t[0] for t in terms]
        self.ev.nodes = <Nd*>malloc(max(1, len(nodes)) * sizeof(Nd))
        self.ev.child = <int*>malloc(max(1, nchild) * sizeof(int))
        self.ev.phr = <Phr*>malloc(max(1, len(phrases)) * sizeof(Phr))
        self.ev.iters = <Iter*>malloc(max(1, len(terms)) * sizeof(Iter))
        if (self.ev.nodes == NULL or self.ev.child == NULL or self.ev.phr == NULL
                or self.ev.iters == NULL):
            raise MemoryError()
        memset(self.ev.phr, 0, max(1, len(phrases)) * sizeof(Phr))
        self.ev.nphrase = len(phrases)
        self.ev.root = root
        c = 0
        for k, (kind, children, phrase0, nphrase, near, has_colset) in enumerate(nodes):
            self.ev.nodes[k].kind = kind
            self.ev.nodes[k].nchild = len(children)
            self.ev.nodes[k].child0 = c
            for ch in children:
                self.ev.child[c] = ch
                c += 1
            self.ev.nodes[k].phrase0 = phrase0
            self.ev.nodes[k].nphrase = nphrase
            self.ev.nodes[k].nnear = near
            self.ev.nodes[k].colset = has_colset
            self.ev.nodes[k].rowid = 0
            self.ev.nodes[k].eof = True
            self.ev.nodes[k].nomatch = False
        for k, (node, term0, nterm) in enumerate(phrases):
            self.ev.phr[k].node = node
            self.ev.phr[k].term0 = term0
            self.ev.phr[k].nterm = nterm
        for k, (doclist, first) in enumerate(terms):
            dl = <DocList?>doclist
            self.ev.iters[k].rowid = dl.rowid
            self.ev.iters[k].pstart = dl.pstart
            self.ev.iters[k].pos = dl.pos
            self.ev.iters[k].n = dl.n
            self.ev.iters[k].i = 0
            self.ev.iters[k].eof = dl.n == 0
            self.ev.iters[k].first = bool(first)
            self.ev.iters[k].zero = dl.zero_colset

    cdef int record(self) noexcept nogil:
        cdef Ev* ev = &self.ev
        cdef Nd* root = &ev.nodes[ev.root]
        cdef Nd* nd
        cdef Phr* p
        cdef int k
        cdef Py_ssize_t j
        if push64(&self.m_rowid, root.rowid) < 0:
            return -1
        for k in range(ev.nphrase):
            p = &ev.phr[k]
            nd = &ev.nodes[p.node]
            if not nd.eof and nd.rowid == root.rowid:
                if pos_reserve(&self.m_pos, self.m_pos.n + p.pl.n) < 0:
                    return -1
                for j in range(p.pl.n):
                    self.m_pos.a[self.m_pos.n + j] = p.pl.a[j]
                self.m_pos.n += p.pl.n
            if push64(&self.m_off, self.m_pos.n) < 0:
                return -1
        return 0

    def run(self, min_rowid=None, max_rowid=None,
            Py_ssize_t limit=-1, bint positions=True) -> int:
        """Evaluate over the whole index (rowids in [min_rowid, max_rowid]),
        keeping the matches (at most limit when >= 0). Returns their number."""
        cdef Ev* ev = &self.ev
        cdef Nd* root
        cdef int bad = 0
        cdef int64_t lo = INT64_MIN if min_rowid is None else min_rowid
        cdef int64_t hi = INT64_MAX if max_rowid is None else max_rowid
        if self.nnode == 0:
            return 0
        root = &ev.nodes[ev.root]
        self.m_rowid.n = 0
        self.m_pos.n = 0
        self.m_off.n = 0
        self.nmatch = 0
        if push64(&self.m_off, 0) < 0:
            raise MemoryError()
        with nogil:
            node_first(ev, ev.root)
            if not root.eof and root.rowid < lo:
                node_next(ev, ev.root, True, lo)
            while root.nomatch and not root.eof and not ev.oom:
                node_next(ev, ev.root, False, 0)
            while not root.eof and not ev.oom and root.rowid <= hi:
                if positions:
                    if self.record() < 0:
                        bad = 1
                        break
                elif push64(&self.m_rowid, root.rowid) < 0:
                    bad = 1
                    break
                self.nmatch += 1
                if limit >= 0 and self.nmatch >= limit:
                    break
                node_next(ev, ev.root, False, 0)
                while root.nomatch and not root.eof and not ev.oom:
                    node_next(ev, ev.root, False, 0)
        if bad or ev.oom:
            raise MemoryError()
        return self.nmatch

    def rowids(self) -> bytes:
        """The matched rowids, ascending, as native int64 bytes."""
        return PyBytes_FromStringAndSize(<const char*>self.m_rowid.a, self.m_rowid.n * 8)

    def positions(self, Py_ssize_t k) -> list:
        """Match k's position lists, one per phrase ((column << 32) | offset)."""
        cdef int nph = self.ev.nphrase
        cdef Py_ssize_t a, b
        cdef int p
        if not 0 <= k < self.nmatch or self.m_off.n < (k + 1) * nph + 1:
            raise IndexError(k)
        out = []
        for p in range(nph):
            a = self.m_off.a[k * nph + p]
            b = self.m_off.a[k * nph + p + 1]
            out.append([self.m_pos.a[j] for j in range(a, b)])
        return out

    def bm25(self, row_tokens, idf, weights, double avgdl) -> bytes:
        """FTS5's bm25 of every match as native float64 bytes (more relevant is
        more negative). row_tokens: float64 bytes, the token count of each
        matched row; idf: per phrase; weights: per column (missing ones 1.0)."""
        cdef const double* D = <const double*>PyBytes_AS_STRING(_b(row_tokens))
        cdef int nph = self.ev.nphrase
        cdef int nw = len(weights)
        cdef double* w = <double*>malloc(max(1, nw) * sizeof(double))
        cdef double* aidf = <double*>malloc(max(1, nph) * sizeof(double))
        cdef double* freq = <double*>malloc(max(1, nph) * sizeof(double))
        cdef Py_ssize_t k, j, a, b
        cdef int p
        cdef int64_t col
        cdef double score
        cdef double k1 = 1.2
        cdef double bb = 0.75
        out = bytearray(self.nmatch * sizeof(double))
        cdef double* res = <double*>(<char*>out)
        if len(row_tokens) < self.nmatch * 8:
            raise ValueError("row_tokens too short")
        try:
            if w == NULL or aidf == NULL or freq == NULL:
                raise MemoryError()
            for p in range(nw):
                w[p] = weights[p]
            for p in range(nph):
                aidf[p] = idf[p]
            with nogil:
                for k in range(self.nmatch):
                    for p in range(nph):
                        freq[p] = 0.0
                        a = self.m_off.a[k * nph + p]
                        b = self.m_off.a[k * nph + p + 1]
                        for j in range(a, b):
                            col = self.m_pos.a[j] >> 32
                            freq[p] += w[col] if col < nw else 1.0
                    score = 0.0
                    for p in range(nph):
                        score += aidf[p] * (
                            (freq[p] * (k1 + 1.0))
                            / (freq[p] + k1 * (1 - bb + bb * D[k] / avgdl))
                        )
                    res[k] = -1.0 * score
        finally:
            free(w)
            free(aidf)
            free(freq)
        return bytes(out)


def bm25_idf(int64_t nrow, int64_t nhit) -> float:
    """FTS5's IDF: log((N - nHit + 0.5) / (nHit + 0.5)), at least 1e-6."""
    cdef double idf = log((nrow - nhit + 0.5) / (nhit + 0.5))
    if idf <= 0.0:
        idf = 1e-6
    return idf


def row_token_totals(list blocks, int ncol, rowids) -> bytes:
    """The token count (all columns) of each rowid (ascending int64 bytes), as
    float64 bytes; blocks: [(base rowid, value or None), ...], one per distinct
    docsize block the rowids fall in, in order."""
    cdef bytes rb = _b(rowids)
    cdef const int64_t* r = <const int64_t*>PyBytes_AS_STRING(rb)
    cdef Py_ssize_t n = len(rb) // 8
    cdef Py_ssize_t k = 0
    cdef Py_ssize_t j
    cdef int64_t base
    out = bytearray(n * sizeof(double))
    cdef double* tot = <double*>(<char*>out)
    for base_, value in blocks:
        base = base_
        j = k
        while j < n and r[j] - base < 128 and r[j] >= base:
            j += 1
        if value is None:
            while k < j:
                tot[k] = 0
                k += 1
        else:
            fill_row_sizes(_b(value), ncol, base, r + k, j - k, tot + k)
            k = j
    while k < n:
        tot[k] = 0
        k += 1
    return bytes(out)
