# The Python face of the engine, part 2: Txn (a snapshot transaction: read-only,
# optimistic, or immediate, which holds the write lock from begin to end,
# invariant 7), Tree (a named tree inside a transaction) and Cursor (a range
# scan). A transaction's snapshot is published in a reader slot for its whole
# life (invariant 1, _readers.pxi); an optimistic commit takes the write lock
# and is replayed onto the newest snapshot when another commit came first
# (rebase, _commit.pxi).
#
# Savepoints (_savepoint / _rollback_to / _release, used by toondb.database's
# Transaction.savepoint): while one is open, every change records how to undo
# itself in Txn.undo (a Python list, so nothing is paid while none is open):
#
#   (0, tree, key, old)    put/delete of key in tree (None: the main tree), old
#                          the value before (None: absent)
#   (1, tree)              the tree was created
#   (2, tree, items)       the tree was dropped; items: its (key, value) pairs
#
# Invariant S1: rolling back to a mark applies the records after it newest first,
# through the same tree operations as any change (so the rebase log and the dirty
# pages stay those of ordinary writes), and records nothing while it does.

cdef enum:
    # Txn.kind
    K_READ = 0
    K_WRITE = 1
    K_IMMEDIATE = 2

# ----------------------------------------------------------------------------
# class Txn
# ----------------------------------------------------------------------------

