"""A sharded index in an object store: ``ShardedIndex.build(..., path="s3://bucket/idx")``.

``ObjectStoreLocation`` is the StorageLocation (location.py) of an ``s3://`` URL, over
the object store of toondb.replication (boto3; any S3-compatible endpoint the usual
``AWS_ENDPOINT_URL`` names). What each operation does:

- ``staging_path(name)`` is a file in this node's cache directory; ``publish(name)``
  uploads it (one atomic PUT, multipart for large files) and then uploads
  ``name.sha256``, the SHA-256 of what it uploaded (a sidecar object, invariant 1).
- ``local_path(name)`` returns the cached copy when the cache's record of its SHA-256
  equals the store's sidecar (one small GET), else downloads the object into the
  cache (to a temporary file renamed into place) first. So a node downloads a shard
  once, and again only when the shard was rewritten (after ``add``/``delete`` another
  node published).
- ``read_text`` / ``write_text`` / ``exists`` / ``size`` / ``names`` / ``remove`` go to
  the store directly; ``prepare`` refuses a prefix that holds objects already.

The cache: ``$TOONDB_CACHE_DIR`` (default ``~/.cache/toondb``) ``/locations/<hash of
the URL>/``: a file per object and ``.NAME.sha256``, the SHA-256 of the cached bytes.
The cache is only a copy: deleting it costs a download, never data.

Invariants:

1. A ``name.sha256`` object is written after ``name`` and names the bytes of the
   latest complete upload; a reader that finds the sidecar and the object
   disagreeing (a publish died between the two PUTs) downloads the object and
   trusts the bytes it got (the manifest's checksum then decides, shard_server.py).
2. A cached file is complete: it is written under a temporary name, synced and
   renamed, and its ``.sha256`` record is written after the rename.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from typing import Any

from toondb.errors import ShardedIndexError

__all__ = ["ObjectStoreLocation", "cache_root"]

SIDECAR = ".sha256"
_CHUNK = 1 << 20


def cache_root() -> str:
    """The node's cache directory for object-store locations."""
    base = os.environ.get("TOONDB_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "toondb"
    )
    return os.path.join(base, "locations")


class ObjectStoreLocation:
    """The files of one sharded index under an object-store URL (module docstring)."""

    __slots__ = ("_url", "_store")

    def __init__(self, url: str) -> None:
        self._url = url.rstrip("/")
        self._store: Any = None

    def __repr__(self) -> str:
        return f"ObjectStoreLocation({self._url!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ObjectStoreLocation) and other._url == self._url

    def __hash__(self) -> int:
        return hash(self._url)

    # pickled to the shard workers as the URL alone: each opens its own client
    def __getstate__(self) -> str:
        return self._url

    def __setstate__(self, state: str) -> None:
        self._url = state
        self._store = None

    @property
    def url(self) -> str:
        return self._url

    @property
    def store(self) -> Any:
        if self._store is None:
            from toondb.replication.store import open_store

            self._store = open_store(self._url + "/")
        return self._store

    @property
    def cache_dir(self) -> str:
        digest = hashlib.sha256(self._url.encode()).hexdigest()[:24]
        path = os.path.join(cache_root(), digest)
        os.makedirs(path, exist_ok=True)
        return path

    @staticmethod
    def _check(name: str) -> str:
        if not name or "/" in name or name.startswith(".") or name.endswith(SIDECAR):
            raise ValueError(f"a file name inside the location, not {name!r}")
        return name

    def _cached(self, name: str) -> str:
        return os.path.join(self.cache_dir, self._check(name))

    def _record(self, name: str) -> str:
        return os.path.join(self.cache_dir, f".{name}{SIDECAR}")

    def _cached_sha(self, name: str) -> str | None:
        if not os.path.exists(self._cached(name)):
            return None
        try:
            with open(self._record(name), encoding="ascii") as f:
                return f.read().strip() or None
        except OSError:
            return None

    def _remote_sha(self, name: str) -> str | None:
        got = self.store.get(name + SIDECAR)
        if got is None:
            return None
        with got:
            return bytes(got.read()).decode("ascii", "replace").strip() or None

    # -- the StorageLocation interface ----------------------------------------------

    def local_path(self, name: str) -> str:
        path = self._cached(name)
        remote = self._remote_sha(name)
        if remote is not None and remote == self._cached_sha(name):
            return path
        got = self.store.get(name)
        if got is None:
            raise FileNotFoundError(f"{self._url}/{name}: no such object")
        digest = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=self.cache_dir)
        try:
            with got, os.fdopen(fd, "wb") as out:
                while chunk := got.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise
        self._write_record(name, digest.hexdigest())
        return path

    def staging_path(self, name: str) -> str:
        path = self._cached(name)
        try:  # what is staged is not yet a verified copy of anything
            os.remove(self._record(name))
        except FileNotFoundError:
            pass
        return path

    def publish(self, name: str) -> None:
        path = self._cached(name)
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
            f.seek(0)
            self.store.put(name, f)
        sha = digest.hexdigest()
        self.store.put(name + SIDECAR, sha.encode("ascii"))  # invariant 1
        self._write_record(name, sha)

    def _write_record(self, name: str, sha: str) -> None:
        record = self._record(name)
        tmp = record + ".part"
        with open(tmp, "w", encoding="ascii") as f:
            f.write(sha)
        os.replace(tmp, record)  # invariant 2: after the file itself

    def read_text(self, name: str) -> str:
        got = self.store.get(self._check(name))
        if got is None:
            raise FileNotFoundError(f"{self._url}/{name}: no such object")
        with got:
            return bytes(got.read()).decode("utf-8")

    def write_text(self, name: str, text: str) -> None:
        self.store.put(self._check(name), text.encode("utf-8"))  # one PUT: atomic

    def _listing(self) -> dict[str, int]:
        return dict(self.store.list(""))

    def exists(self, name: str) -> bool:
        return self._check(name) in self._listing()

    def size(self, name: str) -> int:
        sizes = self._listing()
        if self._check(name) not in sizes:
            raise FileNotFoundError(f"{self._url}/{name}: no such object")
        return sizes[name]

    def remove(self, name: str) -> None:
        self.store.delete([self._check(name), name + SIDECAR])
        for path in (self._record(name), self._cached(name)):
            try:
                os.remove(path)
            except FileNotFoundError:
                pass

    def names(self) -> list[str]:
        return sorted(k for k in self._listing() if "/" not in k and not k.endswith(SIDECAR))

    def prepare(self) -> None:
        """Refuse a prefix that holds objects already (a build never overwrites)."""
        if self.store.list(""):
            raise ShardedIndexError(
                f"{self._url!r} is not empty; a sharded index is built under a new or "
                "empty prefix (remove the old one first, or choose another URL)"
            )
