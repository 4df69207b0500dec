"""The keys of a full-text index's named tree (index.py documents the whole layout):
term blocks under TERMS (an index byte, the escaped term, then the first rowid of the
block, big-endian with the sign bit flipped so that the B+tree's order is rowid
order), document sizes under DOCSIZE. Shared by the writer (index.py) and the query
runner (search.py)."""

from __future__ import annotations

import struct

from toondb.storage.keyspace import prefix_end
from toondb.text import _postings as P

__all__ = ["DOCSIZE", "TERMS", "MAIN"]

DOCSIZE = b"d"
TERMS = b"t"
MAIN = 48  # the index byte of the main index: "0"; prefix index n is 49 + its place
_U64 = struct.Struct(">Q")
_BIAS = 1 << 63


def _rowkey(rowid: int) -> bytes:
    return _U64.pack(rowid + _BIAS)


def _rowid_of(key: bytes) -> int:
    biased: int = _U64.unpack_from(key, len(key) - 8)[0]
    return biased - _BIAS


def _term_prefix(idx: int, term: bytes) -> bytes:
    return TERMS + bytes((idx,)) + P.escape_term(term) + b"\x00\x00"


def _successor(prefix: bytes) -> bytes | None:
    """The smallest key above every key that starts with prefix."""
    return prefix_end(prefix)
