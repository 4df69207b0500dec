# The structural diff of two snapshots of one tree set (the key-value space and
# every named tree), as change records, and their application to a write
# transaction: what a commit logs for replication (_changelog.pxi) and what a
# replica applies (toondb.replication).
#
# Pages are copy-on-write (invariant 1): a commit writes new pages for what it
# changes, and the pages of everything else stay where they were, shared by
# the snapshots before and after it. So two snapshots of a tree that reach the
# same page id share that page's whole subtree, and the change from snapshot A
# to snapshot B is found by walking both trees in key order together and
# stepping over every subtree they share without reading it: the cost is
# O(pages that differ x fanout), not O(size). A commit diffs the snapshot it
# began from (A: committed pages) against itself (B: its dirty pages, by
# their temporary ids, which never equal a committed id), so it reads only
# the paths it rewrote.
#
# A side (DSide) is a stack of frames from the root; the top frame's current
# item is a child subtree not yet read (a branch) or a cell (a leaf). The
# position of a side is the first key it has not passed. The walk keeps both
# positions in step (a merge join): it steps over a page when it starts at
# both positions; otherwise it reads down the taller side (a page shared by
# both has one height), and compares cells when both sides are at cells.
#
# Change records, one after another, little-endian::
#
#     op  1 SELECT  u16 n | name     the records that follow apply to named
#                                    tree `name` (n = 0: the key-value space)
#     op  2 CREATE  u16 n | name     the tree exists and is empty (dropped
#                                    first if present); selects it
#     op  3 DROP    u16 n | name     the tree no longer exists; selects the
#                                    key-value space
#     op  4 PUT     u16 klen | u32 vlen | key | value
#     op  5 DELETE  u16 klen | key
#
# Applying starts with the key-value space selected, and a diff names its
# tree before its first record. Records carry the values of the newer
# snapshot, never an instruction relative to the older one, so applying the
# changes from A to B to B itself leaves B unchanged (a replica that applied
# a batch and died before it recorded so can apply it again).

cdef enum:
    CH_SELECT = 1
    CH_CREATE = 2
    CH_DROP = 3
    CH_PUT = 4
    CH_DELETE = 5

# ----------------------------------------------------------------------------
# The structural diff
# ----------------------------------------------------------------------------

ctypedef struct DSide:
    WTxn* w              # the write transaction whose dirty pages this side reads, or NULL
    uint32_t limit       # page count of the snapshot
    int depth
    int top              # the top frame; -1 when the side is exhausted
    uint32_t pg[MAX_DEPTH]
    const char* p[MAX_DEPTH]
    int idx[MAX_DEPTH]   # branch: index of the current child; leaf: of the current cell

ctypedef struct DTree:   # a named tree that differs between the snapshots
    size_t name_off      # in DiffC.names
    uint32_t namelen
    TreeDesc a
    TreeDesc b
    uint8_t in_a
    uint8_t in_b

ctypedef struct DiffC:
    EnvC* e
    State a              # the older snapshot (committed pages)
    State b              # the newer one
    WTxn* wb             # the write transaction B is (its dirty pages), or NULL
    int phase            # 0 catalog, 1 the key-value space, 2 named trees, 3 done
    DSide sa
    DSide sb
    char* names
    size_t names_len
    size_t names_cap
    DTree* trees
    size_t ntrees
    size_t cap_trees
    long cur             # the named tree being walked (phase 2)
    int selected         # its SELECT (or CREATE) is in the current chunk
    char* out
    size_t out_len
    size_t out_cap

cdef inline int frame_items(DSide* s, int l) noexcept nogil:
    if l == s.depth - 1:
        return nkeys(s.p[l])
    return nkeys(s.p[l]) + 1

cdef inline void side_norm(DSide* s) noexcept nogil:
    """Pop the frames whose items are all passed."""
    while s.top >= 0 and s.idx[s.top] >= frame_items(s, s.top):
        s.top -= 1
        if s.top >= 0:
            s.idx[s.top] += 1

cdef int side_init(EnvC* e, DSide* s, const TreeDesc* t, uint32_t limit, WTxn* w) noexcept nogil:
    cdef const char* p
    s.w = w
    s.limit = limit
    s.depth = t.depth
    s.top = -1
    if t.root == 0:
        return 0
    if t.depth < 1 or t.depth > MAX_DEPTH:
        return corrupt(e, t.root, "tree depth out of range")
    p = page_of(e, w, limit, t.root)
    if p == NULL:
        return -1
    if <uint8_t>p[PH_TYPE] != (P_LEAF if t.depth == 1 else P_BRANCH):
        return corrupt(e, t.root, "root page type does not match the tree depth")
    s.top = 0
    s.pg[0] = t.root
    s.p[0] = p
    s.idx[0] = 0
    side_norm(s)
    return 0

