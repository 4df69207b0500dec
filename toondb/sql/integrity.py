"""The SQL layer's integrity check: ``check_sql(txn)``, the second half of
``Database.check(deep=True)`` (the first is the storage engine's page-level check).

A page whose checksum holds can still hold a row that is not what toondb wrote (a
forgery with a recomputed checksum, a bug): the storage check cannot see it, since
it does not know the row format. This check reads one snapshot and verifies the
invariants of toondb.sql.catalog over it:

- every catalog entry decodes (tables and views as JSON), and each table's rows
  tree and index trees exist; no ``sql:t:`` / ``sql:i:`` tree belongs to no table
  (catalog invariant 1);
- every row key is an 8-byte rowid key, every row decodes with no byte left over,
  holds at most its table's columns, re-encodes to the same bytes (the format is
  canonical: toondb.codec.rowcodec) and stores the rowid in its INTEGER PRIMARY
  KEY column;
- every row has exactly the index entries it implies and every index holds no
  other entry (catalog invariants 2 and 3): each row's entry is looked up by key
  and must map back to the row, and each index holds as many entries as the
  table has rows;
- every full-text table's index holds exactly its content's tokens (catalog
  invariant 6; skipped for contentless tables, whose content is not kept).

Problems are collected (up to ``MAX_PROBLEMS``) and raised together as one
``CorruptionError`` whose ``problems`` lists them, as the storage check does.
The cost is a decode and an encode per row and a lookup per index entry, so a
deep check takes a few times as long as the page-level one.
"""

from __future__ import annotations

import json
from typing import Any

from toondb.codec.rowcodec import decode_values, encode_row
from toondb.errors import CorruptionError
from toondb.sql import catalog as C

__all__ = ["check_sql", "MAX_PROBLEMS"]

MAX_PROBLEMS = 100  # problems listed before the check stops looking


class _Problems(list):  # type: ignore[type-arg]
    """The problems found so far; full() once MAX_PROBLEMS were found."""

    def full(self) -> bool:
        return len(self) >= MAX_PROBLEMS


def check_sql(txn: Any) -> dict[str, int]:
    """Verify every SQL table, row and index entry of txn's snapshot (see the module's
    docstring). Returns counts; raises CorruptionError listing the problems."""
    problems = _Problems()
    counts = {"sql_tables": 0, "sql_rows": 0, "sql_indexes": 0, "sql_index_entries": 0}
    if txn.has_tree(C.CATALOG_TREE):
        tables = _catalog(txn, problems)
        known = {C.CATALOG_TREE}
        for table in tables:
            known.add(table.tree)
            known.update(ix.tree for ix in table.indexes)
            if not problems.full():
                _table(txn, table, problems, counts)
        by_name = {t.name.lower(): t for t in tables}
        for table in tables:
            if table.fulltext is not None and not problems.full():
                _fulltext(txn, table, by_name, problems, counts)
        for name in txn.tree_names(b"sql:"):
            if name not in known and name.startswith((b"sql:t:", b"sql:i:")):
                problems.append(f"tree {name!r} belongs to no table of the SQL catalog")
    if problems:
        shown = "; ".join(problems[:20])
        more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
        err = CorruptionError(f"SQL integrity check failed: {shown}{more}")
        err.problems = list(problems)  # type: ignore[attr-defined]
        raise err
    return counts


def _catalog(txn: Any, problems: _Problems) -> list[C.TableInfo]:
    """The tables of the catalog, read entry by entry (not through the cache of
    catalog.load, which is keyed by the cookie and would not see a damaged entry)."""
    tree = txn.tree(C.CATALOG_TREE)
    tables = []
    for key, value in tree.scan(b"t:", b"t;"):
        try:
            table = C.TableInfo.from_json(value)
        except Exception as exc:  # any decoding failure is damage
            problems.append(f"catalog entry {key!r} does not decode: {type(exc).__name__}: {exc}")
            continue
        if b"t:" + table.name.lower().encode() != key:
            problems.append(f"catalog entry {key!r} describes table {table.name!r}")
        tables.append(table)
    for key, value in tree.scan(b"v:", b"v;"):
        try:
            view = json.loads(value)
            if not isinstance(view, dict) or not isinstance(view.get("sql"), str):
                raise ValueError("not a view definition")
        except Exception as exc:
            problems.append(f"catalog entry {key!r} does not decode: {type(exc).__name__}: {exc}")
    return tables


