# The shared reader table (in the lock file, mapped by every process; layout:
# "Lock file" in _format.pxi). A snapshot in use holds a slot with its pid and
# transaction id, so that no writer reuses a page the snapshot can see
# (invariant 1): snapshot_begin publishes the snapshot, reader_horizon gives a
# writer the oldest one in use. No system call on the hot path: a process
# keeps the slots it claimed (slots_owned) and reuses them (slots_free); a
# slot whose process died (kill(pid, 0) fails with ESRCH) is taken back.
# Slots change only by atomic loads, stores and compare-and-swap; the table is
# built by the first opener (invariant 8, _openlock.pxi).
#
# Replication pins (layout: "Replication pin" in _format.pxi) hold back page
# reuse like reader slots, and reader_horizon counts them; they outlive their
# holder by a grace period so that a replicator restarted after a crash finds
# the snapshots it had not shipped intact. A pin whose holder died is
# orphaned by the next writer that notices, and dropped PN_GRACE seconds
# later. Pins are claimed, created, orphaned and dropped under the write lock
# (invariant 7); their holder alone moves PN_TXNID, forward only, so the set
# of snapshots a pin protects only shrinks while it stands.

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

cdef inline char* pin_at(EnvC* e, int i) noexcept nogil:
    return e.lpins + <size_t>i * PIN_SIZE

cdef inline uint64_t now_ms() noexcept nogil:
    return <uint64_t>(tdb_monotonic() * 1000.0)

cdef uint64_t pins_horizon(EnvC* e, uint64_t h, bint check_pids) noexcept nogil:
    """h lowered to the oldest pinned snapshot. The caller holds the write lock:
    a pin whose holder died is orphaned here, and one orphaned for longer than
    its grace period is dropped."""
    cdef int i
    cdef char* pin
    cdef uint64_t t, since, now = 0
    cdef uint32_t pid
    for i in range(NPINS):
        pin = pin_at(e, i)
        t = tdb_aload64(<uint64_t*>(pin + PN_TXNID))
        if t == 0:
            continue
        pid = tdb_aload32(<uint32_t*>(pin + PN_PID))
        if pid != 0 and pid != e.pid and check_pids and kill(pid, 0) < 0 and errno == ESRCH:
            tdb_astore64(<uint64_t*>(pin + PN_ORPHAN), now_ms())
            tdb_astore32(<uint32_t*>(pin + PN_PID), 0)
            pid = 0
        if pid == 0:
            if now == 0:
                now = now_ms()
            since = tdb_aload64(<uint64_t*>(pin + PN_ORPHAN))
            if since == 0:
                tdb_astore64(<uint64_t*>(pin + PN_ORPHAN), now)
            elif now > since + <uint64_t>tdb_ld32(pin + PN_GRACE) * 1000:
                memset(pin, 0, PIN_SIZE)  # expired: the snapshots it kept may be reused
                continue
        if t < h:
            h = t
    return h

cdef uint64_t reader_horizon(EnvC* e, uint64_t latest) noexcept nogil:
    """The oldest transaction id any reader slot or replication pin still uses
    (latest when none). The caller holds the write lock."""
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
    return pins_horizon(e, h, check_pids)

cdef int pin_find(EnvC* e, const char* name) noexcept nogil:
    """The pin named name (16 bytes), or -1."""
    cdef int i
    for i in range(NPINS):
        if (tdb_aload64(<uint64_t*>(pin_at(e, i) + PN_TXNID)) != 0
                and memcmp(pin_at(e, i) + PN_NAME, name, 16) == 0):
            return i
    return -1

cdef bint pinned_here(EnvC* e, uint64_t txnid) noexcept nogil:
    """Does this process hold a pin or a reader slot at txnid or older (so that
    every snapshot from txnid on keeps its pages, invariant 1)?"""
    cdef int i
    cdef uint64_t t
    if e.nolock:
        return False
    for i in range(NPINS):
        t = tdb_aload64(<uint64_t*>(pin_at(e, i) + PN_TXNID))
        if t != 0 and t <= txnid and tdb_aload32(<uint32_t*>(pin_at(e, i) + PN_PID)) == e.pid:
            return True
    for i in range(e.nslots_owned):
        t = tdb_aload64(slot_txn(e, e.slots_owned[i]))
        if t != 0 and t <= txnid:
            return True
    return False
