# Posting blocks: decoding entries, merging stored blocks with pending entries
# and deletions, and cutting the result back into blocks (format and invariants
# P1-P3: the top of _postings.pyx). Included by _postings.pyx.

cdef struct Entry:
    int64_t rowid
    const uint8_t* pl        # the poslist, its 0x00 included
    Py_ssize_t npl


cdef struct Entries:
    Entry* e
    Py_ssize_t n
    Py_ssize_t cap


# error codes of the nogil decoders
DEF E_NOMEM = -1
DEF E_ROWID = -2          # truncated rowid
DEF E_ORDER = -3          # rowids do not ascend
DEF E_POSLIST = -4        # truncated position list
DEF E_HEADER = -5         # truncated block header
DEF E_COLUMN = -6         # truncated column switch


cdef object decode_error(int code):
    if code == E_NOMEM:
        return MemoryError()
    return corrupt({
        E_ROWID: "truncated rowid in a posting block",
        E_ORDER: "rowids of a posting block do not ascend",
        E_POSLIST: "truncated position list",
        E_HEADER: "truncated block header",
        E_COLUMN: "truncated column switch",
    }.get(code, "undecodable posting block"))


cdef int entries_add(Entries* es, int64_t rowid, const uint8_t* pl, Py_ssize_t npl) noexcept nogil:
    cdef Entry* ne
    cdef Py_ssize_t cap
    if es.n == es.cap:
        cap = es.cap * 2 if es.cap else 64
        ne = <Entry*>realloc(es.e, cap * sizeof(Entry))
        if ne == NULL:
            return E_NOMEM
        es.e = ne
        es.cap = cap
    es.e[es.n].rowid = rowid
    es.e[es.n].pl = pl
    es.e[es.n].npl = npl
    es.n += 1
    return 0


cdef int entries_push(Entries* es, int64_t rowid, const uint8_t* pl, Py_ssize_t npl) except -1:
    if entries_add(es, rowid, pl, npl) < 0:
        raise MemoryError()
    return 0


cdef int entries_decode(const uint8_t* p, Py_ssize_t n, int64_t first, bint header,
                        Entries* out) noexcept nogil:
    """Append the entries of a block (header=True: skip the header; the first
    delta counts from `first`) or of a pending buffer (first=0, no header);
    0 or an E_ code."""
    cdef Py_ssize_t i = 0
    cdef Py_ssize_t start
    cdef uint64_t v
    cdef int64_t rowid = first
    cdef bint any_entry = False
    if header and get_varint(p, n, &i, &v) < 0:
        return E_HEADER
    while i < n:
        if get_varint(p, n, &i, &v) < 0:
            return E_ROWID
        if any_entry and v == 0:
            return E_ORDER
        rowid = <int64_t>(<uint64_t>rowid + v)
        start = i
        if skip_poslist(p, n, &i) < 0:
            return E_POSLIST
        if entries_add(out, rowid, p + start, i - start) < 0:
            return E_NOMEM
        any_entry = True
    return 0


cdef int decode_entries(const uint8_t* p, Py_ssize_t n, int64_t first, bint header,
                        Entries* out) except -1:
    cdef int rc = entries_decode(p, n, first, header, out)
    if rc < 0:
        raise decode_error(rc)
    return 0


cdef int encode_blocks(Entries* es, Py_ssize_t limit, list out) except -1:
    """Cut entries into blocks of at most `limit` bytes (P3) and append
    (first_rowid, value) pairs to out."""
    cdef Buf body
    cdef Buf val
    cdef Py_ssize_t i = 0
    cdef Py_ssize_t j, k
    cdef int64_t first, prev
    cdef uint64_t d
    cdef Py_ssize_t size
    body.p = NULL
    body.n = body.cap = 0
    val.p = NULL
    val.n = val.cap = 0
    try:
        while i < es.n:
            first = es.e[i].rowid
            prev = first
            body.n = 0
            j = i
            while j < es.n:
                d = <uint64_t>es.e[j].rowid - <uint64_t>prev
                size = body.n + varint_len(d) + es.e[j].npl
                size += varint_len(<uint64_t>es.e[j].rowid - <uint64_t>first)
                if j > i and size > limit:
                    break
                buf_reserve(&body, 10 + es.e[j].npl)
                put_varint_unsafe(&body, d)
                memcpy(body.p + body.n, es.e[j].pl, es.e[j].npl)
                body.n += es.e[j].npl
                prev = es.e[j].rowid
                j += 1
            val.n = 0
            put_varint(&val, <uint64_t>prev - <uint64_t>first)
            buf_reserve(&val, body.n)
            memcpy(val.p + val.n, body.p, body.n)
            val.n += body.n
            out.append((first, PyBytes_FromStringAndSize(<const char*>val.p, val.n)))
            i = j
    finally:
        free(body.p)
        free(val.p)
    return 0


