"""What a replica store holds, read back: the manifest, the chain of batches after a
snapshot, the objects of each generation (a listing: for display and retention only),
the choice of a snapshot for a point in time, and retention (``--retain 7d``).

Every object read goes through ``fetch``: a missing object is None, a damaged one a
``CorruptionError`` naming it. A chain is followed by names (``batch_key`` of the
last transaction of the object before), never by listing (see store.py).
"""

from __future__ import annotations

import time
from typing import IO, Any

from toondb.errors import CorruptionError, ReplicationError
from toondb.replication.objects import (
    BATCH,
    MANIFEST_KEY,
    Header,
    Manifest,
    batch_key,
    generation_prefix,
    parse_key,
    read_object,
    snapshot_key,
)
from toondb.replication.store import ObjectStore, retry

__all__ = [
    "fetch",
    "read_manifest",
    "write_manifest",
    "follow_chain",
    "missing_object",
    "choose_snapshot",
    "list_objects",
    "apply_retention",
    "describe",
    "parse_duration",
]


def fetch(store: ObjectStore, key: str, kind: int) -> tuple[IO[bytes], Header] | None:
    """An object, checked (header and payload checksum), positioned at its payload;
    None when the store has no such object."""
    f = retry(lambda: store.get(key))
    if f is None:
        return None
    try:
        return f, read_object(f, key, kind)
    except BaseException:
        f.close()
        raise


def read_manifest(store: ObjectStore) -> Manifest | None:
    f = retry(lambda: store.get(MANIFEST_KEY))
    if f is None:
        return None
    with f:
        return Manifest.decode(f)


def write_manifest(store: ObjectStore, manifest: Manifest) -> None:
    manifest.updated = time.time()
    with manifest.encode() as f:
        store.put(MANIFEST_KEY, f)


def check_batch(h: Header, key: str, generation: int, base: int, lineage: bytes) -> None:
    if h.generation != generation or h.base != base or h.lineage != lineage or h.last < base:
        raise CorruptionError(
            f"replica object {key} is damaged or misplaced: its header says generation "
            f"{h.generation}, transactions {h.base}..{h.last}"
        )


def follow_chain(
    store: ObjectStore, generation: int, lineage: bytes, base: int
) -> tuple[int, Header | None]:
    """Follow the batches from base to the last one the store holds: (the last
    transaction, the header of the last batch read, or None when there was none)."""
    last_header = None
    for _ in range(1 << 40):
        key = batch_key(generation, base)
        got = fetch(store, key, BATCH)
        if got is None:
            break
        f, h = got
        f.close()
        check_batch(h, key, generation, base, lineage)
        last_header = h
        if h.last == base:
            break  # cannot happen for a well-formed chain; do not spin
        base = h.last
    return base, last_header


def missing_object(generation: int, base: int, held_to: int) -> CorruptionError:
    return CorruptionError(
        f"replica object {batch_key(generation, base)} is missing: the store says "
        f"transactions up to {held_to} were shipped (deleted or lost; restore to an "
        f"earlier point, or start the replicator again for a new generation)"
    )


