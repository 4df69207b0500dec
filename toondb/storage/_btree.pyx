# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""toondb's storage engine: the pager, the copy-on-write B+tree and transactions.

One page file, mapped read-only into memory (mmap) and written with pwrite(2)
through one small I/O layer (io_write / io_sync), so that tests can see every
write and fsync and simulate the loss of what was not synced. Beside it a lock
file, mapped read-write by every process that has the database open: the
shared reader table and the write lock word.

Reading guide
=============

One extension module, ``toondb.storage._btree``, compiled from this file and
the includes below, in this order. Each include starts with what it owns and
the invariants it keeps; the invariants are cited where they are kept.

    _format.pxi     the on-disk layouts as offset tables (page header, cells,
                    meta page, freelist extent, lock file) and their constants
    _pages.pxi      errors of the C layer; page verification and the verified
                    bitmap (6); cell accessors and in-page binary searches
    _read.pxi       tree lookups and cursors: the read path
    _write.pxi      dirty page buffers, copy-on-write (1), page edits, split and
                    insert, delete and rebalance (5), freeing pages and trees
    _io.pxi         the I/O layer: every write and fsync of the page file
    _meta.pxi       meta pages: the newest valid one, writing one (2)
    _readers.pxi    the shared reader table: the snapshots in use (1)
    _writelock.pxi  the write lock: a futex word in the mapped lock file (7)
    _openlock.pxi   the open protocol's byte locks (8); exclusive_access()
    _freelist.pxi   the freelist: pending groups, release, allocation (1, 3)
    _commit.pxi     write transaction lifecycle, commit (4), sync points and
                    the durability modes, rebase of optimistic transactions
    _env.pxi        class Env: open, close, autocommit put/delete, begin
    _txn.pxi        classes Txn, Tree and Cursor
    _check.pxi      check(): invariants 3, 5 and 6 over the whole file
    _diff.pxi       the structural diff of two snapshots as change records
                    (O(changed pages)), and applying change records
    _changelog.pxi  the change log: each commit's change records, in the lock
                    file's shared memory, while a replicator is attached

The C structs (EnvC, State, TreeDesc, WTxn, ...) and the attributes of the
classes are declared in _btree.pxd; small C helpers (unaligned loads and
stores, CRC-32C, atomics, the futex lock word, byte-range locks, fdatasync)
are in _btree_support.h.

Invariants (numbered; cited where they are kept)
================================================

1. Copy-on-write: a page reachable from a committed snapshot is never written
   again while any reader may hold that snapshot. Pages freed by transaction f
   are reused only when every reader snapshot has a transaction id >= f, and,
   for pages the durable snapshot D can see (written at or before D), when D >= f.
2. Transaction N writes meta page N % 2; opening picks the newest valid meta
   (magic, version, then checksum). Each root page a meta names is a node of
   its tree (type and catalog flag agree with the tree and its depth) written
   by the transaction the meta records for it (M_ROOTS), checked when that
   meta is first read: a meta pointing elsewhere raises CorruptionError.
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
7. One writer at a time: every commit, sync point, checkpoint and recovery
   runs holding the write lock word, whose owner's pid is recorded; a lock
   whose owner died is taken over (its unfinished commit wrote no meta page,
   so nothing of it is visible).
8. The lock file is rebuilt only by a handle that holds the presence byte
   exclusively (no other handle is open), and a page file is created, opened
   or recovered only by a handle that holds the init byte; every open handle
   holds the presence byte shared until it closes.
9. While the change log is on, it holds exactly the committed transactions, in
   commit order, each once: a commit writes its record before its meta page
   and publishes it (moves the log's head) only after the meta page is
   written, under the write lock; a commit that fails publishes nothing.
10. A handle closes without waiting for another process's writer: in ``normal``
   mode a closing handle that wrote nothing since its last sync point makes none;
   one with unsynced commits that cannot take the write lock at once stores 1 in
   the lock file's LF_SYNCREQ word instead, and the next holder of the write lock
   that commits (``normal`` or ``full``) or closes makes a sync point. The word
   is cleared only once the newest commit is durable (after a sync point's
   second fsync, or a ``full`` commit's).
"""

cimport cython
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

cdef extern from "<time.h>" nogil:
    struct timespec:
        long tv_sec
        long tv_nsec
    int clock_gettime(int clk, timespec* ts)
    int CLOCK_REALTIME


tdb_crc_init()

# the parts of the engine, in order (see the reading guide above)
include "_format.pxi"
include "_pages.pxi"
include "_read.pxi"
include "_write.pxi"
include "_io.pxi"
include "_meta.pxi"
include "_readers.pxi"
include "_writelock.pxi"
include "_openlock.pxi"
include "_freelist.pxi"
include "_commit.pxi"
include "_env.pxi"
include "_txn.pxi"
include "_check.pxi"
include "_diff.pxi"
include "_changelog.pxi"
