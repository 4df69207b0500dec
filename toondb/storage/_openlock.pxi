# The open protocol (invariant 8): two one-byte fcntl locks on the lock file
# ("Byte-range locks" in _format.pxi), taken through tdb_lock_byte
# (_btree_support.h: open-file-description locks where the OS has them).
#
#   1. open_lock_begin: open (or create) the lock file and take the init byte
#      exclusively, waiting: openers go one at a time while they create the
#      page file, build the reader table and recover after a reboot.
#   2. reader_table_open: try the presence byte exclusively. Got it: no other
#      handle has the database open, so (re)build the lock file (a fresh
#      reader table and write lock word: whatever processes that died left
#      there is dropped), then hold the byte shared. Not got: another handle
#      is open; hold the byte shared and map the table it built.
#   3. open_lock_end: release the init byte once the open is done (or failed).
#      The presence byte stays held, shared, until the handle closes its lock
#      file descriptor (Env._teardown; the OS does it for a dying process).
#
# exclusive_access() takes both bytes exclusively without waiting for open
# handles: it succeeds only when no handle is open anywhere, and until it is
# released every opener waits at step 1, before it opens the page file. This
# is how compaction (toondb.storage.maintenance) replaces the page file.
#
# A read-only open of a database whose lock file cannot be opened (a
# read-only directory) goes on without one (e.nolock): no reader slot, no
# write lock, no part in this protocol.

cdef int open_lock_begin(EnvC* e, str lock_path, bint read_only, int file_mode) except -1:
    """Step 1: open (or create, with file_mode) the lock file into e.lfd and take
    its init byte, waiting with the GIL released. Sets e.nolock instead when a
    read-only open cannot open the lock file."""
    cdef int rc, err = 0
    try:
        e.lfd = _os.open(lock_path, _os.O_RDWR | _os.O_CREAT | getattr(_os, "O_CLOEXEC", 0),
                         file_mode)
    except OSError:
        if not read_only:
            raise
        e.nolock = 1
        return 0
    with nogil:
        rc = tdb_lock_byte(e.lfd, F_WRLCK, LOCK_INIT, 1)
        if rc < 0:
            err = errno
    if rc < 0:
        raise OSError(err, "cannot lock " + lock_path)
    return 0


cdef void open_lock_end(EnvC* e) noexcept:
    """Step 3: let the next opener in."""
    if not e.nolock:
        tdb_lock_byte(e.lfd, F_UNLCK, LOCK_INIT, 0)


cdef int reader_table_open(EnvC* e, str lock_path, int max_readers) except -1:
    """Step 2: hold the presence byte shared and map the lock file into e.lmap
    (reader slots, change log), building it first when no other handle is open
    (invariant 8)."""
    cdef void* m
    cdef size_t lsize
    cdef uint32_t nslots
    cdef uint64_t clbytes
    cdef int rc, err = 0
    if tdb_lock_byte(e.lfd, F_WRLCK, LOCK_PRESENCE, 0) == 0:
        # nobody else has the database open: (re)initialize the table,
        # dropping slots left behind by processes that died
        nslots = max_readers
        clbytes = CL_BYTES
        lsize = LF_SLOTS + <size_t>nslots * SLOT_SIZE + CL_HEADER + clbytes
        _os.ftruncate(e.lfd, 0)
        _os.ftruncate(e.lfd, lsize)
        header = (LOCK_MAGIC + LOCK_VERSION.to_bytes(4, "little") + nslots.to_bytes(4, "little")
                  + bytes(4) + clbytes.to_bytes(4, "little"))
        _os.pwrite(e.lfd, header, LF_MAGIC)
        tdb_lock_byte(e.lfd, F_RDLCK, LOCK_PRESENCE, 0)
    else:
        with nogil:
            rc = tdb_lock_byte(e.lfd, F_RDLCK, LOCK_PRESENCE, 1)
            if rc < 0:
                err = errno
        if rc < 0:
            raise OSError(err, "cannot lock " + lock_path)
        header = _os.pread(e.lfd, 24, LF_MAGIC)
        if len(header) < 24 or header[LF_MAGIC:LF_VERSION] != LOCK_MAGIC:
            raise CorruptionError(f"{lock_path} is not a toondb lock file; close every process "
                                  "using the database and delete it")
        version = int.from_bytes(header[LF_VERSION:LF_NSLOTS], "little")
        if version != LOCK_VERSION:
            # another toondb version has the database open: refuse before
            # touching anything (it would not log its commits for replication)
            raise DatabaseLockedError(
                f"the database is open in a process running another toondb version (its "
                f"lock file {lock_path} has version {version}, this toondb uses "
                f"{LOCK_VERSION}); every process using a database must run the same "
                "toondb version: stop the others, or open it from that version")
        nslots = int.from_bytes(header[LF_NSLOTS:LF_USED], "little")
        clbytes = int.from_bytes(header[LF_CLBYTES:LF_CLBYTES + 4], "little")
        lsize = LF_SLOTS + <size_t>nslots * SLOT_SIZE + CL_HEADER + clbytes
        if clbytes < 4096 or clbytes % 8 or _os.fstat(e.lfd).st_size < lsize:
            raise CorruptionError(f"{lock_path} is truncated; close every process using the "
                                  "database and delete it")
    m = mmap(NULL, lsize, PROT_READ | PROT_WRITE, MAP_SHARED, e.lfd, 0)
    if m == MAP_FAILED:
        raise OSError(errno, "cannot map " + lock_path)
    e.lmap = <char*>m
    e.lmap_len = lsize
    e.nslots = nslots
    e.lcl = e.lmap + LF_SLOTS + <size_t>nslots * SLOT_SIZE
    e.cl_bytes = clbytes
    return 0

