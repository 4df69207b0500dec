"""FTS5's highlight() and snippet() over a Match and the row's text.

Both work on the UTF-8 bytes of the text and the tokenizer's byte offsets, as
fts5_aux.c does:

highlight
    The phrase instances of the column, coalesced where they overlap (an
    instance starting at or before the end of the previous one extends it), are
    wrapped in ``open`` / ``close``; a highlight stays open across the
    separators between adjacent instances of one coalesced run.
snippet
    Every instance in the column(s) proposes a window of ``tokens`` tokens
    around it, scored 1000 for each distinct phrase in the window and 1 for
    each repeat; the start of the sentence holding the instance (a token after
    whitespace that follows ``.`` or ``:``, or the first token) proposes a
    window too, scored the same plus 120 at the start of the text and 100
    elsewhere. The best (first of equals) window is highlighted, with
    ``ellipsis`` where it cuts the text.
"""

from __future__ import annotations

from collections.abc import Sequence

from toondb.errors import CorruptionError, FullTextError
from toondb.text.match import Match
from toondb.text.tokenizers import Tokenizer

__all__ = ["highlight", "snippet"]


class _CInst:
    """Coalesced phrase instances of one column (fts5CInstIter)."""

    def __init__(self, match: Match, col: int) -> None:
        self.inst = match.instances
        self.sizes = match.phrase_sizes
        self.col = col
        self.i = 0
        self.start = -1
        self.end = -1
        self.next()

    def next(self) -> None:
        self.start = self.end = -1
        while self.i < len(self.inst):
            ip, ic, io = self.inst[self.i]
            if ic == self.col:
                end = io - 1 + self.sizes[ip]
                if self.start < 0:
                    self.start, self.end = io, end
                elif io <= self.end:
                    if end > self.end:
                        self.end = end
                else:
                    break
            self.i += 1


class _Highlighter:
    """The state of fts5HighlightCb across the tokens of one text."""

    def __init__(self, text: bytes, open_: bytes, close: bytes, it: _CInst) -> None:
        self.z = text
        self.open = open_
        self.close = close
        self.it = it
        self.range_start = 0
        self.range_end = -1
        self.pos = 0
        self.off = 0
        self.is_open = False
        self.out: list[bytes] = []

    def copy(self, end: int) -> None:
        """Append the input from the current offset to end (FTS5 appends up to a
        NUL when the span is negative)."""
        if end < self.off:
            rest = self.z[self.off :]
            cut = rest.find(b"\x00")
            self.out.append(rest if cut < 0 else rest[:cut])
        else:
            self.out.append(self.z[self.off : end])

    def token(self, start: int, end: int) -> None:
        i = self.pos
        self.pos += 1
        it = self.it
        if self.range_end >= 0:
            if i < self.range_start or i > self.range_end:
                return
            if self.range_start and i == self.range_start:
                self.off = start
        if self.is_open and (i <= it.start or it.start < 0) and start > self.off:
            self.out.append(self.close)
            self.is_open = False
        if i == it.start and not self.is_open:
            self.copy(start)
            self.out.append(self.open)
            self.off = start
            self.is_open = True
        if i == it.end:
            if not self.is_open:
                self.out.append(self.open)
                self.is_open = True
            self.copy(end)
            self.off = end
            it.next()
        if i == self.range_end:
            if self.is_open:
                if it.start >= 0 and i >= it.start:
                    self.copy(end)
                    self.off = end
                self.out.append(self.close)
                self.is_open = False
            self.copy(end)
            self.off = end

    def result(self) -> str:
        # FTS5 builds the result as a C string: it ends at the first NUL
        out = b"".join(self.out)
        cut = out.find(b"\x00")
        return (out if cut < 0 else out[:cut]).decode("utf-8", "surrogatepass")


def _utf8(s: str | None) -> bytes:
    return s.encode("utf-8", "surrogatepass") if s is not None else b""


def highlight(
    tok: Tokenizer,
    match: Match,
    col: int,
    text: str | None,
    open: str | None,
    close: str | None,
    ncol: int,
) -> str | None:
    """highlight(t, col, open, close) for one row; None when text is None."""
    if col < 0 or col >= ncol:
        return ""  # FTS5: xColumnText reports SQLITE_RANGE
    if text is None:
        return None
    z = _utf8(text)
    h = _Highlighter(z, _utf8(open), _utf8(close), _CInst(match, col))
    for _, start, end in tok.tokenize(z):
        h.token(start, end)
    if h.is_open:
        h.out.append(h.close)
    h.copy(len(z))
    return h.result()


