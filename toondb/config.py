"""The configuration keys of ``Database.open(path, config)``, checked in one place.

Every key does something in this engine (docs/configuration.md says what);
an unknown key or a bad value raises ``ValueError`` naming it, and nothing is
opened.
"""

from __future__ import annotations

import difflib
import sys
from typing import Any

__all__ = ["DEFAULTS", "validate"]

_TIB = 1 << 40

DEFAULTS: dict[str, Any] = {
    # create the database directory and file when missing
    "create_if_missing": True,
    # "full": fsync every commit; "normal": fsync at sync points; "off": never
    "sync_mode": "normal",
    # the copy-on-write pages and double meta page are toondb's log; only True
    "wal_enabled": True,
    # sync_mode="normal": bytes written before a sync point (fsync)
    "memtable_size_bytes": 64 * 1024 * 1024,
    # sync_mode="normal": seconds after the last sync point before the next
    "sync_interval": 1.0,
    # bytes per page, a power of two from 512 to 32768; fixed when the file is created
    "page_size": 4096,
    # address space reserved for the file's mapping (not memory); the file's size limit
    "map_size": _TIB if sys.maxsize > 2**32 else 1 << 30,
    # never take the write lock; every write raises ReadOnlyError
    "read_only": False,
    # seconds a writer waits for the write lock before DatabaseLockedError
    "lock_timeout": 10.0,
    # slots in the shared reader table (concurrent snapshots of all processes)
    "max_readers": 510,
    # permission bits of the page file and lock file when this open creates them
    # (as open(2) takes them: the umask still clears bits); toondb-server: 0o600
    "file_mode": 0o644,
}

_PAGE_SIZES = (512, 1024, 2048, 4096, 8192, 16384, 32768)


def _bad(key: str, value: Any, want: str) -> ValueError:
    return ValueError(f"config key {key!r} must be {want}, not {value!r}")


def validate(config: dict[str, Any] | None) -> dict[str, Any]:
    """The full configuration: the defaults updated with config, every key checked."""
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict, not {type(config).__name__}")
    out = dict(DEFAULTS)
    for key, value in config.items():
        if key not in DEFAULTS:
            close = difflib.get_close_matches(str(key), DEFAULTS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"unknown config key {key!r}{hint} (known keys: {', '.join(sorted(DEFAULTS))})"
            )
        out[key] = value
    for key in ("create_if_missing", "read_only", "wal_enabled"):
        if not isinstance(out[key], bool):
            raise _bad(key, out[key], "True or False")
    if out["wal_enabled"] is not True:
        raise ValueError(
            "config key 'wal_enabled' cannot be False: toondb's copy-on-write pages and double "
            "meta page are its write-ahead log and cannot be turned off; for faster, less durable "
            "commits use sync_mode='off'"
        )
    if out["sync_mode"] not in ("full", "normal", "off"):
        raise _bad("sync_mode", out["sync_mode"], "'full', 'normal' or 'off'")
    for key, low in (("memtable_size_bytes", 0), ("map_size", 1 << 20), ("max_readers", 1)):
        value = out[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise _bad(key, value, f"an integer >= {low}")
    if out["max_readers"] > 65536:
        raise _bad("max_readers", out["max_readers"], "at most 65536")
    mode = out["file_mode"]
    if not isinstance(mode, int) or isinstance(mode, bool) or not 0 <= mode <= 0o777:
        raise _bad("file_mode", mode, "permission bits, an integer from 0 to 0o777 (e.g. 0o600)")
    if out["page_size"] not in _PAGE_SIZES or isinstance(out["page_size"], bool):
        raise _bad("page_size", out["page_size"], "a power of two from 512 to 32768")
    for key in ("sync_interval", "lock_timeout"):
        value = out[key]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
            raise _bad(key, value, "a number of seconds >= 0")
    return out
