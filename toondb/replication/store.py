"""Object stores: the little replication (and sharding) asks of one, behind one
interface, with two backends.

``ObjectStore``: whole objects under string keys, each ``put`` atomic (a reader
sees the old object or the new one, never part of one; S3 guarantees it per PUT,
the file backend by writing a temporary file and renaming it), ``get`` (None when
absent), ``list`` by prefix, ``delete``. Every failure to reach or use the store
is an ``ObjectStoreError``; callers decide whether to retry (``retry``).

URLs (``open_store``):

- ``s3://bucket/prefix`` -- through boto3 (the optional extra
  ``toondb[replication]``), which reads credentials, region and the endpoint
  (``AWS_ENDPOINT_URL``, or ``AWS_ENDPOINT_URL_S3``) the usual way, so any
  S3-compatible store works (MinIO, Ceph, R2, moto).
- ``file:///absolute/dir`` -- a local or mounted directory; objects are files
  under it, fsynced before they are renamed into place.

Listing is used only to show what a store holds and to delete what retention
dropped, never to find the newest state (some S3-compatible stores list
eventually): that is found by ``get`` of names derived from the manifest
(toondb.replication.objects).
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import tempfile
import time
import urllib.parse
from collections.abc import Iterable
from typing import IO, Any, Callable, TypeVar

from toondb.errors import ObjectStoreError, ReplicationError

__all__ = ["ObjectStore", "FileStore", "S3Store", "open_store", "retry", "SPOOL_BYTES"]

SPOOL_BYTES = 16 << 20  # objects up to this size stay in memory, larger ones in a temp file

_T = TypeVar("_T")


def spool() -> IO[bytes]:
    """A temporary file for an object's bytes (in memory while small)."""
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115


