"""Full-text indexes in the page file: FTS5's index, stored in one named tree of
a storage transaction, written and read inside the caller's transaction.

::

    with db.transaction() as txn:
        ix = FullTextIndex.create(txn, "docs", ["title", "body"], {"tokenize": "porter"})
        ix.insert(1, ["Crash safety", "Copy-on-write pages survive a power cut"])
        ix.flush()                                  # before the transaction commits
    with db.transaction() as txn:
        ix = FullTextIndex.open(txn, "docs")
        for m in ix.search("power OR crash", limit=10):      # ORDER BY rank
            print(m.rowid, m.score, ix.highlight(m, 1, body_of(m.rowid), "[", "]"))

Storage layout
==============

One index is the named tree ``b"fts:" + name`` (UTF-8). Its keys:

=========================================  =====================================
key                                        value
=========================================  =====================================
``00 "config"``                            the configuration, JSON (config.py)
``00 "totals"``                            varint rows, varint column count, then
                                           per column varint total tokens
``"d" + u64be(block)``                     document sizes of rows whose biased
                                           rowid >> 7 is block (_blocks.pxi:
                                           ``(u8 rowid & 127, varint size per
                                           column)*`` ascending)
``"t" + idx + term' + 00 00 + u64be(r)``   a posting block of term (format and
                                           invariants P1-P3: _postings.pyx)
                                           whose first rowid is r
=========================================  =====================================

A biased rowid is ``rowid + 2**63`` (so big-endian order is rowid order); ``idx``
is ``"0"`` for the main index and ``"1"``, ``"2"``, ... for the prefix indexes in
the order of the ``prefix`` option (a prefix index holds, for each token with at
least n characters, its first n characters as a term); ``term'`` is the term
with each 00 byte written 00 01, so that terms sort as bytes and a term's
blocks are contiguous. A term is at most FTS5's 32768 bytes, and is cut so its
key fits the tree (about 980 bytes with 4 KiB pages): the one deviation of the
stored form, invisible unless tokens are that long.

Invariants (FullTextIndex.integrity_check verifies them):

I1. The blocks of a term cover disjoint, ascending rowid ranges (P1 across
    blocks); every block satisfies P1-P3.
I2. Every row with postings has a document-size entry; the sizes sum, per
    column, to the totals, and the number of entries is the row count.
I3. The postings of a term are exactly the tokens of the rows, as tokenizing
    their values again gives (checked when the rows are given).

Writing
=======

``insert`` tokenizes a row into an in-memory accumulator (PendingIndex, C);
``flush`` writes it: for each term (in key order) the stored blocks its
pending rowids fall among are merged with the pending entries and cut again
into blocks of at most the tree's inline value size, so an append rewrites only
the term's last block; document sizes and totals follow. ``flush`` runs by
itself when the accumulator passes ``flush_bytes``, before a delete, a search,
an insert whose rowid is not above the pending ones, and when the handle is
used as a context manager and exits without an exception. The caller must call
it (or leave the ``with``) before committing: nothing pending reaches the page
file otherwise. ``delete`` removes a row's entries from the blocks that hold
them (it needs the row's values, as FTS5's 'delete' command does).

Reading
=======

``search`` parses the query (query.py), decodes the doclist of each term
(prefixes merged, column filters applied), runs FTS5's evaluation state
machine over them (_evaluate.pxi, GIL released), and for ``order="rank"``
computes bm25 for every match from the stored document sizes and totals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from toondb.errors import CorruptionError, FullTextError
from toondb.text import _postings as P
from toondb.text.config import FullTextConfig, config_from
from toondb.text.keys import (
    _BIAS,
    _U64,
    DOCSIZE,
    TERMS,
    _rowid_of,
    _rowkey,
    _successor,
    _term_prefix,
)
from toondb.text.match import Match
from toondb.text.query import MAX_TOKEN_SIZE, Query, parse_query
from toondb.text.tokenizers import Tokenizer, tokenizer

__all__ = ["FullTextIndex", "Match", "TREE_PREFIX"]

TREE_PREFIX = b"fts:"
K_CONFIG = b"\x00config"
K_TOTALS = b"\x00totals"
FLUSH_BYTES = 16 << 20


def _varints(values: Sequence[int]) -> bytes:
    out = bytearray()
    for v in values:
        while v >= 0x80:
            out.append((v & 0x7F) | 0x80)
            v >>= 7
        out.append(v)
    return bytes(out)


def _read_varints(data: bytes) -> list[int]:
    out, v, shift = [], 0, 0
    for b in data:
        v |= (b & 0x7F) << shift
        if b < 0x80:
            out.append(v)
            v, shift = 0, 0
        else:
            shift += 7
    if shift:
        raise CorruptionError("full-text index: truncated totals")
    return out


class FullTextIndex:
    """A full-text index inside one storage transaction (see the module doc)."""

    def __init__(self, txn: Any, name: str, tree: Any, config: FullTextConfig) -> None:
        self.txn = txn
        self.name = name
        self.tree = tree
        self.config = config
        self.tokenizer: Tokenizer = tokenizer(config.tokenize or None)
        self.flush_bytes = FLUSH_BYTES
        page = getattr(getattr(txn, "database", None), "page_size", 4096)
        max_key = page // 4 - 32
        # the B+tree keeps a cell (6 header bytes, key, value) inline up to this size
        self._max_cell = (page - 28) // 4 - 2
        self._max_key_term = max_key - 12
        self._indexed = [not u for u in config.unindexed]
        self._pending = self._new_pending()
        self._pending_docs: list[tuple[int, list[int]]] = []
        self._totals = self._read_totals()

    # ------------------------------------------------------------------ setup
    @staticmethod
    def tree_name(name: str) -> bytes:
        return TREE_PREFIX + name.encode()

    @classmethod
    def create(
        cls,
        txn: Any,
        name: str,
        columns: Sequence[str] | FullTextConfig,
        options: Mapping[str, str] | None = None,
    ) -> FullTextIndex:
        """Create the index ``name``: columns are FTS5 column specs ("title",
        "body UNINDEXED") and options FTS5's table options ({"tokenize":
        "porter", "prefix": "2 3", "content": ""}); or a parsed FullTextConfig."""
        config = (
            columns if isinstance(columns, FullTextConfig) else config_from(columns, options, name)
        )
        tname = cls.tree_name(name)
        if txn.has_tree(tname):
            raise FullTextError(f"full-text index {name} already exists")
        tree = txn.tree(tname, create=True)
        tree.put(K_CONFIG, config.to_json())
        tree.put(K_TOTALS, _varints([0, len(config.columns)] + [0] * len(config.columns)))
        return cls(txn, name, tree, config)

    @classmethod
    def open(cls, txn: Any, name: str) -> FullTextIndex:
        tname = cls.tree_name(name)
        if not txn.has_tree(tname):
            raise FullTextError(f"no such full-text index: {name}")
        tree = txn.tree(tname)
        raw = tree.get(K_CONFIG)
        if raw is None:
            raise CorruptionError(f"full-text index {name}: no configuration record")
        try:
            config = FullTextConfig.from_json(raw)
        except (ValueError, TypeError, KeyError) as exc:
            raise CorruptionError(f"full-text index {name}: bad configuration ({exc})") from None
        return cls(txn, name, tree, config)

    @classmethod
    def exists(cls, txn: Any, name: str) -> bool:
        return bool(txn.has_tree(cls.tree_name(name)))

    @classmethod
    def drop(cls, txn: Any, name: str) -> bool:
        return bool(txn.drop_tree(cls.tree_name(name)))

    @property
    def columns(self) -> tuple[str, ...]:
        return self.config.columns

    def __enter__(self) -> FullTextIndex:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.flush()

    def __repr__(self) -> str:
        return f"FullTextIndex({self.name!r}, columns={list(self.columns)!r})"

    def _new_pending(self) -> Any:
        return P.PendingIndex(
            self.tokenizer,
            len(self.config.columns),
            self._indexed,
            list(self.config.prefixes),
            MAX_TOKEN_SIZE,
            self._max_key_term,
        )

    # ----------------------------------------------------------------- totals
    def _read_totals(self) -> list[int]:
        raw = self.tree.get(K_TOTALS)
        ncol = len(self.config.columns)
        if raw is None:
            raise CorruptionError(f"full-text index {self.name}: no totals record")
        vals = _read_varints(raw)
        if len(vals) != ncol + 2 or vals[1] != ncol:
            raise CorruptionError(f"full-text index {self.name}: totals record of the wrong shape")
        return [vals[0]] + vals[2:]

    def _write_totals(self) -> None:
        t = self._totals
        self.tree.put(K_TOTALS, _varints([t[0], len(t) - 1] + t[1:]))

    @property
    def row_count(self) -> int:
        """Rows in the index (FTS5's xRowCount), pending ones included."""
        return self._totals[0] + len(self._pending_docs)

    def total_tokens(self, column: int = -1) -> int:
        """Tokens in a column over all rows (-1: all columns; xColumnTotalSize)."""
        self.flush()
        t = self._totals[1:]
        return sum(t) if column < 0 else t[column]

    # ----------------------------------------------------------------- writes
    def insert(self, rowid: int, values: Sequence[str | None]) -> None:
        """Index a row: one value (str or None) per column."""
        if len(values) != len(self.config.columns):
            raise ValueError(f"expected {len(self.config.columns)} values, got {len(values)}")
        last = self._pending.last_rowid
        if last is not None and rowid <= last:
            self.flush()
        sizes = self._pending.add_row(rowid, values)
        self._pending_docs.append((rowid, sizes))
        if self._pending.nbytes > self.flush_bytes:
            self.flush()

    def insert_many(self, rows: Iterable[tuple[int, Sequence[str | None]]]) -> None:
        for rowid, values in rows:
            self.insert(rowid, values)

    def flush(self) -> None:
        """Write the pending rows into the tree (see the module doc)."""
        if not self._pending_docs:
            return
        try:
            for key, data in self._pending.terms():
                self._merge_term(key[0], key[1:], data, None)
            self._write_docsizes(self._pending_docs, remove=False)
            for _, sizes in self._pending_docs:
                for c, s in enumerate(sizes):
                    self._totals[c + 1] += s
            self._totals[0] += len(self._pending_docs)
            self._write_totals()
        finally:
            self._pending.clear()
            self._pending_docs = []

    def block_limit(self, kp: bytes) -> int:
        """The largest block value of a term whose keys start with kp (P3): its
        cell must stay inline, so four of them fill a page."""
        return max(64, self._max_cell - 6 - len(kp) - 8)

    def _term_blocks(self, kp: bytes, lo: int, hi: int) -> list[tuple[bytes, int, bytes]]:
        """The stored blocks of a term that may hold rowids in [lo, hi]: the one
        starting at or before lo and those starting in (lo, hi], in order."""
        out = []
        for k, v in self.tree.scan(kp, kp + _rowkey(hi) + b"\x00", reverse=True):
            r = _rowid_of(k)
            out.append((k, r, v))
            if r <= lo:
                break
        out.reverse()
        return out

    def _merge_term(self, idx: int, term: bytes, pending: bytes | None, deletes: Any) -> None:
        kp = _term_prefix(idx, term)
        if pending is not None:
            lo, hi, _ = P.pending_span(pending)
        else:
            lo, hi = min(deletes), max(deletes)
        old = self._term_blocks(kp, lo, hi)
        if pending is None and not old:
            return
        new = P.merge_blocks([(r, v) for _, r, v in old], pending, deletes, self.block_limit(kp))
        old_by_key = {k: v for k, _, v in old}
        tree = self.tree
        new_keys = set()
        for first, value in new:
            k = kp + _rowkey(first)
            new_keys.add(k)
            if old_by_key.get(k) != value:
                tree.put(k, value)
        for k in old_by_key:
            if k not in new_keys:
                tree.delete(k)

    def _write_docsizes(self, docs: Sequence[tuple[int, Sequence[int]]], remove: bool) -> None:
        ncol = len(self.config.columns)
        by_block: dict[int, list[tuple[int, Sequence[int]]]] = {}
        for rowid, sizes in docs:
            b = rowid + _BIAS
            by_block.setdefault(b >> 7, []).append((b & 127, sizes))
        for block, rows in by_block.items():
            key = DOCSIZE + _U64.pack(block)
            raw = self.tree.get(key)
            current = dict(P.decode_docsizes(raw, ncol)) if raw is not None else {}
            for low, sizes in rows:
                if remove:
                    current.pop(low, None)
                else:
                    current[low] = list(sizes)
            if current:
                self.tree.put(key, P.encode_docsizes(sorted(current.items())))
            elif raw is not None:
                self.tree.delete(key)

    def delete(self, rowid: int, values: Sequence[str | None] | None) -> None:
        """Remove a row, given the values it was indexed with (FTS5's 'delete'
        command). With values None (a contentless table with
        contentless_delete=1, where nobody has them) every term's blocks are
        searched for the row: correct, but a scan of the whole index."""
        if values is None:
            self._delete_unknown(rowid)
            return
        if len(values) != len(self.config.columns):
            raise ValueError(f"expected {len(self.config.columns)} values, got {len(values)}")
        self.flush()
        keys, sizes = P.row_terms(
            self.tokenizer,
            list(values),
            self._indexed,
            list(self.config.prefixes),
            MAX_TOKEN_SIZE,
            self._max_key_term,
        )
        gone = {rowid}
        for key in sorted(keys):
            self._merge_term(key[0], key[1:], None, gone)
        self._forget_row(rowid, sizes)

    def _forget_row(self, rowid: int, sizes: Sequence[int]) -> None:
        self._write_docsizes([(rowid, ())], remove=True)
        self._totals[0] -= 1
        for c, s in enumerate(sizes):
            self._totals[c + 1] -= s
        self._write_totals()

    def _delete_unknown(self, rowid: int) -> None:
        self.flush()
        sizes = self.column_sizes(rowid)
        gone = {rowid}
        for kp, blocks in self._all_terms():
            for _key, first, value in blocks:
                if first <= rowid <= P.block_last_rowid(first, value):
                    self._merge_term(kp[1], P.unescape_term(kp[2:-2]), None, gone)
                    break
        self._forget_row(rowid, sizes)

    def delete_all(self) -> None:
        """Empty the index (FTS5's 'delete-all'), keeping its configuration."""
        self._pending.clear()
        self._pending_docs = []
        self.txn.drop_tree(self.tree_name(self.name))
        self.tree = self.txn.tree(self.tree_name(self.name), create=True)
        self.tree.put(K_CONFIG, self.config.to_json())
        ncol = len(self.config.columns)
        self._totals = [0] * (ncol + 1)
        self._write_totals()

    def rebuild(self, rows: Iterable[tuple[int, Sequence[str | None]]]) -> None:
        """Index exactly these rows (FTS5's 'rebuild'), ascending rowids fastest."""
        self.delete_all()
        for rowid, values in sorted(rows, key=lambda r: r[0]):
            self.insert(rowid, values)
        self.flush()

    def optimize(self) -> None:
        """Repack every term's blocks full (FTS5's 'optimize')."""
        self.flush()
        for kp, blocks in self._all_terms():
            if len(blocks) < 2:
                continue
            new = P.merge_blocks([(r, v) for _, r, v in blocks], None, None, self.block_limit(kp))
            if [(r, v) for _, r, v in blocks] == new:
                continue
            for k, _, _ in blocks:
                self.tree.delete(k)
            for first, value in new:
                self.tree.put(kp + _rowkey(first), value)

    def _all_terms(self) -> Iterable[tuple[bytes, list[tuple[bytes, int, bytes]]]]:
        """(key prefix, [(key, first rowid, value)]) per stored term, in order."""
        cur_kp = None
        blocks: list[tuple[bytes, int, bytes]] = []
        for k, v in list(self.tree.scan(TERMS, _successor(TERMS))):
            kp = k[:-8]
            if kp != cur_kp:
                if cur_kp is not None:
                    yield cur_kp, blocks
                cur_kp, blocks = kp, []
            blocks.append((k, _rowid_of(k), v))
        if cur_kp is not None:
            yield cur_kp, blocks

    # ------------------------------------------------------------------ reads
    def search(
        self,
        query: str,
        column: int | str | None = None,
        *,
        order: str | None = "rank",
        descending: bool = False,
        limit: int | None = None,
        offset: int = 0,
        weights: Sequence[float] | None = None,
        scores: bool = True,
        min_rowid: int | None = None,
        max_rowid: int | None = None,
    ) -> list[Match]:
        """The rows matching an FTS5 query, with their bm25 (``score``, lower is
        better; ``weights`` per column as in ``bm25(t, w0, w1, ...)``) and
        phrase instances. ``column``: the column on the left of MATCH.
        ``order``: "rank" (bm25, then rowid), "rowid", or None (rowid order)."""
        from toondb.text.search import run_search

        self.flush()
        col = self.config.column_index(column) if isinstance(column, str) else column
        q = parse_query(query, self.config.columns, self.tokenizer, col)
        return run_search(
            self,
            q,
            order=order,
            descending=descending,
            limit=limit,
            offset=offset,
            weights=weights,
            scores=scores,
            min_rowid=min_rowid,
            max_rowid=max_rowid,
        )

    def parse(self, query: str, column: int | str | None = None) -> Query:
        col = self.config.column_index(column) if isinstance(column, str) else column
        return parse_query(query, self.config.columns, self.tokenizer, col)

    def no_match(self, rowid: int) -> Match:
        """The Match of a row read without a query (no phrases, bm25 -0.0): what
        FTS5's auxiliary functions see in a full scan."""
        return Match(rowid, -0.0, [], ())

    def rowids(self) -> list[int]:
        """Every rowid in the index, ascending (from the document-size blocks)."""
        self.flush()
        out: list[int] = []
        for k, v in self.tree.scan(DOCSIZE, _successor(DOCSIZE)):
            base = (_U64.unpack(k[1:])[0] << 7) - _BIAS
            out.extend(base + low for low, _ in P.decode_docsizes(v, len(self.config.columns)))
        return out

    def last_rowid(self) -> int | None:
        """The largest rowid in the index (None: it is empty)."""
        self.flush()
        for k, v in self.tree.scan(DOCSIZE, _successor(DOCSIZE), reverse=True):
            base = (_U64.unpack(k[1:])[0] << 7) - _BIAS
            rows = P.decode_docsizes(v, len(self.config.columns))
            return int(base + max(low for low, _ in rows))
        return None

    def column_sizes(self, rowid: int) -> list[int]:
        """The token count of each column of a row (FTS5's xColumnSize)."""
        self.flush()
        b = rowid + _BIAS
        raw = self.tree.get(DOCSIZE + _U64.pack(b >> 7))
        if raw is not None:
            for low, sizes in P.decode_docsizes(raw, len(self.config.columns)):
                if low == b & 127:
                    return list(sizes)
        return [0] * len(self.config.columns)

    def highlight(
        self, match: Match, col: int, text: str | None, open: str, close: str
    ) -> str | None:
        """FTS5's highlight(): text (the column's value) with each match wrapped."""
        from toondb.text.auxiliary import highlight

        return highlight(self.tokenizer, match, col, text, open, close, len(self.config.columns))

    def snippet(
        self,
        match: Match,
        col: int,
        text: str | Sequence[str | None] | None,
        open: str,
        close: str,
        ellipsis: str,
        tokens: int,
    ) -> str | None:
        """FTS5's snippet(): the best window of at most ``tokens`` tokens. text: the
        row's column values (all of them when col is -1), or col's value."""
        from toondb.text.auxiliary import snippet

        ncol = len(self.config.columns)
        if isinstance(text, str) or text is None:
            texts: list[str | None] = [None] * ncol
            if 0 <= col < ncol:
                texts[col] = text
        else:
            texts = list(text)
        sizes = (
            match.column_sizes if match.column_sizes is not None else self.column_sizes(match.rowid)
        )
        return snippet(self.tokenizer, match, col, texts, sizes, open, close, ellipsis, tokens)

    def integrity_check(
        self, rows: Iterable[tuple[int, Sequence[str | None]]] | None = None
    ) -> None:
        """Verify I1-I3 (I3 when rows are given); raises CorruptionError."""
        from toondb.text.integrity import check

        self.flush()
        check(self, rows)
