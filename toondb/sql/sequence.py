"""AUTOINCREMENT as SQLite keeps it: the table ``sqlite_sequence(name, seq)``.

A table declared ``INTEGER PRIMARY KEY AUTOINCREMENT`` never reuses a rowid,
even one whose row was deleted: its new rowids start past the largest it ever
held. SQLite records that largest rowid per table in an ordinary table,
``sqlite_sequence``, made with the first AUTOINCREMENT table; so does toondb.
Being a table, it is read and written with SQL as in SQLite (a dump written by
``sqlite3 DB .dump`` ends with ``DELETE FROM sqlite_sequence`` and an INSERT per
table, which load as they do into SQLite).

Invariants kept here:

1. ``sqlite_sequence`` exists once any AUTOINCREMENT table was created (in the
   transaction of that CREATE TABLE); it is never dropped.
2. After an INSERT into an AUTOINCREMENT table, its row in ``sqlite_sequence``
   (name = the table's name) holds at least the largest rowid the statement
   inserted; a new rowid is one past the larger of that seq and the table's
   largest rowid (SQLite's rule). Past 2**63-1 the INSERT fails (SQLITE_FULL),
   where a table without AUTOINCREMENT picks a free rowid at random.
3. DROP TABLE removes the table's row, RENAME TO renames it.

A database whose AUTOINCREMENT tables were made before toondb kept the table
has no ``sqlite_sequence``: its tables take the largest rowid + 1 (the rowid of
a deleted last row again) until the table is made, by any CREATE TABLE ...
AUTOINCREMENT.
"""

from __future__ import annotations

from typing import Any

from toondb.codec.keycode import key_rowid, rowid_key
from toondb.codec.rowcodec import decode_row, encode_row
from toondb.sql.catalog import ColumnInfo, TableInfo

__all__ = ["NAME", "new_table", "seq_of", "raise_seq", "rename", "forget"]

NAME = "sqlite_sequence"


def new_table(tid: int) -> TableInfo:
    """The ``sqlite_sequence`` table: ``CREATE TABLE sqlite_sequence(name,seq)``."""
    t = TableInfo(NAME, tid, [ColumnInfo("name", ""), ColumnInfo("seq", "")], [], [], [], [])
    t.refresh()
    return t


def _rows(ctx: Any, seqt: TableInfo) -> list[tuple[bytes, list[Any]]]:
    defaults = (None, None)
    return [(k, list(decode_row(v, defaults, k)[:-1])) for k, v in ctx.tree(seqt.tree).scan()]


def seq_of(ctx: Any, catalog: Any, table: str) -> int:
    """The seq recorded for table (0 when it has none, or there is no table)."""
    seqt = catalog.tables.get(NAME)
    if seqt is None:
        return 0
    best = 0
    for _, (name, seq) in _rows(ctx, seqt):
        if name == table and type(seq) is int and seq > best:
            best = seq
    return best


def raise_seq(ctx: Any, catalog: Any, table: str, high: int, undo: list[Any] | None) -> None:
    """Invariant 2: table's seq at least high (a new row when it has none)."""
    seqt = catalog.tables.get(NAME)
    if seqt is None:
        return
    tree = ctx.tree(seqt.tree)
    last = 0
    for k, (name, seq) in _rows(ctx, seqt):
        last = max(last, key_rowid(k))
        if name == table:
            if not (type(seq) is int and seq >= high):
                old = tree.get(k)
                tree.put(k, encode_row([name, high]))
                if undo is not None:
                    undo.append((tree, k, old))
            return
    k = rowid_key(last + 1)
    tree.put(k, encode_row([table, high]))
    if undo is not None:
        undo.append((tree, k, None))


def _each(txn: Any, catalog: Any, table: str) -> list[tuple[Any, bytes, list[Any]]]:
    seqt = catalog.tables.get(NAME)
    if seqt is None:
        return []
    tree = txn.tree(seqt.tree)
    defaults = (None, None)
    out = []
    for k, v in list(tree.scan()):
        row = list(decode_row(v, defaults, k)[:-1])
        if row[0] == table:
            out.append((tree, k, row))
    return out


def rename(txn: Any, catalog: Any, old: str, new: str, undo: list[Any] | None) -> None:
    """Invariant 3: table old's row names new."""
    for tree, k, row in _each(txn, catalog, old):
        prev = tree.get(k)
        tree.put(k, encode_row([new, row[1]]))
        if undo is not None:
            undo.append((tree, k, prev))


def forget(txn: Any, catalog: Any, table: str, undo: list[Any] | None) -> None:
    """Invariant 3: a dropped table's row goes."""
    for tree, k, _ in _each(txn, catalog, table):
        prev = tree.get(k)
        tree.delete(k)
        if undo is not None:
            undo.append((tree, k, prev))