# no_gc_clear: the garbage collector must not drop env before __dealloc__, which
# unlinks the transaction from env's list (the list's pointers are borrowed)
@cython.no_gc_clear
cdef class Txn:
    """A transaction. Use ``Database.transaction()`` / ``begin_transaction()``."""

    def __dealloc__(self):
        self._finish()

    cdef _finish(self):
        cdef EnvC* e
        if self.done:
            return
        self.done = 1
        # out of the env's list of unfinished transactions (Env.begin links it; close
        # finishes what is left). The list holds no references: a Txn leaves it here,
        # at the latest from __dealloc__, so it never names a freed object.
        if self.live_prev != NULL:
            (<Txn>self.live_prev).live_next = self.live_next
        elif self.env is not None and self.env.live_head == <void*>self:
            self.env.live_head = self.live_next
        if self.live_next != NULL:
            (<Txn>self.live_next).live_prev = self.live_prev
        self.live_prev = NULL
        self.live_next = NULL
        e = self.env.e if self.env is not None else NULL
        if e != NULL and e.status == 0 and self.w != NULL:
            slot_release(e, self.w.slot)
            if self.kind == K_IMMEDIATE:
                wunlock(e)
        if e != NULL and e.status == 0 and self.w != NULL and self.env.spare == NULL and wtxn_small(self.w):
            # kept for the next begin: its buffers and page pool serve again
            wtxn_reset(self.w)
            self.w.slot = -1
            self.env.spare = self.w
        else:
            wtxn_free(self.w)
        self.w = NULL

    cdef int _usable(self) except -1:
        if self.done:
            raise TransactionClosedError("this transaction was already committed or aborted; "
                                         "begin a new one")
        check_open(self.env)
        return 0

    cdef int _writable(self) except -1:
        self._usable()
        if self.kind == K_READ:
            raise ReadOnlyError("this is a read-only transaction; begin one with write=True to write")
        return 0

    cdef _fail(self):
        """An internal error in the middle of a change: the transaction's pages
        may be half-modified, so it is aborted before the error is raised."""
        cdef EnvC* e = self.env.e
        cdef int code = e.err
        cdef uint32_t page = e.err_page
        cdef bytes msg = bytes(e.errmsg)
        self._finish()
        e.err = code
        e.err_page = page
        snprintf(e.errmsg, sizeof(e.errmsg), "%s", <const char*>msg)
        raise_err(e)

    @property
    def txnid(self):
        """The id of the snapshot this transaction reads."""
        self._usable()
        return self.w.snap.txnid

    @property
    def read_only(self):
        return self.kind == K_READ

    @property
    def database(self):
        """The database this transaction belongs to."""
        return self.env

    @property
    def immediate(self):
        """True if this transaction holds the write lock from begin to commit."""
        return self.kind == K_IMMEDIATE

    @property
    def closed(self):
        return bool(self.done)

    cdef object _get(self, int ti, key):
        cdef const char* cell = find_cell(self.env.e, self.w, ti, key)
        if cell == NULL:
            return None
        return value_bytes(self.env.e, self.w, self.w.snap.page_count, cell)

    cdef bytes _slot_name(self, int ti):
        if ti == 0:
            return None
        return PyBytes_FromStringAndSize(<const char*>self.w.trees[ti].name, self.w.trees[ti].namelen)

    cdef int _note(self, int ti, key) except -1:
        """Record how to undo a change of key in slot ti (a savepoint is open)."""
        self.undo.append((0, self._slot_name(ti), bytes(key), self._get(ti, key)))
        return 0

    cdef int _undo_to(self, Py_ssize_t mark) except -1:
        """Undo the changes recorded after mark, newest first (invariant S1)."""
        cdef list undo = self.undo
        cdef int ti
        cdef bint log = self.kind == K_WRITE
        self.undo = None  # S1: the undoing records nothing
        try:
            while len(undo) > mark:
                rec = undo.pop()
                name = rec[1]
                if rec[0] == 0:
                    ti = 0 if name is None else self._tree_slot(name, True, log)
                    if rec[3] is None:
                        self._delete(ti, rec[2])
                    else:
                        self._put(ti, rec[2], rec[3])
                elif rec[0] == 1:
                    ti = self._tree_slot(name, False, False)
                    if ti >= 0 and tree_drop(self.w, ti, log) < 0:
                        self._fail()
                else:
                    ti = self._tree_slot(name, True, log)
                    for k, v in rec[2]:
                        self._put(ti, k, v)
        finally:
            self.undo = undo
        return 0

    def _savepoint(self):
        """Open a savepoint: its mark (a position in the undo records), for
        _rollback_to. The caller keeps the stack of named savepoints."""
        self._writable()
        if self.undo is None:
            self.undo = []
        return len(self.undo)

    def _rollback_to(self, Py_ssize_t mark):
        """Undo every change made since the savepoint of mark was opened."""
        self._writable()
        if self.undo is None or mark < 0 or mark > len(self.undo):
            raise ValueError("no such savepoint in this transaction")
        self._undo_to(mark)

    def _end_savepoints(self):
        """No savepoint is open any more: stop recording undo records."""
        self._usable()
        self.undo = None

    cdef int _put(self, int ti, key, value) except -1:
        cdef Py_buffer kb, vb
        cdef WTxn* w = self.w
        if self.undo is not None:
            self._note(ti, key)
        get_key(self.env.e, key, &kb)
        try:
            get_value(value, &vb)
            try:
                if self.kind == K_WRITE and log_add(w, LOG_KEY, ti, <const unsigned char*>kb.buf, kb.len) < 0:
                    self._fail()
                if tree_put(w, &w.trees[ti], <const unsigned char*>kb.buf, kb.len,
                            <const char*>vb.buf, vb.len) < 0:
                    self._fail()
            finally:
                PyBuffer_Release(&vb)
        finally:
            PyBuffer_Release(&kb)
        return 0

    cdef int _delete(self, int ti, key) except -1:
        cdef Py_buffer kb
        cdef WTxn* w = self.w
        cdef int rc
        if self.undo is not None:
            self._note(ti, key)
        get_key(self.env.e, key, &kb)
        try:
            rc = tree_delete(w, &w.trees[ti], <const unsigned char*>kb.buf, kb.len)
            if rc < 0:
                self._fail()
            if rc == 1 and self.kind == K_WRITE and log_add(w, LOG_KEY, ti, <const unsigned char*>kb.buf, kb.len) < 0:
                self._fail()
            return rc
        finally:
            PyBuffer_Release(&kb)

    def get(self, key):
        """The value of key as this transaction sees it (its own writes included)."""
        self._usable()
        return self._get(0, key)

    def put(self, key, value):
        """Store value under key, visible to this transaction now, to others at commit."""
        self._writable()
        self._put(0, key, value)

    def delete(self, key):
        """Delete key; True if it was present."""
        self._writable()
        return self._delete(0, key) == 1

    def _scan(self, start, end, bint reverse, int ti=0):
        self._usable()
        return Cursor._new(self.env, self, ti, start, end, reverse)

    def commit(self):
        """Apply every change atomically; returns the new transaction id.

        An optimistic transaction whose snapshot is no longer the newest is
        replayed onto the newest one, unless another commit changed a key this
        one wrote (TransactionConflictError: nothing is applied)."""
        cdef EnvC* e
        cdef WTxn* w
        cdef WTxn* w2
        cdef State latest, dur
        cdef uint64_t txnid
        cdef int rc = 0
        self._usable()
        e = self.env.e
        w = self.w
        txnid = w.snap.txnid
        if self.kind == K_READ or not wtxn_changed(w):
            self._finish()
            return txnid
        if self.kind == K_IMMEDIATE:
            rc = read_meta(e, &latest, &dur)
            if rc == 0:
                rc = commit_locked(w, &dur, &txnid)
        else:
            if wlock(e, e.lock_timeout) < 0:
                self._fail()
            try:
                rc = read_meta(e, &latest, &dur)
                if rc == 0:
                    rc = check_file_size(e, latest.page_count)
                if rc == 0 and latest.txnid == w.snap.txnid:
                    rc = commit_locked(w, &dur, &txnid)
                elif rc == 0:
                    w2 = wtxn_new(e)
                    if w2 == NULL:
                        rc = nomem(e)
                    else:
                        rc = rebase(w, w2, &latest)
                        if rc == 0:
                            rc = commit_locked(w2, &dur, &txnid)
                        wtxn_free(w2)
            finally:
                wunlock(e)
        if rc < 0:
            self._fail()
        self._finish()
        return txnid

    def abort(self):
        """Drop every change of this transaction. Idempotent."""
        self._finish()

    # ---- named trees ----

    cdef int _tree_slot(self, name, bint create, bint log) except -3:
        """The slot of named tree `name` in this transaction, or -2 when missing."""
        cdef Py_buffer nb
        cdef int i
        get_key(self.env.e, name, &nb, "name")
        try:
            i = tree_open(self.w, <const unsigned char*>nb.buf, nb.len, create, log)
        finally:
            PyBuffer_Release(&nb)
        if i == -1:
            self._fail()
        return i

    def tree(self, name, bint create=False):
        """The named tree `name` (bytes) in this transaction. With create=True it
        is created when missing; otherwise a missing tree raises KeyError."""
        cdef int i
        self._usable()
        if create:
            self._writable()
            if self.undo is not None and self._tree_slot(name, False, False) == -2:
                self.undo.append((1, bytes(name)))
        i = self._tree_slot(name, create, create and self.kind == K_WRITE)
        if i == -2:
            raise KeyError(bytes(name))
        return Tree._new(self, i, bytes(name))

    def has_tree(self, name):
        """True if the named tree exists (as this transaction sees it)."""
        self._usable()
        return self._tree_slot(name, False, False) >= 0

    def drop_tree(self, name):
        """Delete the named tree and everything in it; True if it existed."""
        cdef int i
        self._writable()
        i = self._tree_slot(name, False, False)
        if i == -2:
            return False
        if self.undo is not None:
            self.undo.append((2, bytes(name), list(Cursor._new(self.env, self, i, b"", None, False))))
        if tree_drop(self.w, i, self.kind == K_WRITE) < 0:
            self._fail()
        return True

    def tree_names(self, prefix=b""):
        """The names of the named trees that start with prefix, in order."""
        cdef WTxn* w
        cdef int i
        self._usable()
        w = self.w
        names = set()
        # committed names from the catalog, then this transaction's changes
        cur = Cursor._new(self.env, self, 1, prefix, None, False)
        for k, _ in cur:
            if not k.startswith(prefix):
                break
            names.add(k)
        for i in range(2, w.ntrees):
            nm = PyBytes_FromStringAndSize(<const char*>w.trees[i].name, w.trees[i].namelen)
            if not nm.startswith(prefix):
                continue
            if w.trees[i].dropped:
                names.discard(nm)
            else:
                names.add(nm)
        return sorted(names)


