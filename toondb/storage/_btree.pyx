# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""toondb's storage engine: the pager, the copy-on-write B+tree and transactions.

One page file, mapped read-only into memory (mmap) and written with pwrite(2)
through one small I/O layer (io_write / io_sync), so that tests can see every
write and fsync and simulate the loss of what was not synced.

File format (little-endian)
===========================

Page 0 and page 1 are meta pages. Transaction N writes meta page N % 2; opening
picks the valid meta with the highest transaction id (invariant 2).

Meta page (the first 256 bytes are used, the rest is zero)::

    offset  size  field
    0       4     CRC-32C of bytes [4, 256)
    4       1     page type = 5 (meta)
    8       8     magic b"toondb\\x00\\x1a"
    16      4     format version = 1
    20      4     page size in bytes
    24      64    current state (below)
    88      64    durable state: the newest state known to be fsynced
                  (txnid 0 = none); see "Durability"
    152     16    boot id of the machine session that wrote this meta
    168     88    zero

State (64 bytes, at offset b)::

    b+0   8  transaction id
    b+8   4  page count: pages [0, count) exist
    b+12  4  freelist extent page id (0 = empty freelist)
    b+16  4  freelist extent length in pages
    b+24  16 key-value tree descriptor
    b+40  16 catalog tree descriptor
    b+56  8  zero

Tree descriptor (16 bytes; also the value of each catalog entry)::

    0  4  root page id (0 = empty tree)
    4  2  depth (0 = empty, 1 = a lone leaf)
    6  2  flags
    8  8  number of entries

Every other page starts with a common header::

    0   4  CRC-32C of the page from byte 4 to its end (an overflow or freelist
           extent: to the end of the extent)
    4   1  type: 1 branch, 2 leaf, 3 overflow, 4 freelist
    5   1  flags: 1 = a catalog leaf (its values are tree descriptors)
    6   2  number of cells (branch, leaf)
    8   4  this page's own id (catches pages written to the wrong place)
    12  4  branch: leftmost child page id; overflow, freelist: extent length
    16  8  the transaction that wrote this page
    24  2  branch, leaf: end of the slot array
    26  2  branch, leaf: start of the cell content area
    28  ..  branch, leaf: slot array, one u16 cell offset per cell, in key order

