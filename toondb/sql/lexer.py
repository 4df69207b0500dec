"""SQL text -> tokens: what the grammar parses and what the statement cache keys on.

``tokenize(sql)`` cuts SQL text into tokens (one pass: the C scan of
``_lexer.pyx``, 4-5x faster than matching the regex ``_TOKEN`` that defines the
token classes, which is the fallback without the extension) and returns a
``Tokens``: a ``str`` holding one *code* character per token, which is what the
pyparsing grammar (grammar_expressions.py, grammar_statements.py) parses, with
the tokens' values and source offsets beside it. Parsing codes instead of
characters is what makes the grammar fast: whitespace and comments are gone,
a keyword is one character (no case-insensitive word matching), and a run of
tokens of a regular shape (an operator chain such as ``a+b*2``) is matched by
one regex over the codes.

The codes (``Tokens[i]`` for token i)::

    i  a word that is not a keyword (an identifier)     vals[i]: its text
    q  a quoted identifier "x", `x` or [x]               vals[i]: the name
    n  a number            s  a string 'x'               x  a blob X'..'
    ?  a parameter ?, ?N, :name, @name, $name             vals[i]: its text
    ( ) , ; . * / % + - & | ~ < > =   themselves
    c ||    l <<    r >>    { <=    } >=    = also ==    ! != and <>
    a ->    A ->>
    E  a character no token starts with (an error when parsed)
    chr(0x100 + k)  the k-th word of KEYWORDS (vals[i]: the word as written)

A literal's value (``vals[i]`` of an n, s or x token) is converted only when the
grammar asks for it (``literal_value``). ``Tokens.literals`` lists the token
indices of the literals, in order: the statement cache (statements.py) replaces
them by slots to share one parse between statements that differ only there.
"""

from __future__ import annotations

import re
from typing import Any

from toondb.errors import SQLError

__all__ = [
    "KEYWORDS",
    "CODES",
    "RESERVED",
    "Tokens",
    "tokenize",
    "tokenize_statement",
    "kw",
    "literal_value",
    "MAX_DEPTH",
    "too_deep",
]

#: SQLite's keywords (lang_keywords.html), plus TRUE and FALSE; each has a code.
KEYWORDS = """
ABORT ACTION ADD AFTER ALL ALTER ALWAYS ANALYZE AND AS ASC ATTACH AUTOINCREMENT BEFORE
BEGIN BETWEEN BY CASCADE CASE CAST CHECK COLLATE COLUMN COMMIT CONFLICT CONSTRAINT
CREATE CROSS CURRENT CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP DATABASE DEFAULT
DEFERRABLE DEFERRED DELETE DESC DETACH DISTINCT DO DROP EACH ELSE END ESCAPE EXCEPT
EXCLUDE EXCLUSIVE EXISTS EXPLAIN FAIL FILTER FIRST FOLLOWING FOR FOREIGN FROM FULL
GENERATED GLOB GROUP GROUPS HAVING IF IGNORE IMMEDIATE IN INDEX INDEXED INITIALLY INNER
INSERT INSTEAD INTERSECT INTO IS ISNULL JOIN KEY LAST LEFT LIKE LIMIT MATCH MATERIALIZED
NATURAL NO NOT NOTHING NOTNULL NULL NULLS OF OFFSET ON OR ORDER OTHERS OUTER OVER
PARTITION PLAN PRAGMA PRECEDING PRIMARY QUERY RAISE RANGE RECURSIVE REFERENCES REGEXP
REINDEX RELEASE RENAME REPLACE RESTRICT RETURNING RIGHT ROLLBACK ROW ROWS SAVEPOINT SELECT
SET TABLE TEMP TEMPORARY THEN TIES TO TRANSACTION TRIGGER UNBOUNDED UNION UNIQUE UPDATE
USING VACUUM VALUES VIEW VIRTUAL WHEN WHERE WINDOW WITH WITHOUT TRUE FALSE
""".split()

