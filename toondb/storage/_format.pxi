# The on-disk layouts, as offset tables, and their constants: the page file
# (meta pages, tree pages, overflow and freelist extents) and the lock file
# (reader table, write lock word, byte-range locks). Everything is
# little-endian (_btree_support.h refuses big-endian hosts at compile time).
# Code that parses a layout cites it by the names below; the invariants the
# layouts serve are listed in _btree.pyx.

# Page file
# =========
#
# Page 0 and page 1 are meta pages. Transaction N writes meta page N % 2;
# opening picks the valid meta with the highest transaction id (invariant 2).
#
# Meta page (the first META_USED = 256 bytes are used, the rest is zero)::
#
#     offset  size  field
#     0       4     CRC-32C of bytes [4, 256)
#     4       1     page type = 5 (meta)                         M_TYPE
#     8       8     magic b"toondb\x00\x1a"                      M_MAGIC
#     16      4     format version = 1                          M_VERSION
#     20      4     page size in bytes                          M_PSIZE
#     24      64    current state (below)                       M_STATE
#     88      64    durable state: the newest state known to be M_DURABLE
#                   fsynced (txnid 0 = none); see "Durability" in _commit.pxi
#     152     16    boot id of the machine session that wrote   M_BOOT
#                   this meta
#     168     88    zero
#
# State (STATE_SIZE = 64 bytes, at offset b; state_load / state_store)::
#
#     b+0   8  transaction id
#     b+8   4  page count: pages [0, count) exist
#     b+12  4  freelist extent page id (0 = empty freelist)
#     b+16  4  freelist extent length in pages
#     b+20  4  zero
#     b+24  16 key-value tree descriptor (its flags are stored as zero)
#     b+40  16 catalog tree descriptor (its flags are stored as zero)
#     b+56  8  zero
#
# Tree descriptor (16 bytes; also the value of each catalog entry;
# desc_load / desc_store)::
#
#     0  4  root page id (0 = empty tree)
#     4  2  depth (0 = empty, 1 = a lone leaf)
#     6  2  flags
#     8  8  number of entries
#
# Every other page starts with a common header (PH_SIZE = 28 bytes for a
# branch or leaf, 24 for an extent)::
#
#     0   4  CRC-32C of the page from byte 4 to its end (an      PH_CRC
#            overflow or freelist extent: to the end of the extent)
#     4   1  type: 1 branch, 2 leaf, 3 overflow, 4 freelist      PH_TYPE
#     5   1  flags: 1 = a catalog leaf (its values are tree      PH_FLAGS
#            descriptors)
#     6   2  number of cells (branch, leaf)                      PH_NKEYS
#     8   4  this page's own id (catches pages written to the    PH_PGNO
#            wrong place)
#     12  4  branch: leftmost child page id; overflow,           PH_AUX
#            freelist: extent length in pages
#     16  8  the transaction that wrote this page                PH_TXNID
#     24  2  branch, leaf: end of the slot array                 PH_LOWER
#     26  2  branch, leaf: start of the cell content area        PH_UPPER
#     28  ..  branch, leaf: slot array, one u16 cell offset per  PH_SIZE
#            cell, in key order (invariant 5)
#
# Leaf cell: ``u16 key length | u32 value length | key | value``; when bit 31
# of the value length is set (TDB_OVF) the value lives in an overflow extent
# and the cell holds its u32 first page id instead of the bytes. Branch cell:
# ``u32 child | u16 key length | key``; the child holds the keys >= key (and
# below the next cell's key); keys below the first cell's key are in the
# leftmost child. Overflow extent: the header, then the value from byte
# OV_DATA = 24.
#
# Freelist extent: the header, then at byte FL_NRUNS = 24 ``u32 nruns``, at
# FL_NGROUPS = 28 ``u32 ngroups``, from FL_RUNS = 32 ``nruns`` pairs
# ``u32 first page, u32 count`` of reusable pages, then ``ngroups`` groups
# ``u64 txnid | u32 nruns | runs`` of pages freed by that transaction and
# perhaps still visible to older snapshots. Bit 63 of a group's txnid
# (TDB_PINNED) marks pages that the durable snapshot can see (written at or
# before it): those wait for the next sync point as well as for the readers
# (invariant 1).
#
# Lock file
# =========
#
# ``toondb.lock`` beside ``toondb.data`` (``<file>-lock`` for a database opened
# by its page file's name). Mapped read-write (MAP_SHARED) by every handle, so
# its words are shared memory between processes; it holds no data that must
# survive: the first handle to open the database (re)builds it::
#
#     offset  size  field
#     0       8     magic b"toonlck\x01"                        LF_MAGIC
#     8       4     lock file version = 2 (LOCK_VERSION; 1      LF_VERSION
#                   had no pins and no commit ring)
#     12      4     number of reader slots (max_readers of the  LF_NSLOTS
#                   handle that built the table)
#     16      4     slots ever used: readers scan [0, used)     LF_USED
#     20      4     entries of the commit ring (RING_ENTRIES    LF_RINGN
#                   of the handle that built the file)
#     24      8     zero
#     32      4     write lock word (futex): 0 free, 1 held,    LF_WSTATE
#                   2 held and a waiter may sleep on it
#     36      4     pid of the write lock's owner (0: free, or  LF_WOWNER
#                   being taken)
#     40      24    zero
#     64      ..    reader slots, SLOT_SIZE = 64 bytes each      LF_SLOTS
#     P       ..    replication pins: NPINS of PIN_SIZE = 64 bytes, from
#                   P = LF_SLOTS + slots * SLOT_SIZE             (e.lpins)
#     P+512   ..    the commit ring: RINGN entries of RING_SIZE = 64 bytes
#                                                                (e.lring)
#
# A process of another lock file version refuses the file (reader_table_open,
# _openlock.pxi): version 1 could not record commits in the ring, so a
# replicator would miss them.
#
# Reader slot (at LF_SLOTS + i * SLOT_SIZE)::
#
#     0   4  pid of the owning process (0 = free)
#     4   4  zero
#     8   8  transaction id of the snapshot it reads (0 = idle)
#     16  48 zero (one slot per 64-byte cache line)
#
# Replication pin (at P + i * PIN_SIZE; _readers.pxi): a snapshot a
# replicator (toondb.replication) keeps alive across its own restarts. Like a
# reader slot it holds back page reuse (invariant 1): no page visible to the
# pinned snapshot, or to any later one, is reused while the pin stands. Unlike
# a reader slot it survives its holder for PN_GRACE seconds, so that a
# replicator killed and started again finds the snapshots it had not yet
# shipped intact. Changed only under the write lock, except PN_TXNID, which
# its holder moves forward with one atomic store::
#
#     0   4  pid of the holder (0: orphaned, or free)        PN_PID
#     4   4  seconds the pin outlives its holder             PN_GRACE
#     8   8  pinned transaction id (0: a free pin)           PN_TXNID
#     16  16 name: the first 16 bytes of SHA-256 of the      PN_NAME
#            store's URL (one pin per destination)
#     32  8  orphaned since: CLOCK_MONOTONIC milliseconds    PN_ORPHAN
#            (0: held by PN_PID)
#     40  16 lineage: the replicator's id of what it ships   PN_LINEAGE
#            (opaque here; a restarted replicator resumes only
#            the lineage it finds in the store)
#     56  8  zero
#
# Commit ring entry (at P + NPINS * PIN_SIZE + (txnid % RINGN) * RING_SIZE):
# the state of each commit, recorded by the commit after its meta page
# (ring_record, _commit.pxi), so that a replicator sees every transaction and
# not only those newest when it looks. Written under the write lock as a
# sequence lock: RE_TXNID is zeroed first and stored last; a reader copies the
# entry between two loads of RE_TXNID and keeps it only when both, and
# RE_CHECK, hold the transaction id it wants::
#
#     0   8   transaction id (0 while being written)         RE_TXNID
#     8   8   commit time, microseconds since the Unix epoch RE_TIME
#     16  4   page count                                     RE_PAGES
#     20  4   zero
#     24  16  key-value tree descriptor (flags zero)         RE_KV
#     40  16  catalog tree descriptor (flags zero)           RE_CAT
#     56  8   transaction id again                           RE_CHECK
#
# The same 64 bytes describe a snapshot to toondb.replication (a "state
# entry"): the replicator stores the entry of the last transaction it shipped
# in each object it writes, and hands two entries to a Diff (_diff.pxi).
#
# Byte-range locks (fcntl, one byte each, taken on the offsets without reading
# or writing the bytes; open-file-description locks where the OS has them
# (Linux), so two handles of one process exclude each other, and the OS drops
# them when the last descriptor of the open file closes, a dying process
# included; elsewhere process-associated locks, which do not exclude the
# handles of one process from each other)::
#
#     byte  name           held
#     1     LOCK_INIT      exclusively while a handle opens: creating the page
#                          file, (re)building the lock file, recovery
#     2     LOCK_PRESENCE  shared by every open handle for its whole life;
#                          exclusively for an instant by the opener that finds
#                          no other handle open, while it rebuilds the table
#
# Holding both exclusively (exclusive_access, _openlock.pxi) means no handle
# has the database open anywhere and none can open it until released.

