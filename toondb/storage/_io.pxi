# The I/O layer: io_write, io_writev and io_sync are the only writes and
# fsyncs of the page file (its creation included), so that a test
# (Env._set_io_hook) can record them and rebuild the file as a power cut would
# leave it. No invariant of its own: the order of writes and fsyncs
# (invariant 4) is the commit's (_commit.pxi).

cdef int io_write(EnvC* e, const char* buf, size_t n, uint64_t off) noexcept:
    cdef int r
    if e.io_hook != NULL:
        try:
            (<object>e.io_hook)("write", off, PyBytes_FromStringAndSize(buf, n))
        except BaseException as exc:
            return set_err(e, E_IO, 0, f"I/O hook failed: {exc!r}".encode()[:400])
    if n >= 65536:
        with nogil:
            r = tdb_pwrite_all(e.fd, buf, n, off)
    else:
        r = tdb_pwrite_all(e.fd, buf, n, off)
    if r < 0:
        return io_err(e, "writing the page file failed")
    e.unsynced_bytes += n
    return 0

cdef int io_sync(EnvC* e) noexcept:
    cdef int r
    if e.io_hook != NULL:
        try:
            (<object>e.io_hook)("sync", 0, None)
        except BaseException as exc:
            return set_err(e, E_IO, 0, f"I/O hook failed: {exc!r}".encode()[:400])
    with nogil:
        r = tdb_fdatasync(e.fd)
    if r < 0:
        return io_err(e, "fsync of the page file failed")
    e.unsynced_bytes = 0
    e.last_sync = tdb_monotonic()
    return 0

cdef int io_writev(EnvC* e, iovec* iov, int cnt, size_t total, uint64_t off) noexcept:
    """Write iov[0:cnt] (total bytes) at off: one pwritev, retried on short writes."""
    cdef ssize_t w
    cdef int i
    if e.io_hook != NULL or cnt == 1:
        for i in range(cnt):
            if io_write(e, <const char*>iov[i].iov_base, iov[i].iov_len, off) < 0:
                return -1
            off += iov[i].iov_len
        return 0
    with nogil:
        w = pwritev(e.fd, iov, cnt, <off_t>off)
    if w == <ssize_t>total:
        e.unsynced_bytes += total
        return 0
    if w < 0 and errno != EINTR:
        return io_err(e, "writing the page file failed")
    # a short or interrupted write: finish piece by piece
    if w < 0:
        w = 0
    for i in range(cnt):
        if <size_t>w >= iov[i].iov_len:
            w -= iov[i].iov_len
            off += iov[i].iov_len
            continue
        if io_write(e, <const char*>iov[i].iov_base + w, iov[i].iov_len - w, off + w) < 0:
            return -1
        off += iov[i].iov_len
        w = 0
    return 0
