"""``toondb replicate DB URL``: ship every committed transaction of a database to an
object store, continuously, without ever holding up the database's writers.

How it sees every transaction: while it is attached, every commit (in any process)
writes its changes into the database's change log, a ring in the lock file's shared
memory (toondb.storage.changes): the structural diff of the snapshot the commit
began from against itself, O(pages it rewrote), published with the commit. Every
``poll`` seconds the replicator reads the new records, one frame per transaction,
into the open batch. A batch is sealed after ``interval`` seconds (so about one
interval of commits is at risk if the host is lost) and uploaded as
``batches/<base>.batch``; then the replicator records in the log how far the store
holds it (``changes.shipped``) and rewrites the manifest.

    commits ──change log (shared memory)──> read ──> batch ──seal──> queue
                                                       upload ──> shipped mark, manifest

Why a log written by the commits, and not diffs the replicator computes from old
snapshots: a snapshot kept alive on the primary costs every commit (the engine's
freelist, rewritten whole by each commit, grows with what the snapshot holds back:
10 ms held halves an autocommit writer's rate here), while the log costs a commit
about a microsecond and holds nothing back.

Invariants:

R1. Every transaction after the generation's snapshot is in exactly one frame of the
    store, in order: records are read in log order, a record at or below the
    transaction the store holds is skipped, and a record that does not follow the
    last one read without a gap ends the generation (R3).
R2. Objects of a generation chain by name: a batch is named by the transaction its
    first change applies to, the last transaction of the object before it (the
    generation's snapshot, or the previous batch). A periodic snapshot cuts the open
    batch, so it too starts a link of the chain.
R3. A new generation (a snapshot, then batches) begins when the history cannot be
    continued exactly: the log was restarted (every process closed the database, or
    its host restarted), the replicator fell a whole ring behind, a transaction was
    too large for the ring, or more than ``max_backlog`` bytes waited for a store
    that stayed down. Nothing of it is uploaded before its first snapshot, and the
    manifest names it only once that snapshot is in the store.
R4. The primary never waits for the store: uploads are retried with backoff while
    reading goes on; the log is never held back.

A replicator killed (even with SIGKILL) and started again resumes from what the store
holds: it follows the chain from the manifest to its end (an upload whose manifest
write was lost is found there) and reads the log from the mark of the last upload,
skipping what the store already holds: no gap, no duplicate. The log stays on for
``resume_within`` seconds after its replicator died; after that, or when every process
closed the database, a replicator started again begins a new generation.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import random
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import IO, Any

from toondb.errors import CorruptionError, ObjectStoreError, ReplicationError
from toondb.replication.inventory import (
    apply_retention,
    fetch,
    follow_chain,
    list_objects,
    read_manifest,
    write_manifest,
)
from toondb.replication.objects import (
    BATCH,
    HEADER_SIZE,
    SNAPSHOT,
    Header,
    Manifest,
    ObjectWriter,
    batch_key,
    snapshot_key,
)
from toondb.replication.store import ObjectStore, open_store
from toondb.storage import DATA_FILE, StorageEnvironment
from toondb.storage import changes as ch
from toondb.storage.maintenance import copy_database

__all__ = ["Replicator", "replicate"]

log = logging.getLogger("toondb.replication")

MAX_BATCH = 64 << 20  # a batch is sealed early once its records reach this size
HEARTBEAT = 60.0  # the manifest is rewritten at least this often, to show the replicator lives


@dataclass
class _Batch:
    writer: ObjectWriter
    base: int  # the transaction its first change applies to
    opened: float  # monotonic time of its first frame
    first_time_us: int
    last: int = 0
    last_time_us: int = 0
    count: int = 0
    end: int = 0  # change log offset after its last record


@dataclass
class _Sealed:
    generation: int
    base: int
    last: int
    last_time_us: int
    end: int
    key: str
    file: IO[bytes]
    size: int


class _Restart(Exception):
    """The history cannot be continued exactly: begin a new generation (R3)."""


class Replicator:
    """Ships the database at db_path to url (see the module docstring). Use
    ``run(stop_event)`` (returns after stop_event is set, having flushed), or
    ``open()``, ``step()`` repeatedly and ``close()``."""

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        url: str | ObjectStore,
        *,
        interval: float = 1.0,
        snapshot_interval: float = 86400.0,
        snapshot_bytes: int | None = None,
        retain: float | None = None,
        resume_within: int = 300,
        max_backlog: int = 1 << 30,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.db_path = os.fspath(db_path)
        self.store = open_store(url) if isinstance(url, str) else url
        self.interval = float(interval)
        self.poll = min(0.05, self.interval / 4)
        self.snapshot_interval = snapshot_interval
        self.snapshot_bytes = snapshot_bytes
        self.retain = retain
        self.resume_within = int(resume_within)
        self.max_backlog = max_backlog
        self.env: StorageEnvironment | None = None
        self.manifest: Manifest | None = None
        self.generation = 0
        self.lineage = b""
        self.log_id = 0
        self.offset = 0  # change log offset of the next record to read
        self.captured = 0  # the newest transaction read into a batch (or the snapshot's)
        self.shipped = 0  # the newest transaction the store holds
        self.batch: _Batch | None = None
        self.queue: collections.deque[_Sealed] = collections.deque()
        self.awaiting_first = False  # R3: the generation's first snapshot not yet stored
        self.snapshot_thread: threading.Thread | None = None
        self.snapshot_result: dict[str, Any] | None = None
        self.last_snapshot = 0.0  # monotonic
        self.last_snapshot_txn = 0
        self.last_snapshot_bytes = 0
        self.bytes_since_snapshot = 0
        self.manifest_dirty = False
        self.manifest_written = 0.0
        self.retry_at = 0.0
        self.delay = 0.1
        self.restart_pending = False
        self.stopping = threading.Event()
        self._log: dict[str, Any] | None = None
        self.stats = {"txns": 0, "batches": 0, "bytes": 0, "generations": 0, "snapshots": 0,
                      "errors": 0, "resumed": False}  # fmt: skip

    # ---- start: resume or begin a generation ----

    def open(self) -> None:
        """Open the database, attach to its change log, decide where to start (may
        raise ObjectStoreError: run() retries)."""
        if self.env is None:
            self.env = StorageEnvironment.open(
                self.db_path, {"create_if_missing": False}, read_only=True
            )
        if self._log is None:  # once: a retried open() is attached already
            self._log = ch.attach(self.env, self.resume_within)
        info = self._log
        self.log_id = info["id"]
        manifest = read_manifest(self.store)
        if info["resumed"] and info["shipped_txn"]:
            manifest = self._recorded(manifest, info["lineage"]) or manifest
            try:
                if manifest is not None and bytes.fromhex(manifest.lineage) == info["lineage"]:
                    self._resume(manifest, info)
                    return
            except _Restart as e:
                log.info("cannot resume %s (%s): starting a new generation", self.store.url, e)
        self._new_generation(manifest)

    def _resume(self, manifest: Manifest, info: dict[str, Any]) -> None:
        """Go on from the end of the store's chain, reading the log from the mark
        of the last upload and skipping what the store holds (R1)."""
        lineage = info["lineage"]
        end, _ = follow_chain(self.store, manifest.generation, lineage, manifest.last_txn)
        if end < info["shipped_txn"]:
            raise _Restart(f"the store holds up to {end}, the log says {info['shipped_txn']}")
        self.manifest = manifest
        self.generation = manifest.generation
        self.lineage = lineage
        self.offset = info["shipped"]
        self.captured = info["shipped_txn"]
        self._read(upto=end, skip=True)  # the records the store holds already
        if self.captured != end:
            raise _Restart(f"the log ends at {self.captured}, the store at {end}")
        self.shipped = end
        ch.shipped(self.env, self.offset, end)
        self._note_shipped(end, manifest.last_time if end == manifest.last_txn else time.time())
        self.last_snapshot = time.monotonic()
        self.stats["resumed"] = True
        log.info("resuming %s at transaction %d (generation %d)", self.store.url, end,
                 self.generation)  # fmt: skip

    def _recorded(self, manifest: Manifest | None, lineage: bytes) -> Manifest | None:
        """When the first snapshot of lineage's generation is in the store but the
        manifest does not name it yet (killed in between): the manifest with it."""
        if manifest is not None and bytes.fromhex(manifest.lineage) == lineage:
            return None
        listed = list_objects(self.store)
        known = manifest.generation if manifest is not None else 0
        for gen in sorted((g for g in listed if g > known), reverse=True):
            for txn, size in listed[gen]["snapshots"]:
                got = fetch(self.store, snapshot_key(gen, txn), SNAPSHOT)
                if got is None:
                    continue
                got[0].close()
                h = got[1]
                if h.lineage != lineage:
                    break
                t = h.last_time_us / 1e6
                gens = list(manifest.generations) if manifest is not None else []
                gens.append({"generation": gen, "lineage": lineage.hex(), "first_txn": txn,
                             "first_time": t, "last_txn": txn, "last_time": t,
                             "snapshots": [{"txn": txn, "time": t, "bytes": size}]})  # fmt: skip
                self.manifest_dirty = True
                return Manifest(lineage.hex(), gen, txn, t, generations=gens)
        return None

    def _new_generation(self, manifest: Manifest | None) -> None:
        listed = list_objects(self.store)
        known = manifest.generation if manifest is not None else 0
        self.generation = max([known, self.generation, *listed]) + 1
        self.lineage = os.urandom(16)
        self.manifest = manifest
        began = ch.begin(self.env, self.lineage)
        self.offset = began["head"]
        self.batch = None
        self.awaiting_first = True
        self.restart_pending = False
        self.stats["generations"] += 1
        self._start_snapshot(first=True)
        log.info("starting generation %d of %s at transaction %d",
                 self.generation, self.store.url, self.captured)  # fmt: skip

    # ---- reading the change log into batches ----

    def _read(self, upto: int | None = None, skip: bool = False) -> None:
        """Frame the transactions after self.captured, up to transaction upto (or all
        that are published); with skip, only step over them (the store holds them).
        _Restart when the history breaks (R1, R3)."""
        while upto is None or self.captured < upto:
            try:
                got = ch.frames(
                    self.env, self.log_id, self.offset, self.captured, upto or 0, 8 << 20
                )
            except CorruptionError as e:  # the store stays sound: begin again from a snapshot
                raise _Restart(str(e)) from None
            if got.count and not skip:
                if self.batch is None:
                    header = Header(BATCH, self.generation, self.captured, 0, lineage=self.lineage)
                    self.batch = _Batch(ObjectWriter(header), self.captured, time.monotonic(),
                                        got.first_time_us)  # fmt: skip
                b = self.batch
                b.writer.write(got.data)
                b.count += got.count
                b.last, b.last_time_us = got.last, got.last_time_us
                self.stats["txns"] += got.count
            self.captured = got.last
            self.offset = got.offset
            if got.status != "ok":
                raise _Restart({
                    "lapped": "the replicator fell a whole change log behind",
                    "restarted": "the change log was restarted",
                    "gap": f"transaction {self.captured + 1} is not in the change log",
                    "too large": f"transaction {self.captured + 1} was too large for the change log",
                }[got.status])  # fmt: skip
            if got.count == 0:
                return

    def _seal(self) -> None:
        b = self.batch
        if b is None:
            return
        self.batch = None
        b.end = self.offset
        h = b.writer.header
        h.last, h.first_time_us, h.last_time_us, h.count = (
            b.last,
            b.first_time_us,
            b.last_time_us,
            b.count,
        )
        f = b.writer.finish()
        self.queue.append(_Sealed(self.generation, b.base, b.last, b.last_time_us, b.end,
                                  batch_key(self.generation, b.base), f,
                                  HEADER_SIZE + h.stored_len))  # fmt: skip

    # ---- snapshots ----

    def _start_snapshot(self, first: bool = False) -> None:
        snap_env = StorageEnvironment.open(
            self.db_path, {"create_if_missing": False}, read_only=True
        )
        try:
            txn = snap_env.begin_transaction(read_only=True)
            # the snapshot's time: read after its transaction began, so at or after the
            # commit of every transaction it holds, and as early as that allows (a
            # restore to any time from here on starts from this snapshot)
            t_us = int(time.time() * 1e6)
            t = txn.txnid
            if first:
                self.captured = self.shipped = t
            else:
                self._read(upto=t)
                self._seal()  # R2: the snapshot starts a link of the chain
        except BaseException:
            snap_env.close()
            raise
        self.snapshot_result = None
        self.bytes_since_snapshot = 0
        self.last_snapshot = time.monotonic()
        self.last_snapshot_txn = t
        self.snapshot_thread = threading.Thread(
            target=self._snapshot_worker,
            args=(snap_env, txn, t_us, self.generation, self.lineage, first),
            name="toondb-snapshot",
            daemon=True,
        )
        self.snapshot_thread.start()

    def _snapshot_worker(
        self, snap_env: Any, txn: Any, t_us: int, generation: int, lineage: bytes, first: bool
    ) -> None:
        """In its own thread, with its own handle: copy, compress, upload (retrying
        until it lands or the replicator stops)."""
        t = txn.txnid
        result: dict[str, Any] = {"first": first, "generation": generation, "txn": t, "ok": False}
        where = os.path.dirname(os.path.abspath(snap_env._data_path))
        tmp = tempfile.mkdtemp(prefix=".toondb-snapshot-", dir=where)
        try:
            copy_database(snap_env, tmp, snapshot=txn)
            txn.abort()
            snap_env.close()
            header = Header(SNAPSHOT, generation, t, t, t_us, t_us, 0, lineage=lineage)
            w = ObjectWriter(header)
            with open(os.path.join(tmp, DATA_FILE), "rb") as f:
                while True:
                    chunk = f.read(1 << 20)
                    if not chunk:
                        break
                    w.write(chunk)
            shutil.rmtree(tmp, ignore_errors=True)
            out = w.finish()
            delay = 0.2
            key = snapshot_key(generation, t)
            while True:
                try:
                    out.seek(0)
                    self.store.put(key, out)
                    break
                except ObjectStoreError as e:
                    log.warning("snapshot upload failed, retrying: %s", e)
                    if self.stopping.wait(delay * (0.5 + random.random())):
                        return
                    delay = min(delay * 2, 30.0)
            result.update(ok=True, time=t_us / 1e6, bytes=HEADER_SIZE + header.stored_len)
        except Exception as e:  # noqa: BLE001 - reported to the main loop, which logs it
            result["error"] = e
        finally:
            if not txn.closed:
                txn.abort()
            snap_env.close()
            shutil.rmtree(tmp, ignore_errors=True)
            self.snapshot_result = result

    def _snapshot_landed(self) -> None:
        r = self.snapshot_result
        assert r is not None, "called when a snapshot result is in"
        self.snapshot_thread = None
        self.snapshot_result = None
        if r["generation"] != self.generation:
            return  # of a generation given up since
        if not r.get("ok"):
            if r.get("error") is not None:
                log.error("snapshot failed: %s", r["error"])
            if r["first"]:
                raise ReplicationError(
                    f"the first snapshot of the generation failed: {r.get('error')}"
                )
            return
        self.stats["snapshots"] += 1
        info = {"txn": r["txn"], "time": r["time"], "bytes": r["bytes"]}
        self.last_snapshot_bytes = r["bytes"]
        if r["first"]:
            self.awaiting_first = False
            gens = list(self.manifest.generations) if self.manifest else []
            gens.append({"generation": self.generation, "lineage": self.lineage.hex(),
                         "first_txn": r["txn"], "first_time": r["time"], "last_txn": r["txn"],
                         "last_time": r["time"], "snapshots": []})  # fmt: skip
            self.manifest = Manifest(self.lineage.hex(), self.generation, r["txn"], r["time"],
                                     generations=gens)  # fmt: skip
            # the log's mark stays where ch.begin put it, before the snapshot: a
            # replicator started again skips what the snapshot holds (R1)
            self.shipped = r["txn"]
        assert self.manifest is not None  # made above for the first snapshot
        gen = self.manifest.generation_info(self.generation)
        assert gen is not None  # the manifest lists its own generation
        gen["snapshots"] = [s for s in gen["snapshots"] if s["txn"] != info["txn"]] + [info]
        self.manifest_dirty = True

    def _snapshot_due(self) -> bool:
        if self.snapshot_thread is not None or self.awaiting_first:
            return False
        if self.captured == self.last_snapshot_txn:
            return False  # nothing committed since
        if time.monotonic() - self.last_snapshot >= self.snapshot_interval:
            return True
        limit = self.snapshot_bytes
        if limit is None:
            limit = max(16 << 20, self.last_snapshot_bytes)
        return self.bytes_since_snapshot >= limit

    # ---- upload ----

    def _note_shipped(self, txn: int, when: float) -> None:
        m = self.manifest
        assert m is not None, "nothing is shipped before the first snapshot's manifest"
        m.last_txn, m.last_time = txn, when
        gen = m.generation_info(self.generation)
        if gen is not None:
            gen["last_txn"], gen["last_time"] = txn, when

    def _upload(self, force_manifest: bool = False) -> None:
        now = time.monotonic()
        if now < self.retry_at:
            return
        try:
            while self.queue:
                sealed = self.queue[0]
                if sealed.generation == self.generation and self.awaiting_first:
                    break  # R3: not before the generation's first snapshot
                sealed.file.seek(0)
                self.store.put(sealed.key, sealed.file)
                self.queue.popleft()
                sealed.file.close()
                self.stats["batches"] += 1
                self.stats["bytes"] += sealed.size
                if sealed.generation == self.generation:
                    self.shipped = sealed.last
                    ch.shipped(self.env, sealed.end, sealed.last)
                    self._note_shipped(sealed.last, sealed.last_time_us / 1e6)
                    if sealed.base >= self.last_snapshot_txn:
                        self.bytes_since_snapshot += sealed.size
                else:  # a batch of a generation given up since: still history
                    gen = (
                        self.manifest.generation_info(sealed.generation) if self.manifest else None
                    )
                    if gen is not None:
                        gen["last_txn"] = sealed.last
                        gen["last_time"] = sealed.last_time_us / 1e6
                self.manifest_dirty = True
            due = now - self.manifest_written >= HEARTBEAT
            if (
                self.manifest is not None
                and not self.awaiting_first
                and (self.manifest_dirty or force_manifest or due)
            ):
                assert self.env is not None  # open while the loop runs
                self.manifest.primary_txn = self.env._commit_stamp()
                self.manifest.interval = self.interval
                write_manifest(self.store, self.manifest)
                self.manifest_dirty = False
                self.manifest_written = now
            self.delay = 0.1
        except ObjectStoreError as e:
            self.stats["errors"] += 1
            log.warning("upload to %s failed, retrying in %.1fs: %s", self.store.url,
                        self.delay, e)  # fmt: skip
            self.retry_at = now + self.delay * (0.5 + random.random())
            self.delay = min(self.delay * 2, 30.0)

    # ---- the loop ----

    def step(self) -> None:
        """One round: read the log, seal when due, snapshot when due, upload."""
        if self.snapshot_result is not None:
            self._snapshot_landed()
            if self.retain is not None and not self.awaiting_first and self.manifest is not None:
                with contextlib.suppress(ObjectStoreError):
                    apply_retention(self.store, self.manifest, self.retain)
        if self.restart_pending and not self.queue and self.snapshot_thread is None:
            self._new_generation(self.manifest)
        if not self.restart_pending:
            try:
                self._read()
            except _Restart as e:
                log.warning("%s: starting a new generation", e)
                self._seal()
                self.restart_pending = True
        b = self.batch
        if b is not None and (
            time.monotonic() - b.opened >= self.interval or b.writer.raw_len >= MAX_BATCH
        ):
            self._seal()
        if self._snapshot_due():
            self._start_snapshot()
        self._upload()
        if sum(s.size for s in self.queue) > self.max_backlog:
            log.error("more than %d bytes wait for %s: dropping them, a new generation "
                      "follows once it is back", self.max_backlog, self.store.url)  # fmt: skip
            for sealed in self.queue:
                sealed.file.close()
            self.queue.clear()
            self.batch = None
            self.restart_pending = True

    def run(self, stop: threading.Event | None = None) -> None:
        """Replicate until stop is set (forever without one), then flush and close."""
        stop = stop or self.stopping
        delay = 0.1
        try:
            while not stop.is_set():
                try:
                    if self.manifest is None and not self.awaiting_first:
                        self.open()
                    self.step()
                    delay = 0.1
                except ObjectStoreError as e:
                    log.warning("%s unreachable, retrying in %.1fs: %s", self.store.url, delay, e)
                    stop.wait(delay)
                    delay = min(delay * 2, 30.0)
                    continue
                stop.wait(self.poll)
        finally:
            self.close()

    def close(self, flush: bool = True, timeout: float = 10.0) -> None:
        """Ship what was committed (trying for up to timeout seconds), then let go of
        the change log (it stays on resume_within seconds for a replicator started again)."""
        env = self.env
        if env is None or env.closed:
            return
        try:
            if flush and (self.manifest is not None or self.awaiting_first):
                deadline = time.monotonic() + timeout
                with contextlib.suppress(ObjectStoreError, ReplicationError):
                    while self.snapshot_thread is not None and self.awaiting_first:
                        if self.snapshot_result is not None:
                            self._snapshot_landed()
                            break
                        if time.monotonic() > deadline:
                            break
                        time.sleep(0.01)
                    if not self.restart_pending:
                        with contextlib.suppress(_Restart):
                            self._read()
                    self._seal()
                    while (self.queue or self.manifest_dirty) and time.monotonic() < deadline:
                        self.retry_at = 0.0
                        self._upload()
                        if self.queue and (self.awaiting_first or self.retry_at):
                            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
                    if self.queue:
                        log.error("stopping with %d batches not shipped to %s",
                                  len(self.queue), self.store.url)  # fmt: skip
        finally:
            self.stopping.set()
            thread = self.snapshot_thread
            if thread is not None:
                thread.join(timeout)
            for sealed in self.queue:
                sealed.file.close()
            self.queue.clear()
            with contextlib.suppress(Exception):
                ch.detach(env)
            env.close()
            self.store.close()

    def status(self) -> dict[str, Any]:
        """Where the replicator stands (for logs and tests)."""
        return {
            "generation": self.generation,
            "shipped_txn": self.shipped or None,
            "captured_txn": self.captured or None,
            "queued": len(self.queue),
            **self.stats,
        }


def replicate(db_path: str, url: str, stop: threading.Event | None = None, **options: Any) -> None:
    """Run a Replicator until stop is set (see Replicator for the options)."""
    Replicator(db_path, url, **options).run(stop)