# ----------------------------------------------------------------------------
# class Tree
# ----------------------------------------------------------------------------

cdef class Tree:
    """A named tree inside one transaction: a sorted map of bytes to bytes."""
    cdef Txn txn
    cdef int ti
    cdef readonly bytes name

    @staticmethod
    cdef Tree _new(Txn txn, int ti, bytes name):
        cdef Tree t = Tree.__new__(Tree)
        t.txn = txn
        t.ti = ti
        t.name = name
        return t

    cdef inline int _ok(self) except -1:
        self.txn._usable()
        if self.txn.w.trees[self.ti].dropped:
            raise KeyError(f"the tree {self.name!r} was dropped in this transaction")
        return 0

    def get(self, key):
        self._ok()
        return self.txn._get(self.ti, key)

    def put(self, key, value):
        self._ok()
        self.txn._writable()
        self.txn._put(self.ti, key, value)

    def delete(self, key):
        self._ok()
        self.txn._writable()
        return self.txn._delete(self.ti, key) == 1

    def scan(self, start=b"", end=None, reverse=False):
        """(key, value) pairs with start <= key < end, in key order (or reversed)."""
        self._ok()
        return Cursor._new(self.txn.env, self.txn, self.ti, start, end, reverse)

    def _get_view(self, key):
        """Zero-copy: the value of key as a read-only memoryview of the mapped
        file when it lives in committed overflow pages (else a bytes copy), or
        None. Valid only while this transaction is open and the database is not
        closed: for toondb's own modules (the vector index), never handed out."""
        cdef const char* cell
        cdef const char* vp = NULL
        cdef size_t vlen = 0
        cdef WTxn* w
        cdef EnvC* e
        self._ok()
        w = self.txn.w
        e = self.txn.env.e
        cell = find_cell(e, w, self.ti, key)
        if cell == NULL:
            return None
        if leaf_value(e, w, w.snap.page_count, cell, &vp, &vlen) < 0:
            raise_err(e)
        if (tdb_ld32(cell + 2) & TDB_OVF) and not (tdb_ld32(cell + 6 + tdb_ld16(cell)) & TDB_DIRTY):
            return PyMemoryView_FromMemory(<char*>vp, vlen, PyBUF_READ)
        return PyBytes_FromStringAndSize(vp, vlen)

    def _get_extent(self, key):
        """Zero-copy without the checksum pass, for values too large to verify
        at once (a vector index's level-0 chunks): (data, span, crc) where data
        is a read-only memoryview of the value in the mapped file, span the
        bytes its extent's checksum covers and crc the checksum the extent
        carries, so the caller verifies a chunk when it first reads it. The
        extent's header (type, length, own id) is checked here. A value that is
        inline, or written in this transaction, comes back as (bytes, None,
        None); a missing key as None. Same lifetime rule as _get_view."""
        cdef const char* cell
        cdef const char* op
        cdef uint32_t klen, v, pg, n
        cdef WTxn* w
        cdef EnvC* e
        self._ok()
        w = self.txn.w
        e = self.txn.env.e
        cell = find_cell(e, w, self.ti, key)
        if cell == NULL:
            return None
        klen = tdb_ld16(cell)
        v = tdb_ld32(cell + 2)
        if not (v & TDB_OVF) or (tdb_ld32(cell + 6 + klen) & TDB_DIRTY):
            return (value_bytes(e, w, w.snap.page_count, cell), None, None)
        v &= ~TDB_OVF
        pg = tdb_ld32(cell + 6 + klen)
        if pg < 2 or pg >= w.snap.page_count:
            corrupt(e, pg, "overflow page id out of range of the snapshot")
            raise_err(e)
        op = e.map + <size_t>pg * e.psize
        n = tdb_ld32(op + PH_AUX)
        if (<uint8_t>op[PH_TYPE] != P_OVERFLOW or n == 0 or <uint64_t>pg + n > w.snap.page_count
                or tdb_ld32(op + PH_PGNO) != pg or <uint64_t>n * e.psize < <uint64_t>v + OV_DATA):
            corrupt(e, pg, "bad overflow extent header")
            raise_err(e)
        return (PyMemoryView_FromMemory(<char*>op + OV_DATA, v, PyBUF_READ),
                PyMemoryView_FromMemory(<char*>op + 4, <Py_ssize_t>n * e.psize - 4, PyBUF_READ),
                tdb_ld32(op))

    def count(self):
        self._ok()
        return self.txn.w.trees[self.ti].desc.entries

    def __len__(self):
        return self.count()

    def __repr__(self):
        return f"<toondb Tree {self.name!r}>"