cdef inline int item_height(DSide* s) noexcept nogil:
    """Height of the current item: -1 exhausted, 0 a cell, h >= 1 a subtree."""
    if s.top < 0:
        return -1
    return s.depth - 1 - s.top

cdef int side_descend(EnvC* e, DSide* s) noexcept nogil:
    """Read the current child subtree's page and make it the top frame."""
    cdef uint32_t pg = child_at(s.p[s.top], s.idx[s.top])
    cdef int lvl = s.top + 1
    cdef const char* p = page_of(e, s.w, s.limit, pg)
    if p == NULL:
        return -1
    if <uint8_t>p[PH_TYPE] != (P_LEAF if lvl == s.depth - 1 else P_BRANCH):
        return corrupt(e, pg, "page type does not match its depth")
    s.top = lvl
    s.pg[lvl] = pg
    s.p[lvl] = p
    s.idx[lvl] = 0
    side_norm(s)
    return 0

cdef int side_chain(DSide* s, uint32_t* ids, int* levels, int* heights) noexcept nogil:
    """The pages whose whole subtree starts at the side's position, innermost
    first: the current child (levels -1) when the top frame is a branch, then
    each frame the position is the start of."""
    cdef int n = 0, l
    if s.top < 0:
        return 0
    if s.top < s.depth - 1:
        ids[0] = child_at(s.p[s.top], s.idx[s.top])
        levels[0] = -1
        heights[0] = s.depth - 1 - s.top
        n = 1
    l = s.top
    while l >= 0 and s.idx[l] == 0:
        ids[n] = s.pg[l]
        levels[n] = l
        heights[n] = s.depth - l
        n += 1
        l -= 1
    return n

cdef inline void side_skip(DSide* s, int level) noexcept nogil:
    """Step past a subtree of side_chain: the current child (-1) or a frame."""
    if level < 0:
        s.idx[s.top] += 1
    else:
        s.top = level - 1
        if s.top >= 0:
            s.idx[s.top] += 1
    side_norm(s)

cdef inline void side_next(DSide* s) noexcept nogil:
    s.idx[s.top] += 1
    side_norm(s)

cdef inline const char* side_cell(DSide* s) noexcept nogil:
    return cell_at(s.p[s.top], s.idx[s.top])

cdef inline bint same_value(const char* ca, const char* cb) noexcept nogil:
    cdef uint32_t ka = tdb_ld16(ca), kb = tdb_ld16(cb)
    cdef uint32_t va = tdb_ld32(ca + 2), vb = tdb_ld32(cb + 2)
    if va != vb:
        return False
    if va & TDB_OVF:
        return tdb_ld32(ca + 6 + ka) == tdb_ld32(cb + 6 + kb)  # one extent: one value
    return memcmp(ca + 6 + ka, cb + 6 + kb, va) == 0

cdef int out_reserve(DiffC* d, size_t n) noexcept nogil:
    cdef size_t cap
    cdef char* nb
    if d.out_len + n <= d.out_cap:
        return 0
    cap = d.out_cap * 2 if d.out_cap else 4096
    while cap < d.out_len + n:
        cap *= 2
    nb = <char*>realloc(d.out, cap)
    if nb == NULL:
        return nomem(d.e)
    d.out = nb
    d.out_cap = cap
    return 0

cdef int emit_name(DiffC* d, uint8_t op, const char* name, uint32_t n) noexcept nogil:
    if out_reserve(d, 3 + n) < 0:
        return -1
    d.out[d.out_len] = <char>op
    tdb_st16(d.out + d.out_len + 1, <uint16_t>n)
    if n:
        memcpy(d.out + d.out_len + 3, name, n)
    d.out_len += 3 + n
    return 0

cdef int emit_select(DiffC* d) noexcept nogil:
    cdef DTree* t
    if d.selected:
        return 0
    d.selected = 1
    if d.phase != 2:
        return emit_name(d, CH_SELECT, NULL, 0)
    t = &d.trees[d.cur]
    return emit_name(d, CH_SELECT, d.names + t.name_off, t.namelen)