def choose_snapshot(
    manifest: Manifest, txn: int | None = None, at_time: float | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(generation info, snapshot info) to restore from: the newest generation that
    holds a snapshot at or before the target, and its newest such snapshot."""
    for gen in sorted(manifest.generations, key=lambda g: g["generation"], reverse=True):
        snaps = sorted(gen.get("snapshots", ()), key=lambda s: s["txn"], reverse=True)
        for snap in snaps:
            if txn is not None and snap["txn"] > txn:
                continue
            if at_time is not None and snap["time"] > at_time:
                continue
            return gen, snap
    what = f"transaction {txn}" if txn is not None else f"time {at_time}" if at_time else "now"
    raise ReplicationError(
        f"the store holds no snapshot at or before {what} (retention may have removed it)"
    )


def list_objects(store: ObjectStore) -> dict[int, dict[str, list[tuple[int, int]]]]:
    """{generation: {"snapshots": [(txn, bytes)], "batches": [(base, bytes)]}} by
    listing (eventually consistent on some stores: for display and retention only)."""
    out: dict[int, dict[str, list[tuple[int, int]]]] = {}
    for key, size in retry(lambda: store.list("generations/")):
        parsed = parse_key(key)
        if parsed is None:
            continue
        gen, kind, txn = parsed
        out.setdefault(gen, {"snapshots": [], "batches": []})[kind].append((txn, size))
    return out


def apply_retention(
    store: ObjectStore, manifest: Manifest, retain: float, now: float | None = None
) -> list[str]:
    """Drop what is older than retain seconds: keep every snapshot of the window and
    the newest one before it (so every point of the window stays restorable), the
    batches from there on, and the current generation whatever its age. The manifest
    is written first (readers never look for what is being deleted), then the
    objects are deleted. Returns the keys deleted."""
    now = time.time() if now is None else now
    cutoff = now - retain
    keep_from: dict[int, int] = {}
    generations = []
    for gen in sorted(manifest.generations, key=lambda g: g["generation"]):
        snaps = sorted(gen.get("snapshots", ()), key=lambda s: s["txn"])
        current = gen["generation"] == manifest.generation
        if not current and gen.get("last_time", 0) < cutoff:
            continue  # all of it is older than the window
        older = [s for s in snaps if s["time"] < cutoff]
        kept = ([older[-1]] if older else []) + [s for s in snaps if s["time"] >= cutoff]
        if not kept:
            continue
        generations.append({**gen, "snapshots": kept})
        keep_from[gen["generation"]] = kept[0]["txn"]
    dropped = [g["generation"] for g in manifest.generations if g["generation"] not in keep_from]
    changed = len(generations) != len(manifest.generations) or any(
        len(a.get("snapshots", ())) != len(b.get("snapshots", ()))
        for a, b in zip(generations, manifest.generations)
    )
    if changed:
        manifest.generations = generations
        write_manifest(store, manifest)
    doomed = []
    for number, objects in list_objects(store).items():
        if number == manifest.generation and number not in keep_from:
            continue
        first = keep_from.get(number)
        for kind, items in objects.items():
            for txn, _size in items:
                if first is None or number in dropped or txn < first:
                    doomed.append(
                        snapshot_key(number, txn) if kind == "snapshots" else batch_key(number, txn)
                    )
    if doomed:
        retry(lambda: store.delete(doomed))
    return doomed


def describe(store: ObjectStore) -> dict[str, Any]:
    """What ``toondb replicas list`` and ``replica-status`` show."""
    manifest = read_manifest(store)
    if manifest is None:
        raise ReplicationError(f"nothing has been replicated to {store.url} (no manifest)")
    listed = list_objects(store)
    generations = []
    for gen in sorted(manifest.generations, key=lambda g: g["generation"]):
        objs = listed.get(gen["generation"], {"snapshots": [], "batches": []})
        generations.append(
            {
                "generation": gen["generation"],
                "first_txn": gen.get("first_txn"),
                "last_txn": gen.get("last_txn"),
                "first_time": gen.get("first_time"),
                "last_time": gen.get("last_time"),
                "snapshots": gen.get("snapshots", []),
                "batches": len(objs["batches"]),
                "bytes": sum(s for _, s in objs["batches"]) + sum(s for _, s in objs["snapshots"]),
            }
        )
    return {
        "url": store.url,
        "generation": manifest.generation,
        "last_txn": manifest.last_txn,
        "last_time": manifest.last_time,
        "primary_txn": manifest.primary_txn,
        "updated": manifest.updated,
        "interval": manifest.interval,
        "generations": generations,
        "prefix": generation_prefix(manifest.generation),
    }


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> float:
    """Seconds of "7d", "12h", "30m", "45s", "2w" or a bare number of seconds."""
    t = text.strip().lower()
    try:
        if t and t[-1] in _UNITS:
            value = float(t[:-1]) * _UNITS[t[-1]]
        else:
            value = float(t)
    except ValueError:
        raise ValueError(f"not a duration: {text!r} (write 7d, 12h, 30m, 45s)") from None
    if value <= 0:
        raise ValueError(f"a duration must be positive, not {text!r}")
    return value
