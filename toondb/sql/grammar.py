"""SQL text -> AST: ``parse(sql)`` (cached), ``parse_script``, ``parse_tokens``
and ``parse_expression(text)``.

The text is cut into tokens by lexer.py; the pyparsing grammar
(grammar_expressions.py, grammar_statements.py) parses the token codes of one
statement at a time (a ';' token ends a statement), and must consume them whole.
Here: parameters numbered as SQLite numbers them, the depth limit (depth.py),
and a syntax error reported where the parse got furthest, with a caret under
the token.
"""

from __future__ import annotations

from bisect import bisect_left
from functools import lru_cache
from typing import Any

import pyparsing as pp

from toondb.errors import SQLSyntaxError
from toondb.sql import ast
from toondb.sql.depth import SHALLOW_TOKENS, check_height, headroom
from toondb.sql.grammar_elements import inline_forwards, lean_parse
from toondb.sql.grammar_expressions import expr
from toondb.sql.grammar_statements import statement
from toondb.sql.lexer import MAX_DEPTH, RESERVED, Tokens, tokenize

__all__ = [
    "parse",
    "parse_script",
    "parse_tokens",
    "parse_expression",
    "split_tokens",
    "RESERVED",
]

_statement = inline_forwards(statement).parse_with_tabs()
_expression = inline_forwards(expr).parse_with_tabs()
lean_parse(_statement)  # (the expression grammar is part of the statement's)
lean_parse(_expression)


def split_tokens(t: Tokens) -> list[tuple[int, int]]:
    """The token ranges [i, j) of the statements of t (';' tokens between them;
    empty statements left out)."""
    out = []
    start = 0
    pos = t.find(";")
    while pos >= 0:
        if pos > start:
            out.append((start, pos))
        start = pos + 1
        pos = t.find(";", start)
    if len(t) > start:
        out.append((start, len(t)))
    return out


def sub_tokens(t: Tokens, i: int, j: int) -> Tokens:
    """Tokens i..j-1 of t as a Tokens of their own (offsets still into t.sql)."""
    if i == 0 and j == len(t):
        return t
    s = Tokens(t[i:j])
    s.sql = t.sql
    s.vals = t.vals[i:j]
    s.starts = t.starts[i:j]
    s.ends = t.ends[i:j]
    lits = t.literals  # ascending token indexes: a script's cut is a slice of them
    s.literals = [k - i for k in lits[bisect_left(lits, i) : bisect_left(lits, j)]]
    s.depth = t.depth
    s.furthest = 0
    s.slots = None
    s.baked = set()
    s.result_spans = None
    return s


def _assign_params(node: Any, state: dict[str, Any]) -> None:
    """Number the parameters in text order as SQLite does: ``?`` takes the next
    slot after the largest so far, ``?N`` takes slot N, a name keeps its first slot."""
    params: list[ast.Param] = []
    stack = [node]
    while stack:  # no recursion: a statement may nest MAX_DEPTH deep
        n = stack.pop()
        if isinstance(n, ast.Param):
            params.append(n)
        elif isinstance(n, ast.Node):
            stack.extend(getattr(n, k) for k in n.__slots__)
        elif isinstance(n, (list, tuple)):
            stack.extend(n)
    seen: set[int] = set()
    ordered = []
    for p in params:
        if id(p) not in seen:
            seen.add(id(p))
            ordered.append(p)
    ordered.sort(key=lambda p: -p.index - 1)
    for p in ordered:
        text = p.name or "?"
        if text == "?":
            state["max"] += 1
            p.index, p.name = state["max"] - 1, None
        elif text[0] == "?":
            n = int(text[1:])
            if n < 1 or n > 32766:
                raise SQLSyntaxError(f"parameter {text} out of range (1..32766)")
            p.index, p.name = n - 1, None
            state["max"] = max(state["max"], n)
        else:
            name = text[1:]
            if name not in state["names"]:
                state["max"] += 1
                state["names"][name] = state["max"] - 1
            p.index, p.name = state["names"][name], name


