# The byte layout of an HNSW graph (included by _hnsw.pyx).
#
# Owns: the four regions a store writes and a view maps (their offset tables
# below), the constants and status codes, the addressing of records and
# neighbour lists, and the label -> internal id hash of an owned graph (NOT part
# of the regions). All regions are native little-endian.
#
# HEADER (128 bytes, hnsw_header_t in _hnsw_kernels.h)
#     off  size  field
#       0   u32  magic            0x4e484454 ("TDHN")
#       4   u32  version          1
#       8   u32  dim
#      12   u32  metric           0 l2 (squared), 1 ip (1 - dot), 2 cosine (normalized, 1 - dot)
#      16   u32  m                max links per node on levels >= 1
#      20   u32  m0               max links on level 0 (2 * m)
#      24   u32  ef_construction
#      28   u32  chunk_shift      records per level-0 chunk = 1 << chunk_shift
#      32   u64  count            nodes (internal ids 0 .. count-1)
#      40   u64  capacity         records allocated (owned graph; informative in a view)
#      48   u32  entry_point      0xffffffff when empty
#      52   i32  max_level        -1 when empty; == level of entry_point
#      56   u32  record_size      bytes of one level-0 record
#      60   u32  vector_offset    = align8(4 + 4*m0)
#      64   u32  label_offset     = align8(vector_offset + 4*dim)
#      68   u32  upper_block      = 4 + 4*m, bytes of one upper level of one node
#      72   u64  level0_bytes     = count * record_size
#      80   u64  upper_bytes      bytes used in the upper-links arena
#      88   u64  nodes_bytes      = count * 8
#      96   u64  deleted_count
#     104   f64  level_mult       1 / ln(m)
#     112   u64  rng_state        level generator state (to continue a build)
#     120   u64  reserved
#
# LEVEL 0: fixed-size records, internal id i at
#     chunk_base[i >> chunk_shift] + (i & ((1 << chunk_shift) - 1)) * record_size
#   one record:
#     off                size        field
#       0                u32         word: bits 0-15 level-0 neighbour count,
#                                    bit 16 deleted (bits 17-23 zero),
#                                    bits 24-31 the build's spinlock byte of
#                                    this node (zero at rest, so in any region)
#       4                m0 x u32    neighbour internal ids (count used)
#       vector_offset    dim x f32   the vector (normalized for cosine)
#       label_offset     u64         external id (label)
#   The chunk bases may all point into one contiguous buffer (chunk i at
#   i << chunk_shift records) or into separate extents; the last chunk may be
#   short (only the records < count are needed).
#
# NODE TABLE: count x u64, node i: bits 56-63 its level L, bits 0-55 the byte
#   offset of its block in the upper-links arena (0 and unused when L == 0).
#
# UPPER-LINKS ARENA: for each node with L >= 1 a block of L x upper_block bytes;
#   level l (1..L) at arena + offset + (l-1) * upper_block:
#       u32 count | m x u32 neighbour internal ids
#
# LABEL MAP (owned graphs and, built on first use, views; not serialized): an
#   open-addressing hash u64 label -> u32 id, multiplicative splitmix hash,
#   linear probing, load <= 1/2, empty slots hold LABEL_NONE. A store that
#   needs labels without the hash keeps HnswGraph.label_table() beside the
#   regions (toondb/vector/store.py).
#
# Invariants (cited where they are kept as "(L<n>)"):
#   L1  vector_offset = align8(4 + 4*m0), label_offset = align8(vector_offset
#       + 4*dim), record_size = label_offset + 8, upper_block = 4 + 4*m; a graph
#       built here has m0 = 2*m.
#   L2  internal ids are u32: count < 2**32 - 1 (0xffffffff is "no entry") and
#       count <= capacity; record i lives in chunk i >> chunk_shift.
#   L3  a record's word: level-0 count <= m0, bits 17-23 zero, the lock byte
#       zero at rest; an upper list's count <= m and no other bits. Lists are
#       written through their u16 count, leaving the deleted bit and the lock
#       byte alone.
#   L4  every neighbour id is < count, and a neighbour on level l >= 1 has a
#       level >= l.
#   L5  a node's level is <= max_level; a node with level L >= 1 owns
#       L * upper_block bytes of the arena at a 4-aligned offset.
#   L6  empty <=> entry_point = 0xffffffff and max_level = -1; otherwise
#       entry_point < count and its level is max_level.
#   L7  deleted_count = the records with bit 16 set (<= count); the deleted
#       bits are honoured only when deleted_count > 0 (as hnswlib checks its
#       num_deleted).
#   L8  label 2**64-1 (LABEL_NONE) is reserved: it pads search_batch rows and
#       marks empty hash slots. A label names at most one live record (older
#       records of it are deleted: an upsert is mark_deleted + add); the hash
#       maps a label to its newest record.
#   L9  stored vectors are finite, and of unit length for cosine.
#   L10 the hash holds at most half its capacity (a power of two >= 16).


