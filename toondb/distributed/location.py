"""Where a sharded index's files live: the storage-location interface.

A sharded index is a set of named files (``manifest.json``, ``shard-00000.hnsw``, ...,
and the build's spool files) under one location. Every piece of toondb.distributed
reaches those files only through a ``StorageLocation``, never through a path it
joins itself, so that a ``path`` which is a URL (an object store: ``s3://bucket/idx``)
can be served by another implementation of this small interface without touching the
builder, the shard servers or the index:

- ``local_path(name)``: a path on THIS machine from which the named file can be read
  (a shard server maps it). A local directory returns the file itself; an object
  store would download the object into a local cache first (once per node) and return
  the cached copy.
- ``staging_path(name)``: a local path to write the named file to; ``publish(name)``
  then makes what was written there visible under ``name`` to every node. A local
  directory writes in place and publishes by doing nothing; an object store would
  stage in a local temporary directory and upload on publish.
- ``read_text`` / ``write_text`` (atomic: a reader sees the old text or the new one),
  ``exists``, ``size``, ``remove``, ``names``, ``prepare`` (create the location, refusing one
  that holds files already).

A location is pickled to the shard workers (processes or Ray actors), so it holds only
plain data. ``resolve_location(path)`` picks the implementation: a local (or network-mounted)
directory, or ``file://dir``: ``LocalDirectory``; ``s3://bucket/prefix``:
``ObjectStoreLocation`` (object_location.py); any other scheme raises ``ValueError``.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any, Protocol, Union, runtime_checkable

from toondb.errors import ShardedIndexError

__all__ = ["StorageLocation", "LocalDirectory", "resolve_location"]

PathLike = Union[str, "os.PathLike[str]"]


@runtime_checkable
class StorageLocation(Protocol):
    """The files of one sharded index (see the module's docstring)."""

    @property
    def url(self) -> str: ...

    def local_path(self, name: str) -> str: ...

    def staging_path(self, name: str) -> str: ...

    def publish(self, name: str) -> None: ...

    def read_text(self, name: str) -> str: ...

    def write_text(self, name: str, text: str) -> None: ...

    def exists(self, name: str) -> bool: ...

    def size(self, name: str) -> int: ...

    def remove(self, name: str) -> None: ...

    def names(self) -> list[str]: ...

    def prepare(self) -> None: ...


class LocalDirectory:
    """A directory of this machine's file system, or of a file system every node
    mounts at the same path (NFS, a cluster file system): the Ray backend's shard
    actors open the shard files by this path on whatever node they run."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)

    def __repr__(self) -> str:
        return f"LocalDirectory({self.path!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LocalDirectory) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    def __getstate__(self) -> str:
        return self.path

    def __setstate__(self, state: str) -> None:
        self.path = state

    @property
    def url(self) -> str:
        return self.path

    def _file(self, name: str) -> str:
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"a file name inside the location, not {name!r}")
        return os.path.join(self.path, name)

    def local_path(self, name: str) -> str:
        return self._file(name)

    def staging_path(self, name: str) -> str:
        return self._file(name)  # written in place: publish has nothing to do

    def publish(self, name: str) -> None:
        _fsync_dir(self.path)

    def read_text(self, name: str) -> str:
        with open(self._file(name), encoding="utf-8") as f:
            return f.read()

    def write_text(self, name: str, text: str) -> None:
        """Atomic: a temporary file in the directory, synced, renamed over name."""
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=self.path)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self._file(name))
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise
        _fsync_dir(self.path)

    def exists(self, name: str) -> bool:
        return os.path.exists(self._file(name))

    def size(self, name: str) -> int:
        return os.path.getsize(self._file(name))

    def remove(self, name: str) -> None:
        try:
            os.remove(self._file(name))
        except FileNotFoundError:
            pass

    def names(self) -> list[str]:
        try:
            return sorted(os.listdir(self.path))
        except FileNotFoundError:
            return []

    def prepare(self) -> None:
        """Create the directory; refuse one that already holds files (a build never
        overwrites: remove the old index first, or build elsewhere)."""
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise ShardedIndexError(f"{self.path!r} exists and is not a directory")
        os.makedirs(self.path, exist_ok=True)
        if os.listdir(self.path):
            raise ShardedIndexError(
                f"{self.path!r} is not empty; a sharded index is built into a new or "
                "empty directory (remove the old one first, or choose another path)"
            )


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - a platform without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _object_store(url: str) -> StorageLocation:
    from toondb.distributed.object_location import ObjectStoreLocation

    return ObjectStoreLocation(url)


# scheme -> factory(url) for locations that are not local directories: the object
# stores of toondb.replication (object_location.py)
_SCHEMES: dict[str, Any] = {"s3": _object_store}


def resolve_location(path: PathLike | StorageLocation) -> StorageLocation:
    """The StorageLocation of path: a StorageLocation as it is; a directory path (or a
    ``file://`` URL) as a LocalDirectory; another ``scheme://`` URL through the
    factory registered for its scheme (s3://; another scheme: ValueError)."""
    if isinstance(path, StorageLocation) and not isinstance(path, (str, os.PathLike)):
        return path
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"path must be a directory path (str or os.PathLike), not {type(path).__name__}"
        )
    p = os.fspath(path)
    p = p if isinstance(p, str) else os.fsdecode(p)
    if "://" in p:
        scheme, rest = p.split("://", 1)
        if scheme == "file":
            return LocalDirectory(rest)
        factory = _SCHEMES.get(scheme)
        if factory is None:
            raise ValueError(
                f"{p!r}: {scheme}:// locations are not supported; give a directory "
                "(local, or mounted at the same path on every node) or s3://bucket/prefix"
            )
        loc: StorageLocation = factory(p)
        return loc
    return LocalDirectory(p)