def _table(txn: Any, table: C.TableInfo, problems: _Problems, counts: dict[str, int]) -> None:
    from toondb.sql.planner import table_defaults
    from toondb.sql.writer import index_entry_key

    counts["sql_tables"] += 1
    name = table.name
    trees = {}
    for tree_name in [table.tree] + [ix.tree for ix in table.indexes]:
        if txn.has_tree(tree_name):
            trees[tree_name] = txn.tree(tree_name)
        else:
            problems.append(f"table {name}: its tree {tree_name!r} is missing")
    rows = trees.get(table.tree)
    if rows is None:
        return
    indexes = [(ix, trees[ix.tree]) for ix in table.indexes if ix.tree in trees]
    defaults = table_defaults(table)
    ncols = len(table.columns)
    rowid_col = table.rowid_col
    nrows = 0
    for key, raw in rows.scan():
        nrows += 1
        if problems.full():
            return
        where = f"table {name}, row key {key.hex()}"
        if len(key) != 8:
            problems.append(f"{where}: a row key is 8 bytes, this one {len(key)}")
            continue
        try:
            values = decode_values(raw)
            canonical = encode_row(values)
        except Exception as exc:
            problems.append(f"{where}: the row does not decode: {type(exc).__name__}: {exc}")
            continue
        if canonical != raw:
            problems.append(f"{where}: the row's bytes are not what toondb writes for its values")
            continue
        if len(values) > ncols:
            problems.append(f"{where}: the row holds {len(values)} values; the table has {ncols}")
            continue
        row = values + defaults[len(values) :]
        rowid = int.from_bytes(key, "big") - (1 << 63)
        if rowid_col is not None and row[rowid_col] != rowid:
            problems.append(
                f"{where}: INTEGER PRIMARY KEY column holds {row[rowid_col]!r}, not rowid {rowid}"
            )
        for ix, itree in indexes:
            entry = index_entry_key(ix, ix.key_values(row), key)
            if itree.get(entry) != key:
                problems.append(f"{where}: its entry in index {ix.name} is missing or wrong")
    counts["sql_rows"] += nrows
    for ix, itree in indexes:
        counts["sql_indexes"] += 1
        n = itree.count()
        counts["sql_index_entries"] += n
        if n != nrows and not problems.full():
            _stray_entries(ix, itree, rows, defaults, problems, n, nrows, name)


def _fulltext(
    txn: Any,
    table: C.TableInfo,
    tables: dict[str, C.TableInfo],
    problems: _Problems,
    counts: dict[str, int],
) -> None:
    """A full-text table's index holds exactly its content's tokens (catalog
    invariant 6; FTS5's 'integrity-check': toondb/text/integrity.py)."""
    from toondb.sql import fulltext
    from toondb.sql.planner.fts import content_rows

    counts["fulltext_indexes"] = counts.get("fulltext_indexes", 0) + 1
    try:
        ix = fulltext.method().handle(txn, table.fulltext["index"])  # type: ignore[index]
        rows = content_rows(txn.tree, table, tables)
        ix.integrity_check(rows)
    except CorruptionError as exc:
        problems.append(f"full-text table {table.name}: {exc}")
    except Exception as exc:  # a missing tree, an undecodable record: damage
        problems.append(f"full-text table {table.name}: {type(exc).__name__}: {exc}")


def _stray_entries(
    ix: C.IndexInfo,
    itree: Any,
    rows: Any,
    defaults: tuple[Any, ...],
    problems: _Problems,
    n: int,
    nrows: int,
    table: str,
) -> None:
    """Name the entries of an index that holds n entries for nrows rows."""
    from toondb.sql.writer import index_entry_key

    problems.append(f"table {table}: index {ix.name} holds {n} entries for {nrows} rows")
    for entry, value in itree.scan():
        if problems.full():
            return
        raw = rows.get(value) if len(value) == 8 else None
        ok = False
        if raw is not None:
            try:
                values = decode_values(raw)
                row = values + defaults[len(values) :]
                ok = index_entry_key(ix, ix.key_values(row), value) == entry
            except Exception:
                ok = False
        if not ok:
            problems.append(f"index {ix.name}: entry {entry.hex()} matches no row of {table}")
