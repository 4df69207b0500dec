"""How deep a statement may nest: SQLite's limit, and the Python stack it needs.

SQLite refuses an expression tree higher than 1,000 (SQLITE_MAX_EXPR_DEPTH):
"Expression tree is too large (maximum depth 1000)". toondb keeps the same
limit, measured the same way (``tree_height``: a leaf is 1, a node one more
than its highest child, a subquery one more than the highest expression in it),
with one difference: a chain of ANDs or of ORs counts as one level, so that the
1,000-term ``x = 1 OR x = 2 OR ...`` an ORM generates runs (SQLite refuses it).
Parentheses nested deeper than 1,000 are refused by the lexer.

Everything that walks a tree (the parser, the planner, the compiled closures) is
recursive Python, about 5 to 30 frames per level; a statement that may nest
deeply runs under ``headroom()``, which lifts the interpreter's recursion limit
for its duration (a statement with fewer than ``SHALLOW_TOKENS`` tokens cannot
nest deeply: every level of a tree takes at least one token).
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from typing import Any

from toondb.sql import ast
from toondb.sql.lexer import MAX_DEPTH, too_deep

__all__ = ["MAX_DEPTH", "SHALLOW_TOKENS", "too_deep", "tree_height", "headroom", "check_height"]

#: below this many tokens a statement cannot nest deep enough to need headroom
SHALLOW_TOKENS = 64
#: the recursion limit while a deep statement is parsed, planned and run
_DEEP_LIMIT = 60 * MAX_DEPTH + 5_000

_lock = threading.Lock()
_holders = 0
_saved = 0


@contextlib.contextmanager
def headroom() -> Iterator[None]:
    """The recursion limit lifted to what a statement of MAX_DEPTH needs (for
    every thread, while any thread is inside; restored after the last leaves)."""
    global _holders, _saved
    with _lock:
        if _holders == 0:
            _saved = sys.getrecursionlimit()
            if _saved < _DEEP_LIMIT:
                sys.setrecursionlimit(_DEEP_LIMIT)
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and sys.getrecursionlimit() == _DEEP_LIMIT:
                sys.setrecursionlimit(_saved)


def _children(node: Any) -> Iterator[Any]:
    for k in node.__slots__:
        v = getattr(node, k)
        if isinstance(v, ast.Node):
            yield v
        elif isinstance(v, (list, tuple)):
            for x in v:
                if isinstance(x, ast.Node):
                    yield x
                elif isinstance(x, (list, tuple)):
                    yield from (y for y in x if isinstance(y, ast.Node))


def tree_height(root: ast.Node) -> int:
    """The height of the highest expression tree in root (see the module
    docstring), computed without recursion."""
    best = 0
    # (node, height of the expression above it, operator of its parent chain)
    stack: list[tuple[Any, int, str | None]] = [(root, 0, None)]
    while stack:
        node, above, chain = stack.pop()
        if isinstance(node, ast.Expr):
            if isinstance(node, ast.Binary) and node.op in ("AND", "OR") and node.op == chain:
                h = above  # the same chain: no new level
            else:
                h = above + 1
            if h > best:
                best = h
            op = node.op if isinstance(node, ast.Binary) and node.op in ("AND", "OR") else None
        else:
            h, op = above, None
        for child in _children(node):
            stack.append((child, h, op))
    return best


def check_height(root: ast.Node) -> None:
    """SQLError when root holds an expression tree higher than MAX_DEPTH."""
    if tree_height(root) > MAX_DEPTH:
        raise too_deep()
