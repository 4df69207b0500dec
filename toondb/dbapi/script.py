"""SQL text as the DB-API sees it before the engine does: where statements end, and
what kind each one is, read from its words without parsing it.

``split(script)`` cuts a script into statements with the SQL engine's own lexer
(the one Database.executescript uses): a ``;`` ends a statement unless it is
inside a string, a quoted identifier or a comment. Statements that hold nothing
but spaces and comments are dropped.

``complete(sql)`` is ``sqlite3.complete_statement``: SQLite's ``sqlite3_complete()``
state machine (complete.c), ported below over a small tokenizer of its own, as
SQLite keeps it apart from its parser: it must answer for text that is not SQL yet
(a shell line half typed), and it knows ``CREATE TRIGGER ... BEGIN ... END`` bodies.

``classify(sql)`` tells the cursor what it must know before running a statement:
how many statements the text holds (``execute`` takes one), whether it is DML
(INSERT / UPDATE / DELETE / REPLACE: the statements sqlite3's legacy transaction
control begins a transaction before, and whose rowcount is counted), whether it
is a read (SELECT / VALUES / EXPLAIN: ``executemany`` refuses them), and, for
``BEGIN`` / ``COMMIT`` / ``END`` / ``ROLLBACK`` / ``SAVEPOINT`` / ``RELEASE``,
the transaction action and mode, which the connection carries out itself.
Results are cached by the text, as the grammar caches its parses.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

from toondb import errors

__all__ = ["Statement", "classify", "complete", "split", "first_words"]

# One token per match. Strings and quoted identifiers may hold anything but their
# own quote (doubled to escape it); an unterminated one runs to the end of the
# text, as does an unterminated block comment.
_TOKEN = re.compile(
    r"""
      (?P<ws>\s+|--[^\n]*(?:\n|\Z)|/\*(?:.|\n)*?(?:\*/|\Z))
    | (?P<semi>;)
    | (?P<word>[A-Za-z0-9_$\x80-\U0010ffff]+)
    | (?P<quoted>'(?:[^']|'')*(?:'|\Z)|"(?:[^"]|"")*(?:"|\Z)|`(?:[^`]|``)*(?:`|\Z)|\[[^\]]*(?:\]|\Z))
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)

# sqlite3_complete()'s tokens and states (SQLite's complete.c); a statement is
# complete when a SEMI brings the machine to START.
_SEMI, _WS, _OTHER, _EXPLAIN, _CREATE, _TEMP, _TRIGGER, _END = range(8)
_START = 1
_TRANSITIONS = (
    # SEMI WS OTHER EXPLAIN CREATE TEMP TRIGGER END
    (1, 0, 2, 3, 4, 2, 2, 2),  # 0 INVALID: nothing yet
    (1, 1, 2, 3, 4, 2, 2, 2),  # 1 START: at a statement boundary
    (1, 2, 2, 2, 2, 2, 2, 2),  # 2 NORMAL: inside an ordinary statement
    (1, 3, 3, 2, 4, 2, 2, 2),  # 3 EXPLAIN: after EXPLAIN
    (1, 4, 2, 2, 2, 4, 5, 2),  # 4 CREATE: after CREATE [TEMP]
    (6, 5, 5, 5, 5, 5, 5, 5),  # 5 TRIGGER: inside CREATE TRIGGER
    (6, 6, 5, 5, 5, 5, 5, 7),  # 6 SEMI: after a ';' inside a trigger
    (1, 7, 5, 5, 5, 5, 5, 5),  # 7 END: after '; END' inside a trigger
)
_KEYWORDS = {
    "EXPLAIN": _EXPLAIN,
    "CREATE": _CREATE,
    "TEMP": _TEMP,
    "TEMPORARY": _TEMP,
    "TRIGGER": _TRIGGER,
    "END": _END,
}