cdef int emit_put(DiffC* d, const char* cell) noexcept nogil:
    cdef const char* vp
    cdef size_t vlen
    cdef uint32_t klen = tdb_ld16(cell)
    if emit_select(d) < 0 or leaf_value(d.e, d.sb.w, d.sb.limit, cell, &vp, &vlen) < 0:
        return -1
    if out_reserve(d, 7 + klen + vlen) < 0:
        return -1
    d.out[d.out_len] = <char>CH_PUT
    tdb_st16(d.out + d.out_len + 1, <uint16_t>klen)
    tdb_st32(d.out + d.out_len + 3, <uint32_t>vlen)
    memcpy(d.out + d.out_len + 7, cell + 6, klen)
    memcpy(d.out + d.out_len + 7 + klen, vp, vlen)
    d.out_len += 7 + klen + vlen
    return 0

cdef int emit_delete(DiffC* d, const char* cell) noexcept nogil:
    cdef uint32_t klen = tdb_ld16(cell)
    if emit_select(d) < 0 or out_reserve(d, 3 + klen) < 0:
        return -1
    d.out[d.out_len] = <char>CH_DELETE
    tdb_st16(d.out + d.out_len + 1, <uint16_t>klen)
    memcpy(d.out + d.out_len + 3, cell + 6, klen)
    d.out_len += 3 + klen
    return 0

cdef int catalog_note(DiffC* d, const char* ca, const char* cb) noexcept nogil:
    """A named tree that differs: created (ca NULL), dropped (cb NULL) or changed."""
    cdef const char* c = cb if cb != NULL else ca
    cdef uint32_t klen = tdb_ld16(c)
    cdef DTree* t
    cdef size_t cap
    cdef void* nb
    if (ca != NULL and tdb_ld32(ca + 2) != 16) or (cb != NULL and tdb_ld32(cb + 2) != 16):
        return corrupt(d.e, 0, "catalog entry is not a tree descriptor")
    if d.ntrees == d.cap_trees:
        cap = d.cap_trees * 2 if d.cap_trees else 16
        nb = realloc(d.trees, cap * sizeof(DTree))
        if nb == NULL:
            return nomem(d.e)
        d.trees = <DTree*>nb
        d.cap_trees = cap
    if d.names_len + klen > d.names_cap:
        cap = d.names_cap * 2 if d.names_cap else 4096
        while cap < d.names_len + klen:
            cap *= 2
        nb = realloc(d.names, cap)
        if nb == NULL:
            return nomem(d.e)
        d.names = <char*>nb
        d.names_cap = cap
    t = &d.trees[d.ntrees]
    memset(t, 0, sizeof(DTree))
    t.name_off = d.names_len
    t.namelen = klen
    memcpy(d.names + d.names_len, c + 6, klen)
    d.names_len += klen
    if ca != NULL:
        desc_load(ca + 6 + klen, &t.a)
        t.in_a = 1
        if not desc_sane(&t.a, d.a.page_count):
            return corrupt(d.e, t.a.root, "catalog entry describes an impossible tree")
    if cb != NULL:
        desc_load(cb + 6 + klen, &t.b)
        t.in_b = 1
        if not desc_sane(&t.b, d.b.page_count) and not (d.sb.w != NULL and t.b.root & TDB_DIRTY):
            return corrupt(d.e, t.b.root, "catalog entry describes an impossible tree")
    if t.in_a and t.in_b and t.a.root == t.b.root:
        return 0  # one root page: one tree
    d.ntrees += 1
    return 0

cdef bint same_run(DSide* a, DSide* b) noexcept nogil:
    """Both tops at one height: step both past the run of children (or cells)
    they share, from their current items on. True if they moved."""
    cdef const char* pa = a.p[a.top]
    cdef const char* pb = b.p[b.top]
    cdef int ia = a.idx[a.top], ib = b.idx[b.top]
    cdef int na = frame_items(a, a.top), nb = frame_items(b, b.top)
    cdef const char* ca
    cdef const char* cb
    cdef uint32_t sz
    if a.top < a.depth - 1:
        while ia < na and ib < nb and child_at(pa, ia) == child_at(pb, ib):
            ia += 1
            ib += 1
    else:
        while ia < na and ib < nb:
            ca = cell_at(pa, ia)
            cb = cell_at(pb, ib)
            sz = leaf_cell_size(ca)
            if sz != leaf_cell_size(cb) or memcmp(ca, cb, sz) != 0:
                break
            ia += 1
            ib += 1
    if ia == a.idx[a.top]:
        return False
    a.idx[a.top] = ia
    b.idx[b.top] = ib
    side_norm(a)
    side_norm(b)
    return True

