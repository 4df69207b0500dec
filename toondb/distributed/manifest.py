"""The manifest of a sharded index: ``manifest.json`` beside the shard files.

A sharded index is a directory (a StorageLocation, location.py) holding one ``.hnsw``
page file per shard (each a complete toondb vector index, openable on its own with
``toondb.bulk.open_index``) and this manifest, a UTF-8 JSON object:

| field | type | meaning |
| --- | --- | --- |
| ``format`` | str | ``"toondb-sharded-index"`` |
| ``version`` | int | 1 |
| ``metric`` | str | ``"cosine"``, ``"l2"`` or ``"ip"`` (every shard's) |
| ``dimension`` | int | every shard's |
| ``m``, ``ef_construction`` | int | the build parameters of every shard |
| ``seed`` | int | shard i was built with seed + i |
| ``partition`` | object | ``{"scheme": "id-hash", "hash": "splitmix64"}`` (partition.py) |
| ``vectors`` | int | live vectors in all shards when the manifest was written |
| ``shards`` | array | one object per shard, in shard order (below) |
| ``created`` | str | UTC time of the build, ISO 8601 |
| ``toondb_version`` | str | the version that built it |

Each shard object:

| field | type | meaning |
| --- | --- | --- |
| ``shard`` | int | its number, 0 .. len(shards)-1, equal to its position |
| ``file`` | str | its file name in the location (``shard-00003.hnsw``) |
| ``vectors`` | int | its live vectors |
| ``bytes`` | int or null | the file's size; null while ``sha256`` is null |
| ``sha256`` | str or null | hex SHA-256 of the file's bytes; null once a write (add, upsert, delete) began on the shard, until the writer's close() records the new one |

Invariants (kept by build.py and sharded_index.py, checked by ``Manifest.parse``):

1. The partition is fixed at build: an id is owned by shard ``splitmix64(id) mod
   len(shards)`` for the index's whole life (writes route by it; a search may rely on
   an id living in one shard only).
2. The manifest is written last by a build (after every shard file is synced), and
   replaced atomically (``StorageLocation.write_text``): a directory without one is an
   unfinished build, never a sharded index with missing shards.
3. A shard entry whose ``sha256`` is not null describes its file's exact bytes: a
   writer sets it to null (and writes the manifest) BEFORE its first write to the
   shard, and records the new checksum only after closing the shard.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from toondb.distributed.location import StorageLocation
from toondb.distributed.partition import HASH, SCHEME
from toondb.errors import ShardedIndexError
from toondb.vector.checks import METRICS

__all__ = ["Manifest", "ShardEntry", "MANIFEST_NAME", "shard_file_name", "file_sha256"]

MANIFEST_NAME = "manifest.json"
FORMAT = "toondb-sharded-index"
VERSION = 1


def shard_file_name(shard: int) -> str:
    return f"shard-{shard:05d}.hnsw"


def file_sha256(path: str, block: int = 1 << 22) -> str:
    """Hex SHA-256 of a file's bytes, read in blocks of 4 MiB."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            chunk = f.read(block)
            if not chunk:
                return h.hexdigest()
            h.update(chunk)


@dataclass(frozen=True)
class ShardEntry:
    shard: int
    file: str
    vectors: int
    bytes: int | None
    sha256: str | None


@dataclass(frozen=True)
class Manifest:
    metric: str
    dimension: int
    m: int
    ef_construction: int
    seed: int
    shards: tuple[ShardEntry, ...]
    created: str = ""
    toondb_version: str = ""
    partition: dict[str, str] = field(default_factory=lambda: {"scheme": SCHEME, "hash": HASH})

    @property
    def vectors(self) -> int:
        return sum(s.vectors for s in self.shards)

    def with_shard(self, entry: ShardEntry) -> Manifest:
        shards = list(self.shards)
        shards[entry.shard] = entry
        return replace(self, shards=tuple(shards))

    # -- text ---------------------------------------------------------------------------

    def dumps(self) -> str:
        doc: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "metric": self.metric,
            "dimension": self.dimension,
            "m": self.m,
            "ef_construction": self.ef_construction,
            "seed": self.seed,
            "partition": dict(self.partition),
            "vectors": self.vectors,
            "shards": [asdict(s) for s in self.shards],
            "created": self.created or _now(),
            "toondb_version": self.toondb_version or _version(),
        }
        return json.dumps(doc, indent=1) + "\n"

    @classmethod
    def parse(cls, text: str, where: str = "manifest") -> Manifest:
        """A Manifest from its JSON text; ShardedIndexError for anything that is not
        a version-1 manifest that keeps the invariants above."""
        try:
            doc = json.loads(text)
        except ValueError as e:
            raise ShardedIndexError(f"{where}: not JSON ({e})") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ShardedIndexError(f"{where}: not a toondb sharded-index manifest")
        if doc.get("version") != VERSION:
            raise ShardedIndexError(
                f"{where}: manifest version {doc.get('version')!r}; this toondb reads version {VERSION}"
            )
        try:
            metric = doc["metric"]
            if metric not in METRICS:
                raise ValueError(f"metric {metric!r}")
            part = doc["partition"]
            if part != {"scheme": SCHEME, "hash": HASH}:
                raise ValueError(f"partition {part!r} (this toondb routes by {SCHEME}/{HASH})")
            entries = []
            for i, s in enumerate(doc["shards"]):
                entry = ShardEntry(
                    shard=_int(s["shard"]),
                    file=str(s["file"]),
                    vectors=_int(s["vectors"]),
                    bytes=None if s.get("bytes") is None else _int(s["bytes"]),
                    sha256=None if s.get("sha256") is None else str(s["sha256"]),
                )
                if entry.shard != i:
                    raise ValueError(f"shard {entry.shard} at position {i}")
                if "/" in entry.file or entry.file in ("", ".", ".."):
                    raise ValueError(f"shard file {entry.file!r}")
                entries.append(entry)
            if not entries:
                raise ValueError("no shards")
            return cls(
                metric=metric,
                dimension=_int(doc["dimension"]),
                m=_int(doc["m"]),
                ef_construction=_int(doc["ef_construction"]),
                seed=_int(doc["seed"]),
                shards=tuple(entries),
                created=str(doc.get("created", "")),
                toondb_version=str(doc.get("toondb_version", "")),
                partition=dict(part),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ShardedIndexError(f"{where}: malformed manifest ({e})") from None

    # -- in a location ------------------------------------------------------------------

    @classmethod
    def read(cls, location: StorageLocation) -> Manifest:
        if not location.exists(MANIFEST_NAME):
            spools = [n for n in location.names() if n.endswith(".spool")]
            why = " (an unfinished build: spool files are there)" if spools else ""
            raise ShardedIndexError(
                f"{location.url!r} holds no sharded index: no {MANIFEST_NAME}{why}"
            )
        return cls.parse(location.read_text(MANIFEST_NAME), f"{location.url}/{MANIFEST_NAME}")

    def write(self, location: StorageLocation) -> None:
        location.write_text(MANIFEST_NAME, self.dumps())


def _int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ValueError(f"{v!r} is not a count")
    return v


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _version() -> str:
    from toondb.version import __version__

    return str(__version__)
