"""Helpers for tests that forge page files (no tests here): change bytes of a page and
recompute its checksum, as a stale, misdirected or deliberately forged but whole page
would look. Layouts: the offset tables at the top of toondb/storage/_format.pxi."""

from __future__ import annotations

import os
import struct
from pathlib import Path

from toondb.storage._btree import _crc32c

META_USED = 256
M_STATE = 24
M_DURABLE = 88
M_ROOTS = 168
STATE_KV = 24  # the key-value tree descriptor within a state
STATE_CAT = 40  # the catalog tree descriptor within a state
PH_TYPE = 4
PH_AUX = 12
PH_TXNID = 16
P_OVERFLOW, P_FREELIST = 3, 4


def data_file(db_path: str | os.PathLike[str]) -> Path:
    path = Path(db_path)
    return path / "toondb.data" if path.is_dir() else path


def page_size(data: bytes | bytearray) -> int:
    return int(struct.unpack_from("<I", data, 20)[0])


def reseal(data: bytearray, pgno: int, psize: int) -> None:
    """Recompute the checksum of page pgno (of its whole extent for an overflow or
    freelist page; of the first 256 bytes for a meta page)."""
    start = pgno * psize
    if pgno < 2:
        end = start + META_USED
    else:
        n = 1
        if data[start + PH_TYPE] in (P_OVERFLOW, P_FREELIST):
            n = max(1, struct.unpack_from("<I", data, start + PH_AUX)[0])
        end = min(len(data), start + n * psize)
    struct.pack_into("<I", data, start, _crc32c(bytes(data[start + 4 : end])))


def patch(db_path: str | os.PathLike[str], old: bytes, new: bytes) -> list[int]:
    """Replace every occurrence of old in the page file by new (same length) and
    reseal each page changed (free pages may hold older copies of a live page);
    returns the page numbers."""
    assert len(old) == len(new)
    path = data_file(db_path)
    data = bytearray(path.read_bytes())
    psize = page_size(data)
    pages = []
    at = data.find(old)
    assert at >= 0, "the bytes to forge are not in the file"
    while at >= 0:
        data[at : at + len(old)] = new
        reseal(data, at // psize, psize)
        pages.append(at // psize)
        at = data.find(old, at + 1)
    path.write_bytes(bytes(data))
    return pages


def read_meta(data: bytes | bytearray, slot: int) -> dict[str, int]:
    """The fields of meta page slot that the forgeries change."""
    base = slot * page_size(data)
    txnid = struct.unpack_from("<Q", data, base + M_STATE)[0]
    root, depth, _flags, entries = struct.unpack_from("<IHHQ", data, base + M_STATE + STATE_KV)
    kv_txn, cat_txn = struct.unpack_from("<QQ", data, base + M_ROOTS)
    return {
        "txnid": txnid,
        "kv_root": root,
        "kv_depth": depth,
        "kv_entries": entries,
        "kv_root_txn": kv_txn,
        "cat_root_txn": cat_txn,
    }


def forge_meta(
    data: bytearray,
    slot: int,
    *,
    kv: tuple[int, int, int] | None = None,
    roots: tuple[int, int, int, int] | None = None,
) -> None:
    """Set meta page slot's key-value tree (root, depth, entries) in both its states
    and/or its four recorded root transactions (M_ROOTS), then reseal it."""
    psize = page_size(data)
    base = slot * psize
    if kv is not None:
        for state in (M_STATE, M_DURABLE):
            if struct.unpack_from("<Q", data, base + state)[0]:
                struct.pack_into("<IHHQ", data, base + state + STATE_KV, kv[0], kv[1], 0, kv[2])
    if roots is not None:
        struct.pack_into("<QQQQ", data, base + M_ROOTS, *roots)
    reseal(data, slot, psize)


def page_txnid(data: bytes | bytearray, pgno: int) -> int:
    return int(struct.unpack_from("<Q", data, pgno * page_size(data) + PH_TXNID)[0])