cdef class ExclusiveAccess:
    """A database's lock file held for maintenance: its init and presence bytes
    exclusively. While held, no handle has the database open, in any process
    (this one included, on Linux: see "Byte-range locks" in _format.pxi), and
    every open waits, before it touches the page file. A context manager; release() (or leaving the ``with`` block) lets the
    waiting openers in. Make one with exclusive_access()."""

    cdef int fd
    cdef readonly str lock_path

    def __cinit__(self):
        self.fd = -1

    def __init__(self, str lock_path, double timeout=10.0, str name=None):
        cdef int fd, rc, err = 0
        cdef double deadline
        what = name if name is not None else lock_path
        self.lock_path = lock_path
        fd = _os.open(lock_path, _os.O_RDWR | getattr(_os, "O_CLOEXEC", 0))
        try:
            deadline = tdb_monotonic() + timeout
            while True:
                rc = tdb_lock_byte(fd, F_WRLCK, LOCK_INIT, 0)
                if rc == 0:
                    break
                err = errno
                if err != EAGAIN and err != EACCES:
                    raise OSError(err, "cannot lock " + lock_path)
                if tdb_monotonic() > deadline:
                    raise DatabaseLockedError(
                        f"another process kept opening {what} for longer than {timeout:g} "
                        "seconds; try again")
                with nogil:
                    usleep(10000)
            if tdb_lock_byte(fd, F_WRLCK, LOCK_PRESENCE, 0) < 0:
                err = errno
                if err != EAGAIN and err != EACCES:
                    raise OSError(err, "cannot lock " + lock_path)
                raise DatabaseLockedError(
                    f"{what} is open in another process; close it first "
                    "(toondb backup copies a database that is in use)")
        except BaseException:
            c_close(fd)
            raise
        self.fd = fd

    @property
    def held(self):
        """True until release()."""
        return self.fd >= 0

    def release(self):
        """Let openers in (closing the descriptor drops both locks). Idempotent."""
        if self.fd >= 0:
            c_close(self.fd)
            self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.release()

    def __dealloc__(self):
        if self.fd >= 0:
            c_close(self.fd)


def exclusive_access(str lock_path, double timeout=10.0, str name=None):
    """Hold the database whose lock file is lock_path for maintenance: take its
    init byte exclusively (retrying for up to timeout seconds while other
    handles open the database), then its presence byte (DatabaseLockedError,
    at once, when a handle has the database open). Returns an ExclusiveAccess
    (a context manager). name (the database's path as the user gave it) is
    used in error messages. The lock file must exist."""
    return ExclusiveAccess(lock_path, timeout, name)
