# The Python face of the engine, part 1: class Env (an open database: open,
# close, the key-value operations that are transactions of their own, begin,
# checkpoint, the introspection used by stats()), the checks of arguments from
# Python (bytes-like keys and values), and fork handling. Opening follows the
# open protocol (invariant 8, _openlock.pxi); every write takes the write
# lock (invariant 7, _writelock.pxi). Txn, Tree and Cursor are in _txn.pxi.

# ----------------------------------------------------------------------------
# Handles and fork
# ----------------------------------------------------------------------------

_open_envs = _weakref.WeakSet()

def _after_fork_in_child():
    for env in list(_open_envs):
        (<Env>env)._mark_forked()

_os.register_at_fork(after_in_child=_after_fork_in_child)

SYNC_MODES = {"off": SYNC_OFF, "normal": SYNC_NORMAL, "full": SYNC_FULL}
_SYNC_NAMES = {v: k for k, v in SYNC_MODES.items()}

# ----------------------------------------------------------------------------
# Arguments from Python
# ----------------------------------------------------------------------------

cdef int get_buf(object obj, Py_buffer* view, str what) except -1:
    try:
        PyObject_GetBuffer(obj, view, PyBUF_SIMPLE)
    except TypeError:
        if isinstance(obj, str):
            raise TypeError(f"{what} must be bytes (or another bytes-like object), not str; "
                            f"encode it first, for example {what}.encode()") from None
        raise TypeError(f"{what} must be bytes (or another bytes-like object), "
                        f"not {type(obj).__name__}") from None
    return 0

cdef int get_key(EnvC* e, object obj, Py_buffer* view, str what="key") except -1:
    get_buf(obj, view, what)
    if view.len == 0 or view.len > e.max_key:
        n = view.len
        PyBuffer_Release(view)
        if n == 0:
            raise ValueError(f"{what} must not be empty")
        raise ValueError(f"{what} is {n} bytes; the maximum with {e.psize}-byte pages is "
                         f"{e.max_key} bytes")
    return 0

cdef int get_value(object obj, Py_buffer* view) except -1:
    get_buf(obj, view, "value")
    if view.len >= 0x7fffffff:
        PyBuffer_Release(view)
        raise ValueError("values are limited to 2 GiB - 1 bytes")
    return 0

cdef object value_bytes(EnvC* e, WTxn* w, uint32_t limit, const char* cell):
    cdef const char* vp = NULL
    cdef size_t vlen = 0
    if leaf_value(e, w, limit, cell, &vp, &vlen) < 0:
        raise_err(e)
    return PyBytes_FromStringAndSize(vp, vlen)

cdef const char* find_cell(EnvC* e, WTxn* w, int ti, key) except? NULL:
    """The leaf cell of key in tree slot ti of a transaction, or NULL when absent."""
    cdef Py_buffer kb
    cdef const char* cell = NULL
    cdef int rc
    get_key(e, key, &kb)
    try:
        rc = tree_find(e, w, w.snap.page_count, &w.trees[ti].desc,
                       <const unsigned char*>kb.buf, kb.len, &cell)
    finally:
        PyBuffer_Release(&kb)
    if rc < 0:
        raise_err(e)
    return cell if rc == 1 else NULL

cdef inline int check_open(Env env) except -1:
    if env.e == NULL or env.e.status != 0:
        env._raise_status()
    return 0

cdef bytes as_bound(object b, str what):
    """A scan bound (None, or any bytes-like object) as bytes."""
    cdef Py_buffer view
    if b is None:
        return None
    if PyBytes_CheckExact(b):
        return <bytes>b
    get_buf(b, &view, what)
    try:
        return PyBytes_FromStringAndSize(<const char*>view.buf, view.len)
    finally:
        PyBuffer_Release(&view)


_CRC_IMPLS = {"auto": 0, "table": 1, "crc32": 2, "clmul": 3}


