"""The record a replica keeps of where it is: ``toondb.replica`` beside its page file.

A database made by ``toondb restore`` or kept by ``toondb follow`` holds, besides
``toondb.data``, a small JSON file::

    {"format": 1, "source": URL, "lineage": hex, "generation": G,
     "txn": the primary's transaction the replica holds, "commit_time": its commit time,
     "local_txn": the replica's own transaction id holding it,
     "applying": null or {"txn": T, "commit_time": C, "local_txn": L}: a batch being applied,
     "caught_up_at": when the follower last found nothing newer (seconds since the epoch),
     "updated": when this file was written}

A follower writes "applying" (fsynced) before it commits a batch and the new position
after, so that one killed in between knows on restart, from the replica's own
transaction id, whether the commit happened (invariant F1 in follow.py). It is
replaced atomically (write, fsync, rename). ``replica_info`` is what ``stats()`` of a
replica shows.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from typing import Any

__all__ = ["REPLICA_FILE", "read_record", "write_record", "replica_info"]

REPLICA_FILE = "toondb.replica"


def _record_path(db_path: str) -> str:
    if os.path.isfile(db_path):
        return db_path + ".replica"
    return os.path.join(db_path, REPLICA_FILE)


def read_record(db_path: str) -> dict[str, Any] | None:
    """The replica record of the database at db_path, or None when it is no replica."""
    try:
        with open(_record_path(db_path), "rb") as f:
            record = json.loads(f.read())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("format") == 1 else None


def write_record(db_path: str, record: dict[str, Any], durable: bool = True) -> None:
    """Replace the replica record atomically (fsynced when durable)."""
    path = _record_path(db_path)
    record = {**record, "format": 1, "updated": time.time()}
    fd, tmp = tempfile.mkstemp(prefix=".toondb-replica-", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(record, f, sort_keys=True)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        dfd = os.open(os.path.dirname(path), os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def replica_info(db_path: str) -> dict[str, Any] | None:
    """What stats() reports of a replica: its source, the primary's transaction it
    holds and when that committed, and lag_seconds: how long since the follower last
    found the store had nothing newer (None when it never did; a restore that is not
    followed has no lag)."""
    record = read_record(db_path)
    if record is None:
        return None
    caught = record.get("caught_up_at")
    return {
        "source": record.get("source"),
        "generation": record.get("generation"),
        "txn_id": record.get("txn"),
        "commit_time": record.get("commit_time"),
        "caught_up_at": caught,
        "lag_seconds": max(0.0, time.time() - caught) if caught else None,
    }
