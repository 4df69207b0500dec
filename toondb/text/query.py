"""FTS5's full-text query language: the parser and the expression tree it builds.

::

    expr = parse_query('title : "full text" NEAR(index search, 5) OR prefix*',
                       columns=["title", "body"], tokenizer=tok)

Grammar (SQLite's fts5parse.y, an LALR grammar; NOT binds tightest, then AND,
then OR, all left-associative; a sequence of phrases is an implicit AND that
binds tighter still, but only between phrases / NEAR groups, never after a
parenthesis)::

    expr       := expr AND expr | expr OR expr | expr NOT expr
                | colset ":" "(" expr ")" | "(" expr ")" | exprlist
    exprlist   := cnearset | exprlist cnearset
    cnearset   := nearset | colset ":" nearset
    nearset    := phrase | "^" phrase | STRING "(" phrase+ ["," STRING] ")"
    phrase     := STRING ["*"] | phrase "+" STRING ["*"]
    colset     := STRING | "-" STRING | "{" STRING+ "}" | "-" "{" STRING+ "}"

STRING is a bareword (ASCII letters, digits, ``_``, 0x1A, any non-ASCII
character) or a ``"double quoted"`` string (``""`` for a quote); barewords
``AND``, ``OR``, ``NOT`` (upper case) are the operators. Each STRING of a phrase
is run through the table's tokenizer; its tokens become the phrase's terms, the
last one a prefix term when a ``*`` follows. ``STRING (`` starts a NEAR group
whatever the STRING is; that it spells ``NEAR`` is checked when the group ends.

Errors are FTS5's, reported at the token where FTS5's parser detects them:
``fts5: syntax error near "X"``, ``unterminated string``, ``no such column: X``,
``expected integer, got "X"``, ``fts5: parser stack overflow`` (the LALR stack
holds 99 symbols; the depth is modelled exactly), ``fts5 expression tree is too
large (maximum depth 256)``.

The tree keeps FTS5's shapes, which decide phrase numbering (bm25, highlight)
and evaluation order: an AND/OR child of the same operator is flattened into
its parent; an empty phrase (a string with no tokens) makes its node match
nothing, and is dropped from an implicit AND and from a NEAR group that has
other phrases; nested column filters intersect, and an empty intersection
matches nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from toondb.errors import FullTextError
from toondb.text._tokenize import Tokenizer

__all__ = ["Term", "Phrase", "Node", "Query", "parse_query", "MAX_TOKEN_SIZE"]

MAX_TOKEN_SIZE = 32768  # FTS5 truncates longer tokens
DEFAULT_NEAR = 10
MAX_DEPTH = 256  # expression tree height
STACK_LIMIT = 99  # symbols the LALR stack holds

# node kinds
TERM = "term"  # one phrase of one non-^ term: the index iterator is the node
STRING = "string"  # a NEAR group / phrase needing position checks
AND = "and"
OR = "or"
NOT = "not"
EOF = "eof"  # matches nothing


@dataclass
class Term:
    text: bytes
    prefix: bool = False
    first: bool = False  # ^: only at offset 0 of a column


@dataclass
class Phrase:
    terms: list[Term] = field(default_factory=list)
    index: int = -1  # position in Query.phrases (set when the parse ends)

    @property
    def size(self) -> int:
        return len(self.terms)


@dataclass
class Node:
    kind: str
    children: list[Node] = field(default_factory=list)
    phrases: list[Phrase] = field(default_factory=list)  # TERM / STRING / EOF nodes
    near: int = DEFAULT_NEAR
    colset: list[int] | None = None  # sorted column numbers, None for all
    height: int = 0


@dataclass
class Query:
    root: Node | None  # None: the query matches nothing (all of it was empty)
    phrases: list[Phrase]
    text: str


# ---------------------------------------------------------------------------
# Lexer
# ---------------------------------------------------------------------------

# token kinds
T_EOF, T_STRING, T_LP, T_RP, T_LCP, T_RCP, T_COLON, T_COMMA = range(8)
T_PLUS, T_STAR, T_MINUS, T_CARET, T_AND, T_OR, T_NOT = range(8, 15)
_PUNCT = {
    "(": T_LP,
    ")": T_RP,
    "{": T_LCP,
    "}": T_RCP,
    ":": T_COLON,
    ",": T_COMMA,
    "+": T_PLUS,
    "*": T_STAR,
    "-": T_MINUS,
    "^": T_CARET,
}
_KEYWORD = {"AND": T_AND, "OR": T_OR, "NOT": T_NOT}
_SPACE = " \t\n\r"


def _bareword(ch: str) -> bool:
    o = ord(ch)
    return o >= 0x80 or 48 <= o <= 57 or 65 <= o <= 90 or 97 <= o <= 122 or o == 95 or o == 0x1A


class _Lexer:
    """FTS5's fts5ExprGetToken, run lazily: a token is read only when the parser
    needs it, so an error further on is not reported before an earlier one."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.toks: list[tuple[int, str]] = []

    def get(self, k: int) -> tuple[int, str]:
        while len(self.toks) <= k:
            if self.toks and self.toks[-1][0] == T_EOF:
                return self.toks[-1]
            self.toks.append(self._next())
        return self.toks[k]

    def _next(self) -> tuple[int, str]:
        text, n = self.text, len(self.text)
        i = self.i
        while i < n and text[i] in _SPACE:
            i += 1
        if i >= n:
            self.i = i
            return (T_EOF, "")
        ch = text[i]
        if ch in _PUNCT:
            self.i = i + 1
            return (_PUNCT[ch], ch)
        if ch == '"':
            j = i + 1
            while True:
                if j >= n:
                    raise FullTextError("unterminated string")
                if text[j] == '"':
                    if j + 1 < n and text[j + 1] == '"':
                        j += 2
                        continue
                    j += 1
                    break
                j += 1
            self.i = j
            return (T_STRING, text[i:j])
        if _bareword(ch):
            j = i + 1
            while j < n and _bareword(text[j]):
                j += 1
            word = text[i:j]
            self.i = j
            return (_KEYWORD.get(word, T_STRING), word)
        raise FullTextError(f'fts5: syntax error near "{ch}"')


