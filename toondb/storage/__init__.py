"""The storage engine: one mmap'd page file, a copy-on-write B+tree with MVCC
transactions, the shared reader table and the write lock. It knows nothing of the
layers above it (SQL, vectors, TOON, the server).

Reading order: ``_btree.pyx`` (the Cython core, split into ``_*.pxi`` includes
along its parts; the file format as offset tables in ``_format.pxi``),
``keyspace.py`` (scans and the path API), ``env.py`` (opening by path, the
Python face), ``maintenance.py`` (backup and compaction). docs/architecture.md
tours it bottom up.
"""

from toondb.storage.env import (
    DATA_FILE,
    LOCK_FILE,
    StorageEnvironment,
    StorageTransaction,
    files_of,
)
from toondb.storage.keyspace import KeyValueAPI, path_key, path_prefix, prefix_end

__all__ = [
    "DATA_FILE",
    "LOCK_FILE",
    "StorageEnvironment",
    "StorageTransaction",
    "KeyValueAPI",
    "files_of",
    "path_key",
    "path_prefix",
    "prefix_end",
]
