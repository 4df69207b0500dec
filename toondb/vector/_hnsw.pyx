# cython: language_level=3
"""HNSW (Malkov & Yashunin 2018) kernel of toondb's vector index.

One extension module, built from include files; read them in this order:

    _layout.pxi    the byte layout of the four regions (header, level-0 records,
                   node table, upper-links arena) as offset tables, constants and
                   status codes, record addressing, the label -> id hash (L1-L10)
    _search.pxi    distance kernels, per-thread scratch (visited tags, heaps), the
                   search of one layer, the greedy descent, the k-NN query (S1-S5)
    _filter.pxi    filtered k-NN: IdFilter, the exact scan, ACORN-1's traversal
                   and the choice between them by selectivity (F1-F2)
    _build.pxi     neighbour selection, insertion, growth and the parallel build
                   behind HnswGraph.add() (B1-B7)
    _regions.pxi   views over stored regions (HnswGraph.view) with lazily
                   checksummed chunks, region exports, owned copies (R1-R6)
    _graph.pxi     the Python face: Neighbor, neighbors(), HnswGraph (G1-G4)

The graph is plain C (Graph, Ctx, Filter in _hnsw.pxd), laid out so that a store
places it in pages of the page file and searches it in place through the mmap
(toondb/vector/store.py). _hnsw_kernels.h holds the C helpers: distance kernels
with runtime SIMD dispatch, the spinlock, heaps, the header struct. Each include
opens with what it owns and its numbered invariants, cited where they are kept
as "(L3)", "(B4)", ...
"""

from cpython.buffer cimport PyBUF_WRITABLE, PyBuffer_FillInfo
from libc.math cimport INFINITY, isfinite, log, sqrt
from libc.stdint cimport int32_t, int64_t, uint16_t, uint32_t, uint64_t, uintptr_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcpy, memset

import os
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np

cimport numpy as cnp

from toondb.errors import HnswCorruptionError

cnp.import_array()

__all__ = ["HnswGraph", "HnswCorruptionError", "IdFilter", "Neighbor", "neighbors", "simd_level"]


# C helpers (_hnsw_kernels.h) and the storage engine's CRC-32C (chunk checksums)
cdef extern from "_hnsw_kernels.h" nogil:
    int hnsw_cpu_level()
    hnsw_dist_fn hnsw_kernel(int metric, int level)
    void hnsw_prefetch(const void *p)
    void hnsw_prefetch_span(const void *p, size_t bytes)
    void hnsw_normalize(const float *src, float *dst, size_t n)
    void hnsw_spin_lock(unsigned char *l)
    void hnsw_spin_unlock(unsigned char *l)
    uint64_t hnsw_fetch_add(uint64_t *p, uint64_t v)
    void hnsw_set_flag(unsigned char *p)
    int hnsw_load_flag(const int *p)
    int hnsw_heap_reserve(hnsw_heap *h, size_t cap)
    void hnsw_heap_free(hnsw_heap *h)
    int hnsw_max_push(hnsw_heap *h, float d, uint32_t id)
    void hnsw_max_pop(hnsw_heap *h)
    void hnsw_max_replace_top(hnsw_heap *h, float d, uint32_t id)
    int hnsw_min_push(hnsw_heap *h, float d, uint32_t id)
    void hnsw_min_pop(hnsw_heap *h)
    size_t hnsw_max_drain_sorted(hnsw_heap *h, hnsw_pair *out)
    void hnsw_sort_pairs(hnsw_pair *a, size_t n)
    uint64_t hnsw_load_u64(const void *p)
    void hnsw_store_u64(void *p, uint64_t v)
    uint64_t hnsw_splitmix64(uint64_t *s)
    uint64_t hnsw_minstd_seed(uint64_t seed)
    double hnsw_level_uniform(uint64_t *state)
    uint64_t hnsw_mix64(uint64_t z)
    int hnsw_sorted_contains(const uint64_t *a, size_t n, uint64_t x)
    void *hnsw_aligned_calloc(size_t n)
    void *hnsw_alloc_slab(size_t n)
    int hnsw_rwlock_init(pthread_rwlock_t *l)
    bint HNSW_UNLIKELY(bint x)
    void hnsw_flag_set(unsigned char *p)
    int hnsw_flag_get(const unsigned char *p)
    const uint64_t OFF_MASK "HNSW_OFF_MASK"

cdef extern from "_btree_support.h" nogil:
    void tdb_crc_init()
    uint32_t tdb_crc32c(uint32_t crc, const void *buf, size_t n)

tdb_crc_init()


include "_layout.pxi"
include "_search.pxi"
include "_filter.pxi"
include "_build.pxi"
include "_regions.pxi"
include "_graph.pxi"
