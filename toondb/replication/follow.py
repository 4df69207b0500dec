"""``toondb follow URL DEST``: keep DEST a read replica of what a replicator ships to
URL. Processes read DEST as any database (``Database.open(DEST, read_only=True)``, a
``toondb-server --read-only``); the follower is its only writer.

The follower starts from a restore of the newest state when DEST does not exist, then
every ``interval`` seconds asks the store for the next batch by name (the batch named
by the transaction it holds) and applies it. When there is none it reads the manifest:
nothing newer means caught up; a new generation, or a batch retention removed, means
a *resync*: the newest state is restored beside DEST and DEST is made equal to it in
one transaction.

Invariants:

F1. The replica record (replica.py) knows whether the last batch was applied: before
    a batch's commit the follower records "applying" (fsynced), after it the new
    position. The replica's own transaction id tells, on restart, whether the commit
    of an "applying" batch happened (its id moved on by one) or not (unchanged);
    any other id means something else wrote to DEST, and the follower refuses it.
    Applying a batch again to the state it produced changes nothing (change records
    carry values, not steps), so even a record lost with the host is safe.
F2. Readers see only whole committed states of the primary: a batch, every
    transaction of it, is applied in one write transaction of the replica (fsynced:
    DEST is opened with sync_mode "full", so a commit the record names survives the
    host), and a resync is one write transaction too.
F3. States appear in the primary's commit order and never go backwards (batches are
    applied in chain order), except where the primary itself went back: a new
    generation after the primary lost its newest commits (an OS crash with
    sync_mode "normal") starts from what the primary holds.
F4. The store is never trusted blindly: a damaged object stops the follower with
    CorruptionError naming it (after the replica's last whole state), and so does a
    batch the manifest says exists but that stays missing for ``missing_grace``
    seconds; an unreachable store, or a full disk under DEST, is retried with
    backoff.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from typing import Any

from toondb.errors import CorruptionError, DatabaseFullError, ObjectStoreError, ReplicationError
from toondb.replication.inventory import (
    check_batch,
    fetch,
    missing_object,
    read_manifest,
)
from toondb.replication.objects import BATCH, Manifest, batch_key
from toondb.replication.replica import read_record, write_record
from toondb.replication.restore import Position, apply_batch, build, restore
from toondb.replication.store import ObjectStore, open_store
from toondb.storage import DATA_FILE, StorageEnvironment

__all__ = ["Follower", "follow"]

log = logging.getLogger("toondb.replication")


def _same_source(a: str | None, b: str) -> bool:
    return a is not None and a.rstrip("/") == b.rstrip("/")


class _NothingYet(Exception):
    """The store holds no manifest (yet): the follower waits for a replicator."""


class Follower:
    """Keeps dest a replica of url (see the module docstring). ``run(stop_event)``,
    or ``open()``, ``step()`` repeatedly and ``close()``."""

    def __init__(
        self,
        url: str | ObjectStore,
        dest: str | os.PathLike[str],
        *,
        interval: float = 1.0,
        missing_grace: float = 5.0,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.store = open_store(url) if isinstance(url, str) else url
        self.dest = os.path.abspath(os.fspath(dest))
        self.interval = float(interval)
        self.missing_grace = missing_grace
        self.env: StorageEnvironment | None = None
        self.pos: Position | None = None
        self.record: dict[str, Any] = {}
        self.missing_since: float | None = None
        self.caught_up_written = 0.0
        self.stats = {"batches": 0, "txns": 0, "resyncs": 0, "errors": 0}

    # ---- start ----

    def open(self) -> None:
        """Restore DEST if it does not exist yet, open it, find where it stands (F1)."""
        if not os.path.exists(os.path.join(self.dest, DATA_FILE)):
            if os.path.isdir(self.dest) and os.listdir(self.dest):
                raise ReplicationError(
                    f"{self.dest!r} exists and holds no database; follow into a new directory"
                )
            if read_manifest(self.store) is None:
                raise _NothingYet()
            info = restore(self.store, self.dest)
            log.info("restored %s at transaction %d", self.dest, info["txn_id"])
        record = read_record(self.dest)
        if record is None or not _same_source(record.get("source"), self.store.url):
            raise ReplicationError(
                f"{self.dest!r} holds a database that is not a replica of {self.store.url} "
                "(no toondb.replica record naming it); follow into a new directory"
            )
        env = StorageEnvironment.open(self.dest, {"create_if_missing": False, "sync_mode": "full"})
        try:
            local = env._commit_stamp()
            applying = record.get("applying")
            if applying and local == record["local_txn"] + 1:
                record.update(applying, local_txn=local)  # the commit happened (F1)
            elif local != record["local_txn"]:
                raise ReplicationError(
                    f"{self.dest!r} was changed by something other than its follower (its "
                    f"transaction {local}, the replica record says {record['local_txn']}); "
                    "it can no longer follow: restore a new replica"
                )
            record["applying"] = None
            write_record(self.dest, record)
        except BaseException:
            env.close()
            raise
        self.env = env
        self.record = record
        self.pos = Position(
            record["generation"],
            bytes.fromhex(record["lineage"]),
            record["txn"],
            int(record["commit_time"] * 1e6),
        )

    # ---- one round ----

    def step(self) -> bool:
        """Apply the next batch if the store has one: True if something was applied."""
        pos, env = self.pos, self.env
        assert pos is not None and env is not None, "step() before open()"
        key = batch_key(pos.generation, pos.txn)
        got = fetch(self.store, key, BATCH)
        if got is not None:
            f, h = got
            with f:
                check_batch(h, key, pos.generation, pos.txn, pos.lineage)
                self._write_record(applying=self._position(h.last, h.last_time_us, pos))
                done = apply_batch(env, f, h, key)
            if done is None or done[0] != h.last:
                raise CorruptionError(f"replica object {key} is damaged: it ends short of {h.last}")
            pos.txn, pos.time_us = done
            self.missing_since = None
            self.stats["batches"] += 1
            self.stats["txns"] += h.count
            self._write_record(applying=None, txn=pos.txn, commit_time=pos.time_us / 1e6,
                               local_txn=env._commit_stamp())  # fmt: skip
            return True
        manifest = read_manifest(self.store)
        if manifest is None:
            raise _NothingYet()
        gen = manifest.generation_info(pos.generation)
        oldest = min((s["txn"] for s in gen.get("snapshots", ())), default=None) if gen else None
        if (
            manifest.generation != pos.generation
            or gen is None
            or (oldest is not None and pos.txn < oldest)
        ):
            self._resync(manifest)
            return True
        if manifest.last_txn > pos.txn:
            # listed as shipped but not there (yet: some stores show new objects late)
            now = time.monotonic()
            if self.missing_since is None:
                self.missing_since = now
            elif now - self.missing_since > self.missing_grace:
                raise missing_object(pos.generation, pos.txn, manifest.last_txn)
            return False
        self.missing_since = None
        now = time.time()
        if now - self.caught_up_written >= 0.5:
            self._write_record(durable=False, caught_up_at=now)
            self.caught_up_written = now
        return False

    @staticmethod
    def _position(txn: int, time_us: int, pos: Position) -> dict[str, Any]:
        return {"txn": txn, "commit_time": time_us / 1e6, "generation": pos.generation,
                "lineage": pos.lineage.hex()}  # fmt: skip

    def _write_record(self, durable: bool = True, **changes: Any) -> None:
        self.record.update(changes)
        write_record(self.dest, self.record, durable)

    def _resync(self, manifest: Manifest) -> None:
        """Make DEST equal to the newest state of the store, in one transaction (F2)."""
        env = self.env
        assert env is not None, "_resync() before open()"
        log.info("resynchronizing %s from generation %d", self.dest, manifest.generation)
        tmp = tempfile.mkdtemp(prefix=".toondb-resync-", dir=os.path.dirname(self.dest))
        try:
            pos = build(self.store, manifest, tmp)
            with StorageEnvironment.open(tmp, {"create_if_missing": False}) as src:
                src.check()
                snap = src.begin_transaction(read_only=True)
                try:
                    self._write_record(applying=self._position(pos.txn, pos.time_us, pos))
                    with env.transaction(immediate=True) as t:
                        _make_equal(t, snap)
                finally:
                    snap.abort()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.pos = pos
        self.stats["resyncs"] += 1
        self._write_record(
            applying=None, generation=pos.generation, lineage=pos.lineage.hex(), txn=pos.txn,
            commit_time=pos.time_us / 1e6, local_txn=env._commit_stamp(),
        )  # fmt: skip

    # ---- the loop ----

    def run(self, stop: threading.Event | None = None) -> None:
        """Follow until stop is set. Store and disk failures are retried with backoff;
        a damaged store raises CorruptionError (F4)."""
        stop = stop or threading.Event()
        delay = 0.1
        waiting = False
        try:
            while not stop.is_set():
                try:
                    if self.env is None:
                        self.open()
                    applied = self.step()
                    delay = 0.1
                except _NothingYet:
                    if not waiting:
                        log.info("nothing replicated to %s yet; waiting", self.store.url)
                    waiting = True
                    stop.wait(self.interval)
                    continue
                except ObjectStoreError as e:
                    self.stats["errors"] += 1
                    log.warning("%s unreachable, retrying in %.1fs: %s", self.store.url, delay, e)
                    stop.wait(delay)
                    delay = min(delay * 2, 30.0)
                    continue
                except (OSError, DatabaseFullError) as e:
                    self.stats["errors"] += 1
                    log.warning("cannot write %s, retrying in %.1fs: %s", self.dest, delay, e)
                    stop.wait(delay)
                    delay = min(delay * 2, 30.0)
                    continue
                if not applied:
                    stop.wait(self.interval)
        finally:
            self.close()

    def close(self) -> None:
        if self.env is not None:
            self.env.close()
            self.env = None
        self.store.close()

    def status(self) -> dict[str, Any]:
        pos = self.pos
        return {
            "generation": pos.generation if pos else None,
            "txn": pos.txn if pos else None,
            **self.stats,
        }


def _make_equal(dst: Any, src: Any) -> None:
    """Within write transaction dst, make every tree equal to read transaction src's."""
    _sync_space(dst, src)
    theirs = set(src.tree_names())
    for name in dst.tree_names():
        if name not in theirs:
            dst.drop_tree(name)
    for name in sorted(theirs):
        _sync_space(dst.tree(name, create=True), src.tree(name))


def _sync_space(dst: Any, src: Any) -> None:
    for k, v in src.scan(b""):
        if dst.get(k) != v:
            dst.put(k, v)
    doomed = []
    theirs = iter(src.scan(b""))
    other = next(theirs, None)
    for k, _ in dst.scan(b""):
        while other is not None and other[0] < k:
            other = next(theirs, None)
        if other is None or other[0] != k:
            doomed.append(k)
    for k in doomed:
        dst.delete(k)


def follow(url: str, dest: str, stop: threading.Event | None = None, **options: Any) -> None:
    """Run a Follower until stop is set."""
    Follower(url, dest, **options).run(stop)