def merge_blocks(list stored, bytes pending, deletes, Py_ssize_t limit) -> list:
    """The blocks of one term after merging.

    stored: consecutive stored blocks [(first_rowid, value), ...] in key order;
    pending: pending entries for the term (first rowid absolute) or None — on a
    rowid present in both, the pending entry wins; deletes: rowids to drop (a
    set) or None. Returns [(first_rowid, value), ...], possibly empty."""
    cdef Entries a, b, m
    cdef Py_ssize_t i = 0
    cdef Py_ssize_t j = 0
    cdef bytes v
    a.e = b.e = m.e = NULL
    a.n = a.cap = b.n = b.cap = m.n = m.cap = 0
    keep = [pending]
    try:
        for first, value in stored:
            v = _b(value)
            keep.append(v)
            decode_entries(<const uint8_t*>PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v), first, True, &a)
        if pending is not None:
            decode_entries(<const uint8_t*>PyBytes_AS_STRING(pending), PyBytes_GET_SIZE(pending), 0, False, &b)
        while i < a.n or j < b.n:
            if j >= b.n or (i < a.n and a.e[i].rowid < b.e[j].rowid):
                if not deletes or a.e[i].rowid not in deletes:
                    entries_push(&m, a.e[i].rowid, a.e[i].pl, a.e[i].npl)
                i += 1
            else:
                if i < a.n and a.e[i].rowid == b.e[j].rowid:
                    i += 1
                if not deletes or b.e[j].rowid not in deletes:
                    entries_push(&m, b.e[j].rowid, b.e[j].pl, b.e[j].npl)
                j += 1
        out = []
        encode_blocks(&m, limit, out)
        return out
    finally:
        free(a.e)
        free(b.e)
        free(m.e)


def pending_span(bytes pending) -> tuple:
    """(first rowid, last rowid, entry count) of a pending entries buffer."""
    cdef Entries es
    es.e = NULL
    es.n = es.cap = 0
    try:
        decode_entries(<const uint8_t*>PyBytes_AS_STRING(pending), PyBytes_GET_SIZE(pending), 0, False, &es)
        if es.n == 0:
            raise corrupt("empty pending entries")
        return es.e[0].rowid, es.e[es.n - 1].rowid, es.n
    finally:
        free(es.e)


def block_last_rowid(int64_t first, value) -> int:
    cdef bytes v = _b(value)
    cdef Py_ssize_t i = 0
    cdef uint64_t d
    if get_varint(<const uint8_t*>PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v), &i, &d) < 0:
        raise corrupt("truncated block header")
    return <int64_t>(<uint64_t>first + d)


cdef int decode_poslist(const uint8_t* p, Py_ssize_t n, list out, int ncol) except -1:
    """Append (column, offset) pairs of one poslist (P2 checked)."""
    cdef Py_ssize_t i = 0
    cdef uint64_t v
    cdef int64_t col = 0
    cdef int64_t off = 0
    cdef bint any_pos = False
    cdef bint any_in_col = False
    while True:
        if get_varint(p, n, &i, &v) < 0:
            raise corrupt("truncated position list")
        if v == 0:
            break
        if v == 1:
            if get_varint(p, n, &i, &v) < 0:
                raise corrupt("truncated column switch")
            if <int64_t>v <= col and any_pos:
                raise corrupt("columns of a position list do not ascend")
            col = <int64_t>v
            off = 0
            any_in_col = False
            continue
        if any_in_col and v == 2:
            raise corrupt("offsets of a position list do not ascend")
        off += <int64_t>v - 2
        if ncol >= 0 and col >= ncol:
            raise corrupt("a position names a column the index does not have")
        out.append((col, off))
        any_pos = True
        any_in_col = True
    if not any_pos:
        raise corrupt("an empty position list")
    if i != n:
        raise corrupt("bytes after a position list")
    return 0


