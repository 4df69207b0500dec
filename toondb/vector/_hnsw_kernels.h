/*
 * C helpers for toondb/vector/_hnsw.pyx: distance kernels with runtime SIMD dispatch,
 * a per-node spinlock, binary heaps of (distance, id) pairs, prefetch and the
 * on-disk header struct.
 *
 * Distance kernels are plain C loops over 32 independent accumulators, which
 * GCC/Clang vectorize at -O3 without -ffast-math (no reassociation is needed:
 * lane j of the accumulator only ever adds element i*32+j). The same body is
 * compiled three times on x86_64: portable (SSE2 baseline), AVX2+FMA and
 * AVX-512F, through __attribute__((target(...))); hnsw_select_kernels() picks
 * one with __builtin_cpu_supports at import. Other architectures (aarch64)
 * get the portable body only (NEON is their baseline).
 */
#ifndef TOONDB_HNSW_KERNELS_H
#define TOONDB_HNSW_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#if defined(__GNUC__)
#define HNSW_LIKELY(x) __builtin_expect(!!(x), 1)
#define HNSW_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define HNSW_INLINE static inline __attribute__((always_inline))
#else
#define HNSW_LIKELY(x) (x)
#define HNSW_UNLIKELY(x) (x)
#define HNSW_INLINE static inline
#endif

/* ------------------------------------------------------------------------ */
/* On-disk header (128 bytes, native little-endian; see the table in _layout.pxi) */

#define HNSW_MAGIC 0x4e484454u /* "TDHN" read as little-endian u32 */
#define HNSW_VERSION 1u
#define HNSW_NO_ENTRY 0xffffffffu
#define HNSW_DELETED_BIT 0x00010000u /* in the u32 word at offset 0 of a record */
#define HNSW_COUNT_MASK 0x0000ffffu
#define HNSW_OFF_MASK 0x00ffffffffffffffull /* node table: offset bits */

typedef struct {
    uint32_t magic;           /*   0 */
    uint32_t version;         /*   4 */
    uint32_t dim;             /*   8 */
    uint32_t metric;          /*  12  0 l2, 1 ip, 2 cosine */
    uint32_t m;               /*  16 */
    uint32_t m0;              /*  20 */
    uint32_t ef_construction; /*  24 */
    uint32_t chunk_shift;     /*  28 */
    uint64_t count;           /*  32 */
    uint64_t capacity;        /*  40 */
    uint32_t entry_point;     /*  48  HNSW_NO_ENTRY when empty */
    int32_t max_level;        /*  52  -1 when empty */
    uint32_t record_size;     /*  56 */
    uint32_t vector_offset;   /*  60 */
    uint32_t label_offset;    /*  64 */
    uint32_t upper_block;     /*  68  bytes of one upper level: 4 + 4*m */
    uint64_t level0_bytes;    /*  72  count * record_size */
    uint64_t upper_bytes;     /*  80  bytes used in the upper-links arena */
    uint64_t nodes_bytes;     /*  88  count * 8 */
    uint64_t deleted_count;   /*  96 */
    double level_mult;        /* 104 */
    uint64_t rng_state;       /* 112 */
    uint64_t reserved;        /* 120 */
} hnsw_header_t;

typedef char hnsw_header_size_check[(sizeof(hnsw_header_t) == 128) ? 1 : -1];

/* ------------------------------------------------------------------------ */
/* Distance kernels */

typedef float (*hnsw_dist_fn)(const float *a, const float *b, size_t n);

#define HNSW_LANES 32

/* Tree reduction of the 32 lanes: every step is a lane-wise add the compiler
 * vectorizes (a sequential sum of 32 floats would be a 32-deep dependency
 * chain, as slow as the main loop itself for dim=128). */
#define HNSW_REDUCE(acc)                                                      \
    for (int j = 0; j < 16; j++) acc[j] += acc[j + 16];                       \
    for (int j = 0; j < 8; j++) acc[j] += acc[j + 8];                         \
    for (int j = 0; j < 4; j++) acc[j] += acc[j + 4];                         \
    for (int j = 0; j < 2; j++) acc[j] += acc[j + 2];                         \
    acc[0] += acc[1];

