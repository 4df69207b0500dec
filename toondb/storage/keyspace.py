"""The key space as a Python developer sees it: prefix and range scans, and the path
API (``put_path("users/alice/email", v)``), over any object with ``get``/``put``/
``delete`` and a ``_scan(start, end, reverse)`` cursor.

Shared by the embedded handles (``toondb.storage.env``) and the IPC client
(``toondb.ipc.client``), so that both give the same answers. A path is the key's
UTF-8 text: ``put_path("a/b", v)`` and ``put(b"a/b", v)`` store the same entry.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Union

from toondb.storage import _btree

__all__ = ["KeyValueAPI", "prefix_end", "path_key", "path_prefix", "BytesLike"]

BytesLike = Union[bytes, bytearray, memoryview]


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key that starts with prefix (None: no bound)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


def path_key(path: str) -> bytes:
    """The key of a path such as "users/alice/email" (ValueError for a malformed path)."""
    if not isinstance(path, str):
        raise TypeError(f"path must be a str like 'users/alice/email', not {type(path).__name__}")
    if not path or path.startswith("/") or path.endswith("/") or "//" in path:
        raise ValueError(
            f"invalid path {path!r}: a path is one or more non-empty segments separated by "
            "'/', with no leading or trailing '/'"
        )
    return path.encode("utf-8")


def path_prefix(path: str) -> bytes:
    """The key prefix of every path strictly below path ("" is the root)."""
    return b"" if path == "" else path_key(path) + b"/"


class KeyValueAPI:
    """Scans and the path API, for a class that has get/put/delete and _scan."""

    # provided by the class this is mixed into
    get: Any
    put: Any
    delete: Any
    _scan: Any

    def put_path(self, path: str, value: BytesLike) -> None:
        """Store value under a hierarchical path such as "users/alice/email"."""
        self.put(path_key(path), value)

    def get_path(self, path: str) -> bytes | None:
        """The value stored under path, or None."""
        return self.get(path_key(path))  # type: ignore[no-any-return]

    def delete_path(self, path: str) -> bool:
        """Delete the value stored under path (not its children); True if present."""
        return bool(self.delete(path_key(path)))

    def scan_path(self, path: str = "") -> Iterator[tuple[str, bytes]]:
        """(path, value) for every path strictly below path, in order."""
        prefix = path_prefix(path)
        for key, value in self.scan(prefix):
            yield key.decode("utf-8", "surrogateescape"), value

    def list_path(self, path: str = "") -> list[str]:
        """The names of path's immediate children, sorted (like listing a directory)."""
        prefix = path_prefix(path)
        end = prefix_end(prefix) if prefix else None
        names: set[str] = set()
        start = prefix
        while True:
            item = next(self._scan(start, end, False), None)
            if item is None:
                break
            name, slash, _ = item[0][len(prefix) :].partition(b"/")
            names.add(name.decode("utf-8", "surrogateescape"))
            # skip the child's subtree: every prefix+name+"/..." sorts below prefix+name+"0"
            start = prefix + name + (b"0" if slash else b"\x00")
        return sorted(names)

    def scan(
        self, start: BytesLike = b"", end: BytesLike | None = None, *, reverse: bool = False
    ) -> _btree.Cursor:
        """(key, value) in key order: with end, over [start, end); without, every
        key that starts with start (so scan(b"") is everything). reverse=True
        walks backwards. Memory stays flat however many keys the range holds."""
        if end is None:
            if not isinstance(start, bytes):
                start = _btree.as_bytes(start, "start")
            return self._scan(start, prefix_end(start), reverse)  # type: ignore[no-any-return]
        return self._scan(start, end, reverse)  # type: ignore[no-any-return]

    def scan_prefix(self, prefix: BytesLike) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) for every key that starts with prefix, in key order."""
        return self.scan(prefix)
