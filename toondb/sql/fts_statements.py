"""The statements of full-text tables that are not an ordinary table's (sql/fulltext.py):
CREATE VIRTUAL TABLE ... USING fts5(...), and INSERT into a full-text table, which
FTS5 also uses for its special commands:

==========================================================  ===========================
``INSERT INTO t(t) VALUES('optimize')``                     repack the index
``INSERT INTO t(t) VALUES('rebuild')``                      index the content again
                                                            (the table's own rows or
                                                            the content table's)
``INSERT INTO t(t) VALUES('delete-all')``                   empty the index (external
                                                            content and contentless)
``INSERT INTO t(t) VALUES('integrity-check')``              CorruptionError unless the
                                                            index is the content's
``INSERT INTO t(t, rowid, c1, ...) VALUES('delete', ...)``  forget a row indexed with
                                                            these values (external
                                                            content and contentless)
``INSERT INTO t(t) VALUES('merge' | 'automerge' | ...)``    FTS5's merge tuning: no-ops
==========================================================  ===========================

An INSERT into an external-content or contentless table only indexes the values;
its rowid is the one given (or the index's largest + 1).
"""

from __future__ import annotations

from typing import Any

from toondb.codec.keycode import rowid_key
from toondb.errors import ConstraintError, FullTextError, SchemaError, SQLError
from toondb.sql import ast, fulltext
from toondb.sql import catalog as C
from toondb.sql.catalog import Catalog, ColumnInfo, TableInfo
from toondb.sql.compiled import Outcome
from toondb.sql.dml import CompiledWrite, insert_source
from toondb.sql.planner import Planner

__all__ = ["create_virtual_table", "CompiledFtsInsert"]

_NO_OPS: tuple[str, ...] = ("merge", "automerge", "crisismerge", "usermerge", "pgsz", "hashsize")
_NO_OPS += ("deletemerge", "secure-delete")


def create_virtual_table(
    txn: Any, cat: Catalog, tables: dict[str, TableInfo], s: ast.CreateVirtualTable
) -> Outcome:
    low = s.name.lower()
    if low in tables or low in cat.views or cat.find_index(s.name) is not None:
        if s.if_not_exists and low in tables:
            return Outcome(rowcount=0)
        raise SchemaError(f"table {s.name} already exists")
    if low.startswith("sqlite_"):
        raise SchemaError(f"object name reserved for internal use: {s.name}")
    if s.module.lower() not in fulltext.MODULES:
        raise SQLError(f"no such module: {s.module}")
    args = fulltext.split_args(s.args)
    m = fulltext.method()
    d = m.parse(args, s.name)
    tid = C.next_id(txn)
    index = f"sql:{tid}"
    info = {
        "module": s.module.lower(),
        "args": args,
        "index": index,
        "content": d["content"],
        "content_rowid": d["content_rowid"],
        "contentless_delete": d.get("contentless_delete", False),
    }
    t = TableInfo(
        s.name, tid, [ColumnInfo(c, "") for c in d["columns"]], [], [], [], [], False, None, info
    )
    txn.tree(t.tree, create=True)
    m.create(txn, index, args, s.name)
    tables[low] = t
    C.save(txn, tables, [s.name], [])
    return Outcome(rowcount=0)


