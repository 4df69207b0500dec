"""The corpus and queries of bench_fulltext.py: real English paragraphs from the
standard library's sources (docstring paragraphs, then comment blocks), read
with ast and as text (nothing is imported), in sorted file order, so every run
indexes the same text; and a fixed mix of FTS5 queries drawn from its words."""

from __future__ import annotations

import ast
import functools
import random
import re
import sysconfig
from collections import Counter
from pathlib import Path

_WS = re.compile(r"\s+")


def _scopes(tree: ast.AST) -> list[ast.AST]:
    """The module, classes and functions, statements only (no expression walk)."""
    out: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            out.append(node)
        for name in ("body", "orelse", "finalbody", "handlers"):
            for child in getattr(node, name, ()) or ():
                if isinstance(child, (ast.stmt, ast.excepthandler)):
                    todo.append(child)
    out.sort(key=lambda n: (getattr(n, "lineno", 0), getattr(n, "col_offset", 0)))
    return out


def _files() -> list[tuple[str, Path]]:
    root = Path(sysconfig.get_paths()["stdlib"])
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] in ("site-packages",):
            continue
        out.append((".".join(rel.with_suffix("").parts), path))
    return out


def _docstrings(module: str, source: str) -> list[tuple[str, str]]:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    out = []
    for node in _scopes(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node)
            if doc:
                name = module if isinstance(node, ast.Module) else f"{module}.{node.name}"
                for para in doc.split("\n\n"):
                    text = _WS.sub(" ", para).strip()
                    if len(text) >= 20:
                        out.append((name, text))
    return out


def _comments(module: str, source: str) -> list[tuple[str, str]]:
    """Blocks of consecutive comment lines, joined."""
    out, block = [], []
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            block.append(stripped.lstrip("#").strip())
        elif block:
            out.append(" ".join(block))
            block = []
    if block:
        out.append(" ".join(block))
    return [(module, _WS.sub(" ", c).strip()) for c in out if len(c) >= 40]


@functools.cache
def corpus(n: int = 30_000) -> list[tuple[str, str]]:
    """n distinct (qualified name, paragraph) rows: each file's docstring
    paragraphs, then its comment blocks, files in sorted order."""
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for module, path in _files():
        try:
            source = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for name, text in _docstrings(module, source) + _comments(module, source):
            if text not in seen:
                seen.add(text)
                out.append((name, text))
                if len(out) == n:
                    return out
    return out


@functools.cache
def queries(n: int = 1000, seed: int = 11) -> list[str]:
    """A fixed mix: single terms (common, middling, rare), prefixes, phrases,
    NEAR groups, OR / NOT / implicit AND, column filters."""
    rng = random.Random(seed)
    rows = corpus()
    docs = [re.findall(r"[a-z][a-z0-9]+", text.lower()) for _, text in rows[::5]]
    df = Counter(w for words in docs for w in set(words))
    common = [w for w, _ in df.most_common(100)]
    middle = sorted(w for w, c in df.items() if 5 <= c <= 100)
    rare = sorted(w for w, c in df.items() if c <= 2)
    long_docs = [d for d in docs if len(d) > 2]

    def word() -> str:
        return rng.choice(rng.choice([common, middle, middle, rare]))

    def leaf() -> str:
        k = rng.randrange(8)
        if k == 0:
            return word()[:3] + "*"
        if k == 1:
            words = rng.choice(long_docs)
            i = rng.randrange(len(words) - 1)
            return f'"{words[i]} {words[i + 1]}"'
        if k == 2:
            return f"NEAR({word()} {word()}, {rng.randrange(2, 12)})"
        if k == 3:
            return "body : " + word()
        return word()

    out = []
    for _ in range(n):
        k = rng.randrange(5)
        if k == 0:
            out.append(f"{leaf()} OR {leaf()}")
        elif k == 1:
            out.append(f"{leaf()} NOT {leaf()}")
        elif k == 2:
            out.append(f"{leaf()} {leaf()}")
        else:
            out.append(leaf())
    return out