#define HNSW_L2_BODY                                                          \
    float acc[HNSW_LANES] = {0};                                              \
    size_t i = 0;                                                             \
    for (; i + HNSW_LANES <= n; i += HNSW_LANES) {                            \
        for (int j = 0; j < HNSW_LANES; j++) {                                \
            float d = a[i + j] - b[i + j];                                    \
            acc[j] += d * d;                                                  \
        }                                                                     \
    }                                                                         \
    for (; i + 8 <= n; i += 8) {                                              \
        for (int j = 0; j < 8; j++) {                                         \
            float d = a[i + j] - b[i + j];                                    \
            acc[j] += d * d;                                                  \
        }                                                                     \
    }                                                                         \
    HNSW_REDUCE(acc)                                                          \
    float s = acc[0];                                                         \
    for (; i < n; i++) {                                                      \
        float d = a[i] - b[i];                                                \
        s += d * d;                                                           \
    }                                                                         \
    return s;

#define HNSW_DOT_BODY                                                         \
    float acc[HNSW_LANES] = {0};                                              \
    size_t i = 0;                                                             \
    for (; i + HNSW_LANES <= n; i += HNSW_LANES) {                            \
        for (int j = 0; j < HNSW_LANES; j++) acc[j] += a[i + j] * b[i + j];   \
    }                                                                         \
    for (; i + 8 <= n; i += 8) {                                              \
        for (int j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];            \
    }                                                                         \
    HNSW_REDUCE(acc)                                                          \
    float s = acc[0];                                                         \
    for (; i < n; i++) s += a[i] * b[i];                                      \
    return 1.0f - s;

static float hnsw_l2_generic(const float *a, const float *b, size_t n) { HNSW_L2_BODY }
static float hnsw_ip_generic(const float *a, const float *b, size_t n) { HNSW_DOT_BODY }

#if defined(__x86_64__) && defined(__GNUC__)
#define HNSW_HAVE_X86_DISPATCH 1
__attribute__((target("avx2,fma")))
static float hnsw_l2_avx2(const float *a, const float *b, size_t n) { HNSW_L2_BODY }
__attribute__((target("avx2,fma")))
static float hnsw_ip_avx2(const float *a, const float *b, size_t n) { HNSW_DOT_BODY }
__attribute__((target("avx512f,avx2,fma")))
static float hnsw_l2_avx512(const float *a, const float *b, size_t n) { HNSW_L2_BODY }
__attribute__((target("avx512f,avx2,fma")))
static float hnsw_ip_avx512(const float *a, const float *b, size_t n) { HNSW_DOT_BODY }
#else
#define HNSW_HAVE_X86_DISPATCH 0
#endif

/* level: 0 generic, 1 avx2+fma, 2 avx512f */
static int hnsw_cpu_level(void) {
#if HNSW_HAVE_X86_DISPATCH
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") &&
        __builtin_cpu_supports("fma"))
        return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
#endif
    return 0;
}

/* The kernel for metric (0 l2, 1 ip / cosine) at SIMD level (clamped to what
 * the CPU has). */
static hnsw_dist_fn hnsw_kernel(int metric, int level) {
    int have = hnsw_cpu_level();
    if (level > have) level = have;
#if HNSW_HAVE_X86_DISPATCH
    if (level == 2) return metric == 0 ? hnsw_l2_avx512 : hnsw_ip_avx512;
    if (level == 1) return metric == 0 ? hnsw_l2_avx2 : hnsw_ip_avx2;
#endif
    (void)level;
    return metric == 0 ? hnsw_l2_generic : hnsw_ip_generic;
}

HNSW_INLINE void hnsw_prefetch(const void *p) {
#if defined(__GNUC__)
    __builtin_prefetch(p, 0, 3);
#else
    (void)p;
#endif
}

/* Prefetch `bytes` from p, one cache line at a time (at most 32 lines). */
HNSW_INLINE void hnsw_prefetch_span(const void *p, size_t bytes) {
    const char *c = (const char *)p;
    if (bytes > 64 * 64) bytes = 64 * 64;
    for (size_t o = 0; o < bytes; o += 64) hnsw_prefetch(c + o);
}

/* dst = src / |src| in float, summed in order: bit for bit what hnswlib's
 * Python binding does for the cosine space, so both store the same vectors. */
