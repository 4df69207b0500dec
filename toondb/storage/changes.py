"""The change log, the engine's side of replication (toondb.replication is the other).

While a replicator is attached, every commit, in whichever process, records its
changes in the change log: a ring in the lock file's shared memory (layouts:
"Change log" in ``_format.pxi``). A commit's record is the structural diff of the
snapshot it began from against itself (``_diff.pxi``: O(pages it rewrote)), as change
records that ``apply_changes`` applies to a write transaction of another database.
The record is published with the commit, so the log holds exactly the committed
transactions, in order; writers never wait for the replicator, whose position may be
overwritten if it falls a whole ring (64 MiB) behind.

The Cython parts are in ``_changelog.pxi`` and ``_diff.pxi``; this module is their
typed face.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from toondb.storage import _btree

__all__ = [
    "Record",
    "CHANGES",
    "TOO_LARGE",
    "attach",
    "begin",
    "read",
    "Frames",
    "frames",
    "shipped",
    "detach",
    "state",
    "apply_changes",
]

CHANGES, TOO_LARGE = 1, 2  # kinds of record: its changes follow; too large for the ring


class Record(NamedTuple):
    """One committed transaction's changes."""

    txn: int
    time_us: int  # commit time, microseconds since the Unix epoch
    kind: int  # CHANGES, or TOO_LARGE (no changes: take a snapshot instead)
    changes: bytes  # change records (the format at the top of _diff.pxi)


def attach(env: Any, grace: int) -> dict[str, Any]:
    """Become the replicator of env's change log, switching it on if it is off. The
    log's state: "id", "head", "first" (first transaction logged), "shipped" and
    "shipped_txn" (where the store stood, by the last replicator's word), "lineage",
    and "resumed" (it was on already). DatabaseLockedError when a live replicator
    holds it."""
    return _btree.changelog_attach(env, grace)


def begin(env: Any, lineage: bytes) -> dict[str, int]:
    """Start a new lineage: {"head": where later commits' records begin, "txn": the
    newest transaction, before them}."""
    return _btree.changelog_begin(env, lineage)


def read(
    env: Any, log_id: int, offset: int, max_bytes: int = 1 << 24
) -> tuple[str, list[Record], int]:
    """The records published from offset on: (status, records, next offset); status
    "ok", "lapped" (offset was overwritten; the records returned are whole) or
    "restarted" (the log is not log_id any more)."""
    status, raw, nxt = _btree.changelog_read(env, log_id, offset, max_bytes)
    return status, [Record(*r) for r in raw], nxt


class Frames(NamedTuple):
    """Transactions read from the change log, as batch frames (toondb.replication)."""

    status: str  # "ok", "lapped", "restarted", "gap" or "too large" (see frames())
    data: bytes  # the frames: u64 txnid | u64 commit time us | u32 flags 1 | u32 length | changes
    count: int  # type: ignore[assignment]  # a field named like tuple.count
    last: int  # the last transaction in data (after, when none)
    first_time_us: int
    last_time_us: int
    offset: int  # where to read next


def frames(
    env: Any, log_id: int, offset: int, after: int, upto: int = 0, max_bytes: int = 1 << 24
) -> Frames:
    """The transactions after `after` (up to `upto`; 0: all published) from offset on,
    as frames, with the GIL released. Records at or below `after` are stepped over;
    status "gap" when the next one is not after + 1, "too large" when it holds no
    changes (offset is then that record's), else as read()."""
    return Frames(*_btree.changelog_frames(env, log_id, offset, after, upto, max_bytes))


def shipped(env: Any, offset: int, txn: int) -> None:
    """Record that the store holds everything before offset, up to transaction txn."""
    _btree.changelog_shipped(env, offset, txn)


def detach(env: Any, stop: bool = False) -> None:
    """Let go: orphan the log (it goes on for its grace period) or switch it off."""
    _btree.changelog_detach(env, stop)


def state(env: Any) -> dict[str, Any]:
    """The change log's header (id 0: off)."""
    return _btree.changelog_state(env)


def apply_changes(txn: Any, changes: bytes) -> int:
    """Apply change records to a write transaction; the number of records."""
    return _btree.apply_changes(txn, changes)