_DML = frozenset(("INSERT", "UPDATE", "DELETE", "REPLACE"))
_READS = frozenset(("SELECT", "VALUES", "EXPLAIN"))
_TXN = frozenset(("BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"))
_BEGIN_MODES = frozenset(("DEFERRED", "IMMEDIATE", "EXCLUSIVE"))


def _token(m: re.Match[str]) -> int:
    kind = m.lastgroup
    if kind == "ws":
        return _WS
    if kind == "semi":
        return _SEMI
    if kind == "word":
        return _KEYWORDS.get(m.group().upper(), _OTHER)
    return _OTHER


def complete(sql: str) -> bool:
    """True if sql ends a statement (sqlite3.complete_statement: SQLite's
    sqlite3_complete()): its last token that is not a space or a comment is a ';'
    that ends a statement (not one inside a string, a comment or a trigger body)."""
    state = 0
    for m in _TOKEN.finditer(sql):
        state = _TRANSITIONS[state][_token(m)]
    return state == _START


def split(script: str) -> list[str]:
    """The statements of script, each with its text as written (with the ';'
    that ends it, if one does), cut where the SQL engine's own lexer cuts a script
    (toondb.sql.grammar.split_tokens, as Database.executescript does): one
    tokenizer decides where statements end, whichever door a script comes in by.
    (toondb has no triggers, so no ';' inside a CREATE TRIGGER body needs keeping.)
    Empty statements (only spaces and comments) are left out. The lexer refuses a
    script whose parentheses nest past SQLite's depth limit (SQLError)."""
    from toondb.sql import grammar

    t = grammar.tokens_of(script)
    n = len(t)
    # each statement's text runs through the ';' that ends it, as written
    return [t.span_text(i, j + 1 if j < n else j) for i, j in grammar.split_tokens(t)]


def first_words(sql: str, n: int) -> list[str]:
    """The first n words of sql (upper-cased), past spaces and comments; a quoted
    token or a punctuation mark ends the list."""
    words: list[str] = []
    for m in _TOKEN.finditer(sql):
        kind = m.lastgroup
        if kind == "ws":
            continue
        if kind != "word":
            break
        words.append(m.group().upper())
        if len(words) == n:
            break
    return words


class Statement(NamedTuple):
    """What classify() tells about a statement's text."""

    count: int  # type: ignore[assignment]  # (shadows tuple.count) statements; 0 if none
    keyword: str  # its first word, upper-cased ("" if none)
    is_dml: bool  # INSERT, UPDATE, DELETE or REPLACE
    is_read: bool  # SELECT, VALUES or EXPLAIN: never writes
    txn: str | None  # BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE, ROLLBACK TO; else None
    mode: str | None  # BEGIN's DEFERRED, IMMEDIATE or EXCLUSIVE (None: DEFERRED)


@functools.lru_cache(maxsize=1024)
def classify(sql: str) -> Statement:
    """See the module docstring. The count is exact only up to 2 (enough to refuse)."""
    count = _count_statements(sql)
    words = first_words(sql, 3)
    keyword = words[0] if words else ""
    txn = mode = None
    if keyword in _TXN:
        txn = "COMMIT" if keyword == "END" else keyword
        rest = words[1:]
        if keyword == "BEGIN" and rest and rest[0] in _BEGIN_MODES:
            mode = rest[0]
        if keyword == "ROLLBACK":
            if rest and rest[0] == "TRANSACTION":
                rest = rest[1:]
            if rest and rest[0] == "TO":
                txn = "ROLLBACK TO"
    return Statement(count, keyword, keyword in _DML, keyword in _READS, txn, mode)


def _count_statements(sql: str) -> int:
    # the common case without a second ';' needs no lexer
    if sql.count(";") <= (1 if sql.rstrip().endswith(";") else 0):
        return 1 if _has_tokens(sql) else 0
    try:
        return min(len(split(sql)), 2)
    except errors.SQLError:
        return 1  # too deep to lex: running it reports the SQLite error


def _has_tokens(sql: str) -> bool:
    return any(m.lastgroup != "ws" for m in _TOKEN.finditer(sql))
