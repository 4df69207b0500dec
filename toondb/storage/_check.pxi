# check(): invariants 3, 5 and 6 over the whole file, for Env._check (the
# ``check()`` of a database, ``toondb check``). Reads one snapshot, published in a reader slot
# (invariant 1), walks every tree from the meta (each page verified as in
# _pages.pxi, invariant 6; keys within the bounds the parent assigns and all
# leaves at one depth, invariant 5), marks every page reachable and every page
# in the freelist, and reports a page seen twice or never (invariant 3). Every
# problem is collected; CorruptionError lists them all.

cdef dict _check_env(Env env):
    cdef EnvC* e = env.e
    cdef State st, dur
    cdef int slot = -1
    if not e.nolock:
        slot = slot_acquire(e)
        if slot < 0:
            raise_err(e)
    try:
        if snapshot_begin(e, slot, &st, &dur) < 0:
            raise_err(e)
        return _check_snapshot(e, &st)
    finally:
        if slot >= 0:
            slot_release(e, slot)


cdef dict _check_snapshot(EnvC* e, State* st):
    cdef uint32_t limit = st.page_count
    seen = bytearray(limit)
    problems = []
    named = []
    counts = {"pages": limit, "leaf_pages": 0, "branch_pages": 0, "overflow_pages": 0}

    def mark(uint32_t pg, uint32_t n, str what):
        for q in range(pg, pg + n):
            if q < 2 or q >= limit:
                problems.append(f"page {q}: {what} refers to a page outside the file")
                return False
            if seen[q]:
                problems.append(f"page {q}: reachable twice ({what})")
                return False
            seen[q] = 1
        return True

    def page(uint32_t pg):
        cdef uint32_t n = 0
        cdef const char* p = verify_page(e, limit, pg, &n)
        if p == NULL:
            problems.append(e.errmsg.decode("utf-8", "replace"))
            e.err = 0
            return None
        return <uintptr_t>p

    def walk(uint32_t pg, int depth_left, lo, hi, bint catalog, str label):
        cdef const char* p
        cdef const char* c
        cdef uint32_t i, n, v, klen, ov, np_
        cdef uintptr_t addr
        addr = page(pg) or 0
        if addr == 0:
            return 0
        p = <const char*>addr
        if not mark(pg, 1, label):
            return 0
        n = nkeys(p)
        keys = []
        for i in range(n):
            c = cell_at(p, i)
            klen = tdb_ld16(c) if p[PH_TYPE] == P_LEAF else tdb_ld16(c + 4)
            keys.append(PyBytes_FromStringAndSize(c + 6, klen))
        if keys and ((lo is not None and keys[0] < lo) or (hi is not None and keys[len(keys) - 1] >= hi)):
            problems.append(f"page {pg}: keys outside the range its parent assigns ({label})")
        if depth_left > 1:
            if p[PH_TYPE] != P_BRANCH:
                problems.append(f"page {pg}: expected a branch page at this depth ({label})")
                return 0
            counts["branch_pages"] += 1
            total = 0
            bounds = [lo] + keys + [hi]
            for i in range(n + 1):
                total += walk(child_at(p, i), depth_left - 1, bounds[i], bounds[i + 1], catalog, label)
            return total
        if p[PH_TYPE] != P_LEAF:
            problems.append(f"page {pg}: expected a leaf page at this depth (leaves at one depth) ({label})")
            return 0
        counts["leaf_pages"] += 1
        if n == 0 and lo is not None:
            problems.append(f"page {pg}: empty leaf below the root ({label})")
        for i in range(n):
            c = cell_at(p, i)
            klen = tdb_ld16(c)
            v = tdb_ld32(c + 2)
            if v & TDB_OVF:
                ov = tdb_ld32(c + 6 + klen)
                oaddr = page(ov)
                if oaddr:
                    np_ = tdb_ld32((<const char*><uintptr_t>oaddr) + PH_AUX)
                    if (<const char*><uintptr_t>oaddr)[PH_TYPE] != P_OVERFLOW:
                        problems.append(f"page {ov}: expected an overflow extent ({label})")
                    elif <uint64_t>np_ * e.psize < OV_DATA + <uint64_t>(v & ~TDB_OVF):
                        problems.append(f"page {ov}: overflow extent shorter than its value ({label})")
                    else:
                        mark(ov, np_, label + " overflow value")
                        counts["overflow_pages"] += np_
            elif catalog:
                if v != 16:
                    problems.append(f"page {pg}: catalog entry is not a tree descriptor")
                else:
                    named.append((keys[i], tdb_ld32(c + 6 + klen), tdb_ld16(c + 10 + klen),
                                  tdb_ld64(c + 14 + klen)))
        return n

    def walk_tree(uint32_t root, uint32_t depth, uint64_t entries, bint catalog, str label):
        if root == 0:
            if depth != 0 or entries != 0:
                problems.append(f"{label}: empty tree with depth {depth} and {entries} entries")
            return
        if depth == 0 or depth > MAX_DEPTH:
            problems.append(f"{label}: impossible depth {depth}")
            return
        got = walk(root, depth, None, None, catalog, label)
        if got != entries:
            problems.append(f"{label}: holds {got} entries but its descriptor says {entries}")

    walk_tree(st.kv.root, st.kv.depth, st.kv.entries, False, "key-value tree")
    walk_tree(st.cat.root, st.cat.depth, st.cat.entries, True, "catalog")
    for name, root, depth, entries in named:
        walk_tree(root, depth, entries, False, f"tree {name!r}")
    free_count = 0
    pending_count = 0
    if st.fl_pgno:
        if page(st.fl_pgno):
            mark(st.fl_pgno, st.fl_npages, "freelist extent")
            try:
                free_runs, pending = _read_freelist(e, st)
            except CorruptionError as exc:
                problems.append(str(exc))
                free_runs, pending = [], []
            for start, cnt in free_runs:
                mark(start, cnt, "freelist")
                free_count += cnt
            for txnid, runs in pending:
                if txnid > st.txnid:
                    problems.append(f"page {st.fl_pgno}: freelist group of future transaction {txnid}")
                for start, cnt in runs:
                    mark(start, cnt, "freelist (pending)")
                    pending_count += cnt
    if not problems:
        leaked = [q for q in range(2, limit) if not seen[q]]
        if leaked:
            shown = ", ".join(map(str, leaked[:10]))
            problems.append(f"{len(leaked)} page(s) neither reachable nor free (leaked): {shown}")
    if problems:
        err = CorruptionError("integrity check failed: " + "; ".join(problems[:20]) +
                              (f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""))
        err.problems = problems
        raise err
    counts.update({"txnid": st.txnid, "entries": st.kv.entries, "depth": st.kv.depth,
                   "trees": len(named), "free_pages": free_count, "pending_pages": pending_count})
    return counts
