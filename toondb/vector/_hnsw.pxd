# cython: language_level=3
"""C-level declarations of the HNSW kernel (toondb/vector/_hnsw.pyx), for cimport."""

from libc.stdint cimport int32_t, uint16_t, uint32_t, uint64_t


cdef extern from "<pthread.h>" nogil:
    ctypedef struct pthread_mutex_t:
        pass
    ctypedef struct pthread_rwlock_t:
        pass
    int pthread_mutex_init(pthread_mutex_t *m, const void *attr)
    int pthread_mutex_destroy(pthread_mutex_t *m)
    int pthread_mutex_lock(pthread_mutex_t *m)
    int pthread_mutex_unlock(pthread_mutex_t *m)
    int pthread_rwlock_init(pthread_rwlock_t *l, const void *attr)
    int pthread_rwlock_destroy(pthread_rwlock_t *l)
    int pthread_rwlock_rdlock(pthread_rwlock_t *l)
    int pthread_rwlock_wrlock(pthread_rwlock_t *l)
    int pthread_rwlock_unlock(pthread_rwlock_t *l)


cdef extern from "_hnsw_kernels.h" nogil:
    const uint32_t HNSW_MAGIC
    const uint32_t HNSW_VERSION
    const uint32_t HNSW_NO_ENTRY
    const uint32_t HNSW_DELETED_BIT
    const uint32_t HNSW_COUNT_MASK

    ctypedef struct hnsw_header_t:
        uint32_t magic
        uint32_t version
        uint32_t dim
        uint32_t metric
        uint32_t m
        uint32_t m0
        uint32_t ef_construction
        uint32_t chunk_shift
        uint64_t count
        uint64_t capacity
        uint32_t entry_point
        int32_t max_level
        uint32_t record_size
        uint32_t vector_offset
        uint32_t label_offset
        uint32_t upper_block
        uint64_t level0_bytes
        uint64_t upper_bytes
        uint64_t nodes_bytes
        uint64_t deleted_count
        double level_mult
        uint64_t rng_state
        uint64_t reserved

    ctypedef float (*hnsw_dist_fn)(const float *a, const float *b, size_t n) noexcept nogil

    ctypedef struct hnsw_pair:
        float d
        uint32_t id

    ctypedef struct hnsw_heap:
        hnsw_pair *a
        size_t n
        size_t cap


# The graph proper: plain C, so the nogil build and search loops never touch
# a Python object. Views point chunks/upper/nodes into foreign memory.
cdef struct Graph:
    uint32_t dim
    uint32_t m
    uint32_t m0
    uint32_t ef_construction
    uint32_t metric
    uint32_t chunk_shift
    uint64_t chunk_mask
    uint32_t record_size
    uint32_t vec_off
    uint32_t label_off
    uint32_t upper_block
    uint64_t count
    uint64_t capacity
    uint32_t entry
    int32_t max_level
    uint64_t deleted
    char **chunks
    size_t n_chunks
    uint64_t *nodes
    char *upper
    uint64_t upper_bytes
    uint64_t upper_cap
    hnsw_dist_fn dist
    double level_mult
    uint64_t rng
    # owned graph only: label -> internal id (open addressing, not serialized)
    uint64_t *hkeys
    uint32_t *hvals
    uint64_t hcap
    # owned graph only: one flag per level-0 chunk written since clear_dirty(),
    # and whether the upper arena / node table changed (what a store rewrites)
    unsigned char *dirty
    bint upper_dirty
    # view of a store's pages: each level-0 chunk is verified against its
    # extent's checksum when a search first reaches it (NULL: nothing to check)
    unsigned char *chk_ok
    const char **chk_span
    size_t *chk_len
    uint32_t *chk_crc


# Per-thread scratch: visited tags with an epoch, heaps, small buffers.
cdef struct Ctx:
    uint16_t *visited
    uint16_t tag
    uint64_t vcap
    hnsw_heap top
    hnsw_heap cand
    hnsw_pair *sorted
    hnsw_pair *sel
    hnsw_pair *tmp
    hnsw_pair *sel2
    uint32_t *ids
    uint32_t *ids2
    uint32_t *hop2      # ACORN's two-hop expansion: (m0 + 1) * (m0 + 1) ids
    float *qbuf
    Ctx *next


# A filtered query's allowed records (_filter.pxi, F1): bit i of `bits` is set
# exactly when internal id i is allowed; `ids` lists them ascending, `n` of them.
cdef struct Filter:
    const uint64_t *bits
    const uint32_t *ids
    size_t n


cdef class HnswGraph:
    cdef Graph g
    cdef pthread_mutex_t glock      # entry point / max level during a build
    cdef pthread_mutex_t pool_lock  # the free list of Ctx
    cdef pthread_rwlock_t rw        # writers (add, mark_deleted) vs searches
    cdef Ctx *pool
    cdef void **slabs               # owned level-0 memory (chunks point into it)
    cdef size_t n_slabs
    cdef bint ro
    cdef bint owns_memory
    cdef int simd_lvl
    cdef Py_ssize_t exports
    cdef hnsw_header_t view_header
    cdef object keep                # view: buffers / owner kept alive
    cdef Ctx *ctx_get(self) noexcept nogil
    cdef void ctx_put(self, Ctx *c) noexcept nogil
    cdef void pool_clear(self) noexcept nogil
