# C-level declarations of the storage engine, read by Cython when it compiles
# _btree.pyx (a .pxd beside a .pyx of the same name is its declaration file):
# the C structs and the C attributes and methods of the classes Env and Txn.
# No other extension cimports it; the vector index reads its graph through the
# Python API (Tree._get_view / Tree._get_extent). The file format is in
# _format.pxi; the reading guide is the docstring of _btree.pyx.

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t
from cpython.buffer cimport Py_buffer

cdef enum:
    MAX_DEPTH = 32

ctypedef struct TreeDesc:
    uint32_t root        # page id of the root, 0 for an empty tree (dirty ids have bit 31 set)
    uint16_t depth       # levels, 0 for an empty tree, 1 for a lone leaf
    uint16_t flags
    uint64_t entries     # number of keys

ctypedef struct State:   # one committed snapshot, as stored in a meta page
    uint64_t txnid
    uint32_t page_count  # pages [0, page_count) exist in the file
    uint32_t fl_pgno     # freelist extent (0 = no freelist)
    uint32_t fl_npages
    TreeDesc kv          # the key-value tree of put/get
    TreeDesc cat         # the catalog: name -> TreeDesc of every named tree
    uint64_t kv_root_txn  # the transaction that wrote kv.root's page (M_ROOTS; 0 = not recorded)
    uint64_t cat_root_txn # the same for cat.root

ctypedef struct Pending:
    uint64_t txnid       # the transaction that freed these pages
    uint32_t* pages
    uint32_t n
    char* enc            # pages as freelist runs (fl_encode), NULL until encoded or after a change
    uint32_t nruns       # runs in enc

ctypedef struct EnvC:
    int fd
    int lfd
    char* map
    size_t map_len
    char* lmap
    size_t lmap_len
    char* lcl            # the change log header in the lock file (_changelog.pxi)
    uint64_t cl_bytes    # bytes of its ring
    uint64_t cl_publish  # head to publish once this commit's meta is written (0: none)
    double cl_checked    # when the change log's replicator was last checked for life
    uint32_t psize
    uint32_t max_key
    uint32_t max_cell
    int sync_mode
    int read_only
    int nolock
    int status           # 0 open, 1 closed, 2 forked
    uint8_t boot_id[16]
    uint64_t file_pages  # pages known to exist in the file (fstat)
    uint64_t map_pages   # pages the mapping can address
    char meta_seen[2][256] # the meta pages as last verified (checksums skipped when unchanged)
    int meta_ok[2]       # 1: valid; 2: valid and its roots checked against M_ROOTS
    # the freelist as of transaction fl_txnid (0 = not loaded)
    uint64_t fl_txnid
    uint32_t* fl_free    # reusable pages, sorted descending (pop from the end = smallest)
    size_t fl_nfree
    size_t fl_capfree
    char* fl_fenc        # fl_free[0:fl_fenc_m] (the largest pages) as ascending runs: part
    size_t fl_fenc_runs  # of the runs of fl_free at the last fl_build, a superset of them
    size_t fl_fenc_cap   # (fl_free_runs)
    size_t fl_fenc_m
    uint64_t fl_ext_txnid  # the snapshot whose freelist extent this handle wrote last, at
    uint32_t fl_ext_pgno   # fl_ext_pgno (commit_locked frees it without reading its header)
    Pending* fl_pend
    size_t fl_npend
    size_t fl_cappend
    # pages whose checksum and structure this process has verified
    uint64_t* vbits
    size_t vwords
    # reader slots this process owns in the shared table
    int* slots_free
    int nslots_free
    int* slots_owned
    int nslots_owned
    int get_slot
    int max_owned        # most slots this handle may own (0 = no limit; Env._limit_readers)
    uint32_t nslots
    uint32_t pid
    # durability bookkeeping of sync_mode="normal"
    uint64_t unsynced_bytes
    uint64_t sync_bytes
    double sync_interval
    double last_sync
    double last_pid_check # when reader slots were last checked for dead processes
    uint64_t last_synced_txnid
    double lock_timeout
    int active           # write locks this process holds (close waits for them)
    int pins             # users of the mapping with the GIL released (close waits for them)
    int closing          # close() is waiting: no new pins
    void* io_hook        # borrowed PyObject* (owned by the Env object), or NULL
    # the error of the last failed call: code, page, message
    int err
    uint32_t err_page
    char errmsg[512]

