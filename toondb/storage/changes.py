"""Change capture, the engine's side of replication (toondb.replication is the other).

Every commit records its state (transaction id, commit time, the two tree
descriptors) in the commit ring of the lock file; a *state entry* is those 64
bytes (layout: "Commit ring entry" in ``_format.pxi``). Two state entries of one
database, the older one pinned, give a ``Diff``: the change between the two
snapshots as change records, found by walking both trees together and skipping
every subtree they share (copy-on-write), so it costs O(changed pages).
``apply_changes`` applies change records to a write transaction of another
database. A *replication pin* keeps a snapshot, and every later one, intact
while a replicator has not shipped it, across the replicator's own restarts
(``_readers.pxi``).

The Cython parts are in ``_diff.pxi``; this module is their typed face.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any

from toondb.storage import _btree

__all__ = [
    "ENTRY_SIZE",
    "Diff",
    "apply_changes",
    "entry_txn_id",
    "entry_time",
    "entry_time_us",
    "ring_entries",
    "newest_entry",
    "txn_entry",
    "pin_name",
    "pin_claim",
    "pin_create",
    "pin_advance",
    "pin_release",
    "pins",
]

ENTRY_SIZE = 64
_TXN_TIME = struct.Struct("<QQ")

Diff = _btree.Diff
"""Diff(env, older_entry, newer_entry).next(max_bytes) -> bytes (b"" when done)."""


def entry_txn_id(entry: bytes) -> int:
    """The transaction id a state entry describes."""
    return _TXN_TIME.unpack_from(entry, 0)[0]


def entry_time(entry: bytes) -> float:
    """The commit time of a state entry, in seconds since the Unix epoch."""
    return _TXN_TIME.unpack_from(entry, 0)[1] / 1e6


def entry_time_us(entry: bytes) -> int:
    """The commit time of a state entry, in microseconds since the Unix epoch."""
    return _TXN_TIME.unpack_from(entry, 0)[1]


def ring_entries(env: Any, after: int, limit: int = 4096) -> list[bytes]:
    """State entries of transactions after + 1, after + 2, ... while the commit
    ring still holds them (it keeps the newest 16384)."""
    return _btree.ring_entries(env, after, limit)


def newest_entry(env: Any) -> bytes:
    """The state entry of the newest committed snapshot."""
    return _btree.newest_entry(env)


def txn_entry(txn: Any) -> bytes:
    """The state entry of the snapshot a transaction reads."""
    return _btree.txn_entry(txn)


def apply_changes(txn: Any, records: bytes) -> int:
    """Apply change records to a write transaction; the number of records."""
    return _btree.apply_changes(txn, records)


def pin_name(destination: str) -> bytes:
    """The 16-byte name of the pin a replicator to destination (a URL) holds."""
    return hashlib.sha256(destination.encode("utf-8")).digest()[:16]


def pin_claim(env: Any, name: bytes, grace: int) -> tuple[int, bytes | None]:
    """Take over the pin called name if one stands and no live process holds it:
    (the transaction id it pins, its lineage), or (0, None) when there is none.
    DatabaseLockedError when a live process holds it."""
    return _btree.pin_claim(env, name, grace)


def pin_create(env: Any, name: bytes, grace: int, lineage: bytes) -> bytes:
    """Pin the newest snapshot under name, recording lineage (16 bytes): the
    state entry of the snapshot pinned."""
    return _btree.pin_create(env, name, grace, lineage)


def pin_advance(env: Any, name: bytes, txn_id: int) -> None:
    """Move this process's pin forward to txn_id."""
    _btree.pin_advance(env, name, txn_id)


def pin_release(env: Any, name: bytes, drop: bool = False) -> None:
    """Orphan this process's pin (it stands for its grace period), or drop it."""
    _btree.pin_release(env, name, drop)


def pins(env: Any) -> list[dict[str, Any]]:
    """The pins standing on the database."""
    return _btree.pins(env)
