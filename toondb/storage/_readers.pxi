# The shared reader table (in the lock file, mapped by every process; layout:
# "Lock file" in _format.pxi). A snapshot in use holds a slot with its pid and
# transaction id, so that no writer reuses a page the snapshot can see
# (invariant 1): snapshot_begin publishes the snapshot, reader_horizon gives a
# writer the oldest one in use. No system call on the hot path: a process
# keeps the slots it claimed (slots_owned) and reuses them (slots_free); a
# slot whose process died (kill(pid, 0) fails with ESRCH) is taken back.
# Slots change only by atomic loads, stores and compare-and-swap; the table is
# built by the first opener (invariant 8, _openlock.pxi).

cdef inline uint32_t* slot_pid(EnvC* e, int i) noexcept nogil:
    return <uint32_t*>(e.lmap + LF_SLOTS + <size_t>i * SLOT_SIZE)

cdef inline uint64_t* slot_txn(EnvC* e, int i) noexcept nogil:
    return <uint64_t*>(e.lmap + LF_SLOTS + <size_t>i * SLOT_SIZE + 8)

cdef int slot_acquire(EnvC* e) noexcept nogil:
    """A reader slot owned by this process, or -1 (E_READERS)."""
    cdef int i, attempt, used
    cdef uint32_t pid
    cdef int* grown
    if e.nolock:
        return -2
    if e.nslots_free > 0:
        e.nslots_free -= 1
        return e.slots_free[e.nslots_free]
    if e.max_owned > 0 and e.nslots_owned >= e.max_owned:
        set_err(e, E_READERS, 0, "this handle holds every reader slot it may use (the rest are "
                "kept for other processes); close iterators and transactions you no longer use")
        return -1
    for attempt in range(2):
        for i in range(<int>e.nslots):
            if tdb_aload32(slot_pid(e, i)) == 0 and tdb_acas32(slot_pid(e, i), 0, e.pid):
                tdb_astore64(slot_txn(e, i), 0)
                while True:
                    used = tdb_aload32(<uint32_t*>(e.lmap + LF_USED))
                    if used > i or tdb_acas32(<uint32_t*>(e.lmap + LF_USED), used, i + 1):
                        break
                grown = <int*>realloc(e.slots_owned, (e.nslots_owned + 1) * sizeof(int))
                if grown == NULL:
                    tdb_astore32(slot_pid(e, i), 0)
                    nomem(e)
                    return -1
                e.slots_owned = grown
                e.slots_owned[e.nslots_owned] = i
                e.nslots_owned += 1
                grown = <int*>realloc(e.slots_free, e.nslots_owned * sizeof(int))
                if grown == NULL:
                    nomem(e)
                    return -1
                e.slots_free = grown
                return i
        # reclaim the slots of processes that died (SIGKILL leaves them behind)
        for i in range(<int>e.nslots):
            pid = tdb_aload32(slot_pid(e, i))
            if pid != 0 and pid != e.pid and kill(pid, 0) < 0 and errno == ESRCH:
                tdb_astore64(slot_txn(e, i), 0)
                tdb_acas32(slot_pid(e, i), pid, 0)
    set_err(e, E_READERS, 0, "every slot of the reader table is held by a live reader; "
            "close iterators and transactions you no longer use, or reopen with a larger max_readers")
    return -1

cdef inline void slot_release(EnvC* e, int i) noexcept nogil:
    if i < 0:
        return
    tdb_astore64(slot_txn(e, i), 0)
    e.slots_free[e.nslots_free] = i
    e.nslots_free += 1

cdef int snapshot_begin(EnvC* e, int slot, State* st, State* dur) noexcept nogil:
    """Read the newest snapshot and publish it in the slot, so no writer reuses
    its pages (the slot is stored, then the meta re-read: a writer that missed
    the slot has not yet committed past it, invariant 1)."""
    cdef State again, d2
    cdef int tries
    for tries in range(1000):
        if read_meta(e, st, dur) < 0:
            return -1
        if slot < 0:
            break
        tdb_astore64(slot_txn(e, slot), st.txnid)
        tdb_fence()
        if read_meta(e, &again, &d2) < 0:
            return -1
        if again.txnid == st.txnid:
            break
    return check_file_size(e, st.page_count)

cdef uint64_t reader_horizon(EnvC* e, uint64_t latest) noexcept nogil:
    """The oldest transaction id any reader slot still uses (latest when none)."""
    cdef uint64_t h = latest, t
    cdef uint32_t pid
    cdef int i, used
    cdef bint check_pids = False
    cdef double now
    if e.nolock:
        return h
    now = tdb_monotonic()
    if now - e.last_pid_check > 0.05:
        # at most 20 times a second: is a slot that pins pages held by a dead process?
        check_pids = True
        e.last_pid_check = now
    used = tdb_aload32(<uint32_t*>(e.lmap + LF_USED))
    if used > <int>e.nslots:
        used = e.nslots
    for i in range(used):
        pid = tdb_aload32(slot_pid(e, i))
        if pid == 0:
            continue
        t = tdb_aload64(slot_txn(e, i))
        if t == 0 or t >= h:
            continue
        if pid != e.pid and check_pids and kill(pid, 0) < 0 and errno == ESRCH:
            tdb_astore64(slot_txn(e, i), 0)
            tdb_acas32(slot_pid(e, i), pid, 0)
            continue
        h = t
    return h