#: Words that cannot be a bare identifier (a table, column, alias or function
#: name). Kept small: SQLite lets most keywords be names ("key", "text", "date",
#: "value", "replace" ...).
RESERVED = frozenset(
    """
ALL AND AS ASC BETWEEN BY CASE CAST CHECK COLLATE CONSTRAINT CREATE CROSS DEFAULT DELETE
DESC DISTINCT DROP ELSE END ESCAPE EXCEPT EXISTS FOREIGN FROM GLOB GROUP HAVING IN INDEX
INNER INSERT INTERSECT INTO IS ISNULL JOIN LEFT LIKE LIMIT NATURAL NOT NOTNULL NULL OFFSET
ON OR ORDER OUTER PRIMARY REFERENCES RETURNING RIGHT FULL SELECT SET TABLE THEN UNION
UNIQUE UPDATE USING VALUES WHEN WHERE WITH
""".split()
)

CODES = {w: chr(0x100 + k) for k, w in enumerate(KEYWORDS)}


def kw(word: str) -> str:
    """The code of a keyword."""
    return CODES[word.upper()]


#: SQLite's limit on the depth of an expression tree (SQLITE_MAX_EXPR_DEPTH); the
#: lexer refuses text nested deeper in parentheses, the grammar trees higher.
MAX_DEPTH = 1000


def too_deep() -> SQLError:
    """SQLite's error for a statement nested deeper than MAX_DEPTH."""
    return SQLError(f"expression tree is too large (maximum depth {MAX_DEPTH})")


_OPS = {
    "||": "c",
    "<<": "l",
    ">>": "r",
    "<=": "{",
    ">=": "}",
    "==": "=",
    "!=": "!",
    "<>": "!",
    "->": "a",
    "->>": "A",
}

# One alternative per token class; the group that matched is the class.
_TOKEN = re.compile(
    r"""
      (?P<ws>[ \t\n\r\f\v]+|--[^\n]*|/\*.*?(?:\*/|\Z))
    | (?P<x>[xX]'[^']*')
    | (?P<word>[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_$\x80-\U0010ffff]*)
    | (?P<n>(?:0[xX][0-9A-Fa-f]+|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)(?![A-Za-z0-9_$.\x80-\U0010ffff]))
    | (?P<s>'(?:[^']|'')*')
    | (?P<q>"(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\])
    | (?P<p>\?[0-9]*|[:$@][A-Za-z0-9_\x80-\U0010ffff]+)
    | (?P<op>\|\||<<|>>|<=|>=|==|!=|<>|->>|->)
    | (?P<punct>[-(),;.*/%+&|~<>=])
    | (?P<E>'(?:[^']|'')*\Z|"(?:[^"]|"")*\Z|[0-9][0-9A-Za-z_$.\x80-\U0010ffff]*|.)
    """,
    re.VERBOSE | re.DOTALL,
)


_BLOB = re.compile(r"[xX]'(?:[0-9A-Fa-f][0-9A-Fa-f])*'")


class Tokens(str):
    """The token codes of a text (the str itself) with what the grammar needs of
    each token; see the module docstring. ``furthest`` is the furthest token the
    grammar failed at (where a syntax error is reported); ``slots`` is set by the
    statement cache when literals parse into slots (``ast.Slot``), and then
    ``baked`` holds the literals the parse took the value of, ``result_spans``
    the token span of each result column parsed (statements.py)."""

    sql: str
    vals: list[Any]
    starts: list[int]
    ends: list[int]
    literals: list[int]
    depth: int
    furthest: int
    slots: dict[int, int] | None
    baked: set[int]
    result_spans: list[tuple[Any, int, int]] | None

    def end_offset(self, i: int) -> int:
        """The text offset just past token i (the text's end past the last token)."""
        return self.ends[i] if i < len(self.ends) else len(self.sql)

    def start_offset(self, i: int) -> int:
        return self.starts[i] if i < len(self.starts) else len(self.sql)

    def span_text(self, i: int, j: int) -> str:
        """The source text of tokens i..j-1 (comments between them kept)."""
        if j <= i:
            return ""
        return self.sql[self.starts[i] : self.ends[j - 1]]


_scan: Any
try:
    from toondb.sql._lexer import scan as _scan
except ImportError:  # the extension not built (TOONDB_EXTENSIONS): the regex lexer
    _scan = None


