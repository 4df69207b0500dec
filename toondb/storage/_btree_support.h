/*
 * Small C helpers for _btree.pyx: unaligned little-endian loads and stores,
 * CRC-32C (Castagnoli) with a hardware path, atomics and fences for the
 * shared reader table, the write lock word (a futex in the mapped lock file),
 * the monotonic clock, one-byte fcntl locks (the open protocol), fdatasync
 * and a pwrite that finishes short writes.
 *
 * The page file is little-endian on every platform; big-endian hosts are
 * refused at compile time rather than silently writing a different format.
 */
#ifndef TOONDB_BTREE_SUPPORT_H
#define TOONDB_BTREE_SUPPORT_H

#define _GNU_SOURCE 1
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include <time.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/uio.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "toondb's page format is little-endian; big-endian hosts are not supported"
#endif

/* bit 31 of a page id marks a page that lives only in a write transaction's
 * memory (an index into its dirty table); bit 31 of a leaf cell's value length
 * marks a value stored in an overflow extent. */
#define TDB_DIRTY 0x80000000u
#define TDB_OVF 0x80000000u
/* bit 63 of a freelist group's transaction id: pages the durable snapshot sees */
#define TDB_PINNED 0x8000000000000000ull

/* ---- unaligned little-endian access (memcpy compiles to one mov) ---- */
static inline uint16_t tdb_ld16(const void *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t tdb_ld32(const void *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t tdb_ld64(const void *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline void tdb_st16(void *p, uint16_t v) { memcpy(p, &v, 2); }
static inline void tdb_st32(void *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void tdb_st64(void *p, uint64_t v) { memcpy(p, &v, 8); }

/* ---- key comparison: memcmp order, then length (a prefix sorts first) ---- */
static inline int tdb_keycmp(const unsigned char *a, size_t alen,
                             const unsigned char *b, size_t blen) {
    size_t n = alen < blen ? alen : blen;
    int c = memcmp(a, b, n);
    if (c) return c;
    return (alen > blen) - (alen < blen);
}

/* ---- CRC-32C ---- */
static uint32_t tdb_crc_table[8][256];
static int tdb_crc_ready = 0;
static int tdb_crc_hw = 0;

static void tdb_crc_init_table(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        tdb_crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = tdb_crc_table[0][i];
        for (int t = 1; t < 8; t++) {
            c = tdb_crc_table[0][c & 0xff] ^ (c >> 8);
            tdb_crc_table[t][i] = c;
        }
    }
}

static uint32_t tdb_crc32c_sw(uint32_t crc, const unsigned char *p, size_t n) {
    crc = ~crc;
    while (n && ((uintptr_t)p & 7)) { crc = tdb_crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8); n--; }
    while (n >= 8) {
        uint64_t w = tdb_ld64(p) ^ crc;
        crc = tdb_crc_table[7][w & 0xff] ^ tdb_crc_table[6][(w >> 8) & 0xff] ^
              tdb_crc_table[5][(w >> 16) & 0xff] ^ tdb_crc_table[4][(w >> 24) & 0xff] ^
              tdb_crc_table[3][(w >> 32) & 0xff] ^ tdb_crc_table[2][(w >> 40) & 0xff] ^
              tdb_crc_table[1][(w >> 48) & 0xff] ^ tdb_crc_table[0][w >> 56];
        p += 8; n -= 8;
    }
    while (n--) crc = tdb_crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
/* Long buffers are cut into three streams of TDB_CRC_LANE bytes, computed
 * side by side (the crc32 instruction has a latency of three cycles and a
 * throughput of one), then combined. CRC is linear over GF(2): the state after
 * A||B equals shift(state after A, |B|) XOR (B's CRC from state 0), where shift
 * appends |B| zero bytes; tdb_crc_shift tabulates shift by TDB_CRC_LANE bytes
 * for each byte position of the 32-bit state. */
#define TDB_CRC_LANE 1360
static uint32_t tdb_crc_shift[4][256];

__attribute__((target("sse4.2")))
static uint32_t tdb_crc_zeros_hw(uint32_t state, size_t n) {
    uint64_t c = state;
    for (size_t i = 0; i < n / 8; i++) c = _mm_crc32_u64(c, 0);
    return (uint32_t)c;
}

static inline uint32_t tdb_crc_shift_lane(uint32_t s) {
    return tdb_crc_shift[0][s & 0xff] ^ tdb_crc_shift[1][(s >> 8) & 0xff] ^
           tdb_crc_shift[2][(s >> 16) & 0xff] ^ tdb_crc_shift[3][s >> 24];
}

__attribute__((target("sse4.2")))
static uint32_t tdb_crc32c_hw(uint32_t crc, const unsigned char *p, size_t n) {
    uint64_t c = ~crc;
    while (n >= 3 * TDB_CRC_LANE) {
        uint64_t c1 = 0, c2 = 0;
        const unsigned char *p1 = p + TDB_CRC_LANE, *p2 = p + 2 * TDB_CRC_LANE;
        for (size_t i = 0; i < TDB_CRC_LANE; i += 8) {
            c = _mm_crc32_u64(c, tdb_ld64(p + i));
            c1 = _mm_crc32_u64(c1, tdb_ld64(p1 + i));
            c2 = _mm_crc32_u64(c2, tdb_ld64(p2 + i));
        }
        c = tdb_crc_shift_lane(tdb_crc_shift_lane((uint32_t)c) ^ (uint32_t)c1) ^ (uint32_t)c2;
        p += 3 * TDB_CRC_LANE;
        n -= 3 * TDB_CRC_LANE;
    }
    while (n >= 8) { c = _mm_crc32_u64(c, tdb_ld64(p)); p += 8; n -= 8; }
    while (n--) c = _mm_crc32_u8((uint32_t)c, *p++);
    return ~(uint32_t)c;
}

/* Buffers of 256 bytes and more, where the CPU has AVX-512 carry-less multiply
 * (VPCLMULQDQ): fold 256 bytes per step in four 512-bit accumulators, each
 * holding four 128-bit lanes. Folding a 128-bit block X forward by D bytes is
 * clmul(X.lo, k_lo) ^ clmul(X.hi, k_hi) with k_lo = reflect32(x^(8D+32) mod P) << 1
 * and k_hi = reflect32(x^(8D-32) mod P) << 1 (P the CRC-32C polynomial): the
 * result has the same CRC as X followed by D zero bytes. The last 16 bytes of
 * state and the tail go through the crc32 instruction. The initial CRC enters
 * as an XOR into the first four bytes (the CRC register is linear). CPUs with
 * VPCLMULQDQ (Ice Lake and later) do not lower their clock for it. */
#define TDB_FOLD_K(d_lo, d_hi) _mm_set_epi64x((long long)(d_hi), (long long)(d_lo))

__attribute__((target("avx512f,avx512vl,vpclmulqdq,pclmul,sse4.2")))
static inline __m512i tdb_fold512(__m512i x, __m512i k, __m512i next) {
    return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(x, k, 0x00),
                                     _mm512_clmulepi64_epi128(x, k, 0x11), next, 0x96);
}

__attribute__((target("avx512f,avx512vl,vpclmulqdq,pclmul,sse4.2")))
static inline __m128i tdb_fold128(__m128i x, __m128i k, __m128i next) {
    return _mm_ternarylogic_epi64(_mm_clmulepi64_si128(x, k, 0x00),
                                  _mm_clmulepi64_si128(x, k, 0x11), next, 0x96);
}

__attribute__((target("avx512f,avx512vl,vpclmulqdq,pclmul,sse4.2")))
static uint32_t tdb_crc32c_vpclmul(uint32_t crc, const unsigned char *p, size_t n) {
    /* requires n >= 256 */
    const __m512i k256 = _mm512_broadcast_i32x4(TDB_FOLD_K(0xdcb17aa4u, 0xb9e02b86u));
    const __m512i k64 = _mm512_broadcast_i32x4(TDB_FOLD_K(0x740eef02u, 0x9e4addf8u));
    const __m128i k48 = TDB_FOLD_K(0x1c291d04u, 0x1d82c63daull);
    const __m128i k32 = TDB_FOLD_K(0x1384aa63aull, 0xba4fc28eu);
    const __m128i k16 = TDB_FOLD_K(0xf20c0dfeu, 0x14cd00bd6ull);
    __m512i x0 = _mm512_loadu_si512((const void *)p);
    __m512i x1 = _mm512_loadu_si512((const void *)(p + 64));
    __m512i x2 = _mm512_loadu_si512((const void *)(p + 128));
    __m512i x3 = _mm512_loadu_si512((const void *)(p + 192));
    x0 = _mm512_xor_si512(x0, _mm512_zextsi128_si512(_mm_cvtsi32_si128((int)~crc)));
    p += 256;
    n -= 256;
    while (n >= 256) {
        x0 = tdb_fold512(x0, k256, _mm512_loadu_si512((const void *)p));
        x1 = tdb_fold512(x1, k256, _mm512_loadu_si512((const void *)(p + 64)));
        x2 = tdb_fold512(x2, k256, _mm512_loadu_si512((const void *)(p + 128)));
        x3 = tdb_fold512(x3, k256, _mm512_loadu_si512((const void *)(p + 192)));
        p += 256;
        n -= 256;
    }
    x1 = tdb_fold512(x0, k64, x1);
    x2 = tdb_fold512(x1, k64, x2);
    x3 = tdb_fold512(x2, k64, x3);
    while (n >= 64) {
        x3 = tdb_fold512(x3, k64, _mm512_loadu_si512((const void *)p));
        p += 64;
        n -= 64;
    }
    __m128i r = _mm512_extracti32x4_epi32(x3, 3);
    r = tdb_fold128(_mm512_extracti32x4_epi32(x3, 2), k16, r);
    r = tdb_fold128(_mm512_extracti32x4_epi32(x3, 1), k32, r);
    r = tdb_fold128(_mm512_extracti32x4_epi32(x3, 0), k48, r);
    while (n >= 16) {
        r = tdb_fold128(r, k16, _mm_loadu_si128((const __m128i *)p));
        p += 16;
        n -= 16;
    }
    uint64_t c = _mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(r));
    c = _mm_crc32_u64(c, (uint64_t)_mm_extract_epi64(r, 1));
    while (n >= 8) { c = _mm_crc32_u64(c, tdb_ld64(p)); p += 8; n -= 8; }
    while (n--) c = _mm_crc32_u8((uint32_t)c, *p++);
    return ~(uint32_t)c;
}
static int tdb_crc_vpclmul = 0;

static void tdb_crc_init_shift(void) {
    for (int k = 0; k < 4; k++)
        for (uint32_t b = 0; b < 256; b++)
            tdb_crc_shift[k][b] = tdb_crc_zeros_hw(b << (8 * k), TDB_CRC_LANE);
}
#define TDB_HAVE_HW_CRC 1
#elif defined(__aarch64__) && defined(__ARM_FEATURE_CRC32)
#include <arm_acle.h>
static uint32_t tdb_crc32c_hw(uint32_t crc, const unsigned char *p, size_t n) {
    uint32_t c = ~crc;
    while (n && ((uintptr_t)p & 7)) { c = __crc32cb(c, *p++); n--; }
    while (n >= 8) { c = __crc32cd(c, tdb_ld64(p)); p += 8; n -= 8; }
    while (n--) c = __crc32cb(c, *p++);
    return ~c;
}
#define TDB_HAVE_HW_CRC 1
#endif

static void tdb_crc_init(void) {
    if (tdb_crc_ready) return;
    tdb_crc_init_table();
#if defined(TDB_HAVE_HW_CRC) && defined(__x86_64__)
    __builtin_cpu_init();
    tdb_crc_hw = __builtin_cpu_supports("sse4.2");
    if (tdb_crc_hw) tdb_crc_init_shift();
    tdb_crc_vpclmul = tdb_crc_hw && __builtin_cpu_supports("avx512f") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("vpclmulqdq") &&
                      __builtin_cpu_supports("pclmul");
#elif defined(TDB_HAVE_HW_CRC)
    tdb_crc_hw = 1;
#endif
    tdb_crc_ready = 1;
}

/* CRC-32C of buf[0:n], continuing from `crc` (0 to start). */
static inline uint32_t tdb_crc32c(uint32_t crc, const void *buf, size_t n) {
#if defined(TDB_HAVE_HW_CRC)
#if defined(__x86_64__)
    if (n >= 256 && tdb_crc_vpclmul) return tdb_crc32c_vpclmul(crc, (const unsigned char *)buf, n);
#endif
    if (tdb_crc_hw) return tdb_crc32c_hw(crc, (const unsigned char *)buf, n);
#endif
    return tdb_crc32c_sw(crc, (const unsigned char *)buf, n);
}

/* One implementation by number, for tests that compare them: 0 the dispatch
 * above, 1 the table, 2 three crc32 streams, 3 carry-less folding (buffers of
 * 256 bytes and more; shorter ones take path 2). -1 when this CPU lacks it. */
static inline int tdb_crc32c_impl(int impl, uint32_t crc, const void *buf, size_t n, uint32_t *out) {
    const unsigned char *p = (const unsigned char *)buf;
    switch (impl) {
    case 0: *out = tdb_crc32c(crc, buf, n); return 0;
    case 1: *out = tdb_crc32c_sw(crc, p, n); return 0;
#if defined(TDB_HAVE_HW_CRC)
    case 2: if (!tdb_crc_hw) return -1; *out = tdb_crc32c_hw(crc, p, n); return 0;
#endif
#if defined(TDB_HAVE_HW_CRC) && defined(__x86_64__)
    case 3:
        if (!tdb_crc_vpclmul) return -1;
        *out = n >= 256 ? tdb_crc32c_vpclmul(crc, p, n) : tdb_crc32c_hw(crc, p, n);
        return 0;
#endif
    default: return -1;
    }
}

/* ---- atomics for the reader table shared between processes ---- */
static inline uint32_t tdb_aload32(const volatile uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline uint64_t tdb_aload64(const volatile uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void tdb_astore32(volatile uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline void tdb_astore64(volatile uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline int tdb_acas32(volatile uint32_t *p, uint32_t expected, uint32_t desired) {
    return __atomic_compare_exchange_n(p, &expected, desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}
static inline void tdb_fence(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

/* ---- the writer lock: a lock word in the shared lock file ----
 * state 0 free, 1 held, 2 held with waiters (waiters sleep on a futex where
 * the OS has one). The owner's pid sits beside it, so a writer that died with
 * the lock is detected (kill(pid, 0) fails with ESRCH) and the lock taken over:
 * its unfinished commit never wrote a meta page, so nothing of it is visible.
 * Uncontended, taking and releasing the lock are two atomic instructions. */
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
static inline void tdb_futex_wait(uint32_t *addr, uint32_t val, long usec) {
    struct timespec ts = { usec / 1000000, (usec % 1000000) * 1000 };
    syscall(SYS_futex, addr, FUTEX_WAIT, val, &ts, NULL, 0);
}
static inline void tdb_futex_wake(uint32_t *addr) {
    syscall(SYS_futex, addr, FUTEX_WAKE, 1, NULL, NULL, 0);
}
#else
static inline void tdb_futex_wait(uint32_t *addr, uint32_t val, long usec) {
    (void)addr; (void)val; usleep(usec < 2000 ? usec : 2000);
}
static inline void tdb_futex_wake(uint32_t *addr) { (void)addr; }
#endif

/* One attempt; 1 when the lock is now ours. */
static inline int tdb_wlock_try(uint32_t *state, uint32_t *owner, uint32_t pid) {
    uint32_t expected = 0;
    if (__atomic_compare_exchange_n(state, &expected, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
        __atomic_store_n(owner, pid, __ATOMIC_RELEASE);
        return 1;
    }
    return 0;
}

/* Sleep until the lock may be free (at most usec); 1 when it is now ours. */
static inline int tdb_wlock_wait(uint32_t *state, uint32_t *owner, uint32_t pid, long usec) {
    uint32_t s = __atomic_load_n(state, __ATOMIC_ACQUIRE);
    if (s == 0) {
        uint32_t expected = 0;
        if (__atomic_compare_exchange_n(state, &expected, 2, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
            __atomic_store_n(owner, pid, __ATOMIC_RELEASE);
            return 1;
        }
        return 0;
    }
    if (s == 1) {
        uint32_t expected = 1;
        __atomic_compare_exchange_n(state, &expected, 2, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    }
    tdb_futex_wait(state, 2, usec);
    return 0;
}

/* Take over the lock of a dead owner; 1 on success. */
static inline int tdb_wlock_steal(uint32_t *state, uint32_t *owner, uint32_t dead, uint32_t pid) {
    if (!__atomic_compare_exchange_n(owner, &dead, pid, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
        return 0;
    __atomic_store_n(state, 2, __ATOMIC_RELEASE);
    return 1;
}

static inline void tdb_wlock_release(uint32_t *state, uint32_t *owner) {
    __atomic_store_n(owner, 0, __ATOMIC_RELEASE);
    if (__atomic_exchange_n(state, 0, __ATOMIC_RELEASE) == 2) tdb_futex_wake(state);
}

/* ---- time ---- */
static inline double tdb_monotonic(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- open-file-description locks (per open file, not per process) ---- */
#ifndef F_OFD_SETLK
#define F_OFD_SETLK F_SETLK   /* elsewhere: per-process locks (_format.pxi, "Byte-range locks") */
#define F_OFD_SETLKW F_SETLKW
#define TDB_OFD_IS_PROCESS_LOCK 1
#endif

/* kind: F_RDLCK, F_WRLCK or F_UNLCK; returns 0, or -1 with errno */
static inline int tdb_lock_byte(int fd, int kind, off_t at, int wait) {
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = (short)kind;
    fl.l_whence = SEEK_SET;
    fl.l_start = at;
    fl.l_len = 1;
    fl.l_pid = 0;
    int r;
    do { r = fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl); } while (r < 0 && errno == EINTR);
    return r;
}

static inline int tdb_fdatasync(int fd) {
    int r;
#if defined(__APPLE__)
    do { r = fcntl(fd, F_FULLFSYNC); } while (r < 0 && errno == EINTR);
#else
    do { r = fdatasync(fd); } while (r < 0 && errno == EINTR);
#endif
    return r;
}

/* pwrite all of buf, retrying short writes and EINTR; 0 or -1 with errno */
static inline int tdb_pwrite_all(int fd, const char *buf, size_t n, uint64_t off) {
    while (n) {
        ssize_t w = pwrite(fd, buf, n, (off_t)off);
        if (w < 0) { if (errno == EINTR) continue; return -1; }
        if (w == 0) { errno = EIO; return -1; }
        buf += w; n -= (size_t)w; off += (uint64_t)w;
    }
    return 0;
}

#endif
