# The change log (layout: "Change log" and "Change log record" in
# _format.pxi): while a replicator is attached, every commit writes its
# changes, as change records (_diff.pxi, diffing the snapshot it began from
# against itself: O(pages it rewrote)), into a ring in the shared lock file;
# the replicator (toondb.replication, through toondb.storage.changes) reads
# them back. The commit writes its record before its meta page and publishes
# it (moves CL_HEAD) after, under the write lock (invariant 7), so that the
# log holds exactly the committed transactions, in order (invariant 9).
# Writers never wait for the replicator: the ring wraps, and a reader that
# finds its position overwritten (CL_RESERVE more than a ring ahead of it)
# starts over from a snapshot. Nothing here is durable: the lock file is rebuilt when no handle
# is open, and the log with it (CL_ID 0: off).
#
# A replicator that dies leaves the log on for CL_GRACE seconds (a writer
# notices the dead pid, orphans the log, and switches it off when the grace
# has passed), so that one started again finds what it had not shipped.

cdef inline uint64_t* cl_u64(EnvC* e, int off) noexcept nogil:
    return <uint64_t*>(e.lcl + off)

cdef inline uint32_t* cl_u32(EnvC* e, int off) noexcept nogil:
    return <uint32_t*>(e.lcl + off)

cdef inline uint64_t cl_now_ms() noexcept nogil:
    return <uint64_t>(tdb_monotonic() * 1000.0)

