# cython: language_level=3
"""Posting lists of the full-text index: their byte format, the in-memory
accumulator of pending postings, block (re)building, and query evaluation.

The layout of the index's keys is in toondb/text/index.py; the bytes of a
posting block value, parsed here, are::

    block   := varint(last_rowid - first_rowid) entry+
    entry   := varint(rowid - previous rowid)   (0 for the first entry)
               poslist
    poslist := item* 0x00
    item    := 0x01 varint(column)              column switch (columns ascend;
                                                 column 0 needs no switch)
             | varint(offset - previous + 2)    a token offset in the column
                                                 (previous = 0 after a switch)

varint: unsigned LEB128 (7 bits a byte, low bits first, high bit = more).
Rowids are signed 64-bit; deltas are taken modulo 2**64.

Invariants (checked by ``check_block`` and FullTextIndex.integrity_check):

P1. Entries ascend strictly by rowid; the first entry's rowid is the block's
    key rowid and the header gives the last one.
P2. Every poslist holds at least one offset; columns ascend, offsets ascend
    strictly within a column, and every column is < the index's column count.
P3. A block is at most ``limit`` bytes (the largest value the B+tree stores
    inline) unless it holds a single entry.

Pending postings (``PendingIndex``) use the same entry encoding in one growing
buffer per term, except that the first entry's rowid is absolute (its delta
from 0), so a flush can merge them into the stored blocks without decoding the
positions.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.math cimport log
from libc.stdint cimport INT64_MAX, INT64_MIN, int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc, qsort, realloc
from libc.string cimport memcmp, memcpy, memset

from toondb.errors import CorruptionError

from toondb.text._tokenize cimport TokenFn, Tokenizer

DEF MAX_PREFIXES = 31
cdef extern from *:
    """
    #define TXT_EOF_POS (((int64_t)1) << 62)
    """
    int64_t EOF_POS "TXT_EOF_POS"   # a position past every real one


# ---------------------------------------------------------------------------
# Byte buffers and varints
# ---------------------------------------------------------------------------

cdef struct Buf:
    uint8_t* p
    Py_ssize_t n
    Py_ssize_t cap


cdef int buf_grow(Buf* b, Py_ssize_t extra) noexcept nogil:
    """Make room for extra more bytes; -1 when out of memory."""
    cdef Py_ssize_t need = b.n + extra
    cdef Py_ssize_t cap
    cdef uint8_t* np
    if need <= b.cap:
        return 0
    cap = b.cap * 2 if b.cap else 64
    while cap < need:
        cap *= 2
    np = <uint8_t*>realloc(b.p, cap)
    if np == NULL:
        return -1
    b.p = np
    b.cap = cap
    return 0


cdef int buf_reserve(Buf* b, Py_ssize_t extra) except -1:
    if buf_grow(b, extra) < 0:
        raise MemoryError()
    return 0


cdef inline void put_varint_unsafe(Buf* b, uint64_t v) noexcept nogil:
    # the caller reserved 10 bytes
    while v >= 0x80:
        b.p[b.n] = <uint8_t>((v & 0x7F) | 0x80)
        b.n += 1
        v >>= 7
    b.p[b.n] = <uint8_t>v
    b.n += 1


cdef inline int put_varint(Buf* b, uint64_t v) except -1:
    if b.n + 10 > b.cap:
        buf_reserve(b, 10)
    put_varint_unsafe(b, v)
    return 0


cdef inline int get_varint(const uint8_t* p, Py_ssize_t n, Py_ssize_t* i, uint64_t* out) noexcept nogil:
    """Read a varint at p[i[0]]; 0, or -1 when it runs past n (corruption)."""
    cdef uint64_t v = 0
    cdef int shift = 0
    cdef uint8_t b
    while True:
        if i[0] >= n or shift > 63:
            return -1
        b = p[i[0]]
        i[0] += 1
        v |= (<uint64_t>(b & 0x7F)) << shift
        if b < 0x80:
            out[0] = v
            return 0
        shift += 7


cdef inline int varint_len(uint64_t v) noexcept nogil:
    cdef int n = 1
    while v >= 0x80:
        v >>= 7
        n += 1
    return n


cdef inline int skip_poslist(const uint8_t* p, Py_ssize_t n, Py_ssize_t* i) noexcept nogil:
    """Advance past a poslist and its 0x00; -1 when malformed."""
    cdef uint64_t v
    while True:
        if get_varint(p, n, i, &v) < 0:
            return -1
        if v == 0:
            return 0
        if v == 1 and get_varint(p, n, i, &v) < 0:
            return -1


cdef object corrupt(str what):
    return CorruptionError(f"full-text index: {what}")


def _b(x):
    return x if isinstance(x, bytes) else bytes(x)


# ---------------------------------------------------------------------------
# Term keys (key layout: toondb/text/index.py)
# ---------------------------------------------------------------------------

def escape_term(bytes term) -> bytes:
    """The order-preserving form of a term inside a key: 0x00 -> 0x00 0x01."""
    if b"\x00" in term:
        return term.replace(b"\x00", b"\x00\x01")
    return term


def unescape_term(bytes text) -> bytes:
    if b"\x00" in text:
        return text.replace(b"\x00\x01", b"\x00")
    return text


cdef int charlen_to_bytelen(const char* p, int nbyte, int nchar) noexcept nogil:
    """Bytes in the first nchar UTF-8 characters of p[:nbyte], 0 if it has fewer
    (FTS5's rule for prefix-index entries)."""
    cdef int n = 0
    cdef int i
    for i in range(nchar):
        if n >= nbyte:
            return 0
        if <uint8_t>p[n] >= 0xC0:
            n += 1
            if n >= nbyte:
                return 0
            while (<uint8_t>p[n] & 0xC0) == 0x80:
                n += 1
                if n >= nbyte:
                    if i + 1 == nchar:
                        break
                    return 0
        else:
            n += 1
    return n


def prefix_bytes(bytes term, int nchar) -> int:
    return charlen_to_bytelen(<const char*>term, len(term), nchar)


cdef inline int term_cut(const char* tok, int ntok, int max_key_term) noexcept nogil:
    """The length a term is cut to so that its escaped form fits a key."""
    cdef int i
    cdef int used = 0
    for i in range(ntok):
        used += 2 if tok[i] == 0 else 1
        if used > max_key_term:
            return i
    return ntok


def cut_term(bytes term, int max_key_term) -> bytes:
    cdef int n = term_cut(<const char*>term, len(term), max_key_term)
    return term[:n]


# ---------------------------------------------------------------------------
# The pending postings accumulator
# ---------------------------------------------------------------------------

cdef struct PTerm:
    uint8_t* key          # index byte + term
    int nkey
    uint64_t hash
    Buf data              # entries; the last poslist is open (no 0x00 yet)
    int64_t last_rowid
    int has_row
    int last_col
    int last_off
    int64_t first_rowid


cdef inline uint64_t fnv1a(const uint8_t* p, int n) noexcept nogil:
    cdef uint64_t h = 1469598103934665603ULL
    cdef int i
    for i in range(n):
        h ^= p[i]
        h *= 1099511628211ULL
    return h


cdef struct AddCtx:
    void* pending
    int64_t rowid
    int col
    int pos


cdef int _add_token(void* ctx, const char* tok, int ntok, int start, int end) except -1:
    cdef AddCtx* c = <AddCtx*>ctx
    cdef PendingIndex self = <PendingIndex>c.pending
    cdef int pos = c.pos
    cdef int i, nb
    c.pos += 1
    if ntok > self.max_token:
        ntok = self.max_token
    ntok = term_cut(tok, ntok, self.max_key_term)
    self.add(48, tok, ntok, c.rowid, c.col, pos)
    for i in range(self.nprefix):
        nb = charlen_to_bytelen(tok, ntok, self.prefixes[i])
        if nb:
            self.add(49 + i, tok, nb, c.rowid, c.col, pos)
    return 0


cdef int _count_token(void* ctx, const char* tok, int ntok, int start, int end) except -1:
    (<int*>ctx)[0] += 1
    return 0


cdef int _cmp_pterm(const void* a, const void* b) noexcept nogil:
    cdef PTerm* x = (<PTerm**>a)[0]
    cdef PTerm* y = (<PTerm**>b)[0]
    cdef int n = x.nkey if x.nkey < y.nkey else y.nkey
    cdef int r = memcmp(x.key, y.key, n)
    if r:
        return r
    return x.nkey - y.nkey


cdef class PendingIndex:
    """Postings of inserted rows not yet written to the tree: a hash table of
    terms (index byte + term bytes) to their entries, filled by the tokenizer
    with no Python object per token. Rows must arrive in ascending rowid order."""

    cdef PTerm** slots
    cdef Py_ssize_t nslots
    cdef Py_ssize_t nterms
    cdef readonly Py_ssize_t nbytes      # bytes of postings held
    cdef readonly Py_ssize_t nrows
    cdef readonly object last_rowid      # None when empty
    cdef Tokenizer tok
    cdef int ncol
    cdef uint8_t* indexed
    cdef int prefixes[MAX_PREFIXES]
    cdef int nprefix
    cdef int max_token
    cdef int max_key_term

    def __cinit__(self):
        self.slots = NULL
        self.indexed = NULL

    def __init__(self, Tokenizer tok, int ncol, indexed, prefixes, int max_token, int max_key_term):
        cdef int i
        if len(prefixes) > MAX_PREFIXES:
            raise ValueError("too many prefix indexes")
        self.tok = tok
        self.ncol = ncol
        self.indexed = <uint8_t*>malloc(ncol if ncol else 1)
        if self.indexed == NULL:
            raise MemoryError()
        for i in range(ncol):
            self.indexed[i] = 1 if indexed[i] else 0
        self.nprefix = len(prefixes)
        for i, n in enumerate(prefixes):
            self.prefixes[i] = n
        self.max_token = max_token
        self.max_key_term = max_key_term
        self._alloc(1024)

    def __dealloc__(self):
        self._free_terms()
        free(self.slots)
        free(self.indexed)

    cdef int _alloc(self, Py_ssize_t n) except -1:
        free(self.slots)
        self.slots = <PTerm**>malloc(n * sizeof(PTerm*))
        if self.slots == NULL:
            raise MemoryError()
        memset(self.slots, 0, n * sizeof(PTerm*))
        self.nslots = n
        self.nterms = 0
        self.nbytes = 0
        self.nrows = 0
        self.last_rowid = None
        return 0

    cdef void _free_terms(self) noexcept:
        cdef Py_ssize_t i
        if self.slots == NULL:
            return
        for i in range(self.nslots):
            if self.slots[i] != NULL:
                free(self.slots[i].key)
                free(self.slots[i].data.p)
                free(self.slots[i])
                self.slots[i] = NULL

    def clear(self) -> None:
        self._free_terms()
        self._alloc(1024)

    def __len__(self):
        return self.nterms

    cdef int _grow(self) except -1:
        cdef PTerm** old = self.slots
        cdef Py_ssize_t nold = self.nslots
        cdef Py_ssize_t i, j
        cdef Py_ssize_t n = nold * 2
        cdef PTerm** ns = <PTerm**>malloc(n * sizeof(PTerm*))
        if ns == NULL:
            raise MemoryError()
        memset(ns, 0, n * sizeof(PTerm*))
        for i in range(nold):
            if old[i] != NULL:
                j = old[i].hash & (n - 1)
                while ns[j] != NULL:
                    j = (j + 1) & (n - 1)
                ns[j] = old[i]
        free(old)
        self.slots = ns
        self.nslots = n
        return 0

    cdef int add(self, int idx, const char* tok, int ntok, int64_t rowid, int col, int pos) except -1:
        cdef uint8_t kbuf[256]
        cdef uint8_t* key = kbuf
        cdef int nkey = ntok + 1
        cdef uint64_t h
        cdef Py_ssize_t j
        cdef PTerm* t
        cdef Py_ssize_t before
        if nkey > 256:
            key = <uint8_t*>malloc(nkey)
            if key == NULL:
                raise MemoryError()
        try:
            key[0] = <uint8_t>idx
            memcpy(key + 1, tok, ntok)
            h = fnv1a(key, nkey)
            j = h & (self.nslots - 1)
            while True:
                t = self.slots[j]
                if t == NULL:
                    break
                if t.hash == h and t.nkey == nkey and memcmp(t.key, key, nkey) == 0:
                    break
                j = (j + 1) & (self.nslots - 1)
            if t == NULL:
                t = <PTerm*>malloc(sizeof(PTerm))
                if t == NULL:
                    raise MemoryError()
                memset(t, 0, sizeof(PTerm))
                t.key = <uint8_t*>malloc(nkey)
                if t.key == NULL:
                    free(t)
                    raise MemoryError()
                memcpy(t.key, key, nkey)
                t.nkey = nkey
                t.hash = h
                self.slots[j] = t
                self.nterms += 1
                self.nbytes += nkey + 64
                if self.nterms * 2 > self.nslots:
                    self._grow()
        finally:
            if key != kbuf:
                free(key)
        before = t.data.n
        buf_reserve(&t.data, 32)
        if not t.has_row or t.last_rowid != rowid:
            if t.has_row:
                t.data.p[t.data.n] = 0
                t.data.n += 1
                put_varint_unsafe(&t.data, <uint64_t>rowid - <uint64_t>t.last_rowid)
            else:
                put_varint_unsafe(&t.data, <uint64_t>rowid)
                t.first_rowid = rowid
            t.has_row = 1
            t.last_rowid = rowid
            t.last_col = 0
            t.last_off = 0
        if col != t.last_col:
            t.data.p[t.data.n] = 1
            t.data.n += 1
            put_varint_unsafe(&t.data, <uint64_t>col)
            t.last_col = col
            t.last_off = 0
        put_varint_unsafe(&t.data, <uint64_t>(pos - t.last_off + 2))
        t.last_off = pos
        self.nbytes += t.data.n - before
        return 0

    def add_row(self, int64_t rowid, values) -> list:
        """Tokenize the row's column values (str, bytes or None) into pending
        postings; returns the token count of each column."""
        cdef AddCtx ctx
        cdef int col
        cdef bytes data
        if self.last_rowid is not None and rowid <= self.last_rowid:
            raise ValueError("pending rows must ascend by rowid")
        if len(values) != self.ncol:
            raise ValueError(f"expected {self.ncol} column values, got {len(values)}")
        sizes = [0] * self.ncol
        ctx.pending = <void*>self
        ctx.rowid = rowid
        for col in range(self.ncol):
            value = values[col]
            if value is None or not self.indexed[col]:
                continue
            data = _text(value)
            ctx.col = col
            ctx.pos = 0
            self.tok.run(<const unsigned char*>PyBytes_AS_STRING(data), <int>len(data), _add_token, &ctx)
            sizes[col] = ctx.pos
        self.last_rowid = rowid
        self.nrows += 1
        return sizes

    def terms(self) -> list:
        """The pending terms in key order: [(index byte + term, entries), ...],
        each entries buffer closed (its last poslist terminated)."""
        cdef PTerm** order
        cdef Py_ssize_t i, k = 0
        cdef PTerm* t
        if self.nterms == 0:
            return []
        order = <PTerm**>malloc(self.nterms * sizeof(PTerm*))
        if order == NULL:
            raise MemoryError()
        try:
            for i in range(self.nslots):
                if self.slots[i] != NULL:
                    order[k] = self.slots[i]
                    k += 1
            qsort(order, k, sizeof(PTerm*), _cmp_pterm)
            out = []
            for i in range(k):
                t = order[i]
                out.append((
                    PyBytes_FromStringAndSize(<const char*>t.key, t.nkey),
                    PyBytes_FromStringAndSize(<const char*>t.data.p, t.data.n) + b"\x00",
                ))
            return out
        finally:
            free(order)


cdef bytes _text(value):
    if isinstance(value, str):
        return (<str>value).encode("utf-8", "surrogatepass")
    if isinstance(value, bytes):
        return <bytes>value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return str(value).encode("utf-8", "surrogatepass")


def row_terms(Tokenizer tok, values, indexed, prefixes, int max_token, int max_key_term) -> tuple:
    """(set of index byte + term, token count per column) of one row: what a
    delete must remove."""
    cdef PendingIndex p = PendingIndex(tok, len(values), indexed, prefixes, max_token, max_key_term)
    sizes = p.add_row(0, values)
    return {k for k, _ in p.terms()}, sizes


def token_count(Tokenizer tok, value) -> int:
    cdef bytes data
    cdef int n = 0
    if value is None:
        return 0
    data = _text(value)
    tok.run(<const unsigned char*>PyBytes_AS_STRING(data), <int>len(data), _count_token, &n)
    return n


include "_blocks.pxi"
include "_evaluate.pxi"
include "_matcher.pxi"