Leaf cell: ``u16 key length | u32 value length | key | value``; when bit 31 of
the value length is set the value lives in an overflow extent and the cell
holds its u32 first page id instead of the bytes. Branch cell:
``u32 child | u16 key length | key``; the child holds the keys >= key (and
below the next cell's key); keys below the first cell's key are in the
leftmost child. Overflow extent: the header, then the value from byte 24.

Freelist extent: the header, then at byte 24 ``u32 nruns | u32 ngroups``,
``nruns`` pairs ``u32 first page, u32 count`` of reusable pages, then ``ngroups``
groups ``u64 txnid | u32 nruns | runs`` of pages freed by that transaction and
perhaps still visible to older snapshots. Bit 63 of a group's txnid marks pages
that the durable snapshot can see (written at or before it): those wait for the
next sync point as well as for the readers.

Invariants (numbered; cited where they are kept)
===============================================

1. Copy-on-write: a page reachable from a committed snapshot is never written
   again while any reader may hold that snapshot. Pages freed by transaction f
   are reused only when every reader snapshot has a transaction id >= f, and,
   for pages the durable snapshot D can see (written at or before D), when D >= f.
2. Transaction N writes meta page N % 2; opening picks the newest valid meta
   (magic, version, then checksum).
3. Every page in [2, page count) is reachable exactly once from the current
   meta (trees, overflow extents, the freelist extent) or is listed in its
   freelist (``check()`` verifies this).
4. Data pages reach the disk before the meta page that points at them, in the
   sync modes that promise durability (full: every commit; normal: at sync
   points).
5. Keys in a page are strictly ordered by memcmp, then length; a branch's
   separators bound the keys of its children; all leaves are at one depth.
6. A page is read only after its checksum and structure were verified once in
   this process (the verified bitmap); a damaged page raises CorruptionError
   naming it, never a crash.

Durability
==========

``full``: pages, fsync, meta, fsync: a commit that returned survives power loss.
``normal``: no fsync per commit. A commit is in the OS page cache when it
returns, so it survives a crash of the process. Every ``sync_interval`` seconds
or ``memtable_size_bytes`` of writes (and at close and checkpoint) a sync point
fsyncs the data, writes both meta pages with the durable state = this one, and
fsyncs again. Until the next sync point the pages of the durable snapshot are
pinned like a reader's (invariant 1). A meta records the boot id of its writer;
an open after a reboot (different boot id) whose newest meta is not durable
falls back to the durable state, which is intact on disk.
``off``: no fsync at all; nothing is pinned; after an OS crash the newest
commits may be damaged (reads report CorruptionError, never wrong data).
"""

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t, uintptr_t
from libc.string cimport memcpy, memmove, memcmp, memset, strerror
from libc.stdlib cimport malloc, free, realloc, calloc, qsort
from libc.errno cimport errno, EINTR, EAGAIN, EACCES, ESRCH, ENOMEM
from libc.stdio cimport snprintf
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.object cimport PyObject
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from cpython.ref cimport Py_INCREF
from posix.unistd cimport close as c_close, getpid, usleep
from posix.types cimport off_t

import os as _os
import weakref as _weakref

from toondb.errors import (
    ClosedError, CorruptionError, DatabaseFullError, DatabaseLockedError,
    ForkedHandleError, ReadersFullError, ReadOnlyError, ToonDBError,
    TransactionClosedError, TransactionConflictError,
)

cdef extern from "Python.h":
    int PyBytes_CheckExact(object)
    object PyMemoryView_FromMemory(char* mem, Py_ssize_t size, int flags)
    int PyBUF_READ
    PyObject* PyBytes_FromStringAndSize_raw "PyBytes_FromStringAndSize" (const char*, Py_ssize_t) except NULL

cdef extern from "_btree_support.h" nogil:
    uint32_t TDB_DIRTY
    uint32_t TDB_OVF
    uint64_t TDB_PINNED
    uint16_t tdb_ld16(const void*)
    uint32_t tdb_ld32(const void*)
    uint64_t tdb_ld64(const void*)
    void tdb_st16(void*, uint16_t)
    void tdb_st32(void*, uint32_t)
    void tdb_st64(void*, uint64_t)
    int tdb_keycmp(const unsigned char*, size_t, const unsigned char*, size_t)
    void tdb_crc_init()
    uint32_t tdb_crc32c(uint32_t, const void*, size_t)
    int tdb_crc32c_impl(int, uint32_t, const void*, size_t, uint32_t*)
    uint32_t tdb_aload32(const uint32_t*)
    uint64_t tdb_aload64(const uint64_t*)
    void tdb_astore32(uint32_t*, uint32_t)
    void tdb_astore64(uint64_t*, uint64_t)
    int tdb_acas32(uint32_t*, uint32_t, uint32_t)
    void tdb_fence()
    double tdb_monotonic()
    int tdb_lock_byte(int fd, int kind, off_t at, int wait)
    int tdb_fdatasync(int fd)
    int tdb_wlock_try(uint32_t* state, uint32_t* owner, uint32_t pid)
    int tdb_wlock_wait(uint32_t* state, uint32_t* owner, uint32_t pid, long usec)
    int tdb_wlock_steal(uint32_t* state, uint32_t* owner, uint32_t dead, uint32_t pid)
    void tdb_wlock_release(uint32_t* state, uint32_t* owner)
    int tdb_pwrite_all(int fd, const char* buf, size_t n, uint64_t off)
    int F_RDLCK
    int F_WRLCK
    int F_UNLCK

cdef extern from "<sys/uio.h>" nogil:
    struct iovec:
        void* iov_base
        size_t iov_len
    ssize_t pwritev(int fd, const iovec* iov, int iovcnt, off_t offset)

cdef extern from "<sys/types.h>" nogil:
    ctypedef long ssize_t

cdef extern from "<sys/mman.h>" nogil:
    void* mmap(void* addr, size_t length, int prot, int flags, int fd, off_t offset)
    int munmap(void* addr, size_t length)
    int PROT_READ
    int PROT_WRITE
    int MAP_SHARED
    void* MAP_FAILED

cdef extern from "<sys/stat.h>" nogil:
    struct stat:
        off_t st_size
    int fstat(int fd, stat* buf)

cdef extern from "<signal.h>" nogil:
    int kill(int pid, int sig)


tdb_crc_init()

# ----------------------------------------------------------------------------
# Layout constants (see the offset tables above)
# ----------------------------------------------------------------------------

cdef enum:
    PH_CRC = 0
    PH_TYPE = 4
    PH_FLAGS = 5
    PH_NKEYS = 6
    PH_PGNO = 8
    PH_AUX = 12
    PH_TXNID = 16
    PH_LOWER = 24
    PH_UPPER = 26
    PH_SIZE = 28
    OV_DATA = 24
    FL_NRUNS = 24
    FL_NGROUPS = 28
    FL_RUNS = 32

    P_BRANCH = 1
    P_LEAF = 2
    P_OVERFLOW = 3
    P_FREELIST = 4
    P_META = 5

    F_CATALOG = 1
    F_DIRTYREF = 2      # in memory only: a leaf cell refers to a dirty overflow extent

    META_USED = 256
    M_TYPE = 4
    M_MAGIC = 8
    M_VERSION = 16
    M_PSIZE = 20
    M_STATE = 24
    M_DURABLE = 88
    M_BOOT = 152
    STATE_SIZE = 64
    FORMAT_VERSION = 1

    LF_MAGIC = 0
    LF_VERSION = 8
    LF_NSLOTS = 12
    LF_USED = 16
    LF_WSTATE = 32
    LF_WOWNER = 36
    LF_SLOTS = 64
    SLOT_SIZE = 64
    LOCK_INIT = 1
    LOCK_PRESENCE = 2

    POOL_PAGES = 64

    SYNC_OFF = 0
    SYNC_NORMAL = 1
    SYNC_FULL = 2

    K_READ = 0
    K_WRITE = 1
    K_IMMEDIATE = 2
    K_AUTO = 3

    LOG_KEY = 0
    LOG_CREATE = 1
    LOG_DROP = 2

    # error codes of the C layer; raise_err() turns them into exceptions
    E_CORRUPT = 1
    E_NOMEM = 2
    E_IO = 3
    E_FULL = 4
    E_READERS = 5
    E_LOCKED = 6
    E_CONFLICT = 7
    E_INTERNAL = 8

cdef bytes MAGIC = b"toondb\x00\x1a"
cdef bytes LOCK_MAGIC = b"toonlck\x01"

# ----------------------------------------------------------------------------
# Errors: C functions return -1 and leave (code, page, message) in the EnvC
# ----------------------------------------------------------------------------

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

# ----------------------------------------------------------------------------
# Tree lookups (read path)
# ----------------------------------------------------------------------------

cdef int tree_find(EnvC* e, WTxn* w, uint32_t limit, const TreeDesc* t,
                   const unsigned char* key, size_t klen, const char** cell) noexcept nogil:
    """1 and the leaf cell when key is present, 0 when absent, -1 on error."""
    cdef uint32_t pg = t.root
    cdef uint32_t level
    cdef const char* p
    cdef bint found
    cdef uint32_t i
    if pg == 0:
        return 0
    for level in range(t.depth):
        p = page_of(e, w, limit, pg)
        if p == NULL:
            return -1
        if level + 1 < t.depth:
            if p[PH_TYPE] != P_BRANCH:
                return corrupt(e, pg, "expected a branch page")
            pg = child_at(p, branch_upper(p, key, klen))
        else:
            if p[PH_TYPE] != P_LEAF:
                return corrupt(e, pg, "expected a leaf page")
            i = leaf_lower(p, key, klen, &found)
            if not found:
                return 0
            cell[0] = cell_at(p, i)
            return 1
    return 0

# ----------------------------------------------------------------------------
# Cursors: a stack of (page, index) from the root to a leaf
# ----------------------------------------------------------------------------

ctypedef struct Cur:
    int depth
    int valid
    uint32_t pg[MAX_DEPTH]
    const char* p[MAX_DEPTH]
    int idx[MAX_DEPTH]

cdef int cur_descend(EnvC* e, WTxn* w, uint32_t limit, Cur* c, int level, bint rightmost) noexcept nogil:
    """From c.p[level] (a branch, positioned) down to a leaf, along the leftmost
    (or rightmost) edge of the chosen child."""
    cdef uint32_t pg
    cdef const char* p
    while level + 1 < c.depth:
        pg = child_at(c.p[level], c.idx[level])
        level += 1
        p = page_of(e, w, limit, pg)
        if p == NULL:
            return -1
        if (level + 1 < c.depth and p[PH_TYPE] != P_BRANCH) or (level + 1 == c.depth and p[PH_TYPE] != P_LEAF):
            return corrupt(e, pg, "page type does not match its depth")
        c.pg[level] = pg
        c.p[level] = p
        if rightmost:
            c.idx[level] = nkeys(p) if level + 1 < c.depth else <int>nkeys(p) - 1
        else:
            c.idx[level] = 0
    return 0

cdef int cur_seek(EnvC* e, WTxn* w, uint32_t limit, const TreeDesc* t, Cur* c,
                  const unsigned char* key, size_t klen, int edge) noexcept nogil:
    """Position at the first key >= key (edge 0), at the first key (edge 1) or
    at the last key (edge 2). c.valid is 0 when there is no such key."""
    cdef uint32_t pg = t.root
    cdef const char* p
    cdef int level
    cdef bint found
    c.valid = 0
    c.depth = t.depth
    if pg == 0 or t.depth == 0:
        return 0
    if t.depth > MAX_DEPTH:
        return corrupt(e, pg, "tree deeper than any valid tree")
    p = page_of(e, w, limit, pg)
    if p == NULL:
        return -1
    if (t.depth > 1 and p[PH_TYPE] != P_BRANCH) or (t.depth == 1 and p[PH_TYPE] != P_LEAF):
        return corrupt(e, pg, "root page type does not match the tree depth")
    c.pg[0] = pg
    c.p[0] = p
    if edge == 1:
        c.idx[0] = 0
        if cur_descend(e, w, limit, c, 0, False) < 0:
            return -1
    elif edge == 2:
        c.idx[0] = nkeys(p) if t.depth > 1 else <int>nkeys(p) - 1
        if cur_descend(e, w, limit, c, 0, True) < 0:
            return -1
        c.valid = c.idx[c.depth - 1] >= 0
        return 0
    else:
        level = 0
        while level + 1 < c.depth:
            c.idx[level] = branch_upper(c.p[level], key, klen)
            pg = child_at(c.p[level], c.idx[level])
            level += 1
            p = page_of(e, w, limit, pg)
            if p == NULL:
                return -1
            if (level + 1 < c.depth and p[PH_TYPE] != P_BRANCH) or (level + 1 == c.depth and p[PH_TYPE] != P_LEAF):
                return corrupt(e, pg, "page type does not match its depth")
            c.pg[level] = pg
            c.p[level] = p
        c.idx[c.depth - 1] = leaf_lower(c.p[c.depth - 1], key, klen, &found)
    c.valid = 1
    if <uint32_t>c.idx[c.depth - 1] >= nkeys(c.p[c.depth - 1]):
        return cur_next(e, w, limit, c)
    return 0

cdef int cur_next(EnvC* e, WTxn* w, uint32_t limit, Cur* c) noexcept nogil:
    cdef int level = c.depth - 1
    c.idx[level] += 1
    if <uint32_t>c.idx[level] < nkeys(c.p[level]):
        return 0
    while True:
        level -= 1
        if level < 0:
            c.valid = 0
            return 0
        c.idx[level] += 1
        if <uint32_t>c.idx[level] <= nkeys(c.p[level]):
            break
    if cur_descend(e, w, limit, c, level, False) < 0:
        return -1
    if nkeys(c.p[c.depth - 1]) == 0:
        return cur_next(e, w, limit, c)
    return 0

cdef int cur_prev(EnvC* e, WTxn* w, uint32_t limit, Cur* c) noexcept nogil:
    cdef int level = c.depth - 1
    c.idx[level] -= 1
    if c.idx[level] >= 0:
        return 0
    while True:
        level -= 1
        if level < 0:
            c.valid = 0
            return 0
        c.idx[level] -= 1
        if c.idx[level] >= 0:
            break
    if cur_descend(e, w, limit, c, level, True) < 0:
        return -1
    if c.idx[c.depth - 1] < 0:
        return cur_prev(e, w, limit, c)
    return 0

cdef inline const char* cur_cell(Cur* c) noexcept nogil:
    return cell_at(c.p[c.depth - 1], c.idx[c.depth - 1])

# ----------------------------------------------------------------------------
# Write transactions: dirty pages live in malloc'd buffers under temporary ids
# (bit 31 set) until commit assigns them real page ids (invariant 1: a
# committed page is never modified; it is copied, and the copy is written
# elsewhere).
# ----------------------------------------------------------------------------

ctypedef struct Path:
    uint32_t pg[MAX_DEPTH]
    uint32_t idx[MAX_DEPTH]

cdef inline char* dptr(WTxn* w, uint32_t id) noexcept nogil:
    return w.dirty[id & ~TDB_DIRTY].buf

cdef uint32_t dirty_new(WTxn* w, uint32_t npages, char** out) noexcept nogil:
    """A new dirty page (or extent of npages); 0 when out of memory."""
    cdef EnvC* e = w.env
    cdef Dirty* nd
    cdef uint32_t cap
    cdef char* buf
    if w.ndirty >= w.capdirty:
        cap = w.capdirty * 2 if w.capdirty else 64
        if cap >= TDB_DIRTY:
            set_err(e, E_FULL, 0, "too many pages changed in one transaction")
            return 0
        nd = <Dirty*>realloc(w.dirty, cap * sizeof(Dirty))
        if nd == NULL:
            nomem(e)
            return 0
        w.dirty = nd
        w.capdirty = cap
    if npages == 1 and w.npool > 0:
        w.npool -= 1
        buf = w.pool[w.npool]
    else:
        buf = <char*>malloc(<size_t>npages * e.psize)
    if buf == NULL:
        nomem(e)
        return 0
    w.dirty[w.ndirty].buf = buf
    w.dirty[w.ndirty].npages = npages
    w.dirty[w.ndirty].real = 0
    out[0] = buf
    w.ndirty += 1
    return (w.ndirty - 1) | TDB_DIRTY

cdef inline void buf_release(WTxn* w, char* buf, uint32_t npages) noexcept nogil:
    if npages == 1 and w.npool < POOL_PAGES:
        w.pool[w.npool] = buf
        w.npool += 1
    else:
        free(buf)

cdef void dirty_drop(WTxn* w, uint32_t id) noexcept nogil:
    cdef uint32_t i = id & ~TDB_DIRTY
    buf_release(w, w.dirty[i].buf, w.dirty[i].npages)
    w.dirty[i].buf = NULL

cdef int freed_add(WTxn* w, uint32_t pg, uint32_t n, uint64_t written) noexcept nogil:
    """Record that this transaction frees pages [pg, pg+n), written by transaction
    `written` (commit decides from it whether the durable snapshot sees them)."""
    cdef size_t cap
    cdef uint32_t* nf
    cdef uint64_t* nt
    cdef uint32_t i
    if w.nfreed + n > w.capfreed:
        cap = w.capfreed * 2 if w.capfreed else 256
        while cap < w.nfreed + n:
            cap *= 2
        nf = <uint32_t*>realloc(w.freed, cap * 4)
        if nf == NULL:
            return nomem(w.env)
        w.freed = nf
        nt = <uint64_t*>realloc(w.freedtx, cap * 8)
        if nt == NULL:
            return nomem(w.env)
        w.freedtx = nt
        w.capfreed = cap
    for i in range(n):
        w.freed[w.nfreed + i] = pg + i
        w.freedtx[w.nfreed + i] = written
    w.nfreed += n
    return 0

cdef uint32_t cow(WTxn* w, uint32_t pg) noexcept nogil:
    """The dirty copy of page pg (pg itself when already dirty); 0 on error."""
    cdef const char* src
    cdef char* buf
    cdef uint32_t id
    if pg & TDB_DIRTY:
        return pg
    src = clean_page(w.env, w.snap.page_count, pg)
    if src == NULL:
        return 0
    id = dirty_new(w, 1, &buf)
    if id == 0:
        return 0
    memcpy(buf, src, w.env.psize)
    if freed_add(w, pg, 1, tdb_ld64(src + PH_TXNID)) < 0:
        return 0
    return id

cdef uint32_t node_new(WTxn* w, uint8_t ptype, uint8_t flags) noexcept nogil:
    cdef char* p
    cdef uint32_t id = dirty_new(w, 1, &p)
    if id == 0:
        return 0
    memset(p, 0, PH_SIZE)
    p[PH_TYPE] = <char>ptype
    p[PH_FLAGS] = <char>flags
    tdb_st16(p + PH_LOWER, PH_SIZE)
    tdb_st16(p + PH_UPPER, <uint16_t>w.env.psize)
    return id

cdef inline uint32_t cell_size(const char* p, const char* c) noexcept nogil:
    if p[PH_TYPE] == P_LEAF:
        return leaf_cell_size(c)
    return branch_cell_size(c)

cdef uint32_t page_used(const char* p) noexcept nogil:
    """Bytes taken by cells and their slots."""
    cdef uint32_t n = nkeys(p), i, used = 2 * n
    for i in range(n):
        used += cell_size(p, cell_at(p, i))
    return used

cdef inline void node_append(char* p, const char* cell, uint32_t size) noexcept nogil:
    """Append a cell after the last one; the caller knows it fits."""
    cdef uint32_t n = nkeys(p)
    cdef uint32_t upper = tdb_ld16(p + PH_UPPER) - size
    memcpy(p + upper, cell, size)
    tdb_st16(p + PH_SIZE + 2 * n, <uint16_t>upper)
    tdb_st16(p + PH_UPPER, <uint16_t>upper)
    tdb_st16(p + PH_LOWER, <uint16_t>(PH_SIZE + 2 * (n + 1)))
    tdb_st16(p + PH_NKEYS, <uint16_t>(n + 1))

cdef void node_reset(WTxn* w, char* p, const char* like) noexcept nogil:
    """Make p an empty node of the same type and flags as `like`."""
    memset(p, 0, PH_SIZE)
    p[PH_TYPE] = like[PH_TYPE]
    p[PH_FLAGS] = like[PH_FLAGS]
    tdb_st16(p + PH_LOWER, PH_SIZE)
    tdb_st16(p + PH_UPPER, <uint16_t>w.env.psize)

cdef void page_compact(WTxn* w, char* p) noexcept nogil:
    cdef char* s = w.scratch
    cdef uint32_t n = nkeys(p), i
    cdef const char* c
    node_reset(w, s, p)
    tdb_st32(s + PH_AUX, tdb_ld32(p + PH_AUX))
    for i in range(n):
        c = cell_at(p, i)
        node_append(s, c, cell_size(p, c))
    memcpy(p, s, w.env.psize)

cdef int page_insert(WTxn* w, char* p, uint32_t idx, const char* cell, uint32_t size) noexcept nogil:
    """Insert a cell at position idx: 0, or 1 when the page has no room."""
    cdef uint32_t n = nkeys(p)
    cdef uint32_t lower = tdb_ld16(p + PH_LOWER)
    cdef uint32_t upper = tdb_ld16(p + PH_UPPER)
    if upper - lower < size + 2:
        if w.env.psize - PH_SIZE - page_used(p) < size + 2:
            return 1
        page_compact(w, p)
        upper = tdb_ld16(p + PH_UPPER)
    upper -= size
    memcpy(p + upper, cell, size)
    memmove(p + PH_SIZE + 2 * (idx + 1), p + PH_SIZE + 2 * idx, 2 * (n - idx))
    tdb_st16(p + PH_SIZE + 2 * idx, <uint16_t>upper)
    tdb_st16(p + PH_UPPER, <uint16_t>upper)
    tdb_st16(p + PH_LOWER, <uint16_t>(lower + 2))
    tdb_st16(p + PH_NKEYS, <uint16_t>(n + 1))
    return 0

cdef void page_remove(char* p, uint32_t idx) noexcept nogil:
    cdef uint32_t n = nkeys(p)
    cdef uint32_t off = tdb_ld16(p + PH_SIZE + 2 * idx)
    if off == tdb_ld16(p + PH_UPPER):
        tdb_st16(p + PH_UPPER, <uint16_t>(off + cell_size(p, p + off)))
    memmove(p + PH_SIZE + 2 * idx, p + PH_SIZE + 2 * (idx + 1), 2 * (n - idx - 1))
    tdb_st16(p + PH_LOWER, <uint16_t>(PH_SIZE + 2 * (n - 1)))
    tdb_st16(p + PH_NKEYS, <uint16_t>(n - 1))

cdef int free_value(WTxn* w, const char* c) noexcept nogil:
    """Release the overflow extent of a leaf cell being removed or replaced."""
    cdef uint32_t klen = tdb_ld16(c)
    cdef uint32_t v = tdb_ld32(c + 2)
    cdef uint32_t pg
    cdef const char* op
    if not (v & TDB_OVF):
        return 0
    pg = tdb_ld32(c + 6 + klen)
    if pg & TDB_DIRTY:
        dirty_drop(w, pg)
        return 0
    op = clean_page(w.env, w.snap.page_count, pg)
    if op == NULL:
        return -1
    return freed_add(w, pg, tdb_ld32(op + PH_AUX), tdb_ld64(op + PH_TXNID))

cdef int touch_path(WTxn* w, TreeDesc* t, Path* path, uint32_t depth) noexcept nogil:
    """Make every page on the path dirty, top-down, relinking parents to copies."""
    cdef uint32_t level, nid
    for level in range(depth):
        if path.pg[level] & TDB_DIRTY:
            continue
        nid = cow(w, path.pg[level])
        if nid == 0:
            return -1
        if level == 0:
            t.root = nid
        else:
            set_child_at(dptr(w, path.pg[level - 1]), path.idx[level - 1], nid)
        path.pg[level] = nid
    return 0

cdef int descend_path(WTxn* w, TreeDesc* t, Path* path, const unsigned char* key, size_t klen,
                      bint* found) noexcept nogil:
    cdef EnvC* e = w.env
    cdef uint32_t pg = t.root, level
    cdef const char* p
    if t.depth > MAX_DEPTH:
        return corrupt(e, pg, "tree deeper than any valid tree")
    for level in range(t.depth):
        p = page_of(e, w, w.snap.page_count, pg)
        if p == NULL:
            return -1
        path.pg[level] = pg
        if level + 1 < t.depth:
            if p[PH_TYPE] != P_BRANCH:
                return corrupt(e, pg, "expected a branch page")
            path.idx[level] = branch_upper(p, key, klen)
            pg = child_at(p, path.idx[level])
        else:
            if p[PH_TYPE] != P_LEAF:
                return corrupt(e, pg, "expected a leaf page")
            path.idx[level] = leaf_lower(p, key, klen, found)
    return 0

cdef int split_insert(WTxn* w, TreeDesc* t, Path* path, int level, uint32_t idx,
                      const char* cell, uint32_t csize, int seq) noexcept nogil:
    """Insert a cell into the full dirty page at path level `level`, splitting it
    and, as needed, its ancestors (invariant 5 holds on both halves)."""
    cdef EnvC* e = w.env
    cdef char* p
    cdef char* r
    cdef char* s = w.scratch
    cdef uint32_t n, i, s_at, total, acc, right_bytes, right_id, root_id, seplen, cpl, alen, blen, lv
    cdef const char** cells = w.cellptr
    cdef uint32_t* sizes = w.cellsize
    cdef bint leaf, rightmost
    cdef const char* a
    cdef const char* b
    while True:
        p = dptr(w, path.pg[level])
        leaf = p[PH_TYPE] == P_LEAF
        n = nkeys(p)
        total = 0
        for i in range(n + 1):
            if i < idx:
                cells[i] = cell_at(p, i)
            elif i == idx:
                cells[i] = cell
            else:
                cells[i] = cell_at(p, i - 1)
            sizes[i] = csize if i == idx else cell_size(p, cells[i])
            total += sizes[i] + 2
        rightmost = idx == n
        lv = 0
        while rightmost and lv < <uint32_t>level:
            rightmost = path.idx[lv] == nkeys(dptr(w, path.pg[lv]))
            lv += 1
        # a split point suggested by the insert pattern, kept only when both
        # halves fit in a page; otherwise halve by bytes (that always fits: no
        # cell is larger than a quarter of a page)
        s_at = 0
        if leaf and rightmost and n >= 1:
            s_at = n                # appending: the old page stays full
        elif leaf and seq == 1 and idx >= 1:
            s_at = idx              # ascending: the new cell starts the right page
        elif leaf and seq == 2 and idx + 1 <= n:
            s_at = idx + 1          # descending: the new cell ends the left page
        elif not leaf and rightmost and n >= 2:
            s_at = n - 1
        if s_at:
            acc = 0
            for i in range(s_at):
                acc += sizes[i] + 2
            right_bytes = total - acc
            if not leaf:
                right_bytes -= sizes[s_at] + 2
            if acc > e.psize - PH_SIZE or right_bytes > e.psize - PH_SIZE:
                s_at = 0
        if s_at == 0:
            acc = 0
            while s_at < n:
                acc += sizes[s_at] + 2
                s_at += 1
                if acc * 2 >= total:
                    break
            if s_at < 1:
                s_at = 1
            if leaf and s_at > n:
                s_at = n
            if not leaf and s_at > n - 1:
                s_at = n - 1
        right_id = node_new(w, <uint8_t>p[PH_TYPE], <uint8_t>p[PH_FLAGS])
        if right_id == 0:
            return -1
        r = dptr(w, right_id)
        node_reset(w, s, p)
        if leaf:
            for i in range(s_at):
                node_append(s, cells[i], sizes[i])
            for i in range(s_at, n + 1):
                node_append(r, cells[i], sizes[i])
            # the shortest separator that is > the left's last key and <= the right's first
            a = cells[s_at - 1]
            b = cells[s_at]
            alen = tdb_ld16(a)
            blen = tdb_ld16(b)
            cpl = 0
            while cpl < alen and cpl < blen and a[6 + cpl] == b[6 + cpl]:
                cpl += 1
            seplen = cpl + 1 if cpl + 1 <= blen else blen
            memcpy(w.sepbuf, b + 6, seplen)
        else:
            tdb_st32(s + PH_AUX, tdb_ld32(p + PH_AUX))
            for i in range(s_at):
                node_append(s, cells[i], sizes[i])
            tdb_st32(r + PH_AUX, tdb_ld32(cells[s_at]))
            seplen = tdb_ld16(cells[s_at] + 4)
            memcpy(w.sepbuf, cells[s_at] + 6, seplen)
            for i in range(s_at + 1, n + 1):
                node_append(r, cells[i], sizes[i])
        memcpy(p, s, e.psize)
        if leaf:
            if idx >= s_at:
                w.last_leaf = right_id
                w.last_idx = idx - s_at
            else:
                w.last_leaf = path.pg[level]
                w.last_idx = idx
        seq = 0
        # the separator cell (right child, key) goes into the parent
        tdb_st32(w.cellbuf, right_id)
        tdb_st16(w.cellbuf + 4, <uint16_t>seplen)
        memcpy(w.cellbuf + 6, w.sepbuf, seplen)
        if level == 0:
            root_id = node_new(w, P_BRANCH, 0)
            if root_id == 0:
                return -1
            tdb_st32(dptr(w, root_id) + PH_AUX, path.pg[0])
            node_append(dptr(w, root_id), w.cellbuf, 6 + seplen)
            t.root = root_id
            t.depth += 1
            return 0
        level -= 1
        idx = path.idx[level]
        cell = w.cellbuf
        csize = 6 + seplen
        if page_insert(w, dptr(w, path.pg[level]), idx, cell, csize) == 0:
            return 0

cdef int tree_put(WTxn* w, TreeSlot* ts, const unsigned char* key, size_t klen,
                  const char* val, size_t vlen) noexcept nogil:
    cdef EnvC* e = w.env
    cdef TreeDesc* t = &ts.desc
    cdef Path path
    cdef bint found = False
    cdef uint32_t id, idx, csize, npages
    cdef char* leaf
    cdef char* ov
    cdef size_t ext
    cdef int seq
    if t.root == 0:
        id = node_new(w, P_LEAF, ts.leaf_flags)
        if id == 0:
            return -1
        t.root = id
        t.depth = 1
    if descend_path(w, t, &path, key, klen, &found) < 0:
        return -1
    if touch_path(w, t, &path, t.depth) < 0:
        return -1
    leaf = dptr(w, path.pg[t.depth - 1])
    idx = path.idx[t.depth - 1]
    tdb_st16(w.cellbuf, <uint16_t>klen)
    memcpy(w.cellbuf + 6, key, klen)
    if 6 + klen + vlen <= e.max_cell:
        tdb_st32(w.cellbuf + 2, <uint32_t>vlen)
        memcpy(w.cellbuf + 6 + klen, val, vlen)
        csize = <uint32_t>(6 + klen + vlen)
    else:
        ext = OV_DATA + vlen
        npages = <uint32_t>((ext + e.psize - 1) // e.psize)
        id = dirty_new(w, npages, &ov)
        if id == 0:
            return -1
        memset(ov, 0, OV_DATA)
        ov[PH_TYPE] = P_OVERFLOW
        tdb_st32(ov + PH_AUX, npages)
        memcpy(ov + OV_DATA, val, vlen)
        memset(ov + ext, 0, <size_t>npages * e.psize - ext)
        tdb_st32(w.cellbuf + 2, <uint32_t>vlen | TDB_OVF)
        tdb_st32(w.cellbuf + 6 + klen, id)
        csize = <uint32_t>(10 + klen)
        leaf[PH_FLAGS] = leaf[PH_FLAGS] | F_DIRTYREF
    if found:
        if free_value(w, cell_at(leaf, idx)) < 0:
            return -1
        page_remove(leaf, idx)
    else:
        t.entries += 1
    ts.modified = 1
    w.mods += 1
    # the direction of recent inserts into this leaf picks the split point
    seq = 0
    if not found and path.pg[t.depth - 1] == w.last_leaf:
        if idx == w.last_idx + 1:
            seq = 1
        elif idx == w.last_idx:
            seq = 2
    w.last_leaf = path.pg[t.depth - 1]
    w.last_idx = idx
    if page_insert(w, leaf, idx, w.cellbuf, csize) == 1:
        return split_insert(w, t, &path, t.depth - 1, idx, w.cellbuf, csize, seq)
    return 0

cdef int rebalance(WTxn* w, TreeDesc* t, Path* path) noexcept nogil:
    """Merge underfull pages on the path with a sibling when the two fit in one
    page; collapse a root left with a single child (invariant 5: all leaves stay
    at one depth)."""
    cdef EnvC* e = w.env
    cdef uint32_t cap = e.psize - PH_SIZE
    cdef int level = t.depth - 1
    cdef char* p
    cdef char* parent
    cdef char* l
    cdef const char* lp
    cdef const char* rp
    cdef const char* sepc
    cdef const char* c
    cdef uint32_t ci, li, ri, lpg, rpg, lid, need, i, seplen, root
    cdef bint isleaf
    while level > 0:
        p = dptr(w, path.pg[level])
        if nkeys(p) > 0 and page_used(p) * 4 >= cap:
            break
        parent = dptr(w, path.pg[level - 1])
        if nkeys(parent) == 0:
            break
        ci = path.idx[level - 1]
        li = ci - 1 if ci > 0 else 0
        ri = li + 1
        lpg = child_at(parent, li)
        rpg = child_at(parent, ri)
        lp = page_of(e, w, w.snap.page_count, lpg)
        if lp == NULL:
            return -1
        rp = page_of(e, w, w.snap.page_count, rpg)
        if rp == NULL:
            return -1
        isleaf = lp[PH_TYPE] == P_LEAF
        if rp[PH_TYPE] != lp[PH_TYPE]:
            return corrupt(e, rpg, "sibling pages of different types")
        sepc = cell_at(parent, ri - 1)
        seplen = tdb_ld16(sepc + 4)
        need = page_used(lp) + page_used(rp)
        if not isleaf:
            need += 2 + 6 + seplen
        if need > cap:
            break
        lid = cow(w, lpg)
        if lid == 0:
            return -1
        set_child_at(parent, li, lid)
        l = dptr(w, lid)
        if not isleaf:
            tdb_st32(w.cellbuf, tdb_ld32(rp + PH_AUX))
            tdb_st16(w.cellbuf + 4, <uint16_t>seplen)
            memcpy(w.cellbuf + 6, sepc + 6, seplen)
            page_insert(w, l, nkeys(l), w.cellbuf, 6 + seplen)
        for i in range(nkeys(rp)):
            c = cell_at(rp, i)
            page_insert(w, l, nkeys(l), c, cell_size(rp, c))
        l[PH_FLAGS] = l[PH_FLAGS] | (rp[PH_FLAGS] & F_DIRTYREF)
        if rpg & TDB_DIRTY:
            dirty_drop(w, rpg)
        elif freed_add(w, rpg, 1, tdb_ld64(rp + PH_TXNID)) < 0:
            return -1
        page_remove(parent, ri - 1)
        level -= 1
    while t.root != 0:
        root = t.root
        p = dptr(w, root)
        if p[PH_TYPE] == P_BRANCH and nkeys(p) == 0:
            t.root = tdb_ld32(p + PH_AUX)
            t.depth -= 1
            dirty_drop(w, root)
        elif p[PH_TYPE] == P_LEAF and nkeys(p) == 0:
            dirty_drop(w, root)
            t.root = 0
            t.depth = 0
        else:
            break
    return 0

cdef int tree_delete(WTxn* w, TreeSlot* ts, const unsigned char* key, size_t klen) noexcept nogil:
    """1 when the key was deleted, 0 when absent, -1 on error."""
    cdef TreeDesc* t = &ts.desc
    cdef Path path
    cdef bint found = False
    cdef char* leaf
    cdef uint32_t idx
    if t.root == 0:
        return 0
    if descend_path(w, t, &path, key, klen, &found) < 0:
        return -1
    if not found:
        return 0
    if touch_path(w, t, &path, t.depth) < 0:
        return -1
    leaf = dptr(w, path.pg[t.depth - 1])
    idx = path.idx[t.depth - 1]
    if free_value(w, cell_at(leaf, idx)) < 0:
        return -1
    page_remove(leaf, idx)
    t.entries -= 1
    ts.modified = 1
    w.mods += 1
    if rebalance(w, t, &path) < 0:
        return -1
    return 1

cdef int tree_free_all(WTxn* w, uint32_t pg, uint32_t depth) noexcept nogil:
    """Release every page of a subtree (dropping a named tree)."""
    cdef const char* p
    cdef uint32_t i, n
    if pg == 0:
        return 0
    p = page_of(w.env, w, w.snap.page_count, pg)
    if p == NULL:
        return -1
    n = nkeys(p)
    if depth > 1:
        for i in range(n + 1):
            if tree_free_all(w, child_at(p, i), depth - 1) < 0:
                return -1
    else:
        for i in range(n):
            if free_value(w, cell_at(p, i)) < 0:
                return -1
    if pg & TDB_DIRTY:
        dirty_drop(w, pg)
        return 0
    return freed_add(w, pg, 1, tdb_ld64(p + PH_TXNID))

# ----------------------------------------------------------------------------
# The I/O layer: every write and fsync of the page file passes here, so that a
# test can record them and rebuild the file as a power cut would leave it.
# ----------------------------------------------------------------------------

cdef int io_write(EnvC* e, const char* buf, size_t n, uint64_t off) noexcept:
    cdef int r
    if e.io_hook != NULL:
        try:
            (<object>e.io_hook)("write", off, PyBytes_FromStringAndSize(buf, n))
        except BaseException as exc:
            return set_err(e, E_IO, 0, f"I/O hook failed: {exc!r}".encode()[:400])
    if n >= 65536:
        with nogil:
            r = tdb_pwrite_all(e.fd, buf, n, off)
    else:
        r = tdb_pwrite_all(e.fd, buf, n, off)
    if r < 0:
        return io_err(e, "writing the page file failed")
    e.unsynced_bytes += n
    return 0

cdef int io_sync(EnvC* e) noexcept:
    cdef int r
    if e.io_hook != NULL:
        try:
            (<object>e.io_hook)("sync", 0, None)
        except BaseException as exc:
            return set_err(e, E_IO, 0, f"I/O hook failed: {exc!r}".encode()[:400])
    with nogil:
        r = tdb_fdatasync(e.fd)
    if r < 0:
        return io_err(e, "fsync of the page file failed")
    e.unsynced_bytes = 0
    e.last_sync = tdb_monotonic()
    return 0

# ----------------------------------------------------------------------------
# Meta pages (invariant 2)
# ----------------------------------------------------------------------------

cdef void state_load(const char* b, State* s) noexcept nogil:
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
    """The newest valid meta; after a reboot, its durable state when the newest
    one was never synced (see Durability)."""
    cdef const char* m0
    cdef const char* m1
    cdef bint v0 = meta_valid_cached(e, 0)
    cdef bint v1 = meta_valid_cached(e, 1)
    cdef const char* m
    m0 = e.meta_seen[0]
    m1 = e.meta_seen[1]
    if v0 and v1:
        m = m0 if tdb_ld64(m0 + M_STATE) >= tdb_ld64(m1 + M_STATE) else m1
    elif v0:
        m = m0
    elif v1:
        m = m1
    else:
        return corrupt(e, 0, "neither meta page is valid (bad magic, version or checksum)")
    state_load(m + M_STATE, cur)
    state_load(m + M_DURABLE, dur)
    if (memcmp(m + M_BOOT, e.boot_id, 16) != 0 and dur.txnid != 0
            and dur.txnid != cur.txnid):
        cur[0] = dur[0]
    if not state_sane(cur):
        return corrupt(e, 0, "meta page describes an impossible state")
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

# ----------------------------------------------------------------------------
# The shared reader table (in the lock file, mmap'd): a snapshot in use holds a
# slot with its pid and transaction id (invariant 1). No system call on the
# hot path: a process keeps the slots it claimed and reuses them.
# ----------------------------------------------------------------------------

cdef inline uint32_t* slot_pid(EnvC* e, int i) noexcept nogil:
    return <uint32_t*>(e.lmap + LF_SLOTS + <size_t>i * SLOT_SIZE)

cdef inline uint64_t* slot_txn(EnvC* e, int i) noexcept nogil:
    return <uint64_t*>(e.lmap + LF_SLOTS + <size_t>i * SLOT_SIZE + 8)

cdef int slot_acquire(EnvC* e) noexcept nogil:
    """A reader slot owned by this process, or -1 (E_READERS)."""
    cdef int i, attempt, used
    cdef uint32_t pid
    cdef int* grown
    if e.nolock:
        return -2
    if e.nslots_free > 0:
        e.nslots_free -= 1
        return e.slots_free[e.nslots_free]
    for attempt in range(2):
        for i in range(<int>e.nslots):
            if tdb_aload32(slot_pid(e, i)) == 0 and tdb_acas32(slot_pid(e, i), 0, e.pid):
                tdb_astore64(slot_txn(e, i), 0)
                while True:
                    used = tdb_aload32(<uint32_t*>(e.lmap + LF_USED))
                    if used > i or tdb_acas32(<uint32_t*>(e.lmap + LF_USED), used, i + 1):
                        break
                grown = <int*>realloc(e.slots_owned, (e.nslots_owned + 1) * sizeof(int))
                if grown == NULL:
                    tdb_astore32(slot_pid(e, i), 0)
                    nomem(e)
                    return -1
                e.slots_owned = grown
                e.slots_owned[e.nslots_owned] = i
                e.nslots_owned += 1
                grown = <int*>realloc(e.slots_free, e.nslots_owned * sizeof(int))
                if grown == NULL:
                    nomem(e)
                    return -1
                e.slots_free = grown
                return i
        # reclaim the slots of processes that died (SIGKILL leaves them behind)
        for i in range(<int>e.nslots):
            pid = tdb_aload32(slot_pid(e, i))
            if pid != 0 and pid != e.pid and kill(pid, 0) < 0 and errno == ESRCH:
                tdb_astore64(slot_txn(e, i), 0)
                tdb_acas32(slot_pid(e, i), pid, 0)
    set_err(e, E_READERS, 0, "every slot of the reader table is held by a live reader; "
            "close iterators and transactions you no longer use, or reopen with a larger max_readers")
    return -1

cdef inline void slot_release(EnvC* e, int i) noexcept nogil:
    if i < 0:
        return
    tdb_astore64(slot_txn(e, i), 0)
    e.slots_free[e.nslots_free] = i
    e.nslots_free += 1

cdef int snapshot_begin(EnvC* e, int slot, State* st, State* dur) noexcept nogil:
    """Read the newest snapshot and publish it in the slot, so no writer reuses
    its pages (the slot is stored, then the meta re-read: a writer that missed
    the slot has not yet committed past it, invariant 1)."""
    cdef State again, d2
    cdef int tries
    for tries in range(1000):
        if read_meta(e, st, dur) < 0:
            return -1
        if slot < 0:
            break
        tdb_astore64(slot_txn(e, slot), st.txnid)
        tdb_fence()
        if read_meta(e, &again, &d2) < 0:
            return -1
        if again.txnid == st.txnid:
            break
    return check_file_size(e, st.page_count)

cdef uint64_t reader_horizon(EnvC* e, uint64_t latest) noexcept nogil:
    """The oldest transaction id any reader slot still uses (latest when none)."""
    cdef uint64_t h = latest, t
    cdef uint32_t pid
    cdef int i, used
    cdef bint check_pids = False
    cdef double now
    if e.nolock:
        return h
    now = tdb_monotonic()
    if now - e.last_pid_check > 0.05:
        # at most 20 times a second: is a slot that pins pages held by a dead process?
        check_pids = True
        e.last_pid_check = now
    used = tdb_aload32(<uint32_t*>(e.lmap + LF_USED))
    if used > <int>e.nslots:
        used = e.nslots
    for i in range(used):
        pid = tdb_aload32(slot_pid(e, i))
        if pid == 0:
            continue
        t = tdb_aload64(slot_txn(e, i))
        if t == 0 or t >= h:
            continue
        if pid != e.pid and check_pids and kill(pid, 0) < 0 and errno == ESRCH:
            tdb_astore64(slot_txn(e, i), 0)
            tdb_acas32(slot_pid(e, i), pid, 0)
            continue
        h = t
    return h

# ----------------------------------------------------------------------------
# The write lock: an in-process mutex, then an open-file-description lock on
# byte 0 of the lock file (released by the OS when a process dies).
# ----------------------------------------------------------------------------

cdef int wlock(EnvC* e, double timeout) noexcept:
    """Take the database's write lock, waiting up to timeout seconds."""
    cdef uint32_t* state
    cdef uint32_t* owner
    cdef double deadline, now, zero_owner_since = 0
    cdef uint32_t pid
    cdef int got = 0
    if e.nolock:
        return set_err(e, E_LOCKED, 0, "this handle has no lock file and cannot write")
    state = <uint32_t*>(e.lmap + LF_WSTATE)
    owner = <uint32_t*>(e.lmap + LF_WOWNER)
    if tdb_wlock_try(state, owner, e.pid):
        e.active += 1
        return 0
    deadline = tdb_monotonic() + timeout
    while True:
        with nogil:
            got = tdb_wlock_wait(state, owner, e.pid, 2000)
        if got:
            e.active += 1
            return 0
        now = tdb_monotonic()
        pid = tdb_aload32(owner)
        if pid != 0 and pid != e.pid and kill(pid, 0) < 0 and errno == ESRCH:
            # the writer died holding the lock (SIGKILL): its commit never
            # published a meta page, so taking over is safe
            if tdb_wlock_steal(state, owner, pid, e.pid):
                e.active += 1
                return 0
        elif pid == 0:
            # held, but no owner recorded: a writer between its two stores, or
            # one that died there; after a second it is the latter
            if zero_owner_since == 0:
                zero_owner_since = now
            elif now - zero_owner_since > 1.0 and tdb_wlock_steal(state, owner, 0, e.pid):
                e.active += 1
                return 0
        else:
            zero_owner_since = 0
        if now > deadline:
            if pid == e.pid:
                return set_err(e, E_LOCKED, 0, "another thread of this process held the write "
                               "lock for longer than lock_timeout (an immediate transaction "
                               "still open?)")
            return set_err(e, E_LOCKED, 0, "another process held the database's write lock for "
                           "longer than lock_timeout; retry, or open with a larger lock_timeout")

cdef void wunlock(EnvC* e) noexcept nogil:
    e.active -= 1
    tdb_wlock_release(<uint32_t*>(e.lmap + LF_WSTATE), <uint32_t*>(e.lmap + LF_WOWNER))

# ----------------------------------------------------------------------------
# The freelist (invariants 1 and 3)
# ----------------------------------------------------------------------------

cdef void fl_clear(EnvC* e) noexcept nogil:
    cdef size_t i
    for i in range(e.fl_npend):
        free(e.fl_pend[i].pages)
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
    e.fl_npend += 1
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

cdef size_t runs_of(const uint32_t* pages, size_t n, char* out) noexcept nogil:
    """Write ascending pages as (first, count) runs; returns the number of runs.
    With out NULL only counts."""
    cdef size_t i = 0, runs = 0
    cdef uint32_t start, cnt
    while i < n:
        start = pages[i]
        cnt = 1
        while i + cnt < n and pages[i + cnt] == start + cnt:
            cnt += 1
        if out != NULL:
            tdb_st32(out + 8 * runs, start)
            tdb_st32(out + 8 * runs + 4, cnt)
        runs += 1
        i += cnt
    return runs

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
    """Replace dirty ids by the real page ids commit assigned."""
    cdef uint32_t n, j, ref, klen, v
    cdef char* c
    cdef uint8_t t = <uint8_t>p[PH_TYPE]
    if t == P_BRANCH:
        n = nkeys(p)
        for j in range(n + 1):
            ref = child_at(p, j)
            if ref & TDB_DIRTY:
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
                        tdb_st32(c + 6 + klen, w.dirty[ref & ~TDB_DIRTY].real)
            p[PH_FLAGS] = p[PH_FLAGS] & ~F_DIRTYREF
        if p[PH_FLAGS] & F_CATALOG:
            for j in range(n):
                c = <char*>cell_at(p, j)
                klen = tdb_ld16(c)
                ref = tdb_ld32(c + 6 + klen)
                if ref & TDB_DIRTY:
                    tdb_st32(c + 6 + klen, w.dirty[ref & ~TDB_DIRTY].real)
    return 0

cdef int fl_build(WTxn* w, State* ns) noexcept:
    """Allocate and fill the new freelist extent (added to the dirty set)."""
    cdef EnvC* e = w.env
    cdef size_t runs, bytes_, i, k
    cdef uint32_t npages, pg, id
    cdef uint32_t* asc
    cdef char* buf
    cdef char* q
    if e.fl_nfree == 0 and e.fl_npend == 0:
        ns.fl_pgno = 0
        ns.fl_npages = 0
        return 0
    asc = <uint32_t*>malloc(e.fl_nfree * 4 + 4)
    if asc == NULL:
        return nomem(e)
    for i in range(e.fl_nfree):
        asc[i] = e.fl_free[e.fl_nfree - 1 - i]
    bytes_ = FL_RUNS + 8 * (runs_of(asc, e.fl_nfree, NULL) + 1)
    for k in range(e.fl_npend):
        bytes_ += 12 + 8 * runs_of(e.fl_pend[k].pages, e.fl_pend[k].n, NULL)
    npages = <uint32_t>((bytes_ + e.psize - 1) // e.psize)
    pg = fl_alloc(e, ns, npages)
    if pg == 0:
        free(asc)
        return -1
    id = dirty_new(w, npages, &buf)
    if id == 0:
        free(asc)
        return -1
    w.dirty[id & ~TDB_DIRTY].real = pg
    memset(buf, 0, <size_t>npages * e.psize)
    buf[PH_TYPE] = P_FREELIST
    tdb_st32(buf + PH_AUX, npages)
    for i in range(e.fl_nfree):
        asc[i] = e.fl_free[e.fl_nfree - 1 - i]
    runs = runs_of(asc, e.fl_nfree, buf + FL_RUNS)
    free(asc)
    tdb_st32(buf + FL_NRUNS, <uint32_t>runs)
    tdb_st32(buf + FL_NGROUPS, <uint32_t>e.fl_npend)
    q = buf + FL_RUNS + 8 * runs
    for k in range(e.fl_npend):
        tdb_st64(q, e.fl_pend[k].txnid)
        runs = runs_of(e.fl_pend[k].pages, e.fl_pend[k].n, q + 12)
        tdb_st32(q + 8, <uint32_t>runs)
        q += 12 + 8 * runs
    ns.fl_pgno = pg
    ns.fl_npages = npages
    return 0

cdef int io_writev(EnvC* e, iovec* iov, int cnt, size_t total, uint64_t off) noexcept:
    """Write iov[0:cnt] (total bytes) at off: one pwritev, retried on short writes."""
    cdef ssize_t w
    cdef int i
    if e.io_hook != NULL or cnt == 1:
        for i in range(cnt):
            if io_write(e, <const char*>iov[i].iov_base, iov[i].iov_len, off) < 0:
                return -1
            off += iov[i].iov_len
        return 0
    with nogil:
        w = pwritev(e.fd, iov, cnt, <off_t>off)
    if w == <ssize_t>total:
        e.unsynced_bytes += total
        return 0
    if w < 0 and errno != EINTR:
        return io_err(e, "writing the page file failed")
    # a short or interrupted write: finish piece by piece
    if w < 0:
        w = 0
    for i in range(cnt):
        if <size_t>w >= iov[i].iov_len:
            w -= iov[i].iov_len
            off += iov[i].iov_len
            continue
        if io_write(e, <const char*>iov[i].iov_base + w, iov[i].iov_len - w, off + w) < 0:
            return -1
        off += iov[i].iov_len
        w = 0
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
    if fl_push_pending(e, txnid | TDB_PINNED, pin, <uint32_t>npin) < 0 or \
            fl_push_pending(e, txnid, unpin, <uint32_t>nfree) < 0:
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
    if w.snap.fl_pgno:
        flp = clean_page(e, w.snap.page_count, w.snap.fl_pgno)
        if flp == NULL or freed_add(w, w.snap.fl_pgno, w.snap.fl_npages, tdb_ld64(flp + PH_TXNID)) < 0:
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
    elif e.sync_mode == SYNC_NORMAL:
        syncpoint = (e.unsynced_bytes >= e.sync_bytes
                     or tdb_monotonic() - e.last_sync >= e.sync_interval)
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
    return 0

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

# ----------------------------------------------------------------------------
# Python-facing objects
# ----------------------------------------------------------------------------

_open_envs = _weakref.WeakSet()

def _after_fork_in_child():
    for env in list(_open_envs):
        (<Env>env)._mark_forked()

_os.register_at_fork(after_in_child=_after_fork_in_child)

SYNC_MODES = {"off": SYNC_OFF, "normal": SYNC_NORMAL, "full": SYNC_FULL}
_SYNC_NAMES = {v: k for k, v in SYNC_MODES.items()}


cdef int get_buf(object obj, Py_buffer* view, str what) except -1:
    try:
        PyObject_GetBuffer(obj, view, PyBUF_SIMPLE)
    except TypeError:
        if isinstance(obj, str):
            raise TypeError(f"{what} must be bytes (or another bytes-like object), not str; "
                            f"encode it first, for example {what}.encode()") from None
        raise TypeError(f"{what} must be bytes (or another bytes-like object), "
                        f"not {type(obj).__name__}") from None
    return 0

cdef int get_key(EnvC* e, object obj, Py_buffer* view, str what="key") except -1:
    get_buf(obj, view, what)
    if view.len == 0 or view.len > e.max_key:
        n = view.len
        PyBuffer_Release(view)
        if n == 0:
            raise ValueError(f"{what} must not be empty")
        raise ValueError(f"{what} is {n} bytes; the maximum with {e.psize}-byte pages is "
                         f"{e.max_key} bytes")
    return 0

cdef int get_value(object obj, Py_buffer* view) except -1:
    get_buf(obj, view, "value")
    if view.len >= 0x7fffffff:
        PyBuffer_Release(view)
        raise ValueError("values are limited to 2 GiB - 1 bytes")
    return 0

cdef object value_bytes(EnvC* e, WTxn* w, uint32_t limit, const char* cell):
    cdef const char* vp = NULL
    cdef size_t vlen = 0
    if leaf_value(e, w, limit, cell, &vp, &vlen) < 0:
        raise_err(e)
    return PyBytes_FromStringAndSize(vp, vlen)

cdef const char* find_cell(EnvC* e, WTxn* w, int ti, key) except? NULL:
    """The leaf cell of key in tree slot ti of a transaction, or NULL when absent."""
    cdef Py_buffer kb
    cdef const char* cell = NULL
    cdef int rc
    get_key(e, key, &kb)
    try:
        rc = tree_find(e, w, w.snap.page_count, &w.trees[ti].desc,
                       <const unsigned char*>kb.buf, kb.len, &cell)
    finally:
        PyBuffer_Release(&kb)
    if rc < 0:
        raise_err(e)
    return cell if rc == 1 else NULL

cdef inline int check_open(Env env) except -1:
    if env.e == NULL or env.e.status != 0:
        env._raise_status()
    return 0


cdef class Env:
    """An open page file. Use ``toondb.Database``; this is its engine."""

    def __cinit__(self, *args, **kwargs):
        self.e = NULL
        self.auto = NULL
        self._hook = None
        self._txn_class = Txn
        self._live = _weakref.WeakSet()

    def __dealloc__(self):
        if self.e != NULL:
            self._teardown(False)
            free(self.e.vbits)
            free(self.e.fl_free)
            fl_clear(self.e)
            free(self.e.fl_pend)
            free(self.e.slots_free)
            free(self.e.slots_owned)
            free(self.e)
            self.e = NULL
        wtxn_free(self.auto)
        self.auto = NULL

    def _raise_status(self):
        if self.e != NULL and self.e.status == 2:
            raise ForkedHandleError(
                "this database handle was opened before os.fork() and cannot be used in the "
                "child process; open the database again in the child: Database.open(path)")
        raise ClosedError("the database is closed; open it again with Database.open(path)")

    cdef void _mark_forked(self):
        if self.e != NULL and self.e.status == 0:
            self.e.status = 2

    def _open(self, str data_path, str lock_path, bint create, bint read_only, int page_size,
              uint64_t map_size, str sync_mode, uint64_t sync_bytes, double sync_interval,
              double lock_timeout, int max_readers, bytes boot_id):
        cdef EnvC* e = <EnvC*>calloc(1, sizeof(EnvC))
        if e == NULL:
            raise MemoryError()
        self.e = e
        e.fd = -1
        e.lfd = -1
        e.get_slot = -1
        e.status = 1
        e.pid = getpid()
        e.read_only = read_only
        e.sync_mode = SYNC_MODES[sync_mode]
        e.sync_bytes = sync_bytes
        e.sync_interval = sync_interval
        e.lock_timeout = lock_timeout
        e.last_sync = tdb_monotonic()
        memcpy(e.boot_id, <const char*>boot_id, 16)
        try:
            self._open_files(data_path, lock_path, create, read_only, page_size, map_size, max_readers)
        except BaseException:
            self._teardown(False)
            raise
        self.auto = wtxn_new(e)
        if self.auto == NULL:
            self._teardown(False)
            raise MemoryError()
        _open_envs.add(self)

    cdef _open_files(self, str data_path, str lock_path, bint create, bint read_only,
                     int page_size, uint64_t map_size, int max_readers):
        cdef EnvC* e = self.e
        cdef State cur, dur
        cdef void* m
        cdef size_t lsize
        cdef uint64_t maxtxn = 0
        cdef bint first = False
        # the lock file first: its init byte serializes creation and recovery
        try:
            e.lfd = _os.open(lock_path, _os.O_RDWR | _os.O_CREAT | getattr(_os, "O_CLOEXEC", 0), 0o644)
        except OSError:
            if not read_only:
                raise
            e.nolock = 1
        if not e.nolock and tdb_lock_byte(e.lfd, F_WRLCK, LOCK_INIT, 1) < 0:
            raise OSError(errno, "cannot lock " + lock_path)
        try:
            flags = (_os.O_RDONLY if read_only else _os.O_RDWR) | getattr(_os, "O_CLOEXEC", 0)
            if create and not read_only and not _os.path.exists(data_path):
                # a new file is written whole under another name and renamed into
                # place, so an empty or short page file is always damage
                e.psize = page_size if page_size else 4096
                self._configure_page_size()
                self._create_file(data_path)
            e.fd = _os.open(data_path, flags, 0o644)
            size = _os.fstat(e.fd).st_size
            if size < 512:
                raise CorruptionError(f"{data_path} is {size} bytes long: too short for a toondb "
                                      "database (truncated, or not a toondb file)")
            else:
                e.psize = self._detect_page_size(data_path)
                if page_size and <uint32_t>page_size != e.psize:
                    raise ValueError(f"config page_size={page_size} does not match the existing "
                                     f"database, which uses {e.psize}-byte pages; omit page_size")
                self._configure_page_size()
                if size < 2 * e.psize:
                    raise CorruptionError(f"{data_path} is {size} bytes long: shorter than its two "
                                          "meta pages (truncated)")
            lsize = <size_t>max(map_size, size)
            lsize = (lsize + e.psize - 1) // e.psize * e.psize
            m = mmap(NULL, lsize, PROT_READ, MAP_SHARED, e.fd, 0)
            if m == MAP_FAILED:
                raise OSError(errno, f"cannot map {data_path} ({lsize} bytes); "
                              "try a smaller map_size")
            e.map = <char*>m
            e.map_len = lsize
            e.map_pages = lsize // e.psize
            e.file_pages = size // e.psize
            if not e.nolock:
                self._open_reader_table(lock_path, max_readers)
            if read_meta(e, &cur, &dur) < 0:
                raise_err(e)
            if check_file_size(e, cur.page_count) < 0:
                raise_err(e)
            if not read_only and not e.nolock and self._needs_recovery(&maxtxn):
                self._recover(maxtxn)
            e.last_synced_txnid = cur.txnid
            e.status = 0
        finally:
            if not e.nolock:
                tdb_lock_byte(e.lfd, F_UNLCK, LOCK_INIT, 0)

    cdef _configure_page_size(self):
        cdef EnvC* e = self.e
        e.max_key = e.psize // 4 - 32
        e.max_cell = (e.psize - PH_SIZE) // 4 - 2

    cdef _create_file(self, str data_path):
        cdef EnvC* e = self.e
        cdef State st
        cdef int rc
        memset(&st, 0, sizeof(State))
        st.txnid = 1
        st.page_count = 2
        tmp = data_path + ".creating"
        e.fd = _os.open(tmp, _os.O_RDWR | _os.O_CREAT | _os.O_TRUNC | getattr(_os, "O_CLOEXEC", 0), 0o644)
        try:
            zero = b"\0" * (2 * e.psize)
            rc = io_write(e, zero, len(zero), 0)
            if rc == 0:
                rc = write_meta(e, 0, &st, &st)
            if rc == 0:
                rc = write_meta(e, 1, &st, &st)
            if rc == 0:
                rc = io_sync(e)
            if rc < 0:
                raise_err(e)
        finally:
            c_close(e.fd)
            e.fd = -1
        _os.rename(tmp, data_path)
        dfd = _os.open(_os.path.dirname(_os.path.abspath(data_path)), _os.O_RDONLY)
        try:
            _os.fsync(dfd)
        finally:
            _os.close(dfd)

    cdef uint32_t _detect_page_size(self, str path) except 0:
        cdef uint32_t cand
        cdef bytes head
        for cand in (0, 512, 1024, 2048, 4096, 8192, 16384, 32768):
            head = _os.pread(self.e.fd, 256, cand)
            if len(head) < 256 or head[8:16] != MAGIC:
                continue
            ps = int.from_bytes(head[20:24], "little")
            if (cand == 0 or ps == cand) and ps in (512, 1024, 2048, 4096, 8192, 16384, 32768):
                if tdb_crc32c(0, <const char*>head + 4, 252) == int.from_bytes(head[0:4], "little"):
                    return ps
        raise CorruptionError(f"{path} is not a toondb database: neither meta page has a valid "
                              "toondb header (wrong file, or both meta pages are damaged)")

    cdef _open_reader_table(self, str lock_path, int max_readers):
        cdef EnvC* e = self.e
        cdef void* m
        cdef size_t lsize
        if tdb_lock_byte(e.lfd, F_WRLCK, LOCK_PRESENCE, 0) == 0:
            # nobody else has the database open: (re)initialize the table,
            # dropping slots left behind by processes that died
            lsize = LF_SLOTS + <size_t>max_readers * SLOT_SIZE
            _os.ftruncate(e.lfd, 0)
            _os.ftruncate(e.lfd, lsize)
            header = LOCK_MAGIC + (1).to_bytes(4, "little") + max_readers.to_bytes(4, "little")
            _os.pwrite(e.lfd, header, 0)
            tdb_lock_byte(e.lfd, F_RDLCK, LOCK_PRESENCE, 0)
        else:
            if tdb_lock_byte(e.lfd, F_RDLCK, LOCK_PRESENCE, 1) < 0:
                raise OSError(errno, "cannot lock " + lock_path)
            header = _os.pread(e.lfd, 16, 0)
            if len(header) < 16 or header[:8] != LOCK_MAGIC or int.from_bytes(header[8:12], "little") != 1:
                raise CorruptionError(f"{lock_path} is not a toondb lock file; close every process "
                                      "using the database and delete it")
            lsize = LF_SLOTS + <size_t>int.from_bytes(header[12:16], "little") * SLOT_SIZE
            if _os.fstat(e.lfd).st_size < lsize:
                raise CorruptionError(f"{lock_path} is truncated; close every process using the "
                                      "database and delete it")
        m = mmap(NULL, lsize, PROT_READ | PROT_WRITE, MAP_SHARED, e.lfd, 0)
        if m == MAP_FAILED:
            raise OSError(errno, "cannot map " + lock_path)
        e.lmap = <char*>m
        e.lmap_len = lsize
        e.nslots = <uint32_t>tdb_ld32(e.lmap + LF_NSLOTS)

    cdef bint _needs_recovery(self, uint64_t* maxtxn):
        """After a reboot, is the newest meta one that was never synced?"""
        cdef EnvC* e = self.e
        cdef const char* m
        cdef State cur, dur
        cdef int s
        cdef bint need = False
        maxtxn[0] = 0
        for s in range(2):
            m = e.map + <size_t>s * e.psize
            if not meta_valid(e, m):
                continue
            state_load(m + M_STATE, &cur)
            state_load(m + M_DURABLE, &dur)
            if cur.txnid > maxtxn[0]:
                maxtxn[0] = cur.txnid
                need = (memcmp(m + M_BOOT, e.boot_id, 16) != 0 and dur.txnid != 0
                        and dur.txnid != cur.txnid)
        return need

    cdef _recover(self, uint64_t maxtxn):
        """Make the durable state the newest, in both meta pages, under a fresh
        transaction id (so ids keep increasing)."""
        cdef EnvC* e = self.e
        cdef State cur, dur
        if wlock(e, e.lock_timeout) < 0:
            raise_err(e)
        try:
            if read_meta(e, &cur, &dur) < 0:
                raise_err(e)
            cur.txnid = maxtxn + 1
            if sync_point(e, &cur) < 0:
                raise_err(e)
        finally:
            wunlock(e)

    cdef _teardown(self, bint sync):
        """Unmap and close. A forked child only drops its copies: the locks and
        reader slots belong to the parent."""
        cdef EnvC* e = self.e
        cdef int i
        if e == NULL:
            return
        if e.status == 0:
            for i in range(e.nslots_owned):
                tdb_astore64(slot_txn(e, e.slots_owned[i]), 0)
                tdb_astore32(slot_pid(e, e.slots_owned[i]), 0)
        e.nslots_owned = 0
        e.nslots_free = 0
        e.get_slot = -1
        if e.map != NULL:
            munmap(e.map, e.map_len)
            e.map = NULL
        if e.lmap != NULL:
            munmap(e.lmap, e.lmap_len)
            e.lmap = NULL
        if e.fd >= 0:
            c_close(e.fd)
            e.fd = -1
        if e.lfd >= 0:
            c_close(e.lfd)
            e.lfd = -1
        if e.status != 2:
            e.status = 1

    def close(self):
        """Close the database: abort its open transactions, make committed data
        durable per sync_mode, release locks and memory. Idempotent."""
        cdef EnvC* e = self.e
        if e == NULL or e.status == 1:
            return
        _open_envs.discard(self)
        if e.status == 2:
            self._teardown(False)
            return
        for txn in list(self._live):
            (<Txn>txn)._finish()
        if e.sync_mode == SYNC_NORMAL and not e.read_only and not e.nolock:
            if wlock(e, e.lock_timeout) == 0:
                try:
                    self._sync_point_locked()
                finally:
                    wunlock(e)
        # wait for commits and searches running in other threads with the GIL released
        e.closing = 1
        while e.active > 0 or e.pins > 0:
            with nogil:
                usleep(200)
        self._teardown(True)

    cdef _sync_point_locked(self):
        cdef EnvC* e = self.e
        cdef State cur, dur
        if read_meta(e, &cur, &dur) < 0:
            raise_err(e)
        if dur.txnid == cur.txnid and e.unsynced_bytes == 0:
            return
        if sync_point(e, &cur) < 0:
            raise_err(e)

    @property
    def closed(self):
        return self.e == NULL or self.e.status != 0

    @property
    def page_size(self):
        check_open(self)
        return self.e.psize

    @property
    def max_key_size(self):
        check_open(self)
        return self.e.max_key

    @property
    def read_only(self):
        return self.e != NULL and bool(self.e.read_only)

    def _pin(self):
        """Keep the mapping alive across work done with the GIL released on
        memory inside it (a vector search); close() waits for _unpin(), and
        once it waits, no new pin is granted."""
        check_open(self)
        if self.e.closing:
            raise ClosedError("the database is being closed")
        self.e.pins += 1

    def _commit_stamp(self):
        """The newest committed transaction id (any process's): cheap, for
        caches that must notice commits."""
        cdef State st, dur
        check_open(self)
        if read_meta(self.e, &st, &dur) < 0:
            raise_err(self.e)
        return st.txnid

    def _unpin(self):
        if self.e != NULL and self.e.pins > 0:
            self.e.pins -= 1

    def _set_io_hook(self, hook):
        """Testing aid: call hook("write", offset, data) / hook("sync", 0, None)
        for every write and fsync of the page file (None to stop)."""
        check_open(self)
        self._hook = hook
        self.e.io_hook = <void*>hook if hook is not None else NULL

    cdef int _get_slot(self) except -2:
        cdef EnvC* e = self.e
        if e.nolock:
            return -1
        if e.get_slot < 0:
            e.get_slot = slot_acquire(e)
            if e.get_slot < 0:
                e.get_slot = -1
                raise_err(e)
        return e.get_slot

    # ---- key-value operations, each its own transaction ----

    def get(self, key):
        """The value stored under key, or None."""
        cdef EnvC* e = self.e
        cdef Py_buffer kb
        cdef State st, dur
        cdef const char* cell
        cdef int rc, slot
        check_open(self)
        get_key(e, key, &kb)
        try:
            slot = self._get_slot()
            try:
                if snapshot_begin(e, slot, &st, &dur) < 0:
                    raise_err(e)
                rc = tree_find(e, NULL, st.page_count, &st.kv, <const unsigned char*>kb.buf, kb.len, &cell)
                if rc < 0:
                    raise_err(e)
                if rc == 0:
                    return None
                return value_bytes(e, NULL, st.page_count, cell)
            finally:
                if slot >= 0:
                    tdb_astore64(slot_txn(e, slot), 0)
        finally:
            PyBuffer_Release(&kb)

    cdef int _autocommit(self, int op, Py_buffer* kb, Py_buffer* vb) except -1:
        """put (op 0) or delete (op 1) as a transaction of its own: the write lock
        is held throughout, so it never conflicts. Returns 1 if a key was deleted."""
        cdef EnvC* e = self.e
        cdef State st, dur
        cdef uint64_t txnid
        cdef int rc = 0
        if e.read_only:
            raise ReadOnlyError("this database was opened read-only; open it without "
                                "read_only=True to write")
        if wlock(e, e.lock_timeout) < 0:
            raise_err(e)
        try:
            if read_meta(e, &st, &dur) < 0 or check_file_size(e, st.page_count) < 0:
                raise_err(e)
            wtxn_start(self.auto, &st, 1)
            if op == 0:
                rc = tree_put(self.auto, &self.auto.trees[0], <const unsigned char*>kb.buf, kb.len,
                              <const char*>vb.buf, vb.len)
            else:
                rc = tree_delete(self.auto, &self.auto.trees[0], <const unsigned char*>kb.buf, kb.len)
            if rc < 0 or commit_locked(self.auto, &dur, &txnid) < 0:
                raise_err(e)
        finally:
            wtxn_reset(self.auto)
            wunlock(e)
        return rc

    def put(self, key, value):
        """Store value under key (a transaction of its own)."""
        cdef Py_buffer kb, vb
        check_open(self)
        get_key(self.e, key, &kb)
        try:
            get_value(value, &vb)
            try:
                self._autocommit(0, &kb, &vb)
            finally:
                PyBuffer_Release(&vb)
        finally:
            PyBuffer_Release(&kb)

    def delete(self, key):
        """Delete key; True if it was present (a transaction of its own)."""
        cdef Py_buffer kb
        check_open(self)
        get_key(self.e, key, &kb)
        try:
            return self._autocommit(1, &kb, NULL) == 1
        finally:
            PyBuffer_Release(&kb)

    def _scan(self, start, end, bint reverse):
        check_open(self)
        return Cursor._new(self, None, 0, start, end, reverse)

    def begin(self, bint write=True, bint immediate=False):
        """A transaction: read-only (write=False), optimistic (the default) or
        immediate (holds the write lock from now until commit/abort)."""
        cdef Txn t
        cdef EnvC* e = self.e
        cdef State st, dur
        check_open(self)
        if (write or immediate) and e.read_only:
            raise ReadOnlyError("this database was opened read-only; open it without "
                                "read_only=True to write")
        t = self._txn_class.__new__(self._txn_class)
        t.env = self
        t.kind = K_IMMEDIATE if immediate else (K_WRITE if write else K_READ)
        t.w = wtxn_new(e)
        if t.w == NULL:
            raise MemoryError()
        if t.kind == K_IMMEDIATE:
            if wlock(e, e.lock_timeout) < 0:
                raise_err(e)
        t.w.slot = slot_acquire(e) if not e.nolock else -1
        if t.w.slot == -1 and not e.nolock:
            if t.kind == K_IMMEDIATE:
                wunlock(e)
            raise_err(e)
        if snapshot_begin(e, t.w.slot, &st, &dur) < 0:
            slot_release(e, t.w.slot)
            t.w.slot = -1
            if t.kind == K_IMMEDIATE:
                wunlock(e)
            raise_err(e)
        wtxn_start(t.w, &st, t.kind != K_READ)
        self._live.add(t)
        return t

    def checkpoint(self):
        """Make every committed transaction durable now (fsync), whatever the
        sync_mode."""
        cdef EnvC* e = self.e
        check_open(self)
        if e.read_only or e.nolock:
            return
        if wlock(e, e.lock_timeout) < 0:
            raise_err(e)
        try:
            self._sync_point_locked()
        finally:
            wunlock(e)

    def _state(self):
        """(current state, durable state) of the newest meta, as dicts."""
        cdef State st, dur
        check_open(self)
        if read_meta(self.e, &st, &dur) < 0:
            raise_err(self.e)
        return _state_dict(&st), _state_dict(&dur)

    def _readers(self):
        """[(pid, txnid)] of the reader slots in use."""
        cdef EnvC* e = self.e
        cdef int i, used
        check_open(self)
        out = []
        if e.nolock:
            return out
        used = tdb_aload32(<uint32_t*>(e.lmap + LF_USED))
        for i in range(min(used, <int>e.nslots)):
            pid = tdb_aload32(slot_pid(e, i))
            t = tdb_aload64(slot_txn(e, i))
            if pid and t:
                if pid != e.pid and kill(pid, 0) < 0 and errno == ESRCH:
                    # a reader that died (SIGKILL): free its slot
                    tdb_astore64(slot_txn(e, i), 0)
                    tdb_acas32(slot_pid(e, i), pid, 0)
                    continue
                out.append((pid, t))
        return out

    def _freelist(self):
        """(free pages, pending pages) of the newest snapshot."""
        cdef State st, dur
        cdef EnvC* e = self.e
        check_open(self)
        if read_meta(e, &st, &dur) < 0:
            raise_err(e)
        return _read_freelist(e, &st)

    def _check(self):
        check_open(self)
        return _check_env(self)


cdef dict _state_dict(State* s):
    return {"txnid": s.txnid, "page_count": s.page_count, "freelist": (s.fl_pgno, s.fl_npages),
            "kv": (s.kv.root, s.kv.depth, s.kv.entries),
            "catalog": (s.cat.root, s.cat.depth, s.cat.entries)}

cdef tuple _read_freelist(EnvC* e, State* st):
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


cdef class Txn:
    """A transaction. Use ``Database.transaction()`` / ``begin_transaction()``."""

    def __dealloc__(self):
        self._finish()

    cdef _finish(self):
        cdef EnvC* e
        if self.done:
            return
        self.done = 1
        e = self.env.e if self.env is not None else NULL
        if e != NULL and e.status == 0 and self.w != NULL:
            slot_release(e, self.w.slot)
            if self.kind == K_IMMEDIATE:
                wunlock(e)
        wtxn_free(self.w)
        self.w = NULL

    cdef int _usable(self) except -1:
        if self.done:
            raise TransactionClosedError("this transaction was already committed or aborted; "
                                         "begin a new one")
        check_open(self.env)
        return 0

    cdef int _writable(self) except -1:
        self._usable()
        if self.kind == K_READ:
            raise ReadOnlyError("this is a read-only transaction; begin one with write=True to write")
        return 0

    cdef _fail(self):
        """An internal error in the middle of a change: the transaction's pages
        may be half-modified, so it is aborted before the error is raised."""
        cdef EnvC* e = self.env.e
        cdef int code = e.err
        cdef uint32_t page = e.err_page
        cdef bytes msg = bytes(e.errmsg)
        self._finish()
        e.err = code
        e.err_page = page
        snprintf(e.errmsg, sizeof(e.errmsg), "%s", <const char*>msg)
        raise_err(e)

    @property
    def txnid(self):
        """The id of the snapshot this transaction reads."""
        self._usable()
        return self.w.snap.txnid

    @property
    def read_only(self):
        return self.kind == K_READ

    @property
    def database(self):
        """The database this transaction belongs to."""
        return self.env

    @property
    def immediate(self):
        """True if this transaction holds the write lock from begin to commit."""
        return self.kind == K_IMMEDIATE

    @property
    def closed(self):
        return bool(self.done)

    cdef object _get(self, int ti, key):
        cdef const char* cell = find_cell(self.env.e, self.w, ti, key)
        if cell == NULL:
            return None
        return value_bytes(self.env.e, self.w, self.w.snap.page_count, cell)

    cdef int _put(self, int ti, key, value) except -1:
        cdef Py_buffer kb, vb
        cdef WTxn* w = self.w
        get_key(self.env.e, key, &kb)
        try:
            get_value(value, &vb)
            try:
                if self.kind == K_WRITE and log_add(w, LOG_KEY, ti, <const unsigned char*>kb.buf, kb.len) < 0:
                    self._fail()
                if tree_put(w, &w.trees[ti], <const unsigned char*>kb.buf, kb.len,
                            <const char*>vb.buf, vb.len) < 0:
                    self._fail()
            finally:
                PyBuffer_Release(&vb)
        finally:
            PyBuffer_Release(&kb)
        return 0

    cdef int _delete(self, int ti, key) except -1:
        cdef Py_buffer kb
        cdef WTxn* w = self.w
        cdef int rc
        get_key(self.env.e, key, &kb)
        try:
            rc = tree_delete(w, &w.trees[ti], <const unsigned char*>kb.buf, kb.len)
            if rc < 0:
                self._fail()
            if rc == 1 and self.kind == K_WRITE and log_add(w, LOG_KEY, ti, <const unsigned char*>kb.buf, kb.len) < 0:
                self._fail()
            return rc
        finally:
            PyBuffer_Release(&kb)

    def get(self, key):
        """The value of key as this transaction sees it (its own writes included)."""
        self._usable()
        return self._get(0, key)

    def put(self, key, value):
        """Store value under key, visible to this transaction now, to others at commit."""
        self._writable()
        self._put(0, key, value)

    def delete(self, key):
        """Delete key; True if it was present."""
        self._writable()
        return self._delete(0, key) == 1

    def _scan(self, start, end, bint reverse, int ti=0):
        self._usable()
        return Cursor._new(self.env, self, ti, start, end, reverse)

    def commit(self):
        """Apply every change atomically; returns the new transaction id.

        An optimistic transaction whose snapshot is no longer the newest is
        replayed onto the newest one, unless another commit changed a key this
        one wrote (TransactionConflictError: nothing is applied)."""
        cdef EnvC* e
        cdef WTxn* w
        cdef WTxn* w2
        cdef State latest, dur
        cdef uint64_t txnid
        cdef int rc = 0
        self._usable()
        e = self.env.e
        w = self.w
        txnid = w.snap.txnid
        if self.kind == K_READ or not wtxn_changed(w):
            self._finish()
            return txnid
        if self.kind == K_IMMEDIATE:
            rc = read_meta(e, &latest, &dur)
            if rc == 0:
                rc = commit_locked(w, &dur, &txnid)
        else:
            if wlock(e, e.lock_timeout) < 0:
                self._fail()
            try:
                rc = read_meta(e, &latest, &dur)
                if rc == 0:
                    rc = check_file_size(e, latest.page_count)
                if rc == 0 and latest.txnid == w.snap.txnid:
                    rc = commit_locked(w, &dur, &txnid)
                elif rc == 0:
                    w2 = wtxn_new(e)
                    if w2 == NULL:
                        rc = nomem(e)
                    else:
                        rc = rebase(w, w2, &latest)
                        if rc == 0:
                            rc = commit_locked(w2, &dur, &txnid)
                        wtxn_free(w2)
            finally:
                wunlock(e)
        if rc < 0:
            self._fail()
        self._finish()
        return txnid

    def abort(self):
        """Drop every change of this transaction. Idempotent."""
        self._finish()

    # ---- named trees ----

    cdef int _tree_slot(self, name, bint create, bint log) except -3:
        """The slot of named tree `name` in this transaction, or -2 when missing."""
        cdef Py_buffer nb
        cdef int i
        get_key(self.env.e, name, &nb, "name")
        try:
            i = tree_open(self.w, <const unsigned char*>nb.buf, nb.len, create, log)
        finally:
            PyBuffer_Release(&nb)
        if i == -1:
            self._fail()
        return i

    def tree(self, name, bint create=False):
        """The named tree `name` (bytes) in this transaction. With create=True it
        is created when missing; otherwise a missing tree raises KeyError."""
        cdef int i
        self._usable()
        if create:
            self._writable()
        i = self._tree_slot(name, create, create and self.kind == K_WRITE)
        if i == -2:
            raise KeyError(bytes(name))
        return Tree._new(self, i, bytes(name))

    def has_tree(self, name):
        """True if the named tree exists (as this transaction sees it)."""
        self._usable()
        return self._tree_slot(name, False, False) >= 0

    def drop_tree(self, name):
        """Delete the named tree and everything in it; True if it existed."""
        cdef int i
        self._writable()
        i = self._tree_slot(name, False, False)
        if i == -2:
            return False
        if tree_drop(self.w, i, self.kind == K_WRITE) < 0:
            self._fail()
        return True

    def tree_names(self, prefix=b""):
        """The names of the named trees that start with prefix, in order."""
        cdef WTxn* w
        cdef int i
        self._usable()
        w = self.w
        names = set()
        # committed names from the catalog, then this transaction's changes
        cur = Cursor._new(self.env, self, 1, prefix, None, False)
        for k, _ in cur:
            if not k.startswith(prefix):
                break
            names.add(k)
        for i in range(2, w.ntrees):
            nm = PyBytes_FromStringAndSize(<const char*>w.trees[i].name, w.trees[i].namelen)
            if not nm.startswith(prefix):
                continue
            if w.trees[i].dropped:
                names.discard(nm)
            else:
                names.add(nm)
        return sorted(names)


cdef class Tree:
    """A named tree inside one transaction: a sorted map of bytes to bytes."""
    cdef Txn txn
    cdef int ti
    cdef readonly bytes name

    @staticmethod
    cdef Tree _new(Txn txn, int ti, bytes name):
        cdef Tree t = Tree.__new__(Tree)
        t.txn = txn
        t.ti = ti
        t.name = name
        return t

    cdef inline int _ok(self) except -1:
        self.txn._usable()
        if self.txn.w.trees[self.ti].dropped:
            raise KeyError(f"the tree {self.name!r} was dropped in this transaction")
        return 0

    def get(self, key):
        self._ok()
        return self.txn._get(self.ti, key)

    def put(self, key, value):
        self._ok()
        self.txn._writable()
        self.txn._put(self.ti, key, value)

    def delete(self, key):
        self._ok()
        self.txn._writable()
        return self.txn._delete(self.ti, key) == 1

    def scan(self, start=b"", end=None, reverse=False):
        """(key, value) pairs with start <= key < end, in key order (or reversed)."""
        self._ok()
        return Cursor._new(self.txn.env, self.txn, self.ti, start, end, reverse)

    def _get_view(self, key):
        """Zero-copy: the value of key as a read-only memoryview of the mapped
        file when it lives in committed overflow pages (else a bytes copy), or
        None. Valid only while this transaction is open and the database is not
        closed: for toondb's own modules (the vector index), never handed out."""
        cdef const char* cell
        cdef const char* vp = NULL
        cdef size_t vlen = 0
        cdef WTxn* w
        cdef EnvC* e
        self._ok()
        w = self.txn.w
        e = self.txn.env.e
        cell = find_cell(e, w, self.ti, key)
        if cell == NULL:
            return None
        if leaf_value(e, w, w.snap.page_count, cell, &vp, &vlen) < 0:
            raise_err(e)
        if (tdb_ld32(cell + 2) & TDB_OVF) and not (tdb_ld32(cell + 6 + tdb_ld16(cell)) & TDB_DIRTY):
            return PyMemoryView_FromMemory(<char*>vp, vlen, PyBUF_READ)
        return PyBytes_FromStringAndSize(vp, vlen)

    def _get_extent(self, key):
        """Zero-copy without the checksum pass, for values too large to verify
        at once (a vector index's level-0 chunks): (data, span, crc) where data
        is a read-only memoryview of the value in the mapped file, span the
        bytes its extent's checksum covers and crc the checksum the extent
        carries, so the caller verifies a chunk when it first reads it. The
        extent's header (type, length, own id) is checked here. A value that is
        inline, or written in this transaction, comes back as (bytes, None,
        None); a missing key as None. Same lifetime rule as _get_view."""
        cdef const char* cell
        cdef const char* op
        cdef uint32_t klen, v, pg, n
        cdef WTxn* w
        cdef EnvC* e
        self._ok()
        w = self.txn.w
        e = self.txn.env.e
        cell = find_cell(e, w, self.ti, key)
        if cell == NULL:
            return None
        klen = tdb_ld16(cell)
        v = tdb_ld32(cell + 2)
        if not (v & TDB_OVF) or (tdb_ld32(cell + 6 + klen) & TDB_DIRTY):
            return (value_bytes(e, w, w.snap.page_count, cell), None, None)
        v &= ~TDB_OVF
        pg = tdb_ld32(cell + 6 + klen)
        if pg < 2 or pg >= w.snap.page_count:
            corrupt(e, pg, "overflow page id out of range of the snapshot")
            raise_err(e)
        op = e.map + <size_t>pg * e.psize
        n = tdb_ld32(op + PH_AUX)
        if (<uint8_t>op[PH_TYPE] != P_OVERFLOW or n == 0 or <uint64_t>pg + n > w.snap.page_count
                or tdb_ld32(op + PH_PGNO) != pg or <uint64_t>n * e.psize < <uint64_t>v + OV_DATA):
            corrupt(e, pg, "bad overflow extent header")
            raise_err(e)
        return (PyMemoryView_FromMemory(<char*>op + OV_DATA, v, PyBUF_READ),
                PyMemoryView_FromMemory(<char*>op + 4, <Py_ssize_t>n * e.psize - 4, PyBUF_READ),
                tdb_ld32(op))

    def count(self):
        self._ok()
        return self.txn.w.trees[self.ti].desc.entries

    def __len__(self):
        return self.count()

    def __repr__(self):
        return f"<toondb Tree {self.name!r}>"


cdef bytes as_bound(object b, str what):
    cdef Py_buffer view
    if b is None:
        return None
    if PyBytes_CheckExact(b):
        return <bytes>b
    get_buf(b, &view, what)
    try:
        return PyBytes_FromStringAndSize(<const char*>view.buf, view.len)
    finally:
        PyBuffer_Release(&view)


_CRC_IMPLS = {"auto": 0, "table": 1, "crc32": 2, "clmul": 3}


def _crc32c(data, unsigned int crc=0, impl="auto"):
    """CRC-32C of a bytes-like object (the page checksum), for tests; impl names
    one implementation ("table", "crc32", "clmul"): ValueError if this CPU lacks it."""
    cdef Py_buffer view
    cdef uint32_t out = 0
    cdef int which = _CRC_IMPLS[impl]
    cdef int rc
    get_buf(data, &view, "data")
    try:
        rc = tdb_crc32c_impl(which, crc, view.buf, view.len, &out)
    finally:
        PyBuffer_Release(&view)
    if rc < 0:
        raise ValueError(f"this CPU has no {impl!r} CRC-32C path")
    return out


def as_bytes(obj, str what="value"):
    """obj (any bytes-like object) as bytes; TypeError naming `what` otherwise."""
    return as_bound(obj, what)


cdef class Cursor:
    """An iterator of (key, value) in key order over [start, end).

    Outside a transaction it reads one snapshot, taken when the scan began, and
    holds a reader slot until exhausted or garbage-collected; memory stays flat
    however long the range. Inside a transaction it sees the transaction's own
    writes, also those made while iterating."""
    cdef Env env
    cdef Txn txn
    cdef int ti
    cdef State st
    cdef int slot
    cdef Cur c
    cdef bytes start
    cdef bytes end
    cdef int reverse
    cdef int done
    cdef int started
    cdef uint64_t stamp
    cdef bytes last

    def __cinit__(self):
        self.slot = -1

    @staticmethod
    cdef Cursor _new(Env env, Txn txn, int ti, start, end, bint reverse):
        cdef Cursor cur = Cursor.__new__(Cursor)
        cdef State dur
        cdef EnvC* e = env.e
        cur.env = env
        cur.txn = txn
        cur.ti = ti
        cur.start = as_bound(start if start is not None else b"", "start")
        cur.end = as_bound(end, "end")
        cur.reverse = reverse
        if cur.end is not None and cur.end <= cur.start:
            cur.done = 1
            return cur
        if txn is None:
            if not e.nolock:
                cur.slot = slot_acquire(e)
                if cur.slot < 0:
                    cur.slot = -1
                    raise_err(e)
            if snapshot_begin(e, cur.slot, &cur.st, &dur) < 0:
                cur._release()
                raise_err(e)
        return cur

    def __dealloc__(self):
        self._release()

    cdef void _release(self) noexcept:
        cdef EnvC* e
        if self.slot >= 0:
            e = self.env.e
            if e != NULL and e.status == 0:
                slot_release(e, self.slot)
            self.slot = -1

    def __iter__(self):
        return self

    cdef int _position(self, EnvC* e, WTxn* w, uint32_t limit, TreeDesc* t, bint again) except -1:
        cdef const char* cell
        cdef bytes anchor
        cdef int rc
        if not again:
            if self.reverse:
                if self.end is None:
                    rc = cur_seek(e, w, limit, t, &self.c, NULL, 0, 2)
                else:
                    rc = cur_seek(e, w, limit, t, &self.c, <const unsigned char*>PyBytes_AS_STRING(self.end),
                                  PyBytes_GET_SIZE(self.end), 0)
                    if rc == 0:
                        rc = cur_prev(e, w, limit, &self.c) if self.c.valid else \
                            cur_seek(e, w, limit, t, &self.c, NULL, 0, 2)
            else:
                rc = cur_seek(e, w, limit, t, &self.c, <const unsigned char*>PyBytes_AS_STRING(self.start),
                              PyBytes_GET_SIZE(self.start), 0)
        else:
            # the transaction changed its pages since the last step: find the
            # first key after (before) the last one returned
            anchor = self.last
            rc = cur_seek(e, w, limit, t, &self.c, <const unsigned char*>PyBytes_AS_STRING(anchor),
                          PyBytes_GET_SIZE(anchor), 0)
            if rc == 0 and self.reverse:
                rc = cur_prev(e, w, limit, &self.c) if self.c.valid else \
                    cur_seek(e, w, limit, t, &self.c, NULL, 0, 2)
            elif rc == 0 and self.c.valid:
                cell = cur_cell(&self.c)
                if tdb_keycmp(<const unsigned char*>(cell + 6), tdb_ld16(cell),
                              <const unsigned char*>PyBytes_AS_STRING(anchor), PyBytes_GET_SIZE(anchor)) == 0:
                    rc = cur_next(e, w, limit, &self.c)
        if rc < 0:
            raise_err(e)
        return 0

    def __next__(self):
        cdef EnvC* e
        cdef WTxn* w = NULL
        cdef uint32_t limit
        cdef TreeDesc* t
        cdef const char* cell
        cdef uint32_t klen
        cdef int rc
        if self.done:
            raise StopIteration
        e = self.env.e
        if e == NULL or e.status != 0:
            self.env._raise_status()
        if self.txn is not None:
            self.txn._usable()
            w = self.txn.w
            limit = w.snap.page_count
            t = &w.trees[self.ti].desc
        else:
            limit = self.st.page_count
            t = &self.st.kv
        if not self.started:
            self._position(e, w, limit, t, False)
            self.started = 1
        elif w != NULL and w.mods != self.stamp:
            self._position(e, w, limit, t, True)
        if not self.c.valid:
            self._finish()
        cell = cur_cell(&self.c)
        klen = tdb_ld16(cell)
        if self.reverse:
            if tdb_keycmp(<const unsigned char*>(cell + 6), klen,
                          <const unsigned char*>PyBytes_AS_STRING(self.start), PyBytes_GET_SIZE(self.start)) < 0:
                self._finish()
        elif self.end is not None and tdb_keycmp(<const unsigned char*>(cell + 6), klen,
                                                 <const unsigned char*>PyBytes_AS_STRING(self.end),
                                                 PyBytes_GET_SIZE(self.end)) >= 0:
            self._finish()
        key = PyBytes_FromStringAndSize(cell + 6, klen)
        value = value_bytes(e, w, limit, cell)
        if w != NULL:
            self.last = key
            self.stamp = w.mods
        rc = cur_prev(e, w, limit, &self.c) if self.reverse else cur_next(e, w, limit, &self.c)
        if rc < 0:
            raise_err(e)
        return (key, value)

    cdef _finish(self):
        self.done = 1
        self._release()
        raise StopIteration

    def close(self):
        """Stop the scan now and release its snapshot."""
        self.done = 1
        self._release()


# ----------------------------------------------------------------------------
# check(): invariants 3, 5 and 6 over the whole file
# ----------------------------------------------------------------------------

cdef dict _check_env(Env env):
    cdef EnvC* e = env.e
    cdef State st, dur
    cdef int slot = -1
    if not e.nolock:
        slot = slot_acquire(e)
        if slot < 0:
            raise_err(e)
    try:
        if snapshot_begin(e, slot, &st, &dur) < 0:
            raise_err(e)
        return _check_snapshot(e, &st)
    finally:
        if slot >= 0:
            slot_release(e, slot)


cdef dict _check_snapshot(EnvC* e, State* st):
    cdef uint32_t limit = st.page_count
    seen = bytearray(limit)
    problems = []
    named = []
    counts = {"pages": limit, "leaf_pages": 0, "branch_pages": 0, "overflow_pages": 0}

    def mark(uint32_t pg, uint32_t n, str what):
        for q in range(pg, pg + n):
            if q < 2 or q >= limit:
                problems.append(f"page {q}: {what} refers to a page outside the file")
                return False
            if seen[q]:
                problems.append(f"page {q}: reachable twice ({what})")
                return False
            seen[q] = 1
        return True

    def page(uint32_t pg):
        cdef uint32_t n = 0
        cdef const char* p = verify_page(e, limit, pg, &n)
        if p == NULL:
            problems.append(e.errmsg.decode("utf-8", "replace"))
            e.err = 0
            return None
        return <uintptr_t>p

    def walk(uint32_t pg, int depth_left, lo, hi, bint catalog, str label):
        cdef const char* p
        cdef const char* c
        cdef uint32_t i, n, v, klen, ov, np_
        cdef uintptr_t addr
        addr = page(pg) or 0
        if addr == 0:
            return 0
        p = <const char*>addr
        if not mark(pg, 1, label):
            return 0
        n = nkeys(p)
        keys = []
        for i in range(n):
            c = cell_at(p, i)
            klen = tdb_ld16(c) if p[PH_TYPE] == P_LEAF else tdb_ld16(c + 4)
            keys.append(PyBytes_FromStringAndSize(c + 6, klen))
        if keys and ((lo is not None and keys[0] < lo) or (hi is not None and keys[len(keys) - 1] >= hi)):
            problems.append(f"page {pg}: keys outside the range its parent assigns ({label})")
        if depth_left > 1:
            if p[PH_TYPE] != P_BRANCH:
                problems.append(f"page {pg}: expected a branch page at this depth ({label})")
                return 0
            counts["branch_pages"] += 1
            total = 0
            bounds = [lo] + keys + [hi]
            for i in range(n + 1):
                total += walk(child_at(p, i), depth_left - 1, bounds[i], bounds[i + 1], catalog, label)
            return total
        if p[PH_TYPE] != P_LEAF:
            problems.append(f"page {pg}: expected a leaf page at this depth (leaves at one depth) ({label})")
            return 0
        counts["leaf_pages"] += 1
        if n == 0 and lo is not None:
            problems.append(f"page {pg}: empty leaf below the root ({label})")
        for i in range(n):
            c = cell_at(p, i)
            klen = tdb_ld16(c)
            v = tdb_ld32(c + 2)
            if v & TDB_OVF:
                ov = tdb_ld32(c + 6 + klen)
                oaddr = page(ov)
                if oaddr:
                    np_ = tdb_ld32((<const char*><uintptr_t>oaddr) + PH_AUX)
                    if (<const char*><uintptr_t>oaddr)[PH_TYPE] != P_OVERFLOW:
                        problems.append(f"page {ov}: expected an overflow extent ({label})")
                    elif <uint64_t>np_ * e.psize < OV_DATA + <uint64_t>(v & ~TDB_OVF):
                        problems.append(f"page {ov}: overflow extent shorter than its value ({label})")
                    else:
                        mark(ov, np_, label + " overflow value")
                        counts["overflow_pages"] += np_
            elif catalog:
                if v != 16:
                    problems.append(f"page {pg}: catalog entry is not a tree descriptor")
                else:
                    named.append((keys[i], tdb_ld32(c + 6 + klen), tdb_ld16(c + 10 + klen),
                                  tdb_ld64(c + 14 + klen)))
        return n

    def walk_tree(uint32_t root, uint32_t depth, uint64_t entries, bint catalog, str label):
        if root == 0:
            if depth != 0 or entries != 0:
                problems.append(f"{label}: empty tree with depth {depth} and {entries} entries")
            return
        if depth == 0 or depth > MAX_DEPTH:
            problems.append(f"{label}: impossible depth {depth}")
            return
        got = walk(root, depth, None, None, catalog, label)
        if got != entries:
            problems.append(f"{label}: holds {got} entries but its descriptor says {entries}")

    walk_tree(st.kv.root, st.kv.depth, st.kv.entries, False, "key-value tree")
    walk_tree(st.cat.root, st.cat.depth, st.cat.entries, True, "catalog")
    for name, root, depth, entries in named:
        walk_tree(root, depth, entries, False, f"tree {name!r}")
    free_count = 0
    pending_count = 0
    if st.fl_pgno:
        if page(st.fl_pgno):
            mark(st.fl_pgno, st.fl_npages, "freelist extent")
            try:
                free_runs, pending = _read_freelist(e, st)
            except CorruptionError as exc:
                problems.append(str(exc))
                free_runs, pending = [], []
            for start, cnt in free_runs:
                mark(start, cnt, "freelist")
                free_count += cnt
            for txnid, runs in pending:
                if txnid > st.txnid:
                    problems.append(f"page {st.fl_pgno}: freelist group of future transaction {txnid}")
                for start, cnt in runs:
                    mark(start, cnt, "freelist (pending)")
                    pending_count += cnt
    if not problems:
        leaked = [q for q in range(2, limit) if not seen[q]]
        if leaked:
            shown = ", ".join(map(str, leaked[:10]))
            problems.append(f"{len(leaked)} page(s) neither reachable nor free (leaked): {shown}")
    if problems:
        err = CorruptionError("integrity check failed: " + "; ".join(problems[:20]) +
                              (f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""))
        err.problems = problems
        raise err
    counts.update({"txnid": st.txnid, "entries": st.kv.entries, "depth": st.kv.depth,
                   "trees": len(named), "free_pages": free_count, "pending_pages": pending_count})
    return counts