def _dequote(raw: str) -> str:
    if raw.startswith('"'):
        return raw[1:-1].replace('""', '"')
    return raw


# ---------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str, columns: Sequence[str], tok: Tokenizer) -> None:
        self.lexer = _Lexer(text)
        self.pos = 0
        self.columns = [c.lower() for c in columns]
        self.ncol = len(columns)
        self.tok = tok
        self.phrases: list[Phrase] = []  # FTS5's apPhrase, in parse order
        self.depth = 0  # symbols on the LALR stack

    # -- tokens and the stack model --
    def peek(self, k: int = 0) -> int:
        return self.lexer.get(self.pos + k)[0]

    def raw(self, k: int = 0) -> str:
        return self.lexer.get(self.pos + k)[1]

    def take(self) -> str:
        raw = self.raw()
        self.pos += 1
        return raw

    def error(self) -> FullTextError:
        return FullTextError(f'fts5: syntax error near "{self.raw()}"')

    def push(self, n: int = 1) -> None:
        self.depth += n
        if self.depth > STACK_LIMIT:
            raise FullTextError("fts5: parser stack overflow")

    def shift(self) -> str:
        self.push()
        return self.take()

    # -- terms and phrases --
    def tokens_of(self, raw: str) -> list[bytes]:
        out = []
        for token, _, _ in self.tok.tokenize(_dequote(raw)):
            out.append(token[:MAX_TOKEN_SIZE])
        return out

    def phrase(self) -> Phrase:
        """phrase := STRING ["*"] ("+" STRING ["*"])*; the STRING is next."""
        base = self.depth
        phrase = Phrase()
        self.phrases.append(phrase)
        while True:
            raw = self.shift()
            if self.peek() == T_STAR:
                self.shift()
                star = True
            else:
                self.push()  # the empty star_opt
                star = False
            terms = [Term(t) for t in self.tokens_of(raw)]
            phrase.terms.extend(terms)
            if phrase.terms:
                phrase.terms[-1].prefix = star
            self.depth = base + 1  # reduced to phrase
            if self.peek() != T_PLUS:
                return phrase
            self.shift()
            if self.peek() != T_STRING:
                raise self.error()

    def column(self, raw: str) -> int:
        name = _dequote(raw)
        try:
            return self.columns.index(name.lower())
        except ValueError:
            raise FullTextError(f"no such column: {name}") from None

    def colset(self) -> list[int]:
        """colset := ["-"] (STRING | "{" STRING+ "}"); returns sorted columns."""
        base = self.depth
        invert = False
        if self.peek() == T_MINUS:
            self.shift()
            invert = True
        if self.peek() == T_STRING:
            self.shift()
            self.peek()  # FTS5 reduces (and looks the column up) on the next token
            cols = {self.column(self.raw(-1))}
        elif self.peek() == T_LCP:
            self.shift()
            if self.peek() != T_STRING:
                raise self.error()
            cols = set()
            while self.peek() == T_STRING:
                self.shift()
                self.peek()
                cols.add(self.column(self.raw(-1)))
                self.depth = base + (2 if invert else 1) + 1  # colsetlist
            if self.peek() != T_RCP:
                raise self.error()
            self.shift()
        else:
            raise self.error()
        self.depth = base + 1
        if invert:
            cols = set(range(self.ncol)) - cols
        return sorted(cols)

    def nearset(self) -> Node:
        """nearset := phrase | "^" phrase | STRING "(" phrase+ ["," STRING] ")"."""
        base = self.depth
        if self.peek() == T_CARET:
            self.shift()
            if self.peek() != T_STRING:
                raise self.error()
            phrase = self.phrase()
            if phrase.terms:
                phrase.terms[0].first = True
            self.depth = base + 1
            return self.string_node([phrase], DEFAULT_NEAR)
        if self.peek() == T_STRING and self.peek(1) == T_LP:
            name = self.shift()
            self.shift()
            if self.peek() != T_STRING:
                raise self.error()
            phrases: list[Phrase] = []
            while self.peek() == T_STRING:
                self._near_add(phrases, self.phrase())
                self.depth = base + 3  # STRING ( nearphrases
            if self.peek() == T_COMMA:
                self.shift()
                if self.peek() != T_STRING:
                    raise self.error()
                dist = self.shift()
                self.depth = base + 4  # neardist_opt
            else:
                self.push()  # the empty neardist_opt
                dist = ""
            if self.peek() != T_RP:
                raise self.error()
            self.shift()
            self.peek()  # the group is reduced, and checked, on the next token
            if name != "NEAR":
                raise FullTextError(f'fts5: syntax error near "{name}"')
            near = DEFAULT_NEAR
            if dist:
                near = 0
                for ch in dist:
                    if not "0" <= ch <= "9":
                        raise FullTextError(f'expected integer, got "{dist}"')
                    near = (near * 10 + ord(ch) - 48) & 0xFFFFFFFF  # C int arithmetic
                if near >= 1 << 31:
                    near -= 1 << 32
            self.depth = base + 1
            return self.string_node(phrases, near)
        if self.peek() != T_STRING:
            raise self.error()
        phrase = self.phrase()
        self.depth = base + 1
        return self.string_node([phrase], DEFAULT_NEAR)

    def _near_add(self, phrases: list[Phrase], phrase: Phrase) -> None:
        # FTS5 drops an empty phrase from a NEAR group that has another one
        if phrases and not phrase.terms:
            self.drop(phrase)
        elif phrases and not phrases[-1].terms:
            self.drop(phrases[-1])
            phrases[-1] = phrase
        else:
            phrases.append(phrase)

    def drop(self, phrase: Phrase) -> None:
        for i, p in enumerate(self.phrases):
            if p is phrase:
                del self.phrases[i]
                return

    def string_node(self, phrases: list[Phrase], near: int) -> Node:
        if any(not p.terms for p in phrases):
            return Node(EOF, phrases=phrases, near=near)
        p0 = phrases[0]
        if len(phrases) == 1 and len(p0.terms) == 1 and not p0.terms[0].first:
            return Node(TERM, phrases=phrases, near=near)
        return Node(STRING, phrases=phrases, near=near)

    def cnearset(self) -> Node:
        """cnearset := nearset | colset ":" nearset."""
        base = self.depth
        if self._at_colset():
            cols = self.colset()
            if self.peek() != T_COLON:
                raise self.error()
            self.shift()
            node = self.nearset()
            self.depth = base + 1
            _set_colset(node, cols)
            return node
        node = self.nearset()
        self.depth = base + 1
        return node

    def _at_colset(self) -> bool:
        k = self.peek()
        return k in (T_MINUS, T_LCP) or (k == T_STRING and self.peek(1) == T_COLON)

    def primary(self) -> Node:
        """An operand of AND/OR/NOT: a parenthesis, a filtered parenthesis, or an
        exprlist (cnearset+)."""
        base = self.depth
        k = self.peek()
        if k == T_LP:
            self.shift()
            node = self.expr()
            if self.peek() != T_RP:
                raise self.error()
            self.shift()
            self.depth = base + 1
            return node
        if self._at_colset():
            cols = self.colset()
            if self.peek() != T_COLON:
                raise self.error()
            self.shift()
            if self.peek() == T_LP:
                self.shift()
                node = self.expr()
                if self.peek() != T_RP:
                    raise self.error()
                self.shift()
                self.depth = base + 1
                _set_colset(node, cols)
                return node
            node = self.nearset()
            _set_colset(node, cols)
            return self.exprlist_rest(node, base)
        if k in (T_STRING, T_CARET):
            node = self.cnearset()
            return self.exprlist_rest(node, base)
        raise self.error()

    def exprlist_rest(self, node: Node, base: int) -> Node:
        """More cnearsets after the first: FTS5's implicit AND."""
        self.depth = base + 1
        while self.peek() in (T_STRING, T_CARET, T_MINUS, T_LCP):
            right = self.cnearset()
            self.peek()
            node = self.implicit_and(node, right)
            self.depth = base + 1
        return node

    def implicit_and(self, left: Node, right: Node) -> Node:
        prev = left.children[-1] if left.kind == AND else left
        if right.kind == EOF:
            for p in right.phrases:
                self.drop(p)
            return left
        if prev.kind == EOF:
            for p in prev.phrases:
                self.drop(p)
            if prev is left:
                return right
            left.children[-1] = right  # (FTS5 keeps the node's height)
            return left
        return _combine(AND, left, right)

    def expr(self, min_prec: int = 1) -> Node:
        """Precedence climbing over AND (2), OR (1), NOT (3), left-associative."""
        base = self.depth
        left = self.primary()
        self.depth = base + 1
        prec = {T_OR: 1, T_AND: 2, T_NOT: 3}
        kinds = {T_OR: OR, T_AND: AND, T_NOT: NOT}
        while self.peek() in prec and prec[self.peek()] >= min_prec:
            op = self.peek()
            self.shift()
            right = self.expr(prec[op] + 1)
            left = _combine(kinds[op], left, right)
            self.depth = base + 1
        return left