cdef int walk(DiffC* d, bint catalog, size_t max_bytes) noexcept nogil:
    """Merge d.sa (older) and d.sb (newer) in key order, skipping the subtrees
    they share: 1 when both are exhausted, 0 when the output reached max_bytes
    (call again to go on), -1 on error. A data tree's differences become
    records; the catalog's are noted in d.trees."""
    cdef DSide* a = &d.sa
    cdef DSide* b = &d.sb
    cdef uint32_t ida[MAX_DEPTH + 1]
    cdef uint32_t idb[MAX_DEPTH + 1]
    cdef int la[MAX_DEPTH + 1]
    cdef int lb[MAX_DEPTH + 1]
    cdef int hia[MAX_DEPTH + 1]
    cdef int hib[MAX_DEPTH + 1]
    cdef int na, nb, i, j, ha, hb, c, rc
    cdef const char* ca
    cdef const char* cb
    cdef bint matched
    while True:
        if not catalog and d.out_len >= max_bytes:
            return 0
        if a.top < 0 and b.top < 0:
            return 1
        # the common shapes first: both tops at one height, with the same child
        # (a shared subtree) or the same cell (an unchanged key and value)
        if a.top >= 0 and b.top >= 0 and a.depth - a.top == b.depth - b.top:
            if same_run(a, b):
                continue
        # a subtree starting at both positions, with the same page: shared, skip it
        na = side_chain(a, ida, la, hia)
        nb = side_chain(b, idb, lb, hib)
        matched = False
        for i in range(na):
            for j in range(nb):
                if ida[i] == idb[j] and hia[i] == hib[j]:
                    side_skip(a, la[i])
                    side_skip(b, lb[j])
                    matched = True
                    break
            if matched:
                break
        if matched:
            continue
        ha = item_height(a)
        hb = item_height(b)
        if ha > 0 or hb > 0:
            # read down to cells, the taller side first (a shared page has one height)
            if ha >= hb and side_descend(d.e, a) < 0:
                return -1
            if hb >= ha and side_descend(d.e, b) < 0:
                return -1
            continue
        rc = 0
        if a.top < 0:
            cb = side_cell(b)
            rc = catalog_note(d, NULL, cb) if catalog else emit_put(d, cb)
            side_next(b)
        elif b.top < 0:
            ca = side_cell(a)
            rc = catalog_note(d, ca, NULL) if catalog else emit_delete(d, ca)
            side_next(a)
        else:
            ca = side_cell(a)
            cb = side_cell(b)
            c = tdb_keycmp(<const unsigned char*>(ca + 6), tdb_ld16(ca),
                           <const unsigned char*>(cb + 6), tdb_ld16(cb))
            if c < 0:
                rc = catalog_note(d, ca, NULL) if catalog else emit_delete(d, ca)
                side_next(a)
            elif c > 0:
                rc = catalog_note(d, NULL, cb) if catalog else emit_put(d, cb)
                side_next(b)
            else:
                if not same_value(ca, cb):
                    rc = catalog_note(d, ca, cb) if catalog else emit_put(d, cb)
                side_next(a)
                side_next(b)
        if rc < 0:
            return -1

cdef int start_sides(DiffC* d, const TreeDesc* ta, const TreeDesc* tb) noexcept nogil:
    cdef TreeDesc empty
    if ta.root == tb.root:
        memset(&empty, 0, sizeof(TreeDesc))  # one tree: nothing to compare
        ta = &empty
        tb = &empty
    if side_init(d.e, &d.sa, ta, d.a.page_count, NULL) < 0:
        return -1
    return side_init(d.e, &d.sb, tb, d.b.page_count, d.wb)

cdef int next_tree(DiffC* d) noexcept nogil:
    """Start walking the next named tree that differs (phase 2), emitting the
    DROPs of the trees passed; phase 3 when none is left."""
    cdef DTree* t
    cdef TreeDesc empty
    memset(&empty, 0, sizeof(TreeDesc))
    while True:
        d.cur += 1
        if d.cur >= <long>d.ntrees:
            d.phase = 3
            return 0
        t = &d.trees[d.cur]
        d.phase = 2
        d.selected = 0
        if not t.in_b:
            if emit_name(d, CH_DROP, d.names + t.name_off, t.namelen) < 0:
                return -1
            continue
        if not t.in_a:
            if emit_name(d, CH_CREATE, d.names + t.name_off, t.namelen) < 0:
                return -1
            d.selected = 1
            return start_sides(d, &empty, &t.b)
        return start_sides(d, &t.a, &t.b)