def _sentence_starts(tok: Tokenizer, z: bytes) -> list[int]:
    """Token numbers that begin a sentence (fts5SentenceFinderCb)."""
    starts: list[int] = []
    for pos, (_, start, _) in enumerate(tok.tokenize(z)):
        if pos == 0:
            starts.append(0)
            continue
        i = start - 1
        c = 0
        while i >= 0:
            c = z[i]
            if c not in (32, 9, 10, 13):
                break
            i -= 1
        if i != start - 1 and c in (46, 58):  # "." ":"
            starts.append(pos)
    return starts


def _c_div2(n: int) -> int:
    """n / 2 truncated toward zero, as C divides."""
    return -((-n) // 2) if n < 0 else n // 2


def _score(
    match: Match, ndoc: int, seen: list[bool], col: int, pos: int, ntok: int
) -> tuple[int, int]:
    """(score, adjusted start) of the window of ntok tokens at pos (fts5SnippetScore)."""
    end = pos + ntok
    score, first, last = 0, -1, 0
    for ip, ic, io in match.instances:
        if ic == col and pos <= io < end:
            score += 1 if seen[ip] else 1000
            seen[ip] = True
            if first < 0:
                first = io
            last = io + match.phrase_sizes[ip]
    adj = first - _c_div2(ntok - (last - first))
    if adj + ntok > ndoc:
        adj = ndoc - ntok
    if adj < 0:
        adj = 0
    return score, adj


def snippet(
    tok: Tokenizer,
    match: Match,
    col: int,
    texts: Sequence[str | None],
    column_sizes: Sequence[int],
    open: str | None,
    close: str | None,
    ellipsis: str | None,
    ntok: int,
) -> str | None:
    """snippet(t, col, open, close, ellipsis, ntok) for one row. texts: every
    column's value; column_sizes: the row's token count per column."""
    nphrase = len(match.phrase_sizes)
    if col >= len(texts):
        raise FullTextError("column index out of range")
    best_col = col if col >= 0 else 0
    best_start = 0
    best_score = 0
    col_size = 0
    ok = True  # FTS5's rc: reset by each column, set to CORRUPT by a bad instance
    for i in range(len(texts)):
        if col >= 0 and col != i:
            continue
        ok = True
        z = _utf8(texts[i]) if texts[i] is not None else None
        starts = _sentence_starts(tok, z) if z is not None else []
        ndoc = column_sizes[i]
        for _ip, ic, io in match.instances:
            if not ok:
                break
            if ic != i:
                continue
            if io > ndoc:
                ok = False  # FTS5 stops reading this column's instances
                continue
            score, adj = _score(match, ndoc, [False] * nphrase, i, io, ntok)
            if score > best_score:
                best_score, best_col, best_start, col_size = score, i, adj, ndoc
            if starts and ndoc > ntok:
                jj = 0
                while jj < len(starts) - 1 and starts[jj + 1] <= io:
                    jj += 1
                if starts[jj] < io:
                    score, _ = _score(match, ndoc, [False] * nphrase, i, starts[jj], ntok)
                    score += 120 if starts[jj] == 0 else 100
                    if score > best_score:
                        best_score, best_col, best_start, col_size = score, i, starts[jj], ndoc
    if not ok:
        raise CorruptionError("database disk image is malformed")
    if best_col >= len(texts) or texts[best_col] is None:
        return None
    z = _utf8(texts[best_col])
    if col_size == 0:
        col_size = column_sizes[best_col]
    h = _Highlighter(z, _utf8(open), _utf8(close), _CInst(match, best_col))
    h.range_start = best_start
    h.range_end = best_start + ntok - 1
    ell = _utf8(ellipsis)
    if best_start > 0:
        h.out.append(ell)
    while h.it.start >= 0 and h.it.start < best_start:
        h.it.next()
    for _, start, end in tok.tokenize(z):
        h.token(start, end)
    if h.is_open:
        h.out.append(h.close)
    if h.range_end >= col_size - 1:
        h.copy(len(z))
    else:
        h.out.append(ell)
    return h.result()