cdef uint64_t cl_now_us() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_REALTIME, &ts)
    return <uint64_t>ts.tv_sec * 1000000 + <uint64_t>(ts.tv_nsec // 1000)

cdef bint cl_active(EnvC* e) noexcept nogil:
    """Is the change log on? A replicator found dead (at most 20 checks a
    second) orphans it; an orphan older than its grace switches it off. The
    caller holds the write lock."""
    cdef uint32_t pid
    cdef uint64_t since, now
    cdef double t
    if e.nolock or e.lcl == NULL or tdb_aload64(cl_u64(e, CL_ID)) == 0:
        return False
    t = tdb_monotonic()
    if t - e.cl_checked < 0.05:
        return True
    e.cl_checked = t
    now = cl_now_ms()
    pid = tdb_aload32(cl_u32(e, CL_PID))
    if pid != 0 and pid != e.pid and kill(pid, 0) < 0 and errno == ESRCH:
        tdb_astore64(cl_u64(e, CL_ORPHAN), now)
        tdb_astore32(cl_u32(e, CL_PID), 0)
        pid = 0
    if pid == 0:
        since = tdb_aload64(cl_u64(e, CL_ORPHAN))
        if since == 0:
            tdb_astore64(cl_u64(e, CL_ORPHAN), now)
        elif now > since + <uint64_t>tdb_ld32(e.lcl + CL_GRACE) * 1000:
            tdb_astore64(cl_u64(e, CL_ID), 0)  # nobody came back for it: off
            return False
    return True

cdef void cl_ring_copy(EnvC* e, uint64_t off, char* buf, size_t n, bint into_ring) noexcept nogil:
    """Copy n bytes between buf and the ring at offset off (wrapping)."""
    cdef char* ring = e.lcl + CL_HEADER
    cdef size_t pos = <size_t>(off % e.cl_bytes)
    cdef size_t first = n if n < e.cl_bytes - pos else <size_t>(e.cl_bytes - pos)
    if into_ring:
        memcpy(ring + pos, buf, first)
        if n > first:
            memcpy(ring, buf + first, n - first)
    else:
        memcpy(buf, ring + pos, first)
        if n > first:
            memcpy(buf + first, ring, n - first)

cdef int cl_capture(WTxn* w, uint64_t txnid) noexcept nogil:
    """Write the change record of the commit of w (to become txnid) into the
    ring after CL_HEAD, unpublished: cl_publish publishes it once the commit's
    meta page is written. The caller holds the write lock."""
    cdef EnvC* e = w.env
    cdef DiffC d
    cdef State b
    cdef uint64_t head
    cdef size_t n, nrec
    cdef uint32_t kind = CR_CHANGES
    cdef int rc
    e.cl_publish = 0
    if not cl_active(e):
        return 0
    b = w.snap
    b.kv = w.trees[0].desc
    b.cat = w.trees[1].desc
    diff_init(&d, e, &w.snap, &b, w)
    if out_reserve(&d, CR_SIZE) < 0:
        diff_free(&d)
        return -1
    d.out_len = CR_SIZE  # the record header, filled in below
    rc = diff_step(&d, <size_t>(e.cl_bytes // 2))
    if rc < 0:
        diff_free(&d)
        return -1
    if rc == 0:
        # more than half the ring: no room for it; the replicator takes a
        # snapshot instead of this record
        kind = CR_TOO_LARGE
        d.out_len = CR_SIZE
    nrec = d.out_len - CR_SIZE
    n = (d.out_len + 7) & ~(<size_t>7)
    if out_reserve(&d, n - d.out_len) < 0:
        diff_free(&d)
        return -1
    memset(d.out + d.out_len, 0, n - d.out_len)
    tdb_st32(d.out + CR_LEN, <uint32_t>n)
    tdb_st64(d.out + CR_TXNID, txnid)
    tdb_st64(d.out + CR_TIME, cl_now_us())
    tdb_st32(d.out + CR_KIND, kind)
    tdb_st32(d.out + CR_NREC, <uint32_t>nrec)
    tdb_st32(d.out + CR_CRC, tdb_crc32c(0, d.out + 8, n - 8))
    head = tdb_aload64(cl_u64(e, CL_HEAD))
    if head + n > tdb_aload64(cl_u64(e, CL_RESERVE)):
        # never lowered: a commit that failed may have written further
        tdb_astore64(cl_u64(e, CL_RESERVE), head + n)
    tdb_fence()
    cl_ring_copy(e, head, d.out, n, True)
    e.cl_publish = head + n
    diff_free(&d)
    return 0

cdef void cl_publish(EnvC* e) noexcept nogil:
    """Publish the record cl_capture wrote, now that the commit's meta page is
    written (invariant 9)."""
    if e.cl_publish == 0:
        return
    tdb_fence()
    tdb_astore64(cl_u64(e, CL_HEAD), e.cl_publish)
    e.cl_publish = 0

# ----------------------------------------------------------------------------
# The replicator's side (toondb.storage.changes is the typed face)
# ----------------------------------------------------------------------------

cdef int cl_usable(Env env) except -1:
    check_open(env)
    if env.e.nolock or env.e.lcl == NULL:
        raise DatabaseLockedError("this handle has no lock file and cannot read the change log")
    return 0

cdef dict cl_state(EnvC* e):
    return {
        "id": tdb_aload64(cl_u64(e, CL_ID)),
        "head": tdb_aload64(cl_u64(e, CL_HEAD)),
        "first": tdb_aload64(cl_u64(e, CL_FIRST)),
        "shipped": tdb_aload64(cl_u64(e, CL_SHIPPED)),
        "shipped_txn": tdb_aload64(cl_u64(e, CL_SHIPPED_TXN)),
        "lineage": PyBytes_FromStringAndSize(e.lcl + CL_LINEAGE, 16),
        "pid": tdb_aload32(cl_u32(e, CL_PID)),
        "grace": tdb_ld32(e.lcl + CL_GRACE),
        "ring_bytes": e.cl_bytes,
    }


def changelog_attach(Env env, unsigned int grace):
    """Become the change log's replicator (switching the log on if it is off):
    the log's state, with "resumed" True when it was already on (a replicator
    before this one left it). DatabaseLockedError when a live replicator holds
    it."""
    cdef EnvC* e
    cdef State st, dur
    cdef uint32_t pid
    cdef uint64_t new_id
    cdef bint resumed
    cl_usable(env)
    e = env.e
    if wlock(e, e.lock_timeout) < 0:
        raise_err(e)
    try:
        pid = tdb_aload32(cl_u32(e, CL_PID))
        if pid != 0 and (pid == e.pid or kill(pid, 0) == 0 or errno != ESRCH):
            raise DatabaseLockedError(
                f"another replicator (pid {pid}) is attached to this database; stop it first")
        resumed = tdb_aload64(cl_u64(e, CL_ID)) != 0
        if not resumed:
            # the ring's blocks now: a commit writing into a sparse page of a full
            # disk would die of SIGBUS; this fails with ENOSPC instead
            if hasattr(_os, "posix_fallocate"):
                try:
                    _os.posix_fallocate(e.lfd, <size_t>(e.lcl - e.lmap) + CL_HEADER,
                                        e.cl_bytes)
                except OSError as exc:
                    raise OSError(exc.errno, f"cannot make room for the change log in the "
                                  f"lock file ({e.cl_bytes >> 20} MiB): {exc.strerror}") from None
            if read_meta(e, &st, &dur) < 0:
                raise_err(e)
            new_id = int.from_bytes(_os.urandom(8), "little") | 1
            tdb_astore64(cl_u64(e, CL_FIRST), st.txnid + 1)
            tdb_astore64(cl_u64(e, CL_SHIPPED), tdb_aload64(cl_u64(e, CL_HEAD)))
            tdb_astore64(cl_u64(e, CL_SHIPPED_TXN), 0)
            memset(e.lcl + CL_LINEAGE, 0, 16)
            tdb_astore64(cl_u64(e, CL_ID), new_id)
        tdb_st32(e.lcl + CL_GRACE, grace)
        tdb_astore64(cl_u64(e, CL_ORPHAN), 0)
        tdb_astore32(cl_u32(e, CL_PID), e.pid)
        e.cl_checked = 0
        out = cl_state(e)
        out["resumed"] = resumed
        return out
    finally:
        wunlock(e)


def changelog_begin(Env env, lineage):
    """Begin a new lineage (the replicator starts its store over from a
    snapshot): record lineage (16 bytes) and mark everything logged so far as
    not needed. Returns {"head": where the records of later commits begin,
    "txn": the newest transaction, committed before them}."""
    cdef EnvC* e
    cdef State st, dur
    cdef bytes lin = as_bound(lineage, "lineage")
    cdef uint64_t head
    cl_usable(env)
    e = env.e
    if len(lin) != 16:
        raise ValueError("a lineage is 16 bytes")
    if wlock(e, e.lock_timeout) < 0:
        raise_err(e)
    try:
        if tdb_aload32(cl_u32(e, CL_PID)) != e.pid or tdb_aload64(cl_u64(e, CL_ID)) == 0:
            raise ToonDBError("this process is not attached to the change log")
        if read_meta(e, &st, &dur) < 0:
            raise_err(e)
        head = tdb_aload64(cl_u64(e, CL_HEAD))
        memcpy(e.lcl + CL_LINEAGE, <const char*>lin, 16)
        tdb_astore64(cl_u64(e, CL_SHIPPED), head)
        tdb_astore64(cl_u64(e, CL_SHIPPED_TXN), st.txnid)
        return {"head": head, "txn": st.txnid}
    finally:
        wunlock(e)


cdef int cl_fetch(EnvC* e, uint64_t log_id, uint64_t offset, uint64_t head,
                  char** scratch, size_t* cap) noexcept nogil:
    """Copy the published record at offset into *scratch (grown as needed): 0,
    1 when the ring has overwritten it, 2 when the log is no longer log_id, -1
    when it is damaged (the error in e)."""
    cdef char hdr[CR_SIZE]
    cdef uint32_t n, nrec
    cdef bint whole
    cdef char* grown
    if head - offset > e.cl_bytes:
        return 1
    cl_ring_copy(e, offset, hdr, CR_SIZE, False)
    n = tdb_ld32(hdr + CR_LEN)
    nrec = tdb_ld32(hdr + CR_NREC)
    whole = CR_SIZE <= n and n <= head - offset and n % 8 == 0 and CR_SIZE + nrec <= n
    if whole:
        if n > cap[0]:
            grown = <char*>realloc(scratch[0], n)
            if grown == NULL:
                return nomem(e)
            scratch[0] = grown
            cap[0] = n
        cl_ring_copy(e, offset, scratch[0], n, False)
    tdb_fence()
    if (tdb_aload64(cl_u64(e, CL_RESERVE)) > offset + e.cl_bytes
            or tdb_aload64(cl_u64(e, CL_HEAD)) > offset + e.cl_bytes):
        return 1  # a writer overwrote it while it was read
    if tdb_aload64(cl_u64(e, CL_ID)) != log_id:
        return 2
    if not whole or tdb_crc32c(0, scratch[0] + 8, n - 8) != tdb_ld32(scratch[0] + CR_CRC):
        return set_err(e, E_CORRUPT, 0, "a record of the change log (in the lock file's "
                       "shared memory) is damaged")
    return 0

cdef object cl_status(EnvC* e, int rc):
    if rc < 0:
        raise_err(e)
    return ("ok", "lapped", "restarted")[rc]


def changelog_read(Env env, uint64_t log_id, uint64_t offset, size_t max_bytes=1 << 24):
    """The published records from offset on, about max_bytes of them:
    (status, [(txnid, commit time us, kind, change records)], next offset).
    status "ok"; "lapped" when the ring has overwritten offset (the records
    returned before it are whole); "restarted" when the log is no longer the
    one log_id names (it was switched off, or its lock file rebuilt)."""
    cdef EnvC* e
    cdef uint64_t head
    cdef char* scratch = NULL
    cdef size_t cap = 0, total = 0
    cdef uint32_t n, nrec
    cdef int rc = 0
    cl_usable(env)
    e = env.e
    out = []
    if tdb_aload64(cl_u64(e, CL_ID)) != log_id:
        return "restarted", out, offset
    head = tdb_aload64(cl_u64(e, CL_HEAD))
    tdb_fence()
    if offset > head:
        raise ValueError(f"change log offset {offset} is past its head {head}")
    try:
        while offset < head and total < max_bytes:
            rc = cl_fetch(e, log_id, offset, head, &scratch, &cap)
            if rc != 0:
                break
            n = tdb_ld32(scratch + CR_LEN)
            nrec = tdb_ld32(scratch + CR_NREC)
            out.append((tdb_ld64(scratch + CR_TXNID), tdb_ld64(scratch + CR_TIME),
                        tdb_ld32(scratch + CR_KIND),
                        PyBytes_FromStringAndSize(scratch + CR_SIZE, nrec)))
            offset += n
            total += n
    finally:
        free(scratch)
    return cl_status(e, rc), out, offset


def changelog_frames(Env env, uint64_t log_id, uint64_t offset, uint64_t after,
                     uint64_t upto=0, size_t max_bytes=1 << 24):
    """The transactions after `after` (and up to `upto`, 0: all published) from
    offset on, as batch frames (``u64 txnid | u64 commit time us | u32 flags = 1
    | u32 length | change records``, toondb.replication.objects), about max_bytes
    of them, in one call with the GIL released: (status, frames, count, last
    txnid, first commit time, last commit time, next offset). Records at or below
    `after` are stepped over. status as changelog_read's, or "gap" (the next
    record is not transaction after + 1) or "too large" (it holds no changes):
    next offset is then that record's."""
    cdef EnvC* e
    cdef uint64_t head, txn, first_time = 0, last_time = 0
    cdef char* scratch = NULL
    cdef char* out = NULL
    cdef char* grown
    cdef size_t cap = 0, out_len = 0, out_cap = 0, need
    cdef uint32_t n, nrec, kind
    cdef long count = 0
    cdef int rc = 0, stop = 0
    cl_usable(env)
    e = env.e
    if tdb_aload64(cl_u64(e, CL_ID)) != log_id:
        return "restarted", b"", 0, after, 0, 0, offset
    head = tdb_aload64(cl_u64(e, CL_HEAD))
    tdb_fence()
    if offset > head:
        raise ValueError(f"change log offset {offset} is past its head {head}")
    env._pin()
    try:
        with nogil:
            while offset < head and out_len < max_bytes:
                rc = cl_fetch(e, log_id, offset, head, &scratch, &cap)
                if rc != 0:
                    break
                n = tdb_ld32(scratch + CR_LEN)
                txn = tdb_ld64(scratch + CR_TXNID)
                kind = tdb_ld32(scratch + CR_KIND)
                nrec = tdb_ld32(scratch + CR_NREC)
                if txn <= after:
                    offset += n
                    continue
                if upto != 0 and txn > upto:
                    break
                if txn != after + 1:
                    stop = 1
                    break
                if kind != CR_CHANGES:
                    stop = 2
                    break
                need = out_len + 24 + nrec
                if need > out_cap:
                    out_cap = out_cap * 2 if out_cap * 2 > need else need + 65536
                    grown = <char*>realloc(out, out_cap)
                    if grown == NULL:
                        rc = nomem(e)
                        break
                    out = grown
                tdb_st64(out + out_len, txn)
                tdb_st64(out + out_len + 8, tdb_ld64(scratch + CR_TIME))
                tdb_st32(out + out_len + 16, 1)
                tdb_st32(out + out_len + 20, nrec)
                memcpy(out + out_len + 24, scratch + CR_SIZE, nrec)
                out_len = need
                if count == 0:
                    first_time = tdb_ld64(scratch + CR_TIME)
                last_time = tdb_ld64(scratch + CR_TIME)
                count += 1
                after = txn
                offset += n
        status = cl_status(e, rc)
        if stop:
            status = ("gap", "too large")[stop - 1]
        return (status, PyBytes_FromStringAndSize(out, out_len), count, after, first_time,
                last_time, offset)
    finally:
        env._unpin()
        free(scratch)
        free(out)


def changelog_shipped(Env env, uint64_t offset, uint64_t txnid):
    """The replicator's store now holds every record before offset, up to
    transaction txnid: where a replicator started again resumes."""
    cdef EnvC* e
    cl_usable(env)
    e = env.e
    if tdb_aload32(cl_u32(e, CL_PID)) != e.pid:
        raise ToonDBError("this process is not attached to the change log")
    tdb_astore64(cl_u64(e, CL_SHIPPED_TXN), txnid)
    tdb_astore64(cl_u64(e, CL_SHIPPED), offset)


def changelog_detach(Env env, bint stop=False):
    """Let go of the change log: orphan it (commits go on logging for its
    grace period, for a replicator started again) or, with stop, switch it
    off."""
    cdef EnvC* e
    check_open(env)
    e = env.e
    if e.nolock or e.lcl == NULL:
        return
    if wlock(e, e.lock_timeout) < 0:
        raise_err(e)
    try:
        if tdb_aload32(cl_u32(e, CL_PID)) != e.pid:
            return
        if stop:
            tdb_astore64(cl_u64(e, CL_ID), 0)
        tdb_astore64(cl_u64(e, CL_ORPHAN), cl_now_ms())
        tdb_astore32(cl_u32(e, CL_PID), 0)
    finally:
        wunlock(e)


def changelog_state(Env env):
    """The change log's header, as a dict (id 0: off)."""
    cl_usable(env)
    return cl_state(env.e)