cdef int diff_step(DiffC* d, size_t max_bytes) noexcept nogil:
    """Fill d.out with the next records, up to about max_bytes: 1 when the
    diff is complete, 0 when there is more, -1 on error."""
    cdef int rc
    d.selected = 0  # every chunk names its tree before its first record
    while True:
        if d.phase == 0:
            if start_sides(d, &d.a.cat, &d.b.cat) < 0 or walk(d, True, 0) < 0:
                return -1
            d.phase = 1
            if start_sides(d, &d.a.kv, &d.b.kv) < 0:
                return -1
        elif d.phase == 1 or d.phase == 2:
            rc = walk(d, False, max_bytes)
            if rc <= 0:
                return rc
            if next_tree(d) < 0:
                return -1
        else:
            return 1


cdef void diff_init(DiffC* d, EnvC* e, const State* a, const State* b, WTxn* wb) noexcept nogil:
    memset(d, 0, sizeof(DiffC))
    d.e = e
    d.a = a[0]
    d.b = b[0]
    d.wb = wb
    d.cur = -1
    d.sa.top = -1
    d.sb.top = -1

cdef void diff_free(DiffC* d) noexcept nogil:
    free(d.out)
    free(d.names)
    free(d.trees)
    d.out = NULL
    d.names = NULL
    d.trees = NULL


# ----------------------------------------------------------------------------
# Applying change records
# ----------------------------------------------------------------------------

cdef object bad_records(Txn txn, size_t at, str what):
    txn._finish()
    raise CorruptionError(f"change records are malformed at byte {at}: {what} (a damaged "
                          "batch); nothing of it was applied")


def apply_changes(Txn txn, data):
    """Apply change records (a commit's, from the change log) to a write transaction; returns
    the number of records. Malformed records abort the transaction and raise
    CorruptionError."""
    cdef Py_buffer view
    cdef WTxn* w
    cdef EnvC* e
    cdef const char* p
    cdef size_t n, at = 0, count = 0
    cdef uint8_t op
    cdef uint32_t klen, vlen
    cdef int ti = 0, i, rc
    cdef bint log
    txn._writable()
    w = txn.w
    e = txn.env.e
    log = txn.kind == K_WRITE
    get_buf(data, &view, "data")
    try:
        p = <const char*>view.buf
        n = view.len
        while at < n:
            op = <uint8_t>p[at]
            if op == CH_SELECT or op == CH_CREATE or op == CH_DROP:
                if at + 3 > n:
                    bad_records(txn, at, "truncated")
                klen = tdb_ld16(p + at + 1)
                if at + 3 + klen > n or klen > e.max_key or (klen == 0 and op != CH_SELECT):
                    bad_records(txn, at, "bad tree name length")
                if klen == 0:
                    ti = 0
                elif op == CH_SELECT:
                    ti = tree_open(w, <const unsigned char*>(p + at + 3), klen, True, log)
                else:
                    i = tree_open(w, <const unsigned char*>(p + at + 3), klen, False, False)
                    if i == -1:
                        txn._fail()
                    if i >= 0 and not w.trees[i].dropped and tree_drop(w, i, log) < 0:
                        txn._fail()
                    ti = 0
                    if op == CH_CREATE:
                        ti = tree_open(w, <const unsigned char*>(p + at + 3), klen, True, log)
                if ti < 0:
                    txn._fail()
                at += 3 + klen
            elif op == CH_PUT:
                if at + 7 > n:
                    bad_records(txn, at, "truncated")
                klen = tdb_ld16(p + at + 1)
                vlen = tdb_ld32(p + at + 3)
                if klen == 0 or klen > e.max_key or vlen >= 0x7fffffff or at + 7 + klen + vlen > n:
                    bad_records(txn, at, "bad key or value length")
                if log and log_add(w, LOG_KEY, ti, <const unsigned char*>(p + at + 7), klen) < 0:
                    txn._fail()
                if tree_put(w, &w.trees[ti], <const unsigned char*>(p + at + 7), klen,
                            p + at + 7 + klen, vlen) < 0:
                    txn._fail()
                at += 7 + klen + vlen
            elif op == CH_DELETE:
                if at + 3 > n:
                    bad_records(txn, at, "truncated")
                klen = tdb_ld16(p + at + 1)
                if klen == 0 or klen > e.max_key or at + 3 + klen > n:
                    bad_records(txn, at, "bad key length")
                rc = tree_delete(w, &w.trees[ti], <const unsigned char*>(p + at + 3), klen)
                if rc < 0:
                    txn._fail()
                if rc == 1 and log and log_add(w, LOG_KEY, ti, <const unsigned char*>(p + at + 3), klen) < 0:
                    txn._fail()
                at += 3 + klen
            else:
                bad_records(txn, at, f"unknown record type {op}")
            count += 1
    finally:
        PyBuffer_Release(&view)
    return count
