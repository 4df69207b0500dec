"""Running a parsed query against a StoredIndex: loading the doclists of its
terms, compiling the expression tree for the evaluator (_postings.Matcher),
and ranking with FTS5's bm25.

bm25 (fts5_aux.c): for a row with D tokens (all columns) in a table of N rows
averaging avgdl tokens, and per phrase i the weighted count f_i of its
instances (each instance adds its column's weight, 1.0 by default),

    score = -sum_i idf_i * f_i * (k1 + 1) / (f_i + k1 * (1 - b + b * D / avgdl))

with k1 = 1.2, b = 0.75 and idf_i = log((N - n_i + 0.5) / (n_i + 0.5)),
clamped to 1e-6 when not positive, n_i being the rows the phrase alone
matches (FTS5's xQueryPhrase: the phrase with its column filter). ORDER BY
rank sorts by score, then rowid (FTS5's sorter keeps the rowid order of equal
scores).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from toondb.text import _postings as P
from toondb.text.keys import _rowid_of, _successor, _term_prefix
from toondb.text.match import Match
from toondb.text.query import AND, EOF, NOT, OR, STRING, TERM, Node, Query
from toondb.text.stored import StoredIndex

__all__ = ["run_search", "compile_query"]

_KIND = {TERM: 1, STRING: 2, AND: 3, OR: 4, NOT: 5, EOF: 6}
_U64 = struct.Struct(">Q")
_BIAS = 1 << 63


def _char_len(term: bytes) -> int:
    """UTF-8 characters, counted as FTS5 counts them (lead bytes)."""
    return sum(1 for b in term if b & 0xC0 != 0x80)


class _Loader:
    """Doclists of the query's terms, each decoded once per (term, prefix,
    column filter)."""

    def __init__(self, ix: StoredIndex) -> None:
        self.ix = ix
        self.cache: dict[tuple[bytes, bool, tuple[int, ...] | None], Any] = {}

    def doclist(self, term: bytes, prefix: bool, colset: list[int] | None) -> Any:

        ix = self.ix
        term = P.cut_term(term, ix._max_key_term)
        key = (term, prefix, tuple(colset) if colset is not None else None)
        dl = self.cache.get(key)
        if dl is not None:
            return dl
        tree = ix.tree
        if not prefix:
            kp = _term_prefix(48, term)
            blocks = [(_rowid_of(k), v) for k, v in tree.scan(kp, kp + b"\xff" * 9)]
            dl = P.build_doclist([blocks], colset, False)
        else:
            nchar = _char_len(term)
            prefixes = ix.config.prefixes
            if nchar in prefixes:
                kp = _term_prefix(49 + prefixes.index(nchar), term)
                blocks = [(_rowid_of(k), v) for k, v in tree.scan(kp, kp + b"\xff" * 9)]
                dl = P.build_doclist([blocks], colset, False)
            else:
                start = b"t0" + P.escape_term(term)
                sources: list[list[tuple[int, bytes]]] = []
                last = None
                for k, v in tree.scan(start, _successor(start)):
                    kp = k[:-8]
                    if kp != last:
                        sources.append([])
                        last = kp
                    sources[-1].append((_rowid_of(k), v))
                dl = P.build_doclist(sources, colset, True)
        self.cache[key] = dl
        return dl


def compile_query(
    ix: StoredIndex, q: Query
) -> tuple[list[Any], list[Any], list[Any], int, _Loader]:
    """(nodes, phrases, terms, root, loader) for P.Matcher (see its doc)."""
    loader = _Loader(ix)
    nodes: list[tuple[Any, ...]] = []
    node_of_phrase: dict[int, int] = {}

    def walk(node: Node) -> int:
        me = len(nodes)
        nodes.append(())
        children = [walk(c) for c in node.children]
        phrase0 = node.phrases[0].index if node.phrases else 0
        for p in node.phrases:
            node_of_phrase[p.index] = me
        nodes[me] = (
            _KIND[node.kind],
            children,
            phrase0,
            len(node.phrases),
            node.near,
            node.colset is not None,
        )
        return me

    assert q.root is not None
    root = walk(q.root)
    colset_of = _colsets(q.root)
    phrases: list[tuple[int, int, int]] = []
    terms: list[tuple[Any, bool]] = []
    for p in q.phrases:
        phrases.append((node_of_phrase.get(p.index, root), len(terms), len(p.terms)))
        colset = colset_of.get(p.index)
        for t in p.terms:
            terms.append((loader.doclist(t.text, t.prefix, colset), t.first))
    return nodes, phrases, terms, root, loader


def _colsets(
    node: Node, out: dict[int, list[int] | None] | None = None
) -> dict[int, list[int] | None]:
    out = {} if out is None else out
    for p in node.phrases:
        out[p.index] = node.colset
    for c in node.children:
        _colsets(c, out)
    return out


def _phrase_hits(
    q: Query, terms: list[Any], phrases: list[Any], colset_of: dict[Any, Any]
) -> list[int]:
    """Rows each phrase matches alone (FTS5's xQueryPhrase of a cloned phrase)."""
    hits = []
    for k, p in enumerate(q.phrases):
        _, term0, nterm = phrases[k]
        kind = 1 if nterm == 1 and not p.terms[0].first else 2
        colset = colset_of.get(p.index)
        m = P.Matcher(
            [(kind, [], 0, 1, 10, colset is not None)],
            [(0, 0, nterm)],
            terms[term0 : term0 + nterm],
            0,
        )
        hits.append(m.run(positions=False))
    return hits


def _row_tokens(ix: StoredIndex, rowids: np.ndarray) -> bytes:
    """Token counts (all columns) of the rows, from the document-size blocks."""
    if len(rowids) == 0:
        return b""
    biased = rowids.view(np.uint64) ^ np.uint64(_BIAS)
    block_ids = np.unique(biased >> np.uint64(7))
    tree = ix.tree
    blocks = []
    for b in block_ids.tolist():
        base = (b << 7) - _BIAS
        blocks.append((base, tree.get(b"d" + _U64.pack(b))))
    return P.row_token_totals(blocks, len(ix.config.columns), rowids.tobytes())


def run_search(
    ix: StoredIndex,
    q: Query,
    *,
    order: str | None,
    descending: bool,
    limit: int | None,
    offset: int,
    weights: Sequence[float] | None,
    scores: bool,
    min_rowid: int | None,
    max_rowid: int | None,
) -> list[Match]:
    if order not in (None, "rank", "rowid"):
        raise ValueError(f"order must be 'rank', 'rowid' or None, not {order!r}")
    if q.root is None or ix.row_count == 0:
        return []
    nodes, phrases, terms, root, _ = compile_query(ix, q)
    matcher = P.Matcher(nodes, phrases, terms, root)
    ranked = order == "rank"
    want = None if limit is None else offset + limit
    early = not ranked and not descending and not scores and want is not None
    n = matcher.run(min_rowid, max_rowid, want if early and want is not None else -1, True)
    if n == 0:
        return []
    rowids = np.frombuffer(matcher.rowids(), dtype=np.int64)
    score_arr = None
    if ranked or scores:
        nrow = ix._totals[0]
        avgdl = float(sum(ix._totals[1:])) / float(nrow)
        colset_of = _colsets(q.root)
        idf = [P.bm25_idf(nrow, h) for h in _phrase_hits(q, terms, phrases, colset_of)]
        D = _row_tokens(ix, rowids)
        score_arr = np.frombuffer(
            matcher.bm25(D, idf, list(weights or ()), avgdl), dtype=np.float64
        )
    if ranked:
        assert score_arr is not None
        if descending:
            idx = np.lexsort((rowids, -score_arr))
        else:
            idx = np.lexsort((rowids, score_arr))
    else:
        idx = np.arange(n)[::-1] if descending else np.arange(n)
    idx = idx[offset : None if limit is None else offset + limit]
    sizes = tuple(len(p.terms) for p in q.phrases)
    out = []
    for k in idx.tolist():
        out.append(
            Match(
                int(rowids[k]),
                float(score_arr[k]) if score_arr is not None else None,
                matcher.positions(k),
                sizes,
            )
        )
    return out
