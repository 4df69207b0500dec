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

from typing import Any, Callable, NamedTuple

from toondb.codec.keycode import key_rowid, rowid_key
from toondb.codec.rowcodec import decode_row, encode_row
from toondb.sql.catalog import ColumnInfo, TableInfo

__all__ = ["NAME", "Entry", "new_table", "lookup", "raise_seq", "rename", "forget"]

NAME = "sqlite_sequence"


def new_table(tid: int) -> TableInfo:
    """The ``sqlite_sequence`` table: ``CREATE TABLE sqlite_sequence(name,seq)``."""
    t = TableInfo(NAME, tid, [ColumnInfo("name", ""), ColumnInfo("seq", "")], [], [], [], [])
    t.refresh()
    return t


class Entry(NamedTuple):
    """What one read of ``sqlite_sequence`` found for a table: its row (key and
    bytes, None when it has none), its seq, and the key a new row would take."""

    tree: Any
    key: bytes | None
    raw: bytes | None
    seq: int
    next_key: bytes


def _scan(tree: Any, table: str) -> tuple[list[tuple[bytes, bytes, list[Any]]], int]:
    """The rows of ``sqlite_sequence`` naming table (key, bytes, [name, seq]), and
    the largest rowid of the whole table."""
    defaults = (None, None)
    mine, last = [], 0
    for k, v in list(tree.scan()):
        last = max(last, key_rowid(k))
        row = list(decode_row(v, defaults, k)[:-1])
        if row[0] == table:
            mine.append((k, v, row))
    return mine, last


def lookup(trees: Any, catalog: Any, table: str) -> Entry | None:
    """table's entry (trees: what has ``tree(name)``, a Ctx or a transaction);
    None when the database has no ``sqlite_sequence``."""
    seqt = catalog.tables.get(NAME)
    if seqt is None:
        return None
    tree = trees.tree(seqt.tree)
    mine, last = _scan(tree, table)
    key = raw = None
    best = 0
    for k, v, (_, seq) in mine:
        if type(seq) is int and (key is None or seq > best):
            key, raw, best = k, v, seq
    return Entry(tree, key, raw, best, rowid_key(last + 1))


def raise_seq(entry: Entry, table: str, high: int, undo: list[Any] | None) -> None:
    """Invariant 2: table's seq at least high (a new row when it has none)."""
    if entry.key is not None and entry.seq >= high:
        return
    key = entry.key if entry.key is not None else entry.next_key
    entry.tree.put(key, encode_row([table, high]))
    if undo is not None:
        undo.append((entry.tree, key, entry.raw))


def rename(txn: Any, catalog: Any, old: str, new: str, undo: list[Any] | None) -> None:
    """Invariant 3: table old's row names new."""
    _rewrite(txn, catalog, old, lambda row: encode_row([new, row[1]]), undo)


def forget(txn: Any, catalog: Any, table: str, undo: list[Any] | None) -> None:
    """Invariant 3: a dropped table's row goes."""
    _rewrite(txn, catalog, table, None, undo)


def _rewrite(
    txn: Any, catalog: Any, table: str, new: Callable[[list[Any]], bytes] | None, undo: Any
) -> None:
    seqt = catalog.tables.get(NAME)
    if seqt is None:
        return
    tree = txn.tree(seqt.tree)
    for k, v, row in _scan(tree, table)[0]:
        if new is None:
            tree.delete(k)
        else:
            tree.put(k, new(row))
        if undo is not None:
            undo.append((tree, k, v))
