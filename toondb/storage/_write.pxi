# The write path inside one write transaction: dirty page buffers (and their
# pool), the pages a transaction frees, copy-on-write (invariant 1), edits of
# one page, insert with page splits (tree_put, split_insert) and delete with
# merges (tree_delete, rebalance), both keeping invariant 5, and freeing a
# value's overflow extent or a whole tree. Nothing here touches the file:
# commit (_commit.pxi) gives dirty pages real ids and writes them.

# ----------------------------------------------------------------------------
# Write transactions: dirty pages live in malloc'd buffers under temporary ids
# (bit 31 set) until commit assigns them real page ids (invariant 1: a
# committed page is never modified; it is copied, and the copy is written
# elsewhere).
# ----------------------------------------------------------------------------

cdef enum:
    POOL_PAGES = 64     # spare one-page buffers a transaction keeps for reuse

ctypedef struct Path:
    uint32_t pg[MAX_DEPTH]
    uint32_t idx[MAX_DEPTH]

# ---- dirty pages and freed pages -------------------------------------------

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
    """The dirty copy of page pg (pg itself when already dirty); 0 on error.
    Invariant 1: the committed page is never written; the copy replaces it and
    the original is freed as of this transaction."""
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

# ---- edits of one page -----------------------------------------------------

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

# ---- insert: the path to a leaf, splits -------------------------------------

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

# ---- delete: merges, freeing a tree -----------------------------------------

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
