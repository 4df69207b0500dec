# The write lock (invariant 7): a futex word in the mapped lock file
# (LF_WSTATE: 0 free, 1 held, 2 held and a waiter may sleep) with its owner's
# pid beside it (LF_WOWNER); layout: "Lock file" in _format.pxi, the atomic
# operations: tdb_wlock_* in _btree_support.h. Uncontended, taking it is one
# compare-and-swap and a store of the pid, releasing it a store and an
# exchange (and a futex wake only when the word said 2). A waiter sleeps on the futex with
# the GIL released, 2 ms at a time, and between sleeps looks at the owner: the
# lock of a dead owner (kill(pid, 0) fails with ESRCH) is taken over, and so is
# a lock held for over a second with no owner recorded (a writer that died
# between its two stores). Threads of one process take the same word, so there
# is no separate in-process mutex; nor is there an fcntl lock: the OS does not
# release this lock when its holder dies, the pid check does. e.active counts
# the locks this handle holds (close waits for them). Where the OS has no
# futex, a waiter polls every 2 ms.

cdef int wlock(EnvC* e, double timeout) noexcept:
    """Take the database's write lock, waiting up to timeout seconds."""
    cdef uint32_t* state
    cdef uint32_t* owner
    cdef double deadline, now, zero_owner_since = 0
    cdef uint32_t pid
    cdef int got = 0
    if e.nolock:
        return set_err(e, E_LOCKED, 0, "this handle has no lock file and cannot write")
    state = <uint32_t*>(e.lmap + LF_WSTATE)
    owner = <uint32_t*>(e.lmap + LF_WOWNER)
    if tdb_wlock_try(state, owner, e.pid):
        e.active += 1
        return 0
    deadline = tdb_monotonic() + timeout
    while True:
        with nogil:
            got = tdb_wlock_wait(state, owner, e.pid, 2000)
        if got:
            e.active += 1
            return 0
        now = tdb_monotonic()
        pid = tdb_aload32(owner)
        if pid != 0 and pid != e.pid and kill(pid, 0) < 0 and errno == ESRCH:
            # the writer died holding the lock (SIGKILL): its commit never
            # published a meta page, so taking over is safe
            if tdb_wlock_steal(state, owner, pid, e.pid):
                e.active += 1
                return 0
        elif pid == 0:
            # held, but no owner recorded: a writer between its two stores, or
            # one that died there; after a second it is the latter
            if zero_owner_since == 0:
                zero_owner_since = now
            elif now - zero_owner_since > 1.0 and tdb_wlock_steal(state, owner, 0, e.pid):
                e.active += 1
                return 0
        else:
            zero_owner_since = 0
        if now > deadline:
            if pid == e.pid:
                return set_err(e, E_LOCKED, 0, "another thread of this process held the write "
                               "lock for longer than lock_timeout (an immediate transaction "
                               "still open?)")
            return set_err(e, E_LOCKED, 0, "another process held the database's write lock for "
                           "longer than lock_timeout; retry, or open with a larger lock_timeout")

cdef void wunlock(EnvC* e) noexcept nogil:
    e.active -= 1
    tdb_wlock_release(<uint32_t*>(e.lmap + LF_WSTATE), <uint32_t*>(e.lmap + LF_WOWNER))