def decode_block(int64_t first, value, int ncol=-1) -> list:
    """[(rowid, [(column, offset), ...]), ...] of one block (P1 and P2 checked)."""
    cdef bytes v = _b(value)
    cdef Entries es
    cdef Py_ssize_t k
    es.e = NULL
    es.n = es.cap = 0
    try:
        decode_entries(<const uint8_t*>PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v), first, True, &es)
        if es.n == 0:
            raise corrupt("an empty posting block")
        if es.e[0].rowid != first:
            raise corrupt("a block's first rowid differs from its key")
        if block_last_rowid(first, v) != es.e[es.n - 1].rowid:
            raise corrupt("a block's header names the wrong last rowid")
        out = []
        for k in range(es.n):
            positions = []
            decode_poslist(es.e[k].pl, es.e[k].npl, positions, ncol)
            out.append((es.e[k].rowid, positions))
        return out
    finally:
        free(es.e)


def decode_pending(bytes data, int ncol=-1) -> list:
    """[(rowid, [(column, offset), ...]), ...] of pending-format entries."""
    cdef Entries es
    cdef Py_ssize_t k
    es.e = NULL
    es.n = es.cap = 0
    try:
        decode_entries(<const uint8_t*>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), 0, False, &es)
        out = []
        for k in range(es.n):
            positions = []
            decode_poslist(es.e[k].pl, es.e[k].npl, positions, ncol)
            out.append((es.e[k].rowid, positions))
        return out
    finally:
        free(es.e)


def encode_entries(list rows) -> bytes:
    """Pending-format entries for [(rowid, [(column, offset), ...]), ...]
    (ascending rowids, positions sorted): for tests and rebuilding."""
    cdef Buf b
    cdef int64_t prev = 0
    cdef int64_t col, off, lastoff
    cdef int64_t curcol
    b.p = NULL
    b.n = b.cap = 0
    try:
        for rowid, positions in rows:
            put_varint(&b, <uint64_t>(<int64_t>rowid) - <uint64_t>prev)
            prev = rowid
            curcol = 0
            lastoff = 0
            for col, off in positions:
                if col != curcol:
                    put_varint(&b, 1)
                    put_varint(&b, <uint64_t>col)
                    curcol = col
                    lastoff = 0
                put_varint(&b, <uint64_t>(off - lastoff + 2))
                lastoff = off
            put_varint(&b, 0)
        return PyBytes_FromStringAndSize(<const char*>b.p, b.n)
    finally:
        free(b.p)


# ---------------------------------------------------------------------------
# Document sizes: one block per 128 consecutive rowids
#   block := (u8 rowid & 127, varint size of each column)* ascending
# ---------------------------------------------------------------------------

def encode_docsizes(list rows) -> bytes:
    """rows: [(rowid & 127, sizes), ...] ascending."""
    cdef Buf b
    b.p = NULL
    b.n = b.cap = 0
    try:
        for low, sizes in rows:
            buf_reserve(&b, 1)
            b.p[b.n] = <uint8_t>low
            b.n += 1
            for s in sizes:
                put_varint(&b, <uint64_t>s)
        return PyBytes_FromStringAndSize(<const char*>b.p, b.n)
    finally:
        free(b.p)


def decode_docsizes(value, int ncol) -> list:
    cdef bytes v = _b(value)
    cdef const uint8_t* p = <const uint8_t*>PyBytes_AS_STRING(v)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(v)
    cdef Py_ssize_t i = 0
    cdef uint64_t s
    cdef int c
    cdef int prev = -1
    out = []
    while i < n:
        low = p[i]
        i += 1
        if low <= prev or low > 127:
            raise corrupt("document sizes out of order")
        prev = low
        sizes = []
        for c in range(ncol):
            if get_varint(p, n, &i, &s) < 0:
                raise corrupt("truncated document sizes")
            sizes.append(s)
        out.append((low, sizes))
    return out


cdef int fill_row_sizes(bytes value, int ncol, int64_t base, const int64_t* rowids,
                        Py_ssize_t nrow, double* total) except -1:
    """For the rowids (ascending, all in this block, base = the block's first
    rowid) set total[k] to the row's token count over all columns (0 when the
    row has no sizes)."""
    cdef const uint8_t* p = <const uint8_t*>PyBytes_AS_STRING(value)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(value)
    cdef Py_ssize_t i = 0
    cdef Py_ssize_t k = 0
    cdef uint64_t s
    cdef int64_t low, want
    cdef double sum_
    cdef int c
    while i < n and k < nrow:
        low = p[i]
        i += 1
        sum_ = 0
        for c in range(ncol):
            if get_varint(p, n, &i, &s) < 0:
                raise corrupt("truncated document sizes")
            sum_ += <double>s
        while k < nrow and rowids[k] - base < low:
            total[k] = 0
            k += 1
        if k < nrow and rowids[k] - base == low:
            total[k] = sum_
            k += 1
    while k < nrow:
        total[k] = 0
        k += 1
    return 0