# ----------------------------------------------------------------------------
# Layout constants (the offset tables above)
# ----------------------------------------------------------------------------

cdef enum:
    PH_CRC = 0
    PH_TYPE = 4
    PH_FLAGS = 5
    PH_NKEYS = 6
    PH_PGNO = 8
    PH_AUX = 12
    PH_TXNID = 16
    PH_LOWER = 24
    PH_UPPER = 26
    PH_SIZE = 28
    OV_DATA = 24
    FL_NRUNS = 24
    FL_NGROUPS = 28
    FL_RUNS = 32

    P_BRANCH = 1
    P_LEAF = 2
    P_OVERFLOW = 3
    P_FREELIST = 4
    P_META = 5

    F_CATALOG = 1
    F_DIRTYREF = 2      # in memory only: a leaf cell refers to a dirty overflow extent

    META_USED = 256
    M_TYPE = 4
    M_MAGIC = 8
    M_VERSION = 16
    M_PSIZE = 20
    M_STATE = 24
    M_DURABLE = 88
    M_BOOT = 152
    STATE_SIZE = 64
    FORMAT_VERSION = 1

    LF_MAGIC = 0
    LF_VERSION = 8
    LF_NSLOTS = 12
    LF_USED = 16
    LF_WSTATE = 32
    LF_WOWNER = 36
    LF_RINGN = 20
    LF_SLOTS = 64
    SLOT_SIZE = 64
    LOCK_VERSION = 2
    NPINS = 8
    PIN_SIZE = 64
    PN_PID = 0
    PN_GRACE = 4
    PN_TXNID = 8
    PN_NAME = 16
    PN_ORPHAN = 32
    PN_LINEAGE = 40
    RING_ENTRIES = 16384
    RING_SIZE = 64
    RE_TXNID = 0
    RE_TIME = 8
    RE_PAGES = 16
    RE_KV = 24
    RE_CAT = 40
    RE_CHECK = 56
    LOCK_INIT = 1
    LOCK_PRESENCE = 2

cdef bytes MAGIC = b"toondb\x00\x1a"
cdef bytes LOCK_MAGIC = b"toonlck\x01"