static void hnsw_normalize(const float *src, float *dst, size_t n) {
    float norm = 0.0f;
    for (size_t i = 0; i < n; i++) norm += src[i] * src[i];
    norm = 1.0f / (sqrtf(norm) + 1e-30f);
    for (size_t i = 0; i < n; i++) dst[i] = src[i] * norm;
}

/* ------------------------------------------------------------------------ */
/* Locks and atomics */

HNSW_INLINE void hnsw_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

HNSW_INLINE void hnsw_spin_lock(unsigned char *l) {
    unsigned spins = 0;
    while (__atomic_test_and_set(l, __ATOMIC_ACQUIRE)) {
        while (__atomic_load_n(l, __ATOMIC_RELAXED)) {
            if (++spins < 256) hnsw_cpu_relax();
            else { sched_yield(); spins = 0; }
        }
    }
}

/* The graph's reader/writer lock prefers writers where glibc allows it, so a
 * stream of searches cannot starve add(). */
static int hnsw_rwlock_init(pthread_rwlock_t *l) {
#if defined(__GLIBC__) && defined(__USE_GNU)
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    int rc = pthread_rwlock_init(l, &a);
    pthread_rwlockattr_destroy(&a);
    return rc;
#else
    return pthread_rwlock_init(l, NULL);
#endif
}

HNSW_INLINE void hnsw_spin_unlock(unsigned char *l) { __atomic_clear(l, __ATOMIC_RELEASE); }

HNSW_INLINE uint64_t hnsw_fetch_add(uint64_t *p, uint64_t v) {
    return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}

/* Set a per-chunk dirty flag: build threads may set the same one at once
 * (all store 1), so the store is atomic to be a defined race. */
HNSW_INLINE void hnsw_set_flag(unsigned char *p) { __atomic_store_n(p, 1, __ATOMIC_RELAXED); }

/* The cancel flag of a parallel job, read by workers between insertions. */
HNSW_INLINE int hnsw_load_flag(const int *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

/* ------------------------------------------------------------------------ */
/* Binary heaps of (distance, id). max-heap: results; min-heap: candidates. */

typedef struct { float d; uint32_t id; } hnsw_pair;
typedef struct { hnsw_pair *a; size_t n, cap; } hnsw_heap;

static int hnsw_heap_reserve(hnsw_heap *h, size_t cap) {
    if (cap <= h->cap) return 0;
    size_t nc = h->cap ? h->cap : 64;
    while (nc < cap) nc *= 2;
    hnsw_pair *a = (hnsw_pair *)realloc(h->a, nc * sizeof(hnsw_pair));
    if (!a) return -1;
    h->a = a;
    h->cap = nc;
    return 0;
}

static void hnsw_heap_free(hnsw_heap *h) { free(h->a); h->a = NULL; h->n = h->cap = 0; }

/* max-heap */
HNSW_INLINE void hnsw_max_sift_down(hnsw_pair *a, size_t n, size_t i) {
    hnsw_pair x = a[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && a[c + 1].d > a[c].d) c++;
        if (a[c].d <= x.d) break;
        a[i] = a[c];
        i = c;
    }
    a[i] = x;
}

HNSW_INLINE int hnsw_max_push(hnsw_heap *h, float d, uint32_t id) {
    if (HNSW_UNLIKELY(h->n == h->cap) && hnsw_heap_reserve(h, h->n + 1)) return -1;
    hnsw_pair *a = h->a;
    size_t i = h->n++;
    while (i) {
        size_t p = (i - 1) >> 1;
        if (a[p].d >= d) break;
        a[i] = a[p];
        i = p;
    }
    a[i].d = d;
    a[i].id = id;
    return 0;
}

HNSW_INLINE void hnsw_max_pop(hnsw_heap *h) {
    if (--h->n) {
        h->a[0] = h->a[h->n];
        hnsw_max_sift_down(h->a, h->n, 0);
    }
}

/* Replace the largest element (heap must be non-empty). */
HNSW_INLINE void hnsw_max_replace_top(hnsw_heap *h, float d, uint32_t id) {
    h->a[0].d = d;
    h->a[0].id = id;
    hnsw_max_sift_down(h->a, h->n, 0);
}

