"""SQL text -> AST: ``parse(sql)`` (cached) and ``parse_expression(text)``.

The grammar is in grammar_expressions.py (tokens, expressions) and
grammar_statements.py (statements); packrat memoisation is on, and a statement
must be consumed whole (``parse_all``). Here: comments blanked before parsing,
parameters numbered as SQLite numbers them, and a syntax error reported where
the parse got furthest, with a caret under the token.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from typing import Any

import pyparsing as pp

from toondb.errors import SQLSyntaxError
from toondb.sql import ast
from toondb.sql.grammar_expressions import RESERVED, expr
from toondb.sql.grammar_statements import sql_script

__all__ = ["parse", "parse_expression", "RESERVED"]

_expr_only = expr.copy()

# Comments are blanked out before parsing (same length, newlines kept, so error
# positions do not move) rather than declared as pyparsing ignorables, which
# every element would try to skip at every position (twice as slow).
_TOKENS_WITH_COMMENTS = re.compile(
    r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`[^`]*`|\[[^\]]*\]|(--[^\n]*|/\*.*?(?:\*/|\Z))", re.DOTALL
)


def _blank_comments(sql: str) -> str:
    if "--" not in sql and "/*" not in sql:
        return sql

    def repl(m: re.Match[str]) -> str:
        if m.group(1) is None:
            return m.group(0)
        return "".join(c if c == "\n" else " " for c in m.group(1))

    return _TOKENS_WITH_COMMENTS.sub(repl, sql)


# ------------------------------------------------------------------ error location
# A syntax error is reported where the parse got furthest: every terminal records
# the position at which it failed to match (the caret goes under that token).

_furthest = [0]


def _note_failure(s: str, loc: int, expr: pp.ParserElement, err: Exception) -> None:
    at = getattr(err, "loc", loc)
    if at > _furthest[0]:
        _furthest[0] = at


def _track_terminals(root: pp.ParserElement) -> None:
    seen: set[int] = set()
    stack = [root]
    while stack:
        el = stack.pop()
        if id(el) in seen:
            continue
        seen.add(id(el))
        if isinstance(el, pp.Token):
            el.set_fail_action(_note_failure)
        for child in getattr(el, "exprs", []) or []:
            stack.append(child)
        child = getattr(el, "expr", None)
        if isinstance(child, pp.ParserElement):
            stack.append(child)


_track_terminals(sql_script)
_track_terminals(_expr_only)

# ------------------------------------------------------------------ parse()

_lock = threading.Lock()  # pyparsing's packrat cache is not thread-safe


def _assign_params(node: Any, state: dict[str, Any]) -> None:
    """Number the parameters in text order as SQLite does: ``?`` takes the next
    slot after the largest so far, ``?N`` takes slot N, a name keeps its first slot."""
    params: list[ast.Param] = []

    def walk(n: Any) -> None:
        if isinstance(n, ast.Param):
            params.append(n)
        elif isinstance(n, ast.Node):
            for k in n.__slots__:
                walk(getattr(n, k))
        elif isinstance(n, (list, tuple)):
            for x in n:
                walk(x)

    walk(node)
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


def _syntax_error(sql: str, e: pp.ParseBaseException) -> SQLSyntaxError:
    loc = min(
        max(e.loc, _furthest[0]) if not isinstance(e, pp.ParseFatalException) else e.loc, len(sql)
    )
    while loc < len(sql) and sql[loc].isspace():
        loc += 1
    lineno = sql.count("\n", 0, loc) + 1
    line_start = sql.rfind("\n", 0, loc) + 1
    line_end = sql.find("\n", loc)
    if line_end < 0:
        line_end = len(sql)
    line = sql[line_start:line_end]
    col = loc - line_start + 1
    found = sql[loc:].split(None, 1)[0][:20] if sql[loc:].strip() else "end of input"
    msg = (
        e.msg
        if isinstance(e, pp.ParseFatalException)
        else (
            f"near {found!r}: syntax error"
            if found != "end of input"
            else "incomplete input: syntax error"
        )
    )
    if (
        not isinstance(e, pp.ParseFatalException)
        and e.msg
        and e.msg.startswith("Expected")
        and e.loc == loc
        and "end of text" not in e.msg
    ):
        msg += f" ({e.msg[:120]})"
    caret = " " * (col - 1) + "^"
    err = SQLSyntaxError(f"{msg} at line {lineno}, column {col}\n  {line}\n  {caret}")
    err.line = lineno  # type: ignore[attr-defined]
    err.column = col  # type: ignore[attr-defined]
    err.text = line  # type: ignore[attr-defined]
    return err


def parse_script(sql: str) -> list[ast.Parsed]:
    """Every statement of sql (separated by ';'), parsed; SQLSyntaxError if any does not parse."""
    if not isinstance(sql, str):
        raise TypeError(f"SQL must be a str, not {type(sql).__name__}")
    with _lock:
        _furthest[0] = 0
        try:
            result = sql_script.parse_string(_blank_comments(sql), parse_all=True)
        except pp.ParseBaseException as e:
            raise _syntax_error(sql, e) from None
        finally:
            pp.ParserElement.reset_cache()
    out = []
    for stmt in result:
        state: dict[str, Any] = {"max": 0, "names": {}}
        _assign_params(stmt, state)
        out.append(ast.Parsed(stmt, state["max"], state["names"], sql))
    return out


@lru_cache(maxsize=1024)
def parse(sql: str) -> tuple[ast.Parsed, ...]:
    """parse_script, cached by the SQL text (the AST is never mutated afterwards)."""
    return tuple(parse_script(sql))


def parse_expression(text: str) -> ast.Expr:
    """One expression (a DEFAULT or CHECK recorded in the catalog)."""
    with _lock:
        _furthest[0] = 0
        try:
            node = _expr_only.parse_string(_blank_comments(text), parse_all=True)[0]
        except pp.ParseBaseException as e:
            raise _syntax_error(text, e) from None
        finally:
            pp.ParserElement.reset_cache()
    return node


def first_statement(sql: str) -> ast.Parsed | None:
    stmts = parse(sql)
    return stmts[0] if stmts else None
