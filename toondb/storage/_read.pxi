# The read path: point lookups (tree_find) and cursors (a stack of (page,
# index) from the root to a leaf). Both read a committed snapshot (limit = its
# page count, w = NULL) or a write transaction's view of it (w: its dirty pages
# by their temporary ids). Every page comes through page_of, so it was
# verified (invariant 6); a page whose type does not fit its depth is reported
# as damage (invariant 5: all leaves at one depth).

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
