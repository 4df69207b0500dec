"""How a row reaches a table: the table tree, its index trees, constraints, foreign keys.

``TableWriter`` does the row writes of one table for INSERT, UPDATE and DELETE:
NOT NULL and CHECK, UNIQUE and PRIMARY KEY conflicts, foreign keys (parent
exists; ON DELETE / ON UPDATE actions on child rows), new rowids, and every
write recorded in the statement's undo list (engine.py describes statement
atomicity); VECTOR(n) values checked and stored as float32 blobs, and the
changes of the table's HNSW indexes recorded for the statement's end
(sql/hnsw.py). ``index_entry_key`` is the key of a row's entry in an index tree.
"""

from __future__ import annotations

from typing import Any

from toondb.codec.keycode import encode_values, key_rowid, prefix_end, rowid_key
from toondb.codec.rowcodec import decode_row, encode_row
from toondb.errors import ConstraintError, SQLError
from toondb.sql import types as T
from toondb.sql.catalog import Catalog, IndexInfo, TableInfo
from toondb.sql.collation import collation
from toondb.sql.executor import Ctx, rowid_probe
from toondb.sql.fn_vector import column_value
from toondb.sql.fulltext import PendingText
from toondb.sql.hnsw import PendingVectors
from toondb.sql.planner import table_defaults, table_scope
from toondb.sql.sequence import Entry, lookup, raise_seq

# STRICT: a value's class as SQLite's error names it
_STRICT_CLASS = {"integer": "INT", "real": "REAL", "text": "TEXT", "blob": "BLOB"}
# STRICT: the Python types a declared type accepts once its affinity is applied
_STRICT_PY: dict[str, tuple[type, ...]] = {
    "INT": (int,),
    "INTEGER": (int,),
    "REAL": (float,),
    "TEXT": (str, T.JsonText),
    "BLOB": (bytes, bytearray, memoryview),
}