cdef enum:
    MAX_LEVEL = 255
    # status codes of the nogil functions (turned into exceptions by _raise)
    OK = 0
    ERR_NOMEM = -1
    ERR_CORRUPT = -2
    ERR_NONFINITE = -3
    ERR_CHECKSUM = -4


def _raise(Py_ssize_t code, what):
    if code == ERR_NOMEM:
        raise MemoryError()
    if code == ERR_NONFINITE:
        raise ValueError(f"{what} contain NaN or infinity")
    if code == ERR_CHECKSUM:
        raise HnswCorruptionError("corrupt HNSW graph: a level-0 chunk fails its checksum "
                                  "(the file is damaged)")
    raise HnswCorruptionError("corrupt HNSW graph: a neighbour count or id is out of range")


_METRICS = {"l2": 0, "ip": 1, "cosine": 2}
_METRIC_NAMES = {0: "l2", 1: "ip", 2: "cosine"}
cdef uint64_t LABEL_NONE = 0xffffffffffffffff  # (L8)


# ---------------------------------------------------------------------------
# Addressing

cdef inline size_t align8(size_t x) noexcept nogil:
    return (x + 7) & ~(<size_t>7)

cdef inline char *rec_at(const Graph *g, uint32_t i) noexcept nogil:  # (L2)
    return g.chunks[i >> g.chunk_shift] + <size_t>(i & g.chunk_mask) * g.record_size

cdef inline float *vec_at(const Graph *g, uint32_t i) noexcept nogil:
    return <float *>(rec_at(g, i) + g.vec_off)

cdef inline uint64_t label_at(const Graph *g, uint32_t i) noexcept nogil:
    return hnsw_load_u64(rec_at(g, i) + g.label_off)

cdef inline int level_of(const Graph *g, uint32_t i) noexcept nogil:
    return <int>(g.nodes[i] >> 56)

cdef inline uint32_t *list_at(const Graph *g, uint32_t i, int level) noexcept nogil:
    if level == 0:
        return <uint32_t *>rec_at(g, i)
    return <uint32_t *>(g.upper + (g.nodes[i] & OFF_MASK) + <size_t>(level - 1) * g.upper_block)

# The build's per-node spinlock: byte 3 of the record's first word (zero at
# rest), in the cache line of the neighbour count it guards; it guards the
# node's lists on every level.
cdef inline unsigned char *lock_of(const Graph *g, uint32_t i) noexcept nogil:
    return <unsigned char *>rec_at(g, i) + 3


# ---------------------------------------------------------------------------
# The label -> id hash (L8, L10)

cdef inline uint64_t hslot(const Graph *g, uint64_t label) noexcept nogil:
    return hnsw_mix64(label) & (g.hcap - 1)

cdef Py_ssize_t hfind(const Graph *g, uint64_t label) noexcept nogil:
    if g.hcap == 0:
        return -1
    cdef uint64_t s = hslot(g, label)
    while g.hkeys[s] != LABEL_NONE:
        if g.hkeys[s] == label:
            return g.hvals[s]
        s = (s + 1) & (g.hcap - 1)
    return -1

cdef void hput(Graph *g, uint64_t label, uint32_t v) noexcept nogil:
    cdef uint64_t s = hslot(g, label)
    while g.hkeys[s] != LABEL_NONE and g.hkeys[s] != label:
        s = (s + 1) & (g.hcap - 1)
    g.hkeys[s] = label
    g.hvals[s] = v

cdef int hreserve(Graph *g, uint64_t n) noexcept nogil:
    cdef uint64_t cap = 16, i, old_cap = g.hcap
    cdef uint64_t *old_k = g.hkeys
    cdef uint32_t *old_v = g.hvals
    while cap < 2 * n:  # (L10)
        cap *= 2
    if cap <= g.hcap:
        return OK
    g.hkeys = <uint64_t *>malloc(cap * sizeof(uint64_t))
    g.hvals = <uint32_t *>malloc(cap * sizeof(uint32_t))
    if g.hkeys == NULL or g.hvals == NULL:
        free(g.hkeys)
        free(g.hvals)
        g.hkeys = old_k
        g.hvals = old_v
        return ERR_NOMEM
    memset(g.hkeys, 0xff, cap * sizeof(uint64_t))
    g.hcap = cap
    for i in range(old_cap):
        if old_k[i] != LABEL_NONE:
            hput(g, old_k[i], old_v[i])
    free(old_k)
    free(old_v)
    return OK