def syntax_error(
    t: Tokens, e: pp.ParseBaseException | None, message: str | None = None
) -> SQLSyntaxError:
    """The error for a parse of t that failed (e) or was refused (message), with
    the line, the column and a caret under the token where it failed."""
    sql = t.sql
    fatal = isinstance(e, pp.ParseFatalException)
    if e is None:
        at = t.furthest
    elif fatal:
        at = e.loc
    else:
        at = max(e.loc, t.furthest)
    loc = t.start_offset(at) if at < len(t) else (t.ends[-1] if t.ends else 0)
    lineno = sql.count("\n", 0, loc) + 1
    line_start = sql.rfind("\n", 0, loc) + 1
    line_end = sql.find("\n", loc)
    if line_end < 0:
        line_end = len(sql)
    line = sql[line_start:line_end]
    col = loc - line_start + 1
    if message is not None:
        msg = message
    elif fatal:
        msg = e.msg  # type: ignore[union-attr]
    elif at < len(t):
        found = str(sql[t.starts[at] : t.ends[at]])[:20]
        if t[at] == "E":
            msg = f"unrecognized token: {found!r}"
        else:
            msg = f"near {found!r}: syntax error"
        if (
            e is not None
            and e.msg
            and e.msg.startswith("Expected")
            and e.loc == at
            and "end of text" not in e.msg
        ):
            msg += f" ({e.msg[:120]})"
    else:
        msg = "incomplete input: syntax error"
    caret = " " * (col - 1) + "^"
    err = SQLSyntaxError(f"{msg} at line {lineno}, column {col}\n  {line}\n  {caret}")
    err.line = lineno  # type: ignore[attr-defined]
    err.column = col  # type: ignore[attr-defined]
    err.text = line  # type: ignore[attr-defined]
    return err


def _parse_codes(element: pp.ParserElement, t: Tokens) -> Any:
    """element's result for all of t: what ``parse_string(t, parse_all=True)``
    gives, without the end-of-text element pyparsing builds on every call (the
    grammar is streamlined and on the lean call: grammar_elements.lean_parse)."""
    try:
        loc, toks = element._parse(t, 0)
        if loc < len(t):
            raise pp.ParseException(t, loc, "Expected end of text", element)
    except pp.ParseBaseException as e:
        raise syntax_error(t, e) from None
    return toks[0]


def parse_tokens(t: Tokens) -> ast.Parsed:
    """One statement's tokens -> Parsed (SQLSyntaxError, or SQLError past MAX_DEPTH)."""
    if len(t) < SHALLOW_TOKENS:
        stmt = _parse_codes(_statement, t)
    else:
        with headroom():
            stmt = _parse_codes(_statement, t)
        if len(t) > MAX_DEPTH:
            check_height(stmt)
    state: dict[str, Any] = {"max": 0, "names": {}}
    if "?" in t:
        _assign_params(stmt, state)
    return ast.Parsed(stmt, state["max"], state["names"], t.sql, deep=len(t) >= SHALLOW_TOKENS)


def tokens_of(sql: str) -> Tokens:
    """tokenize(sql), with nesting past MAX_DEPTH as the SQLError SQLite gives."""
    if not isinstance(sql, str):
        raise TypeError(f"SQL must be a str, not {type(sql).__name__}")
    return tokenize(sql)


def parse_script(sql: str) -> list[ast.Parsed]:
    """Every statement of sql (separated by ';'), parsed; SQLSyntaxError if any does not parse."""
    t = tokens_of(sql)
    return [parse_tokens(sub_tokens(t, i, j)) for i, j in split_tokens(t)]


@lru_cache(maxsize=1024)
def parse(sql: str) -> tuple[ast.Parsed, ...]:
    """parse_script, cached by the SQL text (the AST is never mutated afterwards)."""
    return tuple(parse_script(sql))


def parse_expression(text: str) -> ast.Expr:
    """One expression (a DEFAULT or CHECK recorded in the catalog)."""
    t = tokens_of(text)
    if len(t) < SHALLOW_TOKENS:
        return _parse_codes(_expression, t)  # type: ignore[no-any-return]
    with headroom():
        node = _parse_codes(_expression, t)
    if len(t) > MAX_DEPTH:
        check_height(node)
    return node  # type: ignore[no-any-return]


def first_statement(sql: str) -> ast.Parsed | None:
    stmts = parse(sql)
    return stmts[0] if stmts else None


__all__ += ["tokens_of", "syntax_error", "sub_tokens", "first_statement"]