class ObjectStore:
    """The object store interface (see the module docstring)."""

    url: str

    def put(self, key: str, data: bytes | IO[bytes]) -> None:
        """Store data (bytes, or a file read from its current position) under key,
        atomically replacing what was there."""
        raise NotImplementedError

    def get(self, key: str) -> IO[bytes] | None:
        """The object under key as a file positioned at its start, or None."""
        raise NotImplementedError

    def list(self, prefix: str) -> list[tuple[str, int]]:
        """(key, size) of every object whose key starts with prefix, in key order."""
        raise NotImplementedError

    def delete(self, keys: Iterable[str]) -> None:
        """Delete the objects (missing ones are no error)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"


class FileStore(ObjectStore):
    """Objects as files under a directory (file:///dir)."""

    def __init__(self, root: str, url: str | None = None) -> None:
        self.root = os.path.abspath(root)
        self.url = url or "file://" + self.root

    def _path(self, key: str) -> str:
        parts = [p for p in key.split("/") if p]
        if not parts or any(p in (".", "..") or p.startswith(".tmp-") for p in parts):
            raise ValueError(f"bad object key {key!r}")
        return os.path.join(self.root, *parts)

    def put(self, key: str, data: bytes | IO[bytes]) -> None:
        path = self._path(key)
        directory = os.path.dirname(path)
        try:
            os.makedirs(directory, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
            try:
                with os.fdopen(fd, "wb") as f:
                    if isinstance(data, (bytes, bytearray, memoryview)):
                        f.write(data)
                    else:
                        while True:
                            chunk = data.read(1 << 20)
                            if not chunk:
                                break
                            f.write(chunk)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            dfd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError as e:
            raise ObjectStoreError(f"cannot write {key} to {self.url}: {e}") from e

    def get(self, key: str) -> IO[bytes] | None:
        path = self._path(key)
        try:
            f = open(path, "rb")  # noqa: SIM115
        except FileNotFoundError:
            return None
        except OSError as e:
            raise ObjectStoreError(f"cannot read {key} from {self.url}: {e}") from e
        return f

    def list(self, prefix: str) -> list[tuple[str, int]]:
        out = []
        try:
            for dirpath, _dirs, files in os.walk(self.root):
                for name in files:
                    if name.startswith(".tmp-"):
                        continue
                    full = os.path.join(dirpath, name)
                    key = os.path.relpath(full, self.root).replace(os.sep, "/")
                    if key.startswith(prefix):
                        with contextlib.suppress(FileNotFoundError):
                            out.append((key, os.path.getsize(full)))
        except OSError as e:
            raise ObjectStoreError(f"cannot list {self.url}: {e}") from e
        return sorted(out)

    def delete(self, keys: Iterable[str]) -> None:
        for key in keys:
            try:
                os.unlink(self._path(key))
            except FileNotFoundError:
                pass
            except OSError as e:
                raise ObjectStoreError(f"cannot delete {key} from {self.url}: {e}") from e


class S3Store(ObjectStore):
    """Objects in an S3 bucket under a prefix (s3://bucket/prefix), through boto3."""

    def __init__(self, bucket: str, prefix: str, url: str, client: Any = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.url = url
        if client is None:
            try:
                import boto3
                from botocore.config import Config
            except ImportError:
                raise ReplicationError(
                    "s3:// URLs need boto3: pip install 'toondb[replication]'"
                ) from None
            config = Config(
                retries={"max_attempts": 2, "mode": "standard"},
                connect_timeout=3,
                read_timeout=30,
            )
            client = boto3.session.Session().client("s3", config=config)
        self.client = client

    def _fail(self, what: str, key: str, e: BaseException) -> ObjectStoreError:
        return ObjectStoreError(f"cannot {what} {key} at {self.url}: {e}")

    @staticmethod
    def _missing(e: BaseException) -> bool:
        code = getattr(e, "response", {}).get("Error", {}).get("Code", "")
        return code in ("NoSuchKey", "404", "NotFound")

    def put(self, key: str, data: bytes | IO[bytes]) -> None:
        try:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                start = data.tell()
                size = data.seek(0, os.SEEK_END) - start
                data.seek(start)
                if size > SPOOL_BYTES:
                    # multipart (one object once complete); boto3 may close what it is
                    # given when an upload fails, and the caller retries with the file
                    self.client.upload_fileobj(_Unclosable(data), self.bucket, self.prefix + key)
                    return
                data = data.read()
            self.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=bytes(data))
        except Exception as e:  # noqa: BLE001 - botocore's errors have no one base class
            raise self._fail("write", key, e) from e

    def get(self, key: str) -> IO[bytes] | None:
        try:
            reply = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
            out = spool()
            body = reply["Body"]
            while True:
                chunk = body.read(1 << 20)
                if not chunk:
                    break
                out.write(chunk)
            out.seek(0)
            return out
        except Exception as e:  # noqa: BLE001
            if self._missing(e):
                return None
            raise self._fail("read", key, e) from e

    def list(self, prefix: str) -> list[tuple[str, int]]:
        out = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + prefix
            )
            for page in pages:
                for obj in page.get("Contents", ()):
                    out.append((obj["Key"][len(self.prefix) :], int(obj["Size"])))
        except Exception as e:  # noqa: BLE001
            raise self._fail("list", prefix or "/", e) from e
        return sorted(out)

    def delete(self, keys: Iterable[str]) -> None:
        batch = [self.prefix + k for k in keys]
        for i in range(0, len(batch), 1000):
            chunk = [{"Key": k} for k in batch[i : i + 1000]]
            try:
                self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": chunk, "Quiet": True}
                )
            except Exception as e:  # noqa: BLE001
                raise self._fail("delete", chunk[0]["Key"], e) from e

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()


class _Unclosable(io.RawIOBase):
    """A file that close() leaves open (it belongs to the caller)."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self._f.read(len(b))
        b[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()


def open_store(url: str) -> ObjectStore:
    """The store a URL names: s3://bucket/prefix or file:///dir."""
    if not isinstance(url, str):
        raise TypeError("the store URL must be a string")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ReplicationError(f"no bucket in {url!r}; write s3://bucket/prefix")
        return S3Store(parts.netloc, urllib.parse.unquote(parts.path), url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ReplicationError(f"file URLs name a local directory: file:///dir, not {url!r}")
        path = urllib.parse.unquote(parts.path)
        if not path:
            raise ReplicationError(f"no directory in {url!r}; write file:///dir")
        return FileStore(path, url)
    raise ReplicationError(
        f"unsupported store URL {url!r}: use s3://bucket/prefix or file:///directory"
    )


def retry(
    op: Callable[[], _T],
    *,
    attempts: int = 6,
    first_delay: float = 0.2,
    max_delay: float = 5.0,
    sleep: Callable[[float], Any] = time.sleep,
) -> _T:
    """op(), retried on ObjectStoreError with exponential backoff and jitter, at
    most attempts times in all (the last error is raised)."""
    delay = first_delay
    for attempt in range(attempts):
        try:
            return op()
        except ObjectStoreError:
            if attempt == attempts - 1:
                raise
        sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, max_delay)
    raise AssertionError("unreachable")