ctypedef struct Dirty:
    char* buf            # page (or extent) image, NULL once dropped
    uint32_t npages
    uint32_t real        # page id assigned at commit

ctypedef struct TreeSlot:
    TreeDesc desc        # current (may point at dirty pages)
    TreeDesc orig        # as of the snapshot
    uint8_t* name
    uint32_t namelen
    uint8_t leaf_flags
    uint8_t modified
    uint8_t created
    uint8_t dropped
    uint8_t exists

ctypedef struct WTxn:
    EnvC* env
    State snap
    int slot             # reader slot holding the snapshot, -1 if none
    int writable
    Dirty* dirty
    uint32_t ndirty
    uint32_t capdirty
    uint32_t* freed
    uint64_t* freedtx     # the transaction that wrote each freed page
    size_t nfreed
    size_t capfreed
    TreeSlot* trees      # 0 = key-value tree, 1 = catalog, 2.. named trees
    int ntrees
    int captrees
    char* log            # keys written, for replay onto a newer snapshot at commit
    size_t loglen
    size_t logcap
    uint64_t mods        # bumped by every change; cursors re-seek when it moves
    uint32_t last_leaf   # the leaf and position of the last insert (split heuristics)
    uint32_t last_idx
    char* scratch        # one page
    char* cellbuf        # one cell
    char* sepbuf         # one separator key
    const char** cellptr # split work area
    char** pool          # spare one-page buffers, reused by dirty_new
    int npool
    uint32_t* cellsize


cdef class Env:
    cdef EnvC* e
    cdef object _hook
    cdef public object _txn_class
    cdef object __weakref__
    cdef WTxn* auto
    cdef WTxn* spare         # a finished transaction's buffers, for the next begin (_txn.pxi)
    cdef void* live_head     # the unfinished Txns, a list linked through them (borrowed: _txn.pxi)
    cdef void _mark_forked(self)
    cdef _open_files(self, str data_path, str lock_path, bint create, bint read_only,
                     int page_size, uint64_t map_size, int max_readers, int file_mode)
    cdef _configure_page_size(self)
    cdef _create_file(self, str data_path, int file_mode)
    cdef uint32_t _detect_page_size(self, str path) except 0
    cdef bint _needs_recovery(self, uint64_t* maxtxn)
    cdef _recover(self, uint64_t maxtxn)
    cdef _teardown(self, bint sync)
    cdef _close_sync(self)
    cdef _sync_point_locked(self)
    cdef int _get_slot(self) except -2
    cdef int _autocommit(self, int op, Py_buffer* kb, Py_buffer* vb) except -1


cdef class Txn:
    cdef Env env
    cdef WTxn* w
    cdef int kind
    cdef int done
    cdef list undo          # savepoints' undo records (_txn.pxi), None while none is open
    cdef void* live_prev    # neighbours in env.live_head's list while unfinished (borrowed)
    cdef void* live_next
    cdef int _note(self, int ti, key) except -1
    cdef bytes _slot_name(self, int ti)
    cdef int _undo_to(self, Py_ssize_t mark) except -1
    cdef object __weakref__
    cdef _finish(self)
    cdef int _usable(self) except -1
    cdef int _writable(self) except -1
    cdef _fail(self)
    cdef object _get(self, int ti, key)
    cdef int _put(self, int ti, key, value) except -1
    cdef int _delete(self, int ti, key) except -1
    cdef int _tree_slot(self, name, bint create, bint log) except -3