def _crc32c(data, unsigned int crc=0, impl="auto"):
    """CRC-32C of a bytes-like object (the page checksum), for tests; impl names
    one implementation ("table", "crc32", "clmul"): ValueError if this CPU lacks it."""
    cdef Py_buffer view
    cdef uint32_t out = 0
    cdef int which = _CRC_IMPLS[impl]
    cdef int rc
    get_buf(data, &view, "data")
    try:
        rc = tdb_crc32c_impl(which, crc, view.buf, view.len, &out)
    finally:
        PyBuffer_Release(&view)
    if rc < 0:
        raise ValueError(f"this CPU has no {impl!r} CRC-32C path")
    return out


def as_bytes(obj, str what="value"):
    """obj (any bytes-like object) as bytes; TypeError naming `what` otherwise."""
    return as_bound(obj, what)


# ----------------------------------------------------------------------------
# class Env
# ----------------------------------------------------------------------------

cdef class Env:
    """An open page file. Use ``toondb.Database``; this is its engine."""

    def __cinit__(self, *args, **kwargs):
        self.e = NULL
        self.auto = NULL
        self.spare = NULL
        self._hook = None
        self._txn_class = Txn
        self.live_head = NULL

    def __dealloc__(self):
        if self.e != NULL:
            self._teardown(False)
            free(self.e.vbits)
            free(self.e.fl_free)
            free(self.e.fl_fenc)
            fl_clear(self.e)
            free(self.e.fl_pend)
            free(self.e.slots_free)
            free(self.e.slots_owned)
            free(self.e)
            self.e = NULL
        wtxn_free(self.auto)
        self.auto = NULL
        wtxn_free(self.spare)
        self.spare = NULL

    def _raise_status(self):
        if self.e != NULL and self.e.status == 2:
            raise ForkedHandleError(
                "this database handle was opened before os.fork() and cannot be used in the "
                "child process; open the database again in the child: Database.open(path)")
        raise ClosedError("the database is closed; open it again with Database.open(path)")

    cdef void _mark_forked(self):
        if self.e != NULL and self.e.status == 0:
            self.e.status = 2

    def _open(self, str data_path, str lock_path, bint create, bint read_only, int page_size,
              uint64_t map_size, str sync_mode, uint64_t sync_bytes, double sync_interval,
              double lock_timeout, int max_readers, bytes boot_id, int file_mode=0o644):
        cdef EnvC* e = <EnvC*>calloc(1, sizeof(EnvC))
        if e == NULL:
            raise MemoryError()
        self.e = e
        e.fd = -1
        e.lfd = -1
        e.get_slot = -1
        e.status = 1
        e.pid = getpid()
        e.read_only = read_only
        e.sync_mode = SYNC_MODES[sync_mode]
        e.sync_bytes = sync_bytes
        e.sync_interval = sync_interval
        e.lock_timeout = lock_timeout
        e.last_sync = tdb_monotonic()
        memcpy(e.boot_id, <const char*>boot_id, 16)
        try:
            self._open_files(data_path, lock_path, create, read_only, page_size, map_size,
                             max_readers, file_mode)
        except BaseException:
            self._teardown(False)
            raise
        self.auto = wtxn_new(e)
        if self.auto == NULL:
            self._teardown(False)
            raise MemoryError()
        _open_envs.add(self)

    cdef _open_files(self, str data_path, str lock_path, bint create, bint read_only,
                     int page_size, uint64_t map_size, int max_readers, int file_mode):
        cdef EnvC* e = self.e
        cdef State cur, dur
        cdef void* m
        cdef size_t lsize
        cdef uint64_t maxtxn = 0
        cdef bint first = False
        # the lock file first: its init byte serializes creation and recovery
        # (invariant 8; the open protocol is in _openlock.pxi)
        open_lock_begin(e, lock_path, read_only, file_mode)
        try:
            flags = (_os.O_RDONLY if read_only else _os.O_RDWR) | getattr(_os, "O_CLOEXEC", 0)
            if create and not read_only and not _os.path.exists(data_path):
                # a new file is written whole under another name and renamed into
                # place, so an empty or short page file is always damage
                e.psize = page_size if page_size else 4096
                self._configure_page_size()
                self._create_file(data_path, file_mode)
            e.fd = _os.open(data_path, flags, 0o644)
            size = _os.fstat(e.fd).st_size
            if size < 512:
                raise CorruptionError(f"{data_path} is {size} bytes long: too short for a toondb "
                                      "database (truncated, or not a toondb file)")
            else:
                e.psize = self._detect_page_size(data_path)
                if page_size and <uint32_t>page_size != e.psize:
                    raise ValueError(f"config page_size={page_size} does not match the existing "
                                     f"database, which uses {e.psize}-byte pages; omit page_size")
                self._configure_page_size()
                if size < 2 * e.psize:
                    raise CorruptionError(f"{data_path} is {size} bytes long: shorter than its two "
                                          "meta pages (truncated)")
            lsize = <size_t>max(map_size, size)
            lsize = (lsize + e.psize - 1) // e.psize * e.psize
            m = mmap(NULL, lsize, PROT_READ, MAP_SHARED, e.fd, 0)
            if m == MAP_FAILED:
                raise OSError(errno, f"cannot map {data_path} ({lsize} bytes); "
                              "try a smaller map_size")
            e.map = <char*>m
            e.map_len = lsize
            e.map_pages = lsize // e.psize
            e.file_pages = size // e.psize
            if not e.nolock:
                reader_table_open(e, lock_path, max_readers)
            if read_meta(e, &cur, &dur) < 0:
                raise_err(e)
            if check_file_size(e, cur.page_count) < 0:
                raise_err(e)
            if not read_only and not e.nolock and self._needs_recovery(&maxtxn):
                self._recover(maxtxn)
            e.last_synced_txnid = cur.txnid
            e.status = 0
        finally:
            open_lock_end(e)

    cdef _configure_page_size(self):
        cdef EnvC* e = self.e
        e.max_key = e.psize // 4 - 32
        e.max_cell = (e.psize - PH_SIZE) // 4 - 2

    cdef _create_file(self, str data_path, int file_mode):
        cdef EnvC* e = self.e
        cdef State st
        cdef int rc
        memset(&st, 0, sizeof(State))
        st.txnid = 1
        st.page_count = 2
        tmp = data_path + ".creating"
        # file_mode as open(2) takes it: the umask still clears bits
        e.fd = _os.open(tmp, _os.O_RDWR | _os.O_CREAT | _os.O_TRUNC | getattr(_os, "O_CLOEXEC", 0),
                        file_mode)
        try:
            zero = b"\0" * (2 * e.psize)
            rc = io_write(e, zero, len(zero), 0)
            if rc == 0:
                rc = write_meta(e, 0, &st, &st)
            if rc == 0:
                rc = write_meta(e, 1, &st, &st)
            if rc == 0:
                rc = io_sync(e)
            if rc < 0:
                raise_err(e)
        finally:
            c_close(e.fd)
            e.fd = -1
        _os.rename(tmp, data_path)
        dfd = _os.open(_os.path.dirname(_os.path.abspath(data_path)), _os.O_RDONLY)
        try:
            _os.fsync(dfd)
        finally:
            _os.close(dfd)

    cdef uint32_t _detect_page_size(self, str path) except 0:
        cdef uint32_t cand
        cdef bytes head
        for cand in (0, 512, 1024, 2048, 4096, 8192, 16384, 32768):
            head = _os.pread(self.e.fd, 256, cand)
            if len(head) < 256 or head[8:16] != MAGIC:
                continue
            ps = int.from_bytes(head[20:24], "little")
            if (cand == 0 or ps == cand) and ps in (512, 1024, 2048, 4096, 8192, 16384, 32768):
                if tdb_crc32c(0, <const char*>head + 4, 252) == int.from_bytes(head[0:4], "little"):
                    return ps
        raise CorruptionError(f"{path} is not a toondb database: neither meta page has a valid "
                              "toondb header (wrong file, or both meta pages are damaged)")

    cdef bint _needs_recovery(self, uint64_t* maxtxn):
        """After a reboot, is the newest meta one that was never synced?"""
        cdef EnvC* e = self.e
        cdef const char* m
        cdef State cur, dur
        cdef int s
        cdef bint need = False
        maxtxn[0] = 0
        for s in range(2):
            m = e.map + <size_t>s * e.psize
            if not meta_valid(e, m):
                continue
            state_load(m + M_STATE, &cur)
            state_load(m + M_DURABLE, &dur)
            if cur.txnid > maxtxn[0]:
                maxtxn[0] = cur.txnid
                need = (memcmp(m + M_BOOT, e.boot_id, 16) != 0 and dur.txnid != 0
                        and dur.txnid != cur.txnid)
        return need

    cdef _recover(self, uint64_t maxtxn):
        """Make the durable state the newest, in both meta pages, under a fresh
        transaction id (so ids keep increasing)."""
        cdef EnvC* e = self.e
        cdef State cur, dur
        if wlock(e, e.lock_timeout) < 0:
            raise_err(e)
        try:
            if read_meta(e, &cur, &dur) < 0:
                raise_err(e)
            cur.txnid = maxtxn + 1
            if sync_point(e, &cur) < 0:
                raise_err(e)
        finally:
            wunlock(e)

    cdef _teardown(self, bint sync):
        """Unmap and close. A forked child only drops its copies: the locks and
        reader slots belong to the parent."""
        cdef EnvC* e = self.e
        cdef int i
        if e == NULL:
            return
        if e.status == 0:
            for i in range(e.nslots_owned):
                tdb_astore64(slot_txn(e, e.slots_owned[i]), 0)
                tdb_astore32(slot_pid(e, e.slots_owned[i]), 0)
        e.nslots_owned = 0
        e.nslots_free = 0
        e.get_slot = -1
        if e.map != NULL:
            munmap(e.map, e.map_len)
            e.map = NULL
        if e.lmap != NULL:
            munmap(e.lmap, e.lmap_len)
            e.lmap = NULL
        if e.fd >= 0:
            c_close(e.fd)
            e.fd = -1
        if e.lfd >= 0:
            c_close(e.lfd)
            e.lfd = -1
        if e.status != 2:
            e.status = 1

    def close(self):
        """Close the database: abort its open transactions, make committed data
        durable per sync_mode, release locks and memory. Idempotent."""
        cdef EnvC* e = self.e
        if e == NULL or e.status == 1:
            return
        _open_envs.discard(self)
        if e.status == 2:
            self._teardown(False)
            return
        while self.live_head != NULL:
            txn = <object>self.live_head  # a strong reference while it finishes (and unlinks)
            (<Txn>txn)._finish()
        if e.sync_mode == SYNC_NORMAL and not e.read_only and not e.nolock:
            self._close_sync()
        # wait for commits and searches running in other threads with the GIL released
        e.closing = 1
        while e.active > 0 or e.pins > 0:
            with nogil:
                usleep(200)
        self._teardown(True)

    cdef _close_sync(self):
        """The sync point of a closing ``normal`` handle (invariant 10): none when it
        wrote nothing since its last sync point and no other handle handed one on;
        otherwise made if the write lock is free now, else handed to the next
        holder of the write lock (LF_SYNCREQ). Never waits for another writer."""
        cdef EnvC* e = self.e
        cdef bint owed = e.unsynced_bytes > 0
        if not owed and not sync_requested(e):
            return
        if wlock(e, 0) == 0:
            try:
                self._sync_point_locked()
            finally:
                wunlock(e)
        elif owed:
            sync_request_set(e)

    cdef _sync_point_locked(self):
        cdef EnvC* e = self.e
        cdef State cur, dur
        if read_meta(e, &cur, &dur) < 0:
            raise_err(e)
        if dur.txnid == cur.txnid and e.unsynced_bytes == 0:
            sync_request_clear(e)  # the newest commit is durable already (invariant 10)
            return
        if sync_point(e, &cur) < 0:
            raise_err(e)

    @property
    def closed(self):
        return self.e == NULL or self.e.status != 0

    @property
    def page_size(self):
        check_open(self)
        return self.e.psize

    @property
    def max_key_size(self):
        check_open(self)
        return self.e.max_key

    @property
    def read_only(self):
        return self.e != NULL and bool(self.e.read_only)

    def _pin(self):
        """Keep the mapping alive across work done with the GIL released on
        memory inside it (a vector search); close() waits for _unpin(), and
        once it waits, no new pin is granted."""
        check_open(self)
        if self.e.closing:
            raise ClosedError("the database is being closed")
        self.e.pins += 1

    def _commit_stamp(self):
        """The newest committed transaction id (any process's): cheap, for
        caches that must notice commits."""
        cdef State st, dur
        check_open(self)
        if read_meta(self.e, &st, &dur) < 0:
            raise_err(self.e)
        return st.txnid

    def _unpin(self):
        if self.e != NULL and self.e.pins > 0:
            self.e.pins -= 1

    def _set_io_hook(self, hook):
        """Testing aid: call hook("write", offset, data) / hook("sync", 0, None)
        for every write and fsync of the page file (None to stop)."""
        check_open(self)
        self._hook = hook
        self.e.io_hook = <void*>hook if hook is not None else NULL

    @property
    def _reader_slots(self):
        """Slots in the shared reader table (max_readers of the handle that built it)."""
        check_open(self)
        return self.e.nslots

    def _limit_readers(self, int n):
        """Let this handle own at most n reader slots (0: no limit), so that other
        processes keep the rest; past it a new snapshot raises ReadersFullError.
        toondb-server uses it to keep a reserve for embedded readers."""
        check_open(self)
        if n < 0:
            raise ValueError("the reader slot limit must be >= 0")
        self.e.max_owned = n

    cdef int _get_slot(self) except -2:
        cdef EnvC* e = self.e
        if e.nolock:
            return -1
        if e.get_slot < 0:
            e.get_slot = slot_acquire(e)
            if e.get_slot < 0:
                e.get_slot = -1
                raise_err(e)
        return e.get_slot

    # ---- key-value operations, each its own transaction ----

    def get(self, key):
        """The value stored under key, or None."""
        cdef EnvC* e = self.e
        cdef Py_buffer kb
        cdef State st, dur
        cdef const char* cell
        cdef int rc, slot
        check_open(self)
        get_key(e, key, &kb)
        try:
            slot = self._get_slot()
            try:
                if snapshot_begin(e, slot, &st, &dur) < 0:
                    raise_err(e)
                rc = tree_find(e, NULL, st.page_count, &st.kv, <const unsigned char*>kb.buf, kb.len, &cell)
                if rc < 0:
                    raise_err(e)
                if rc == 0:
                    return None
                return value_bytes(e, NULL, st.page_count, cell)
            finally:
                if slot >= 0:
                    tdb_astore64(slot_txn(e, slot), 0)
        finally:
            PyBuffer_Release(&kb)

    cdef int _autocommit(self, int op, Py_buffer* kb, Py_buffer* vb) except -1:
        """put (op 0) or delete (op 1) as a transaction of its own: the write lock
        is held throughout, so it never conflicts. Returns 1 if a key was deleted."""
        cdef EnvC* e = self.e
        cdef State st, dur
        cdef uint64_t txnid
        cdef int rc = 0
        if e.read_only:
            raise ReadOnlyError("this database was opened read-only; open it without "
                                "read_only=True to write")
        if wlock(e, e.lock_timeout) < 0:
            raise_err(e)
        try:
            if read_meta(e, &st, &dur) < 0 or check_file_size(e, st.page_count) < 0:
                raise_err(e)
            wtxn_start(self.auto, &st, 1)
            if op == 0:
                rc = tree_put(self.auto, &self.auto.trees[0], <const unsigned char*>kb.buf, kb.len,
                              <const char*>vb.buf, vb.len)
            else:
                rc = tree_delete(self.auto, &self.auto.trees[0], <const unsigned char*>kb.buf, kb.len)
            if rc < 0 or commit_locked(self.auto, &dur, &txnid) < 0:
                raise_err(e)
        finally:
            wtxn_reset(self.auto)
            wunlock(e)
        return rc

    def put(self, key, value):
        """Store value under key (a transaction of its own)."""
        cdef Py_buffer kb, vb
        check_open(self)
        get_key(self.e, key, &kb)
        try:
            get_value(value, &vb)
            try:
                self._autocommit(0, &kb, &vb)
            finally:
                PyBuffer_Release(&vb)
        finally:
            PyBuffer_Release(&kb)

    def delete(self, key):
        """Delete key; True if it was present (a transaction of its own)."""
        cdef Py_buffer kb
        check_open(self)
        get_key(self.e, key, &kb)
        try:
            return self._autocommit(1, &kb, NULL) == 1
        finally:
            PyBuffer_Release(&kb)

    def _scan(self, start, end, bint reverse):
        check_open(self)
        return Cursor._new(self, None, 0, start, end, reverse)

    def begin(self, bint write=True, bint immediate=False):
        """A transaction: read-only (write=False), optimistic (the default) or
        immediate (holds the write lock from now until commit/abort)."""
        cdef Txn t
        cdef EnvC* e = self.e
        cdef State st, dur
        check_open(self)
        if (write or immediate) and e.read_only:
            raise ReadOnlyError("this database was opened read-only; open it without "
                                "read_only=True to write")
        t = self._txn_class.__new__(self._txn_class)
        t.env = self
        t.kind = K_IMMEDIATE if immediate else (K_WRITE if write else K_READ)
        if self.spare != NULL:
            t.w = self.spare
            self.spare = NULL
        else:
            t.w = wtxn_new(e)
        if t.w == NULL:
            t.done = 1
            raise MemoryError()
        # On failure, release exactly what was taken, and mark t finished: its
        # _finish (also run when it is collected) would otherwise release the
        # write lock again, another thread's by then (invariant 7)
        if t.kind == K_IMMEDIATE and wlock(e, e.lock_timeout) < 0:
            t.done = 1
            wtxn_free(t.w)
            t.w = NULL
            raise_err(e)
        t.w.slot = slot_acquire(e) if not e.nolock else -1
        if t.w.slot == -1 and not e.nolock:
            t._finish()  # the write lock (if taken); no slot
            raise_err(e)
        if snapshot_begin(e, t.w.slot, &st, &dur) < 0:
            t._finish()  # the slot and the write lock
            raise_err(e)
        wtxn_start(t.w, &st, t.kind != K_READ)
        t.live_next = self.live_head
        if self.live_head != NULL:
            (<Txn>self.live_head).live_prev = <void*>t
        self.live_head = <void*>t
        return t

    def _set_lock_timeout(self, double seconds):
        """Set how long this handle's writers wait for the write lock (the config's
        lock_timeout; SQL's PRAGMA busy_timeout). Read at every wait."""
        check_open(self)
        self.e.lock_timeout = seconds if seconds > 0 else 0

    def checkpoint(self):
        """Make every committed transaction durable now (fsync), whatever the
        sync_mode."""
        cdef EnvC* e = self.e
        check_open(self)
        if e.read_only or e.nolock:
            return
        if wlock(e, e.lock_timeout) < 0:
            raise_err(e)
        try:
            self._sync_point_locked()
        finally:
            wunlock(e)

    def _state(self):
        """(current state, durable state) of the newest meta, as dicts."""
        cdef State st, dur
        check_open(self)
        if read_meta(self.e, &st, &dur) < 0:
            raise_err(self.e)
        return _state_dict(&st), _state_dict(&dur)

    def _readers(self):
        """[(pid, txnid)] of the reader slots in use."""
        cdef EnvC* e = self.e
        cdef int i, used
        check_open(self)
        out = []
        if e.nolock:
            return out
        used = tdb_aload32(<uint32_t*>(e.lmap + LF_USED))
        for i in range(min(used, <int>e.nslots)):
            pid = tdb_aload32(slot_pid(e, i))
            t = tdb_aload64(slot_txn(e, i))
            if pid and t:
                if pid != e.pid and kill(pid, 0) < 0 and errno == ESRCH:
                    # a reader that died (SIGKILL): free its slot
                    tdb_astore64(slot_txn(e, i), 0)
                    tdb_acas32(slot_pid(e, i), pid, 0)
                    continue
                out.append((pid, t))
        return out

    def _freelist(self):
        """(free pages, pending pages) of the newest snapshot."""
        cdef State st, dur
        cdef EnvC* e = self.e
        check_open(self)
        if read_meta(e, &st, &dur) < 0:
            raise_err(e)
        return _read_freelist(e, &st)

    def _check(self):
        check_open(self)
        return _check_env(self)


cdef dict _state_dict(State* s):
    return {"txnid": s.txnid, "page_count": s.page_count, "freelist": (s.fl_pgno, s.fl_npages),
            "kv": (s.kv.root, s.kv.depth, s.kv.entries),
            "catalog": (s.cat.root, s.cat.depth, s.cat.entries)}