def _combine(kind: str, left: Node, right: Node) -> Node:
    node = Node(kind)
    for child in (left, right):
        if kind != NOT and child.kind == kind:
            node.children.extend(child.children)
        else:
            node.children.append(child)
    node.height = max(c.height for c in node.children) + 1
    if node.height > MAX_DEPTH:
        raise FullTextError(f"fts5 expression tree is too large (maximum depth {MAX_DEPTH})")
    return node


def _set_colset(node: Node, cols: list[int]) -> None:
    if node.kind in (TERM, STRING):
        if node.colset is not None:
            node.colset = [c for c in node.colset if c in cols]
            if not node.colset:
                node.kind = EOF
        else:
            node.colset = list(cols)
    else:
        for child in node.children:
            _set_colset(child, cols)


def parse_query(
    text: str, columns: Sequence[str], tokenizer: Tokenizer, column: int | None = None
) -> Query:
    """Parse a MATCH string. ``column``: the column named on the left of MATCH
    (FTS5 then filters the whole expression to it)."""
    if "\x00" in text:
        text = text[: text.index("\x00")]  # FTS5 reads a C string
    if text.startswith("*"):
        word = text[1:].lstrip(" ").split(" ", 1)[0]
        raise FullTextError(f"unknown special query: {word}")
    parser = _Parser(text, columns, tokenizer)
    root = parser.expr()
    if parser.peek() != T_EOF:
        raise parser.error()
    if column is not None and 0 <= column < len(columns):
        _set_colset(root, [column])
    for i, phrase in enumerate(parser.phrases):
        phrase.index = i
    return Query(root, parser.phrases, text)
