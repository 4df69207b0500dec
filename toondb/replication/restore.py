"""``toondb restore URL DEST [--txn N | --time ISO]``: a database as of a committed
transaction, from a replica store.

Restore = the newest snapshot at or before the target, then the batches after it in
order (followed by name from the snapshot), each transaction's frames applied while
its id (or commit time) is at or before the target. The database is built in a
temporary directory beside DEST, checked (``check()``), made durable, and renamed to
DEST: DEST is a whole restore or absent.

Guarantees: the state restored is one the primary committed, the newest at or before
the target that the store holds (every transaction of a generation is in it, one
frame each, applied in one write transaction of the copy per batch), never one later
than asked; with no target, the newest the store holds. A missing or damaged object
stops the restore with ``CorruptionError`` naming it. Between generations (see
shipper.py) the store holds no transactions: a target there restores the end of the
older generation.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any

from toondb.errors import CorruptionError, ReplicationError
from toondb.replication.inventory import (
    check_batch,
    choose_snapshot,
    fetch,
    missing_object,
    read_manifest,
)
from toondb.replication.objects import (
    BATCH,
    SNAPSHOT,
    Header,
    Manifest,
    batch_key,
    iter_frames,
    iter_payload,
    snapshot_key,
)
from toondb.replication.replica import write_record
from toondb.replication.store import ObjectStore, open_store
from toondb.storage import DATA_FILE, StorageEnvironment
from toondb.storage.changes import apply_changes

__all__ = ["restore", "build", "Position", "apply_batch"]


@dataclass
class Position:
    """Where a restored or followed copy stands on the primary's history."""

    generation: int
    lineage: bytes
    txn: int
    time_us: int


def _fsync_dir(path: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def apply_batch(
    env: StorageEnvironment,
    f: Any,
    h: Header,
    key: str,
    txn: int | None = None,
    at_time: float | None = None,
) -> tuple[int, int] | None:
    """Apply a checked batch in one write transaction, its transactions while they
    are at or before the target: (last transaction applied, its commit time), or
    None when the first one is already past the target."""
    done = None
    pending = None  # a transaction whose last frame is still to come
    t = env.begin_transaction(immediate=True)
    try:
        for frame in iter_frames(f, h, key):
            if (txn is not None and frame.txn > txn) or (
                at_time is not None and frame.time_us > at_time * 1e6
            ):
                break
            if (
                frame.txn <= h.base
                or frame.txn > h.last
                or (pending is not None and frame.txn != pending)
            ):
                raise CorruptionError(
                    f"replica object {key} is damaged: a frame of transaction {frame.txn} "
                    f"out of place (range {h.base}..{h.last})"
                )
            if frame.records:
                apply_changes(t, frame.records)
            pending = None if frame.last else frame.txn
            if frame.last:
                done = (frame.txn, frame.time_us)
        if pending is not None:
            raise CorruptionError(f"replica object {key} is damaged: a transaction cut short")
        if done is None:
            t.abort()
            return None
        t.commit()
    except BaseException:
        if not t.closed:
            t.abort()
        raise
    return done


def build(
    store: ObjectStore,
    manifest: Manifest,
    dest_dir: str,
    txn: int | None = None,
    at_time: float | None = None,
) -> Position:
    """Build the database as of the target in the new directory dest_dir (not yet
    checked). Returns where it stands."""
    gen_info, snap = choose_snapshot(manifest, txn, at_time)
    generation = gen_info["generation"]
    key = snapshot_key(generation, snap["txn"])
    got = fetch(store, key, SNAPSHOT)
    if got is None:
        raise CorruptionError(
            f"replica object {key} is missing: the store's manifest lists it as a snapshot"
        )
    f, h = got
    lineage = h.lineage
    os.makedirs(dest_dir, exist_ok=True)
    data_path = os.path.join(dest_dir, DATA_FILE)
    with f, open(data_path + ".restoring", "wb") as out:
        for piece in iter_payload(f, h, key):
            out.write(piece)
        out.flush()
        os.fsync(out.fileno())
    os.rename(data_path + ".restoring", data_path)
    pos = Position(generation, lineage, h.last, h.last_time_us)
    held_to = gen_info.get("last_txn") or pos.txn
    if generation == manifest.generation:
        held_to = max(held_to, manifest.last_txn)
    with StorageEnvironment.open(dest_dir, {"create_if_missing": False, "sync_mode": "off"}) as env:
        while txn is None or pos.txn < txn:
            key = batch_key(generation, pos.txn)
            got = fetch(store, key, BATCH)
            if got is None:
                if pos.txn < held_to:
                    raise missing_object(generation, pos.txn, held_to)
                break
            f, h = got
            with f:
                check_batch(h, key, generation, pos.txn, lineage)
                if at_time is not None and h.first_time_us > at_time * 1e6:
                    break
                done = apply_batch(env, f, h, key, txn, at_time)
            if done is None:
                break
            pos.txn, pos.time_us = done
            if done[0] != h.last:
                break  # the target is inside this batch
        env.checkpoint()
    return pos


def restore(
    url: str | ObjectStore,
    dest: str | os.PathLike[str],
    *,
    txn: int | None = None,
    at_time: float | None = None,
) -> dict[str, Any]:
    """Write the database the store at url holds, as of its newest transaction, or
    the newest one at or before transaction txn, or committed at or before at_time
    (seconds since the epoch), to the new directory dest. Returns {"txn_id",
    "commit_time", "generation", "keys", "trees"}."""
    if txn is not None and at_time is not None:
        raise ValueError("give a transaction id or a time, not both")
    store = open_store(url) if isinstance(url, str) else url
    target = os.path.abspath(os.fspath(dest))
    if os.path.exists(target) and not (os.path.isdir(target) and not os.listdir(target)):
        raise ReplicationError(
            f"{os.fspath(dest)!r} already exists; give a new (or empty) directory"
        )
    parent = os.path.dirname(target)
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"no directory {parent!r} to restore into")
    manifest = read_manifest(store)
    if manifest is None:
        raise ReplicationError(f"nothing has been replicated to {store.url} (no manifest)")
    tmp = tempfile.mkdtemp(prefix=".toondb-restore-", dir=parent)
    try:
        pos = build(store, manifest, tmp, txn, at_time)
        with StorageEnvironment.open(tmp, {"create_if_missing": False}) as env:
            counts = env.check()
            stats = env.stats()
            local_txn = stats["last_txn_id"]
        write_record(
            tmp,
            {
                "source": store.url,
                "lineage": pos.lineage.hex(),
                "generation": pos.generation,
                "txn": pos.txn,
                "commit_time": pos.time_us / 1e6,
                "local_txn": local_txn,
                "applying": None,
                "caught_up_at": None,
            },
        )
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(tmp, "toondb.lock"))
        if os.path.isdir(target):
            os.rmdir(target)
        os.rename(tmp, target)
        _fsync_dir(parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {
        "txn_id": pos.txn,
        "commit_time": pos.time_us / 1e6,
        "generation": pos.generation,
        "keys": stats["entries"],
        "trees": stats["trees"],
        "pages": counts.get("pages"),
    }