class TableWriter:
    """Row and index writes of one table, with constraint checks and undo records."""

    def __init__(self, ctx: Ctx, table: TableInfo, catalog: Catalog, ec: Any, fk: bool) -> None:
        self.ctx = ctx
        self.table = table
        self.catalog = catalog
        self.ncols = len(table.columns)
        # checked newest first, as SQLite does (its table's index list is built
        # by prepending): which conflict an error names or an upsert updates
        self.unique = [ix for ix in reversed(table.indexes) if ix.unique]
        self.defaults = table_defaults(table)
        scope = table_scope(table, None)
        self.checks = [
            (name or text, ec.compile(expr, scope, True)) for name, text, expr in table.check_exprs
        ]
        self.not_null = [
            i for i, c in enumerate(table.columns) if c.not_null and i != table.rowid_col
        ]
        # STRICT: (column, its Python types, declared type) of the typed columns
        self.strict = [
            (i, _STRICT_PY[tn], tn)
            for i, c in enumerate(table.columns)
            if table.strict
            and i != table.rowid_col
            and (tn := c.type_name.strip().upper()) != "ANY"
        ]
        # generated columns: (column, affinity, expression over the row + rowid)
        self.generated = [
            (i, table.affinities[i], ec.compile(table.columns[i].generated, scope))
            for i in table.generated
        ]
        self.fk = fk
        self.fks = table.fks if fk else []
        self.children: list[tuple[TableInfo, dict[str, Any]]] = []
        if fk:
            for t in catalog.tables.values():
                for f in t.fks:
                    if f["table"].lower() == table.name.lower():
                        self.children.append((t, f))
        self.next_rowid: int | None = None
        self.autoinc_start: int | None = None  # next_rowid when an AUTOINCREMENT INSERT began
        self.autoinc_entry: Entry | None = None  # its table's sqlite_sequence entry then
        self.vcols = [(i, n, table.columns[i].name) for i, n in table.vector_cols]
        self.vindexes = table.vector_indexes
        fx = table.fulltext
        self.fts_index: str | None = fx["index"] if fx is not None else None
        self.contentless = fx is not None and fx["content"] == ""
        # external content or contentless: the rows are not this table's to store
        self.fts_only = fx is not None and fx["content"] is not None

    # -- full-text indexes

    def text_set(self, op: str, rowid: int, row: Any) -> None:
        """Record an insert ("i") or delete ("d") of a row for the table's full-text
        index (sql/fulltext.py); row: its column values (None: unknown)."""
        pending = self.ctx.fulltext
        if pending is None:
            pending = self.ctx.fulltext = PendingText()
        vals = None if row is None else list(row[: self.ncols])
        assert self.fts_index is not None
        pending.add(self.fts_index, op, rowid, vals)

    # -- vectors

    def fix_vectors(self, row: list[Any], only: Any = None) -> None:
        """The VECTOR(n) values of row as float32 blobs (VectorValueError naming the
        column for what is not a vector of n dimensions); only: column indexes."""
        for i, n, name in self.vcols:
            if only is None or i in only:
                row[i] = column_value(row[i], n, self.table.name, name)

    def vector_set(self, rowid: int, row: Any) -> None:
        """Record the row's vectors for the HNSW indexes (None: the row has none)."""
        pending = self.ctx.vectors
        if pending is None:
            pending = self.ctx.vectors = PendingVectors()
        for vx in self.vindexes:
            pending.set(vx, rowid, None if row is None else row[vx.col_idx])

    # -- raw writes with undo

    def _put(self, tree: Any, key: bytes, value: bytes, old: bytes | None) -> None:
        undo = self.ctx.undo
        if undo is not None:
            undo.append((tree, key, old))
        tree.put(key, value)

    def _del(self, tree: Any, key: bytes, old: bytes | None) -> None:
        undo = self.ctx.undo
        if undo is not None:
            undo.append((tree, key, old))
        tree.delete(key)

    # -- checks

    def start_autoincrement(self) -> None:
        """An INSERT into an AUTOINCREMENT table begins: its next rowid is one
        past the larger of its largest rowid and its seq (sql/sequence.py)."""
        self.autoinc_entry = lookup(self.ctx, self.catalog, self.table.name)
        seq = self.autoinc_entry.seq if self.autoinc_entry is not None else 0
        self.next_rowid = max(self._after_last(), seq + 1)
        self.autoinc_start = self.next_rowid

    def finish_autoincrement(self) -> None:
        """The INSERT ends: if it took rowids (a row OR IGNORE skipped takes one,
        as in SQLite), the table's seq reaches the largest (sequence.py,
        invariant 2), written where start_autoincrement found it."""
        entry = self.autoinc_entry
        if (
            entry is not None
            and self.next_rowid is not None
            and self.next_rowid != self.autoinc_start
        ):
            raise_seq(entry, self.table.name, self.next_rowid - 1, self.ctx.undo)

    def _after_last(self) -> int:
        last = next(iter(self.ctx.tree(self.table.tree).scan(b"", None, True)), None)
        # max(rowid) + 1, or 1 for an empty table (as SQLite)
        return key_rowid(last[0]) + 1 if last is not None else 1

    def new_rowid(self) -> int:
        if self.next_rowid is None:
            self.next_rowid = self._after_last()
        rid = self.next_rowid
        if rid > T.I64_MAX:
            if self.table.autoincrement:
                raise SQLError("database or disk is full")  # SQLite's SQLITE_FULL
            # the largest rowid is taken: an unused one at random, as SQLite does
            import random

            tree = self.ctx.tree(self.table.tree)
            for _ in range(100):
                rid = random.randint(1, T.I64_MAX)
                if tree.get(rowid_key(rid)) is None:
                    return rid
            raise SQLError(
                f"database or disk is full: no free rowid found in table {self.table.name}"
            )
        self.next_rowid = rid + 1
        return rid

    def saw_rowid(self, rid: int) -> None:
        if self.next_rowid is not None and rid >= self.next_rowid:
            self.next_rowid = rid + 1

    def check_row(self, row: list[Any], rowid: int) -> str | None:
        """Generated columns computed, then STRICT types, NOT NULL and CHECK;
        returns None or raises ConstraintError."""
        t = self.table
        if self.generated:
            # in column order, twice when one may read another declared after it
            for _ in range(1 if len(self.generated) == 1 else 2):
                for i, aff, f in self.generated:
                    row[i] = T.apply_affinity(aff, f((*row, rowid)))
        for i, types, tn in self.strict:
            v = row[i]
            if v is not None and type(v) not in types:
                raise ConstraintError(
                    f"cannot store {_STRICT_CLASS[T.typeof(v)]} value in {tn} column {t.name}.{t.columns[i].name}"
                )
        for i in self.not_null:
            if row[i] is None:
                raise ConstraintError(f"NOT NULL constraint failed: {t.name}.{t.columns[i].name}")
        if self.checks:
            full = tuple(row) + (rowid,)
            for name, f in self.checks:
                if f(full) is False:
                    raise ConstraintError(f"CHECK constraint failed: {name}")
        return None

    def unique_conflicts(
        self, row: list[Any], rowid: int, old: Any = None, only: list[IndexInfo] | None = None
    ) -> list[tuple[IndexInfo, int]]:
        out = []
        for ix in self.unique if only is None else only:
            if old is not None and old[-1] == rowid and all(old[i] is row[i] for i in ix.col_idx):
                continue  # an UPDATE that leaves this index's values alone
            vals = ix.key_values(row)
            if None in vals:
                continue
            rk = self.ctx.tree(ix.tree).get(encode_values(vals))
            if rk is not None:
                other = key_rowid(rk)
                if other != rowid:
                    out.append((ix, other))
        return out

    def unique_error(self, ix: IndexInfo, row: list[Any]) -> ConstraintError:
        t = self.table
        cols = ", ".join(f"{t.name}.{c}" for c in ix.columns)
        vals = ", ".join(repr(row[i]) for i in ix.col_idx)
        kind = "UNIQUE"
        return ConstraintError(
            f"{kind} constraint failed: {cols} (values: {vals}; index {ix.name})"
        )

    def pk_error(self, rowid: int) -> ConstraintError:
        t = self.table
        col = t.columns[t.rowid_col].name if t.rowid_col is not None else "rowid"
        return ConstraintError(
            f"UNIQUE constraint failed: {t.name}.{col} (PRIMARY KEY value {rowid} already exists)"
        )

    def check_fk_parent(self, row: list[Any]) -> None:
        for f in self.fks:
            vals = [row[self.table.column(c)] for c in f["columns"]]
            if None in vals:
                continue
            if not self._parent_exists(f, vals):
                raise ConstraintError(
                    f"FOREIGN KEY constraint failed: {self.table.name}({', '.join(f['columns'])}) = "
                    f"{', '.join(map(repr, vals))} has no row in {f['table']}"
                )

    def _parent_exists(self, f: dict[str, Any], vals: list[Any]) -> bool:
        parent = self.catalog.tables.get(f["table"].lower())
        if parent is None:
            return False
        ref = f["ref_columns"] or parent.pk or []
        if not ref:
            raise SQLError(f"foreign key mismatch: {parent.name} has no PRIMARY KEY to reference")
        idx = [parent.column(c) for c in ref]
        vals = [T.apply_affinity(parent.affinities[i], v) for i, v in zip(idx, vals)]
        if len(idx) == 1 and idx[0] == parent.rowid_col:
            rid = rowid_probe(vals[0])
            return rid is not None and self.ctx.tree(parent.tree).get(rowid_key(rid)) is not None
        colls, keys = parent_key_collations(parent, idx)
        vals = [k(v) for k, v in zip(keys, vals)]
        for ix in parent.indexes:
            if ix.col_idx[: len(idx)] == idx and ix.collations[: len(idx)] == colls:
                prefix = encode_values(vals)
                return (
                    next(iter(self.ctx.tree(ix.tree).scan(prefix, prefix_end(prefix))), None)
                    is not None
                )
        defaults = table_defaults(parent)
        for k, v in self.ctx.tree(parent.tree).scan():
            r = decode_row(v, defaults, k)
            if all(
                r[i] is not None and T.compare(key(r[i]), x) == 0
                for i, key, x in zip(idx, keys, vals)
            ):
                return True
        return False

    def child_rows(
        self, child: TableInfo, f: dict[str, Any], vals: list[Any]
    ) -> list[tuple[Any, ...]]:
        idx = [child.column(c) for c in f["columns"]]
        defaults = table_defaults(child)
        out = []
        # the parent key's collations decide (SQLite's fkScanChildren)
        ref = f["ref_columns"] or self.table.pk or []
        colls, keys = parent_key_collations(self.table, [self.table.column(c) for c in ref])
        vals = [k(v) for k, v in zip(keys, vals)]
        for ix in child.indexes:
            if ix.col_idx[: len(idx)] == idx and ix.collations[: len(idx)] == colls:
                prefix = encode_values(vals)
                rows_tree = self.ctx.tree(child.tree)
                for _, rk in self.ctx.tree(ix.tree).scan(prefix, prefix_end(prefix)):
                    v = rows_tree.get(rk)
                    if v is not None:
                        out.append(decode_row(v, defaults, rk))
                return out
        if len(idx) == 1 and idx[0] == child.rowid_col:
            rid = rowid_probe(vals[0])
            if rid is not None:
                v = self.ctx.tree(child.tree).get(rowid_key(rid))
                if v is not None:
                    out.append(decode_row(v, defaults, rowid_key(rid)))
            return out
        for k, v in self.ctx.tree(child.tree).scan():
            r = decode_row(v, defaults, k)
            if all(
                r[i] is not None and T.compare(key(r[i]), x) == 0
                for i, key, x in zip(idx, keys, vals)
            ):
                out.append(r)
        return out

    def on_parent_delete(
        self,
        row: tuple[Any, ...] | list[Any],
        writers: dict[str, TableWriter],
        ec: Any,
        action_key: str = "on_delete",
    ) -> None:
        for child, f in self.children:
            ref = f["ref_columns"] or self.table.pk or []
            if not ref:
                continue
            vals = [row[self.table.column(c)] for c in ref]
            if None in vals:
                continue
            kids = self.child_rows(child, f, vals)
            if not kids:
                continue
            action = f.get(action_key, "NO ACTION")
            cw = writers.get(child.name.lower())
            if cw is None:
                cw = writers[child.name.lower()] = TableWriter(
                    self.ctx, child, self.catalog, ec, True
                )
            if action == "CASCADE" and action_key == "on_delete":
                for r in kids:
                    if child is self.table and r[-1] == row[-1]:
                        continue
                    cw.delete_row(r, writers, ec)
            elif action in ("SET NULL", "SET DEFAULT"):
                for r in kids:
                    new = list(r[: cw.ncols])
                    for c in f["columns"]:
                        ci = child.column(c)
                        new[ci] = None if action == "SET NULL" else cw.defaults[ci]
                    cw.update_row(r, new, r[-1], writers, ec)
            else:
                raise ConstraintError(
                    f"FOREIGN KEY constraint failed: {len(kids)} row(s) of {child.name} reference "
                    f"{self.table.name}({', '.join(ref)}) = {', '.join(map(repr, vals))}"
                )

    # -- row operations

    def index_key(self, ix: IndexInfo, row: Any, rk: bytes) -> bytes:
        return index_entry_key(ix, ix.key_values(row), rk)

    def insert_row(self, row: list[Any], rowid: int) -> None:
        if self.fts_index is not None:
            self.text_set("i", rowid, row)
            if self.fts_only:
                return
        rk = rowid_key(rowid)
        self._put(self.ctx.tree(self.table.tree), rk, encode_row(row), None)
        for ix in self.table.indexes:
            self._put(self.ctx.tree(ix.tree), self.index_key(ix, row, rk), rk, None)
        if self.vindexes:
            self.vector_set(rowid, row)

    def delete_row(
        self, old: tuple[Any, ...], writers: dict[str, TableWriter] | None = None, ec: Any = None
    ) -> None:
        rid = old[-1]
        if self.fts_only:
            if self.contentless and not self.table.fulltext.get("contentless_delete"):  # type: ignore[union-attr]
                raise SQLError(f"cannot DELETE from contentless fts5 table: {self.table.name}")
            # a contentless row's values are unknown: the index finds the row itself
            self.text_set("d", rid, None if self.contentless else old)
            return
        rk = rowid_key(rid)
        tree = self.ctx.tree(self.table.tree)
        raw = tree.get(rk)
        if raw is None:
            return
        if self.fts_index is not None:
            self.text_set("d", rid, old)
        if self.children and writers is not None:
            self.on_parent_delete(old, writers, ec)
        for ix in self.table.indexes:
            self._del(self.ctx.tree(ix.tree), self.index_key(ix, old, rk), rk)
        self._del(tree, rk, raw)
        if self.vindexes:
            self.vector_set(rid, None)

    def update_row(
        self,
        old: tuple[Any, ...],
        new: list[Any],
        new_rowid: int,
        writers: dict[str, TableWriter] | None = None,
        ec: Any = None,
        indexes: list[IndexInfo] | None = None,
    ) -> None:
        old_rid = old[-1]
        if self.contentless:
            raise SQLError(f"cannot UPDATE contentless fts5 table: {self.table.name}")
        if self.fts_index is not None:
            self.text_set("d", old_rid, old)
            self.text_set("i", new_rowid, new)
            if self.fts_only:
                return
        ork = rowid_key(old_rid)
        nrk = ork if new_rowid == old_rid else rowid_key(new_rowid)
        tree = self.ctx.tree(self.table.tree)
        # the previous row is needed only for the undo list (inside a transaction)
        raw = tree.get(ork) if self.ctx.undo is not None else None
        if self.children and writers is not None:
            t = self.table
            keys = {c.lower() for _, f in self.children for c in (f["ref_columns"] or t.pk or [])}
            if any(
                T.compare(old[t.column(c)], new[t.column(c)]) != 0
                if old[t.column(c)] is not None and new[t.column(c)] is not None
                else old[t.column(c)] is not new[t.column(c)]
                for c in keys
            ):
                self.on_parent_delete(old, writers, ec, "on_update")
        for ix in self.table.indexes if indexes is None else indexes:
            if ork == nrk and all(old[i] is new[i] for i in ix.col_idx):
                continue
            ok = self.index_key(ix, old, ork)
            nk = self.index_key(ix, new, nrk)
            if ok != nk:
                itree = self.ctx.tree(ix.tree)
                self._del(itree, ok, ork)
                self._put(itree, nk, nrk, None)
        if nrk != ork:
            self._del(tree, ork, raw)
            self._put(tree, nrk, encode_row(new), None)
        else:
            self._put(tree, nrk, encode_row(new), raw)
        if self.vindexes:
            if nrk != ork:
                self.vector_set(old_rid, None)
                self.vector_set(new_rowid, new)
            elif any(old[vx.col_idx] != new[vx.col_idx] for vx in self.vindexes):
                self.vector_set(new_rowid, new)


def parent_key_collations(parent: TableInfo, idx: list[int]) -> tuple[list[str], list[Any]]:
    """The collations (names, key functions) a foreign key's parent key compares
    under: each parent column's own, as SQLite's parent index must use them."""
    names = [(parent.columns[i].collation or "BINARY").upper() for i in idx]
    return names, [collation(n)[0] for n in names]


def index_entry_key(ix: IndexInfo, vals: list[Any], rk: bytes) -> bytes:
    """An index entry's key (catalog.py, invariant 3) from its values under the
    index's collations (``ix.key_values``, invariant 7): the encoded values, then the
    rowid key, except in a UNIQUE index when no value is NULL: there the values
    alone, so two transactions inserting the same value write the same key and
    the second to commit gets a conflict instead of a duplicate."""
    k = encode_values(vals)
    if ix.unique and None not in vals:
        return k
    return k + rk