# ----------------------------------------------------------------------------
# class Cursor
# ----------------------------------------------------------------------------

cdef class Cursor:
    """An iterator of (key, value) in key order over [start, end).

    Outside a transaction it reads one snapshot, taken when the scan began, and
    holds a reader slot until exhausted or garbage-collected; memory stays flat
    however long the range. Inside a transaction it sees the transaction's own
    writes, also those made while iterating."""
    cdef Env env
    cdef Txn txn
    cdef int ti
    cdef State st
    cdef int slot
    cdef Cur c
    cdef bytes start
    cdef bytes end
    cdef int reverse
    cdef int done
    cdef int started
    cdef uint64_t stamp
    cdef bytes last

    def __cinit__(self):
        self.slot = -1

    @staticmethod
    cdef Cursor _new(Env env, Txn txn, int ti, start, end, bint reverse):
        cdef Cursor cur = Cursor.__new__(Cursor)
        cdef State dur
        cdef EnvC* e = env.e
        cur.env = env
        cur.txn = txn
        cur.ti = ti
        cur.start = as_bound(start if start is not None else b"", "start")
        cur.end = as_bound(end, "end")
        cur.reverse = reverse
        if cur.end is not None and cur.end <= cur.start:
            cur.done = 1
            return cur
        if txn is None:
            if not e.nolock:
                cur.slot = slot_acquire(e)
                if cur.slot < 0:
                    cur.slot = -1
                    raise_err(e)
            if snapshot_begin(e, cur.slot, &cur.st, &dur) < 0:
                cur._release()
                raise_err(e)
        return cur

    def __dealloc__(self):
        self._release()

    cdef void _release(self) noexcept:
        cdef EnvC* e
        if self.slot >= 0:
            e = self.env.e
            if e != NULL and e.status == 0:
                slot_release(e, self.slot)
            self.slot = -1

    def __iter__(self):
        return self

    cdef int _position(self, EnvC* e, WTxn* w, uint32_t limit, TreeDesc* t, bint again) except -1:
        cdef const char* cell
        cdef bytes anchor
        cdef int rc
        if not again:
            if self.reverse:
                if self.end is None:
                    rc = cur_seek(e, w, limit, t, &self.c, NULL, 0, 2)
                else:
                    rc = cur_seek(e, w, limit, t, &self.c, <const unsigned char*>PyBytes_AS_STRING(self.end),
                                  PyBytes_GET_SIZE(self.end), 0)
                    if rc == 0:
                        rc = cur_prev(e, w, limit, &self.c) if self.c.valid else \
                            cur_seek(e, w, limit, t, &self.c, NULL, 0, 2)
            else:
                rc = cur_seek(e, w, limit, t, &self.c, <const unsigned char*>PyBytes_AS_STRING(self.start),
                              PyBytes_GET_SIZE(self.start), 0)
        else:
            # the transaction changed its pages since the last step: find the
            # first key after (before) the last one returned
            anchor = self.last
            rc = cur_seek(e, w, limit, t, &self.c, <const unsigned char*>PyBytes_AS_STRING(anchor),
                          PyBytes_GET_SIZE(anchor), 0)
            if rc == 0 and self.reverse:
                rc = cur_prev(e, w, limit, &self.c) if self.c.valid else \
                    cur_seek(e, w, limit, t, &self.c, NULL, 0, 2)
            elif rc == 0 and self.c.valid:
                cell = cur_cell(&self.c)
                if tdb_keycmp(<const unsigned char*>(cell + 6), tdb_ld16(cell),
                              <const unsigned char*>PyBytes_AS_STRING(anchor), PyBytes_GET_SIZE(anchor)) == 0:
                    rc = cur_next(e, w, limit, &self.c)
        if rc < 0:
            raise_err(e)
        return 0

    def __next__(self):
        cdef EnvC* e
        cdef WTxn* w = NULL
        cdef uint32_t limit
        cdef TreeDesc* t
        cdef const char* cell
        cdef uint32_t klen
        cdef int rc
        if self.done:
            raise StopIteration
        e = self.env.e
        if e == NULL or e.status != 0:
            self.env._raise_status()
        if self.txn is not None:
            self.txn._usable()
            w = self.txn.w
            limit = w.snap.page_count
            t = &w.trees[self.ti].desc
        else:
            limit = self.st.page_count
            t = &self.st.kv
        if not self.started:
            self._position(e, w, limit, t, False)
            self.started = 1
        elif w != NULL and w.mods != self.stamp:
            self._position(e, w, limit, t, True)
        if not self.c.valid:
            self._finish()
        cell = cur_cell(&self.c)
        klen = tdb_ld16(cell)
        if self.reverse:
            if tdb_keycmp(<const unsigned char*>(cell + 6), klen,
                          <const unsigned char*>PyBytes_AS_STRING(self.start), PyBytes_GET_SIZE(self.start)) < 0:
                self._finish()
        elif self.end is not None and tdb_keycmp(<const unsigned char*>(cell + 6), klen,
                                                 <const unsigned char*>PyBytes_AS_STRING(self.end),
                                                 PyBytes_GET_SIZE(self.end)) >= 0:
            self._finish()
        key = PyBytes_FromStringAndSize(cell + 6, klen)
        value = value_bytes(e, w, limit, cell)
        if w != NULL:
            self.last = key
            self.stamp = w.mods
        rc = cur_prev(e, w, limit, &self.c) if self.reverse else cur_next(e, w, limit, &self.c)
        if rc < 0:
            raise_err(e)
        return (key, value)

    cdef _finish(self):
        self.done = 1
        self._release()
        raise StopIteration

    def close(self):
        """Stop the scan now and release its snapshot."""
        self.done = 1
        self._release()