class CompiledFtsInsert(CompiledWrite):
    """INSERT into a full-text table (the module's docstring)."""

    def __init__(self, parsed: ast.Parsed, stmt: ast.Insert, catalog: Catalog, fk: bool) -> None:
        super().__init__(parsed.nparams, parsed.names, parsed.nslots)
        self.catalog = catalog
        self.table = table = catalog.table(stmt.table)
        self.fk = False
        if stmt.upsert is not None:
            raise SQLError("UPSERT not implemented for virtual table")
        planner = Planner(catalog, self.ctx, self.P)
        planner.with_ctes(stmt.ctes)
        self.planner = planner
        self.ec = planner.ec
        self.conflict = stmt.conflict or "ABORT"
        ncols = len(table.columns)
        names = stmt.columns if stmt.columns is not None else [c.name for c in table.columns]
        self.column_at: list[int | None] = [None] * ncols
        self.cmd_slot: int | None = None
        self.rowid_slot: int | None = None
        self.rank_slot: int | None = None
        for k, name in enumerate(names):
            low = name.lower()
            i = table.col_index.get(low)
            if i is not None:
                self.column_at[i] = k
            elif low == table.name.lower():
                self.cmd_slot = k
            elif low in C.ROWID_NAMES:
                self.rowid_slot = k
            elif low == "rank":
                self.rank_slot = k
            else:
                raise SchemaError(f"table {table.name} has no column named {name}")
        self.width = len(names)
        self.values_fns, self.select = insert_source(
            planner, stmt.source, self.width, lambda n: f"{n} values for {self.width} columns"
        )

    def explain(self) -> list[str]:
        return [f"INSERT INTO {self.table.name} (full-text table)"]

    def run(self, txn: Any, params: Any, undo: list[Any] | None, state: Any) -> Outcome:
        return self.run_many(txn, [params], undo, state)

    def run_many(self, txn: Any, batches: Any, undo: list[Any] | None, state: Any) -> Outcome:
        ctx = self.start(txn, undo)
        w = self.writer()
        count = 0
        last = None
        own = self.table.fulltext["content"] is None  # type: ignore[index]
        tree = ctx.tree(self.table.tree)
        for params in batches:
            self.bind(params)
            if self.select is not None:
                ctx.epoch += 1
                rows: Any = list(self.select.run())
            else:
                rows = [[f(()) for f in fns] for fns in self.values_fns or []]
            for vals in rows:
                if self.cmd_slot is not None and vals[self.cmd_slot] is not None:
                    self._command(ctx, w, vals)
                    continue
                row = [vals[k] if k is not None else None for k in self.column_at]
                rid = vals[self.rowid_slot] if self.rowid_slot is not None else None
                if rid is not None and type(rid) is not int:
                    try:
                        rid = int(rid)
                    except (TypeError, ValueError):
                        raise SQLError("datatype mismatch") from None
                if rid is None:
                    rid = w.new_rowid() if own else self._next_index_rowid(ctx)
                elif own:
                    w.saw_rowid(rid)
                    if tree.get(rowid_key(rid)) is not None:
                        if self.conflict == "IGNORE":
                            continue
                        if self.conflict != "REPLACE":
                            raise ConstraintError(
                                f"UNIQUE constraint failed: {self.table.name}.rowid"
                            )
                        w.delete_row(_decoded(self, tree, rid))
                w.insert_row(row, rid)
                count += 1
                last = rid
        fulltext.flush(ctx)
        return Outcome(rowcount=count, lastrowid=last)

    def _next_index_rowid(self, ctx: Any) -> int:
        fulltext.flush(ctx)
        ix = fulltext.method().handle(ctx.txn, self.table.fulltext["index"])  # type: ignore[index]
        ix.flush()
        last = ix.last_rowid()
        return 1 if last is None else last + 1

    def _command(self, ctx: Any, w: Any, vals: list[Any]) -> None:
        t = self.table
        fx: dict[str, Any] = t.fulltext  # type: ignore[assignment]
        cmd = vals[self.cmd_slot]  # type: ignore[index]
        cmd = cmd.lower() if isinstance(cmd, str) else cmd
        own = fx["content"] is None
        # refused before anything is written (the statement's own rows stay undoable)
        if cmd in ("delete", "delete-all") and own:
            raise FullTextError(
                f"'{cmd}' may only be used with a contentless or external content fts5 table"
            )
        if cmd == "rebuild" and fx["content"] == "":
            raise FullTextError("'rebuild' may not be used with a contentless fts5 table")
        rid = vals[self.rowid_slot] if self.rowid_slot is not None else None
        if cmd == "delete" and type(rid) is not int:
            raise FullTextError("the 'delete' command needs the row's integer rowid")
        if cmd not in ("delete", "delete-all", "rebuild", "optimize", "integrity-check") + _NO_OPS:
            raise FullTextError(f"unknown fts5 special command: {cmd}")
        fulltext.flush(ctx)  # the statement's earlier rows first
        ix = fulltext.method().handle(ctx.txn, fx["index"])
        if cmd == "integrity-check":
            ix.integrity_check(None if fx["content"] == "" else self._content_rows())
            return
        if cmd in _NO_OPS:
            return
        with fulltext.index_writes(ctx.txn):
            if cmd == "delete":
                row = [vals[k] if k is not None else None for k in self.column_at]
                ix.delete(rid, fulltext.text_values(row))
            elif cmd == "delete-all":
                ix.delete_all()
            elif cmd == "rebuild":
                ix.rebuild(self._content_rows())
            else:
                ix.optimize()

    def _content_rows(self) -> list[tuple[int, list[str | None]]]:
        from toondb.sql.planner.fts import content_rows

        rows = content_rows(self.ctx.tree, self.table, self.catalog.tables)
        return rows or []


def _decoded(c: CompiledFtsInsert, tree: Any, rid: int) -> tuple[Any, ...]:
    from toondb.codec.rowcodec import decode_row
    from toondb.sql.planner import table_defaults

    k = rowid_key(rid)
    return decode_row(tree.get(k), table_defaults(c.table), k)
