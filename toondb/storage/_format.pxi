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
#     168     8     the transaction that wrote the current      M_ROOTS
#                   state's key-value root page (the PH_TXNID of
#                   that page; 0 = not recorded)
#     176     8     the same for the current state's catalog root
#     184     8     the same for the durable state's key-value root
#     192     8     the same for the durable state's catalog root
#     200     56    zero
#
# M_ROOTS tells a root from an older tree at the same place: a meta whose
# roots were replaced by an older tree's (a forged or misdirected meta page
# with a valid checksum) names a root page written by another transaction,
# and the first read of that meta raises CorruptionError (invariant 2,
# read_meta; the root's page type and catalog flag are checked there too). Files written by toondb 0.3 and earlier have zeros there,
# which mean "not recorded" (no check); their next commit records both roots. The format
# version stays 1: older builds ignore these bytes (the checksum covers them
# either way).
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
# ``u64 txnid | u32 nruns | runs`` of pages freed by that transaction (or by
# older ones whose group was merged into it: fl_push_merged) and perhaps still
# visible to older snapshots. Bit 63 of a group's txnid
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
#                   had no change log)
#     12      4     number of reader slots (max_readers of the  LF_NSLOTS
#                   handle that built the table)
#     16      4     slots ever used: readers scan [0, used)     LF_USED
#     20      4     bytes of the change log ring (CL_BYTES of   LF_CLBYTES
#                   the handle that built the file)
#     24      8     zero
#     32      4     write lock word (futex): 0 free, 1 held,    LF_WSTATE
#                   2 held and a waiter may sleep on it
#     36      4     pid of the write lock's owner (0: free, or  LF_WOWNER
#                   being taken)
#     40      4     sync point owed (invariant 10): 1 when a    LF_SYNCREQ
#                   closing "normal" handle with unsynced commits
#                   could not take the write lock; the next holder
#                   that commits or closes makes a sync point, and
#                   every sync point stores 0 (zero in older files)
#     44      20    zero
#     64      ..    reader slots, SLOT_SIZE = 64 bytes each      LF_SLOTS
#     P       128   change log header, at P = LF_SLOTS + slots * SLOT_SIZE
#                                                                (e.lcl)
#     P+128   ..    change log ring: LF_CLBYTES bytes
#
# A process of another lock file version refuses the file (reader_table_open,
# _openlock.pxi): version 1 had no change log, so a replicator would miss its
# commits.
#
# Reader slot (at LF_SLOTS + i * SLOT_SIZE)::
#
#     0   4  pid of the owning process (0 = free)
#     4   4  zero
#     8   8  transaction id of the snapshot it reads (0 = idle)
#     16  48 zero (one slot per 64-byte cache line)
#
# Change log (at P; _changelog.pxi): while a replicator (toondb.replication)
# is attached, every commit records its changes here, as change records
# (_diff.pxi), in shared memory: the replicator reads them back and ships them,
# and needs no old snapshot kept on the primary (a snapshot kept makes every
# commit rewrite a larger freelist). Writers never wait for the replicator:
# the ring wraps, and a replicator that fell a whole ring behind starts over
# from a snapshot. Positions are byte offsets that only grow; offset o is at
# ring byte o % CL_BYTES. The header changes under the write lock, except
# CL_SHIPPED*, which the replicator alone stores::
#
#     0   8   head: the end of the last published record     CL_HEAD
#     8   8   reserve: a commit is writing [head, reserve)   CL_RESERVE
#     16  8   log id, drawn when logging began (0: off)      CL_ID
#     24  4   pid of the replicator (0: orphaned, or off)    CL_PID
#     28  4   seconds logging goes on after the replicator   CL_GRACE
#             died, so that one started again resumes
#     32  8   orphaned since: CLOCK_MONOTONIC milliseconds   CL_ORPHAN
#     40  8   first transaction logged                       CL_FIRST
#     48  8   shipped: offset of the first record the        CL_SHIPPED
#             replicator has not yet put in its store
#     56  8   transaction id the store holds up to           CL_SHIPPED_TXN
#     64  16  lineage: the replicator's id of what it ships  CL_LINEAGE
#     80  48  zero
#
# Change log record (at offset o: ring byte o % CL_BYTES, wrapping at the
# ring's end; a multiple of 8 bytes). A commit writes its record between
# head and reserve, then publishes it by moving head, after its meta page:
# a commit that fails or dies before publishes nothing, and a reader that
# finds reserve more than a ring ahead of a record knows it was overwritten::
#
#     0   4   length of the record                           CR_LEN
#     4   4   CRC-32C of bytes [8, length)                   CR_CRC
#     8   8   transaction id                                 CR_TXNID
#     16  8   commit time, microseconds since the Unix epoch CR_TIME
#     24  4   kind: 1 the changes follow; 2 too large for    CR_KIND
#             the ring (none follow: the replicator takes a
#             snapshot instead)
#     28  4   length of the change records                   CR_NREC
#     32  ..  change records (the format at the top of _diff.pxi)
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
    M_ROOTS = 168
    STATE_SIZE = 64
    FORMAT_VERSION = 1

    LF_MAGIC = 0
    LF_VERSION = 8
    LF_NSLOTS = 12
    LF_USED = 16
    LF_WSTATE = 32
    LF_WOWNER = 36
    LF_SYNCREQ = 40
    LF_CLBYTES = 20
    LF_SLOTS = 64
    SLOT_SIZE = 64
    LOCK_VERSION = 2
    CL_HEADER = 128
    CL_HEAD = 0
    CL_RESERVE = 8
    CL_ID = 16
    CL_PID = 24
    CL_GRACE = 28
    CL_ORPHAN = 32
    CL_FIRST = 40
    CL_SHIPPED = 48
    CL_SHIPPED_TXN = 56
    CL_LINEAGE = 64
    CR_LEN = 0
    CR_CRC = 4
    CR_TXNID = 8
    CR_TIME = 16
    CR_KIND = 24
    CR_NREC = 28
    CR_SIZE = 32
    CR_CHANGES = 1
    CR_TOO_LARGE = 2
    LOCK_INIT = 1
    LOCK_PRESENCE = 2

cdef bytes MAGIC = b"toondb\x00\x1a"
cdef bytes LOCK_MAGIC = b"toonlck\x01"
# bytes of the change log ring of a new lock file (sparse: pages are touched
# only while a replicator is attached)
cdef uint64_t CL_BYTES = 64 << 20
