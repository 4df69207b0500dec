"""StoredIndex.integrity_check: the invariants of the stored index (I1-I3 of
toondb/text/index.py, P1-P3 of _postings.pyx), as FTS5's 'integrity-check'
command verifies its own. Problems raise CorruptionError naming the index, the
term or the row."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from toondb.errors import CorruptionError
from toondb.text import _postings as P
from toondb.text.stored import StoredIndex

__all__ = ["check"]


def _fail(ix: StoredIndex, what: str) -> CorruptionError:
    return CorruptionError(f"full-text index {ix.name}: {what}")


def _stored_postings(ix: StoredIndex) -> dict[bytes, list[tuple[int, list[tuple[int, int]]]]]:
    """index byte + term -> [(rowid, [(column, offset)])], checking I1 and P1-P3."""
    ncol = len(ix.config.columns)
    out: dict[bytes, list[tuple[int, list[tuple[int, int]]]]] = {}
    for kp, blocks in ix._all_terms():
        if not kp.endswith(b"\x00\x00") or len(kp) < 4:
            raise _fail(ix, f"malformed term key {kp!r}")
        term = bytes((kp[1],)) + P.unescape_term(kp[2:-2])
        rows: list[tuple[int, list[tuple[int, int]]]] = []
        for _key, first, value in blocks:
            try:
                entries = P.decode_block(first, value, ncol)
            except CorruptionError as exc:
                raise _fail(ix, f"term {term[1:]!r}: {exc}") from None
            if len(entries) > 1 and len(value) > ix.block_limit(kp):
                raise _fail(ix, f"term {term[1:]!r}: a block of {len(value)} bytes (P3)")
            if rows and entries[0][0] <= rows[-1][0]:
                raise _fail(ix, f"term {term[1:]!r}: blocks overlap or descend (I1)")
            rows.extend(entries)
        out[term] = rows
    return out


def _stored_sizes(ix: StoredIndex) -> dict[int, list[int]]:
    ncol = len(ix.config.columns)
    sizes: dict[int, list[int]] = {}
    for k, v in ix.tree.scan(b"d", b"e"):
        if len(k) != 9:
            raise _fail(ix, f"malformed document-size key {k!r}")
        base = (int.from_bytes(k[1:], "big") << 7) - (1 << 63)
        try:
            for low, s in P.decode_docsizes(v, ncol):
                sizes[base + low] = list(s)
        except CorruptionError as exc:
            raise _fail(ix, str(exc)) from None
    return sizes


def check(ix: StoredIndex, rows: Iterable[tuple[int, Sequence[str | None]]] | None) -> None:
    postings = _stored_postings(ix)
    sizes = _stored_sizes(ix)
    ncol = len(ix.config.columns)
    # I2: totals and document sizes agree; postings stay inside their rows
    totals = ix._read_totals()
    if totals[0] != len(sizes):
        raise _fail(ix, f"{len(sizes)} rows have sizes but the totals say {totals[0]} (I2)")
    for c in range(ncol):
        if sum(s[c] for s in sizes.values()) != totals[c + 1]:
            raise _fail(ix, f"column {c}: document sizes do not sum to the total (I2)")
    for term, entries in postings.items():
        for rowid, positions in entries:
            s = sizes.get(rowid)
            if s is None:
                raise _fail(ix, f"term {term[1:]!r}: row {rowid} has no document size (I2)")
            for col, off in positions:
                if off >= s[col] or ix.config.unindexed[col]:
                    raise _fail(
                        ix, f"term {term[1:]!r}: row {rowid} column {col} offset {off} (I2)"
                    )
    if rows is None:
        return
    # I3: the postings are the rows' tokens
    expected = ix._new_pending()
    want_sizes: dict[int, list[int]] = {}
    for rowid, values in sorted(rows, key=lambda r: r[0]):
        want_sizes[rowid] = expected.add_row(rowid, list(values))
    if want_sizes != sizes:
        missing = sorted(set(want_sizes) ^ set(sizes))[:5]
        raise _fail(ix, f"document sizes differ from the rows (e.g. rows {missing}) (I3)")
    seen = set()
    for key, data, *_ in expected.terms():
        seen.add(key)
        want = P.decode_pending(data, ncol)
        if postings.get(key) != want:
            raise _fail(ix, f"term {key[1:]!r}: postings differ from the rows' tokens (I3)")
    extra = set(postings) - seen
    if extra:
        raise _fail(ix, f"term {sorted(extra)[0][1:]!r} is in the index but in no row (I3)")
