"""``toondb replicate DB URL``: ship every committed transaction of a database to an
object store, continuously, without ever holding up the database's writers.

How it sees every transaction: each commit records its state in the commit ring of
the lock file (toondb.storage.changes). The replicator takes a *replication pin* on
the last state it shipped, which keeps that snapshot and every later one intact on
the primary (invariant 1 of the engine), and every ``poll`` seconds *captures* the
commits since the last one it captured: for each consecutive pair of ring entries, a
structural diff (O(changed pages)) gives the change as records, which it appends, one
frame per transaction, to the open batch. A batch is sealed after ``interval``
seconds (so about one interval of commits is at risk if the host is lost) and
uploaded as ``batches/<base>.batch``; then the pin moves forward to the batch's last
transaction and the manifest is rewritten.

    primary commits ──ring──> capture (diff per commit) ──> batch ──seal──> queue
                                                               upload ──> pin forward,
                                                                          manifest

Invariants:

R1. The pin is at or before the first transaction not yet in the store, so every
    state the store does not hold yet can still be diffed on the primary. (It moves
    only after an upload succeeded; see R4 for the one exception.)
R2. Objects of a generation chain by name: a batch is named by the transaction its
    first change applies to, which is the last transaction of the object before it
    (the snapshot that began the generation, or the previous batch). A snapshot cuts
    the open batch, so it too starts a link of the chain.
R3. Nothing of a new generation is uploaded before its first snapshot, and the
    manifest names a generation only once its first snapshot is in the store.
R4. The primary never waits for the store: uploads are retried with backoff while
    capture goes on; if the store stays down until ``max_backlog`` bytes are queued,
    the pin moves to the last state captured (the queue is still uploaded when the
    store returns, but a crash before that starts a new generation).

A replicator killed (even with SIGKILL) and started again resumes from what the store
holds: it follows the chain from the manifest to its end (an upload whose manifest
write was lost is found there), reads the primary's state of that transaction from
the last object's header, and goes on from it, because its pin (orphaned when it
died, kept ``pin_grace`` seconds) still protects it: no gap, no duplicate. When the
pin is gone (every process closed the database, the host restarted, or the grace
period passed) or names another lineage, it starts a new generation with a snapshot.

When the replicator falls more than the ring's 16384 commits behind (it was starved
of CPU), the commits it missed are shipped as one frame, the diff from the last state
it captured to the newest: still exact, but a restore can land only on either side of
that frame ("coarse" in stats).
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

from toondb.errors import ObjectStoreError, ReplicationError
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

CHUNK = 1 << 20  # change records per frame (a transaction's diff is cut into frames)
MAX_BATCH = 64 << 20  # a batch is sealed early once its records reach this size
HEARTBEAT = 60.0  # the manifest is rewritten at least this often, to show the replicator lives


@dataclass
class _Batch:
    writer: ObjectWriter
    base: bytes  # state entry its first change applies to
    last: bytes  # state entry after its last change
    opened: float  # monotonic time of its first frame
    first_time_us: int
    count: int = 0


@dataclass
class _Sealed:
    base: int
    key: str
    file: IO[bytes]
    last: bytes
    size: int
    sealed: float


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
        pin_grace: int = 300,
        max_backlog: int = 256 << 20,
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
        self.pin_grace = int(pin_grace)
        self.max_backlog = max_backlog
        self.name = ch.pin_name(self.store.url)
        self.env: StorageEnvironment | None = None
        self.manifest: Manifest | None = None
        self.generation = 0
        self.lineage = b""
        self.shipped = b""  # state entry of the store's newest transaction (R1)
        self.captured = b""  # state entry of the newest transaction captured
        self.batch: _Batch | None = None
        self.queue: collections.deque[_Sealed] = collections.deque()
        self.awaiting_first = False  # R3: a new generation's first snapshot not yet stored
        self.snapshot_thread: threading.Thread | None = None
        self.snapshot_result: dict[str, Any] | None = None
        self.last_snapshot = 0.0  # monotonic
        self.bytes_since_snapshot = 0
        self.manifest_dirty = False
        self.manifest_written = 0.0
        self.retry_at = 0.0
        self.delay = 0.1
        self.stopping = threading.Event()
        self._claimed: tuple[int, bytes | None] | None = None
        self.last_snapshot_txn = 0
        self.last_snapshot_bytes = 0
        self.stats = {"txns": 0, "batches": 0, "bytes": 0, "coarse": 0, "snapshots": 0,
                      "errors": 0, "resumed": False}  # fmt: skip

    # ---- start: resume or begin a generation ----

    def open(self) -> None:
        """Open the database and decide where to start (may raise ObjectStoreError:
        run() retries)."""
        if self.env is None:
            self.env = StorageEnvironment.open(
                self.db_path, {"create_if_missing": False}, read_only=True
            )
        env = self.env
        manifest = read_manifest(self.store)
        if self._claimed is None:  # once: a retried open() already holds the pin
            self._claimed = ch.pin_claim(env, self.name, self.pin_grace)
        pinned, pin_lineage = self._claimed
        if pinned and (manifest is None or pin_lineage != bytes.fromhex(manifest.lineage)):
            # killed after the first snapshot of its generation landed, before the
            # manifest named it: find that snapshot (by listing, the one time it helps)
            manifest = self._own_generation(manifest, pin_lineage) or manifest
        if manifest is not None and pinned and pin_lineage == bytes.fromhex(manifest.lineage):
            end, header = follow_chain(
                self.store, manifest.generation, pin_lineage, manifest.last_txn
            )
            entry = header.state if header is not None else bytes.fromhex(manifest.last_state)
            if ch.entry_txn_id(entry) == end and pinned <= end <= env._commit_stamp():
                self.manifest = manifest
                self.generation = manifest.generation
                self.lineage = pin_lineage
                self.shipped = self.captured = entry
                self._advance_pin(end)
                self._note_shipped(entry)
                self.last_snapshot = time.monotonic()
                self.stats["resumed"] = True
                log.info("resuming %s at transaction %d (generation %d)",
                         self.store.url, end, self.generation)  # fmt: skip
                return
        self._new_generation(manifest)

    def _own_generation(self, manifest: Manifest | None, lineage: bytes) -> Manifest | None:
        """The manifest as it would be had the first snapshot of the generation of
        lineage been recorded, when that snapshot is in the store (else None)."""
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
                return Manifest(lineage.hex(), gen, txn, t, h.state.hex(), generations=gens)
        return None

    def _new_generation(self, manifest: Manifest | None) -> None:
        listed = list_objects(self.store)
        self.generation = max([manifest.generation if manifest else 0, *listed]) + 1
        self.lineage = os.urandom(16)
        self.manifest = manifest
        ch.pin_create(self.env, self.name, self.pin_grace, self.lineage)
        self.awaiting_first = True
        self._start_snapshot(first=True)
        log.info("starting generation %d of %s at transaction %d",
                 self.generation, self.store.url, ch.entry_txn_id(self.captured))  # fmt: skip

    # ---- capture: the commits since the last one captured, as frames ----

    def _capture(self, upto: bytes | None = None) -> None:
        env = self.env
        target = ch.entry_txn_id(upto) if upto is not None else env._commit_stamp()
        while ch.entry_txn_id(self.captured) < target:
            after = ch.entry_txn_id(self.captured)
            entries = ch.ring_entries(env, after, 1024)
            for _ in range(20):
                if entries or after + 1 < target:
                    break
                time.sleep(0.0002)  # the newest commit is recording its ring entry
                entries = ch.ring_entries(env, after, 1024)
            entries = [e for e in entries if ch.entry_txn_id(e) <= target]
            if entries:
                for entry in entries:
                    self._add(entry)
            else:
                # the ring no longer holds the next commit: one frame to the target
                self.stats["coarse"] += 1
                self._add(upto if upto is not None else ch.newest_entry(env))

    def _add(self, entry: bytes) -> None:
        """Append the change from the last state captured to entry as frames."""
        if self.batch is None:
            header = Header(BATCH, self.generation, ch.entry_txn_id(self.captured), 0,
                            lineage=self.lineage)  # fmt: skip
            self.batch = _Batch(ObjectWriter(header), self.captured, self.captured,
                                time.monotonic(), ch.entry_time_us(entry))  # fmt: skip
        batch = self.batch
        txn, time_us = ch.entry_txn_id(entry), ch.entry_time_us(entry)
        diff = ch.Diff(self.env, self.captured, entry)
        records = diff.next(CHUNK)
        while True:
            more = diff.next(CHUNK) if records else b""
            batch.writer.frame(txn, time_us, not more, records)
            if not more:
                break
            records = more
        batch.count += 1
        self.stats["txns"] += 1
        batch.last = entry
        self.captured = entry

    def _seal(self) -> None:
        b = self.batch
        if b is None:
            return
        self.batch = None
        h = b.writer.header
        h.last = ch.entry_txn_id(b.last)
        h.first_time_us = b.first_time_us
        h.last_time_us = ch.entry_time_us(b.last)
        h.count = b.count
        h.state = b.last
        f = b.writer.finish()
        self.queue.append(_Sealed(h.base, batch_key(self.generation, h.base), f, b.last,
                                  HEADER_SIZE + h.stored_len, time.monotonic()))  # fmt: skip

    # ---- snapshots ----

    def _start_snapshot(self, first: bool = False) -> None:
        snap_env = StorageEnvironment.open(
            self.db_path, {"create_if_missing": False}, read_only=True
        )
        try:
            txn = snap_env.begin_transaction(read_only=True)
            entry = ch.txn_entry(txn)
            if first:
                self.captured = self.shipped = entry
            else:
                self._capture(upto=entry)
                self._seal()  # R2: the snapshot starts a link of the chain
        except BaseException:
            snap_env.close()
            raise
        self.snapshot_result = None
        self.bytes_since_snapshot = 0
        self.last_snapshot = time.monotonic()
        self.last_snapshot_txn = ch.entry_txn_id(entry)
        self.snapshot_thread = threading.Thread(
            target=self._snapshot_worker,
            args=(snap_env, txn, entry, self.generation, self.lineage, first),
            name="toondb-snapshot",
            daemon=True,
        )
        self.snapshot_thread.start()

    def _snapshot_worker(
        self, snap_env: Any, txn: Any, entry: bytes, generation: int, lineage: bytes, first: bool
    ) -> None:
        """In its own thread, with its own handle: copy, compress, upload (retrying
        until it lands or the replicator stops)."""
        result: dict[str, Any] = {"first": first, "entry": entry, "ok": False}
        where = os.path.dirname(os.path.abspath(snap_env._data_path))
        tmp = tempfile.mkdtemp(prefix=".toondb-snapshot-", dir=where)
        try:
            copy_database(snap_env, tmp, snapshot=txn)
            txn.abort()
            snap_env.close()
            t, t_us = ch.entry_txn_id(entry), ch.entry_time_us(entry)
            header = Header(SNAPSHOT, generation, t, t, t_us, t_us, 0, lineage=lineage,
                            state=entry)  # fmt: skip
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
            result.update(ok=True, txn=t, time=t_us / 1e6, bytes=HEADER_SIZE + header.stored_len,
                          raw=header.raw_len)  # fmt: skip
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
        self.snapshot_thread = None
        self.snapshot_result = None
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
            gens = [g for g in (self.manifest.generations if self.manifest else ())]
            gens.append({"generation": self.generation, "lineage": self.lineage.hex(),
                         "first_txn": r["txn"], "first_time": r["time"], "last_txn": r["txn"],
                         "last_time": r["time"], "snapshots": []})  # fmt: skip
            self.manifest = Manifest(self.lineage.hex(), self.generation, r["txn"], r["time"],
                                     r["entry"].hex(), generations=gens)  # fmt: skip
            self.shipped = r["entry"]
            self._advance_pin(r["txn"])
        gen = self.manifest.generation_info(self.generation)
        gen["snapshots"] = [s for s in gen["snapshots"] if s["txn"] != info["txn"]] + [info]
        self.manifest_dirty = True

    def _snapshot_due(self) -> bool:
        if self.snapshot_thread is not None or self.awaiting_first:
            return False
        if ch.entry_txn_id(self.captured) == self.last_snapshot_txn:
            return False  # nothing committed since
        if time.monotonic() - self.last_snapshot >= self.snapshot_interval:
            return True
        limit = self.snapshot_bytes
        if limit is None:
            limit = max(16 << 20, self.last_snapshot_bytes)
        return self.bytes_since_snapshot >= limit

    # ---- upload ----

    def _note_shipped(self, entry: bytes) -> None:
        m = self.manifest
        txn, t = ch.entry_txn_id(entry), ch.entry_time_us(entry) / 1e6
        m.last_txn, m.last_time, m.last_state = txn, t, entry.hex()
        gen = m.generation_info(self.generation)
        if gen is not None:
            gen["last_txn"], gen["last_time"] = txn, t

    def _upload(self, force_manifest: bool = False) -> None:
        if self.awaiting_first:
            return
        now = time.monotonic()
        if now < self.retry_at:
            return
        try:
            while self.queue:
                sealed = self.queue[0]
                sealed.file.seek(0)
                self.store.put(sealed.key, sealed.file)
                self.queue.popleft()
                sealed.file.close()
                self.shipped = sealed.last
                self._advance_pin(ch.entry_txn_id(sealed.last))
                self._note_shipped(sealed.last)
                self.stats["batches"] += 1
                self.stats["bytes"] += sealed.size
                if sealed.base >= self.last_snapshot_txn:
                    self.bytes_since_snapshot += sealed.size
                self.manifest_dirty = True
            if self.manifest_dirty or force_manifest or now - self.manifest_written >= HEARTBEAT:
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

    def _advance_pin(self, txn: int) -> None:
        ch.pin_advance(self.env, self.name, max(txn, self._pinned()))

    def _pinned(self) -> int:
        for pin in ch.pins(self.env):
            if pin["name"] == self.name:
                return pin["txnid"]
        raise ReplicationError("the replication pin of this replicator is gone")

    def _relieve_backlog(self) -> None:
        """R4: the store has been down long enough; stop holding the primary back."""
        queued = sum(s.size for s in self.queue)
        if queued >= self.max_backlog and self._pinned() < ch.entry_txn_id(self.captured):
            log.warning("%d bytes waiting for %s: no longer holding back page reuse on the "
                        "primary (a crash now starts a new generation)", queued,
                        self.store.url)  # fmt: skip
            self._advance_pin(ch.entry_txn_id(self.captured))

    # ---- the loop ----

    def step(self) -> None:
        """One round: capture, seal when due, snapshot when due, upload."""
        if self.snapshot_result is not None:
            self._snapshot_landed()
            if self.retain is not None and not self.awaiting_first:
                with contextlib.suppress(ObjectStoreError):
                    apply_retention(self.store, self.manifest, self.retain)
        self._capture()
        b = self.batch
        if b is not None and (
            time.monotonic() - b.opened >= self.interval or b.writer.raw_len >= MAX_BATCH
        ):
            self._seal()
        if self._snapshot_due():
            self._start_snapshot()
        self._upload()
        self._relieve_backlog()

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
        the pin (it stands pin_grace seconds for a replicator started again)."""
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
                    self._capture()
                    self._seal()
                    while (self.queue or self.manifest_dirty) and time.monotonic() < deadline:
                        self.retry_at = 0.0
                        self._upload()
                        if self.queue:
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
                ch.pin_release(env, self.name)
            env.close()
            self.store.close()

    def status(self) -> dict[str, Any]:
        """Where the replicator stands (for logs and tests)."""
        return {
            "generation": self.generation,
            "shipped_txn": ch.entry_txn_id(self.shipped) if self.shipped else None,
            "captured_txn": ch.entry_txn_id(self.captured) if self.captured else None,
            "queued": len(self.queue),
            **self.stats,
        }


def replicate(db_path: str, url: str, stop: threading.Event | None = None, **options: Any) -> None:
    """Run a Replicator until stop is set (see Replicator for the options)."""
    Replicator(db_path, url, **options).run(stop)
