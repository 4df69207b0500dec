"""Fixtures of the full-text tests: the reference SQLite (pysqlite3's 3.51 when
installed, else the stdlib's; TOONDB_FTS5_REFERENCE=stdlib forces the stdlib's),
paired toondb / FTS5 tables, and a corpus of standard-library docstring
paragraphs."""

from __future__ import annotations

import ast
import os
import re
import sysconfig
from collections.abc import Sequence
from pathlib import Path

import pytest

from toondb import Database
from toondb.text import FullTextIndex

if os.environ.get("TOONDB_FTS5_REFERENCE") == "stdlib":
    import sqlite3 as reference_sqlite
else:
    try:
        import pysqlite3.dbapi2 as reference_sqlite
    except ImportError:  # pragma: no cover - the test extra installs it where it can
        import sqlite3 as reference_sqlite

REF_VERSION = tuple(int(x) for x in reference_sqlite.sqlite_version.split("."))


def fts5_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class Pair:
    """The same full-text table in toondb (a FullTextIndex in a Database) and in
    SQLite's FTS5, written and queried side by side."""

    def __init__(self, db: Database, columns: Sequence[str], options: dict[str, str] | None = None):
        self.columns = list(columns)
        self.options = dict(options or {})
        self.db = db
        self.txn = db.transaction()
        self.ix = FullTextIndex.create(self.txn, "t", self.columns, self.options)
        self.ref = reference_sqlite.connect(":memory:")
        args = list(self.columns) + [f"{k}={fts5_quote(v)}" for k, v in self.options.items()]
        self.ref.execute(f"CREATE VIRTUAL TABLE t USING fts5({', '.join(args)})")
        self.rows: dict[int, list[str | None]] = {}
        self.names = [c.split()[0] for c in self.columns]

    def close(self) -> None:
        self.txn.abort()
        self.ref.close()

    def __enter__(self) -> Pair:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def insert(self, rowid: int, values: Sequence[str | None]) -> None:
        self.ix.insert(rowid, list(values))
        cols = ", ".join(self.names)
        marks = ", ".join("?" for _ in values)
        self.ref.execute(f"INSERT INTO t(rowid, {cols}) VALUES (?, {marks})", (rowid, *values))
        self.rows[rowid] = list(values)

    def delete(self, rowid: int) -> None:
        self.ix.delete(rowid, self.rows.pop(rowid))
        self.ref.execute("DELETE FROM t WHERE rowid = ?", (rowid,))

    def update(self, rowid: int, values: Sequence[str | None]) -> None:
        self.ix.delete(rowid, self.rows[rowid])
        self.ix.insert(rowid, list(values))
        sets = ", ".join(f"{n} = ?" for n in self.names)
        self.ref.execute(f"UPDATE t SET {sets} WHERE rowid = ?", (*values, rowid))
        self.rows[rowid] = list(values)

    # -- queries --
    def ref_search(self, query: str, column: str | None = None, extra: str = "") -> list[tuple]:
        lhs = column or "t"
        sql = f"SELECT rowid, rank{extra} FROM t WHERE {lhs} MATCH ? ORDER BY rank"
        return self.ref.execute(sql, (query,)).fetchall()

    def ref_error(self, query: str, column: str | None = None) -> str | None:
        try:
            self.ref_search(query, column)
        except reference_sqlite.OperationalError as exc:
            return str(exc)
        return None


@pytest.fixture(scope="module")
def text_db(tmp_path_factory: pytest.TempPathFactory):
    """One database per test module; each Pair works in a transaction of its
    own that it aborts when closed."""
    db = Database.open(tmp_path_factory.mktemp("fts") / "db")
    yield db
    db.close()


@pytest.fixture(scope="module")
def pair_factory(text_db: Database):
    """make(columns, options) -> Pair; close() it (or use it as a context manager)."""

    def make(columns: Sequence[str] = ("a",), options: dict[str, str] | None = None) -> Pair:
        return Pair(text_db, columns, options)

    return make


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


def stdlib_paragraphs(limit: int | None = None) -> list[tuple[str, str]]:
    """(qualified name, paragraph) of the docstrings of the standard library's
    modules, classes and functions, read with ast (nothing is imported), files
    in sorted order: a deterministic corpus of real English text."""
    root = Path(sysconfig.get_paths()["stdlib"])
    out: list[tuple[str, str]] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] in ("test", "site-packages", "idlelib", "lib2to3") or "tests" in rel.parts:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        module = ".".join(rel.with_suffix("").parts)
        for node in _scopes(tree):
            if not isinstance(
                node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
            ):
                continue
            doc = ast.get_docstring(node)
            if not doc:
                continue
            name = module if isinstance(node, ast.Module) else f"{module}.{node.name}"
            for para in doc.split("\n\n"):
                text = _WS.sub(" ", para).strip()
                if len(text) >= 20:
                    out.append((name, text))
                    if limit is not None and len(out) >= limit:
                        return out
    return out