def tokenize(sql: str, pos: int = 0, endpos: int | None = None) -> Tokens:
    """The tokens of sql[pos:endpos] (offsets are into sql). SQLError when
    parentheses nest deeper than MAX_DEPTH. The scan is the C one of
    toondb/sql/_lexer.pyx, which cuts the text as ``_TOKEN`` does
    (``tokenize_by_regex``: the definition, and the fallback)."""
    if _scan is None:
        return tokenize_by_regex(sql, pos, endpos)[0]
    end = len(sql) if endpos is None else endpos
    codes, vals, starts, ends, literals, depth, _ = _scan(sql, pos, end, CODES, MAX_DEPTH)
    if depth < 0:
        raise too_deep()
    return _tokens(sql, codes, vals, starts, ends, literals, depth)


def tokenize_statement(sql: str, pos: int = 0) -> tuple[Tokens, int]:
    """The tokens of sql from pos up to its first ';' token (left out), and the
    offset just past that ';' (-1 when the text ends first): a script's
    statements one at a time (session.run_script). The nesting limit applies
    to the statement."""
    if _scan is None:
        return tokenize_by_regex(sql, pos, None, True)
    codes, vals, starts, ends, literals, depth, rest = _scan(
        sql, pos, len(sql), CODES, MAX_DEPTH, True
    )
    if depth < 0:
        raise too_deep()
    return _tokens(sql, codes, vals, starts, ends, literals, depth), rest


def _tokens(
    sql: str,
    codes: str,
    vals: list[Any],
    starts: list[int],
    ends: list[int],
    literals: list[int],
    depth: int,
) -> Tokens:
    t = Tokens(codes)
    t.sql = sql
    t.vals = vals
    t.starts = starts
    t.ends = ends
    t.literals = literals
    t.depth = depth
    t.furthest = 0
    t.slots = None
    t.baked = set()
    t.result_spans = None
    return t


def tokenize_by_regex(
    sql: str, pos: int = 0, endpos: int | None = None, one_statement: bool = False
) -> tuple[Tokens, int]:
    """tokenize (one_statement: tokenize_statement), by the regex ``_TOKEN``
    one match at a time (in Python); the offset past the ';' that ended the
    statement is -1 without one_statement."""
    rest = -1
    codes: list[str] = []
    vals: list[Any] = []
    starts: list[int] = []
    ends: list[int] = []
    literals: list[int] = []
    code_of = CODES.get
    ops = _OPS
    depth = maxdepth = 0
    end = len(sql) if endpos is None else endpos
    for m in _TOKEN.finditer(sql, pos, end):
        kind = m.lastgroup
        if kind == "ws":
            continue
        text = m.group()
        if kind == "word":
            code = code_of(text.upper(), "i")
            val: Any = text
        elif kind == "punct":
            code = val = text
            if text == "(":
                depth += 1
                if depth > maxdepth:
                    maxdepth = depth
                    if depth > MAX_DEPTH:
                        raise too_deep()
            elif text == ")":
                depth -= 1
            elif text == ";" and one_statement:
                rest = m.end()
                break
        elif kind == "n" or kind == "s" or kind == "x":
            code = kind
            val = text
            if kind == "x" and not _BLOB.fullmatch(text):
                code = "E"  # a malformed blob literal
            else:
                literals.append(len(codes))
        elif kind == "q":
            code = "q"
            c = text[0]
            val = text[1:-1]
            if c == '"':
                val = val.replace('""', '"')
            elif c == "`":
                val = val.replace("``", "`")
        elif kind == "p":
            code = "?"
            val = text
        elif kind == "op":
            code = ops[text]
            val = text
        else:
            code = "E"
            val = text
        codes.append(code)
        vals.append(val)
        starts.append(m.start())
        ends.append(m.end())
    return _tokens(sql, "".join(codes), vals, starts, ends, literals, maxdepth), rest


_I64_MAX = (1 << 63) - 1


def literal_value(code: str, text: str) -> Any:
    """The value of a literal token: an int (64-bit; 2**63 is kept as the int
    only unary minus makes valid), a float, a str or bytes. ValueError for a hex
    literal of more than 64 bits."""
    if code == "n":
        if text[:2] in ("0x", "0X"):
            v = int(text, 16)
            if v >= 1 << 63:
                if v >= 1 << 64:
                    raise ValueError("hex literal too big")
                v -= 1 << 64
            return v
        if "." in text or "e" in text or "E" in text:
            return float(text)
        v = int(text)
        if v > _I64_MAX and v != 1 << 63:
            return float(text)
        return v
    if code == "s":
        return text[1:-1].replace("''", "'")
    return bytes.fromhex(text[2:-1])