/* min-heap */
HNSW_INLINE int hnsw_min_push(hnsw_heap *h, float d, uint32_t id) {
    if (HNSW_UNLIKELY(h->n == h->cap) && hnsw_heap_reserve(h, h->n + 1)) return -1;
    hnsw_pair *a = h->a;
    size_t i = h->n++;
    while (i) {
        size_t p = (i - 1) >> 1;
        if (a[p].d <= d) break;
        a[i] = a[p];
        i = p;
    }
    a[i].d = d;
    a[i].id = id;
    return 0;
}

HNSW_INLINE void hnsw_min_pop(hnsw_heap *h) {
    size_t n = --h->n;
    if (!n) return;
    hnsw_pair *a = h->a;
    hnsw_pair x = a[n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && a[c + 1].d < a[c].d) c++;
        if (a[c].d >= x.d) break;
        a[i] = a[c];
        i = c;
    }
    a[i] = x;
}

/* Empty a max-heap into out[0..n) in ascending order of distance; returns n. */
static size_t hnsw_max_drain_sorted(hnsw_heap *h, hnsw_pair *out) {
    size_t n = h->n;
    while (h->n) {
        out[h->n - 1] = h->a[0];
        hnsw_max_pop(h);
    }
    return n;
}

/* Insertion sort ascending (small arrays). */
static void hnsw_sort_pairs(hnsw_pair *a, size_t n) {
    for (size_t i = 1; i < n; i++) {
        hnsw_pair x = a[i];
        size_t j = i;
        while (j && a[j - 1].d > x.d) { a[j] = a[j - 1]; j--; }
        a[j] = x;
    }
}

/* ------------------------------------------------------------------------ */
/* Misc */

HNSW_INLINE uint64_t hnsw_load_u64(const void *p) { uint64_t v; memcpy(&v, p, 8); return v; }
HNSW_INLINE void hnsw_store_u64(void *p, uint64_t v) { memcpy(p, &v, 8); }

HNSW_INLINE uint64_t hnsw_splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The level generator: the same draws as hnswlib (libstdc++'s
 * std::default_random_engine = minstd_rand0, fed to
 * uniform_real_distribution<double>(0, 1) = generate_canonical<double, 53>,
 * which takes two engine outputs), so a one-thread build with the same seed
 * gives every node the level hnswlib gives it. */
static uint64_t hnsw_minstd_seed(uint64_t seed) {
    uint64_t x = seed % 2147483647ull;
    return x == 0 ? 1 : x;
}

HNSW_INLINE uint64_t hnsw_minstd_next(uint64_t *x) {
    *x = (*x * 16807ull) % 2147483647ull;
    return *x;
}

static double hnsw_level_uniform(uint64_t *state) {
    const double r = 2147483646.0; /* max - min + 1 */
    double sum = (double)(hnsw_minstd_next(state) - 1);
    sum += (double)(hnsw_minstd_next(state) - 1) * r;
    double u = sum / (r * r);
    if (u >= 1.0) u = nextafter(1.0, 0.0);
    return u;
}

HNSW_INLINE uint64_t hnsw_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Binary search of a sorted u64 array. */
HNSW_INLINE int hnsw_sorted_contains(const uint64_t *a, size_t n, uint64_t x) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + ((hi - lo) >> 1);
        if (a[mid] < x) lo = mid + 1; else hi = mid;
    }
    return lo < n && a[lo] == x;
}

static void *hnsw_aligned_calloc(size_t n) {
    void *p = NULL;
    if (n == 0) n = 64;
    if (posix_memalign(&p, 64, n)) return NULL;
    memset(p, 0, n);
    return p;
}

/* Zeroed memory for level-0 chunks: 2 MiB aligned and advised for
 * transparent huge pages when large (Linux), else 64-byte aligned. */
static void *hnsw_alloc_slab(size_t n) {
    const size_t huge = (size_t)2 << 20;
    void *p = NULL;
    if (n >= huge) {
        n = (n + huge - 1) & ~(huge - 1);
        if (posix_memalign(&p, huge, n)) return NULL;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
        madvise(p, n, MADV_HUGEPAGE);
#endif
        memset(p, 0, n);
        return p;
    }
    return hnsw_aligned_calloc(n);
}

/* one-byte flags shared by search threads (a chunk verified once) */
static inline void hnsw_flag_set(unsigned char *p) { __atomic_store_n(p, 1, __ATOMIC_RELEASE); }
static inline int hnsw_flag_get(const unsigned char *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }

#endif /* TOONDB_HNSW_KERNELS_H */
