"""A whole database as SQL text, in the form of sqlite3's ``iterdump()``.

``iterdump(execute)`` yields the statements that make the database again, one
per item, each ending with ``;``, in the order of CPython's
``Lib/sqlite3/dump.py``: ``BEGIN TRANSACTION;``, each table (by name) with its
CREATE statement and an ``INSERT INTO "t" VALUES(...)`` per row, the indexes
and views, the rows of ``sqlite_sequence`` (``DELETE FROM "sqlite_sequence"``
first), ``COMMIT;``. toondb's ``executescript`` and sqlite3 load it (sqlite3 where
the schema is SQLite's: not an HNSW index, a VECTOR column or STRICT's types
it lacks). ``execute(sql)`` runs one statement and returns its rows: a Database's
or Transaction's ``execute``, a DB-API cursor's (``Connection.iterdump``), a
server connection's.

What differs from sqlite3's, and why: a full-text table (``CREATE VIRTUAL TABLE
... USING fts5``) is written as its CREATE statement and an INSERT of its
columns per row with the rowid (sqlite3 writes SQLite's schema rows, which only
SQLite can load); one with external content or none (``content=...``) keeps no
rows of its own, and is written as its CREATE statement and FTS5's ``'rebuild'``
command. Values are written as ``quote()`` writes them (a VECTOR value is its
float32 blob, which a VECTOR column takes back).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Callable

__all__ = ["iterdump"]

Execute = Callable[[str], Any]


def _rows(execute: Execute, sql: str) -> list[tuple[Any, ...]]:
    out = execute(sql)
    rows = out.fetchall() if hasattr(out, "fetchall") else out.rows
    return [tuple(r) for r in rows]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def iterdump(execute: Execute) -> Iterator[str]:
    """The statements that make the database execute reads (see the module)."""
    yield "BEGIN TRANSACTION;"
    tables = _rows(
        execute,
        "SELECT name, sql FROM sqlite_schema WHERE sql NOT NULL AND type = 'table' ORDER BY name",
    )
    sequence: list[str] = []
    for name, sql in tables:
        low = name.lower()
        if low == "sqlite_sequence":
            select = (
                "SELECT 'INSERT INTO \"sqlite_sequence\" VALUES('||quote(name)||','||"
                "quote(seq)||');' FROM \"sqlite_sequence\""
            )
            sequence = ['DELETE FROM "sqlite_sequence";'] + [r[0] for r in _rows(execute, select)]
            continue
        if low.startswith("sqlite_"):
            continue
        yield f"{sql};"
        if sql.upper().startswith("CREATE VIRTUAL TABLE"):
            yield from _fulltext_rows(execute, name, sql)
            continue
        columns = [r[1] for r in _rows(execute, f"PRAGMA table_info({_ident(name)})")]
        if not columns:
            continue
        values = "||','||".join(f"quote({_ident(c)})" for c in columns)
        select = f"SELECT 'INSERT INTO {_ident(name).replace(chr(39), chr(39) * 2)} VALUES('||{values}||');' FROM {_ident(name)}"
        for (line,) in _rows(execute, select):
            yield line
    for (sql,) in _rows(
        execute,
        "SELECT sql FROM sqlite_schema WHERE sql NOT NULL AND type IN ('index', 'trigger', 'view')",
    ):
        yield f"{sql};"
    yield from sequence
    yield "COMMIT;"


def _fulltext_rows(execute: Execute, name: str, sql: str) -> Iterator[str]:
    """A full-text table's rows: INSERTs with the rowid, or FTS5's 'rebuild'
    for one whose content is another table's or none."""
    ident = _ident(name)
    if "content=" in sql.lower().replace(" ", ""):
        yield f"INSERT INTO {ident}({ident}) VALUES('rebuild');"
        return
    columns = [r[1] for r in _rows(execute, f"PRAGMA table_info({ident})")]
    if not columns:
        return
    names = ", ".join(_ident(c) for c in columns)
    values = "||','||".join(f"quote({_ident(c)})" for c in ["rowid", *columns])
    select = (
        f"SELECT 'INSERT INTO {ident.replace(chr(39), chr(39) * 2)}(rowid, {names.replace(chr(39), chr(39) * 2)}) "
        f"VALUES('||{values}||');' FROM {ident}"
    )
    for (line,) in _rows(execute, select):
        yield line
