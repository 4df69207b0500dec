"""Compiled CREATE, DROP and ALTER (tables, indexes, views).

DDL runs against the catalog as read at run time (it is never cached), validates
everything before its first write, and saves the catalog last (catalog.save
replaces the schema cookie, so every cached statement is compiled again).
"""

from __future__ import annotations

from typing import Any

from toondb.codec.keycode import encode_values, rowid_key
from toondb.codec.rowcodec import decode_row, encode_row
from toondb.errors import ConstraintError, SchemaError, SQLError
from toondb.sql import ast, fulltext, hnsw, sequence
from toondb.sql import catalog as C
from toondb.sql import types as T
from toondb.sql.catalog import Catalog, ColumnInfo, IndexInfo, TableInfo, VectorIndexInfo
from toondb.sql.compiled import Compiled, Outcome
from toondb.sql.executor import Ctx
from toondb.sql.fn_vector import column_value
from toondb.sql.grammar import parse_expression
from toondb.sql.planner import Planner, sql_text, table_defaults, table_scope
from toondb.sql.planner.ctes import view_ref
from toondb.sql.rename import drop_column_uses, rename_column, rename_table
from toondb.sql.writer import index_entry_key


def _column_info(cd: ast.ColumnDef) -> ColumnInfo:
    default_sql = cd.default_text  # DEFAULT (expr): its text
    if default_sql is None and cd.default is not None:
        default_sql = sql_text(cd.default)
    gen_sql, stored = cd.generated if cd.generated is not None else (None, False)
    if gen_sql is not None and (cd.primary_key or default_sql is not None):
        what = "PRIMARY KEY" if cd.primary_key else "DEFAULT"
        raise SQLError(f"generated columns cannot be part of the {what}")
    return ColumnInfo(
        cd.name,
        cd.type_name,
        cd.not_null,
        default_sql,
        cd.primary_key,
        cd.collation,
        gen_sql,
        stored,
    )


class CompiledDDL(Compiled):
    """CREATE/DROP/ALTER: run against the catalog as read at run time."""

    def __init__(self, parsed: ast.Parsed, stmt: ast.Statement) -> None:
        super().__init__(parsed.nparams, parsed.names, parsed.nslots)
        self.stmt = stmt
        self.parsed = parsed

    def explain(self) -> list[str]:
        return [type(self.stmt).__name__.upper()]

    def run(self, txn: Any, params: Any, undo: list[Any] | None, state: Any) -> Outcome:
        self.bind(params)
        ctx = self.start(txn, undo)
        cat = C.load(txn)
        tables = dict(cat.tables)
        s = self.stmt
        if isinstance(s, ast.CreateTable):
            return self._create_table(txn, ctx, cat, tables, s, state)
        if isinstance(s, ast.CreateVirtualTable):
            from toondb.sql.fts_statements import create_virtual_table

            return create_virtual_table(txn, cat, tables, s)
        if isinstance(s, ast.CreateView):
            low = s.name.lower()
            if low in cat.views or low in tables or cat.find_index(s.name) is not None:
                if s.if_not_exists and low in cat.views:
                    return Outcome(rowcount=0)
                raise SchemaError(
                    f"view {s.name} already exists"
                    if low in cat.views
                    else f"there is already a table or index named {s.name}"
                )
            vdef = {"name": s.name, "columns": s.columns, "sql": s.sql}
            trial = Catalog(cat.cookie, tables, {**cat.views, low: vdef})
            view_ref(
                Planner(trial, ctx, self.P), ast.TableRef(s.name, None)
            )  # fails on a broken view
            C.save(txn, tables, [], [], (s.name, vdef))
            return Outcome(rowcount=0)
        if isinstance(s, ast.DropView):
            if s.name.lower() not in cat.views:
                if s.if_exists:
                    return Outcome(rowcount=0)
                if s.name.lower() in tables:
                    raise SchemaError(f"use DROP TABLE to delete table {s.name}")
                raise SchemaError(f"no such view: {s.name}")
            C.save(txn, tables, [], [], (s.name, None))
            return Outcome(rowcount=0)
        if isinstance(s, ast.DropTable):
            t = tables.get(s.name.lower())
            if t is None and s.name.lower() in cat.views:
                raise SchemaError(f"use DROP VIEW to delete view {s.name}")
            if t is None:
                if s.if_exists:
                    return Outcome(rowcount=0)
                raise SchemaError(f"no such table: {s.name}")
            if t.name.lower() == sequence.NAME:
                raise SQLError(f"table {t.name} may not be dropped")  # sequence.py, invariant 1
            if state is not None and state.foreign_keys:
                for other in tables.values():
                    if other is t:
                        continue
                    for f in other.fks:
                        if (
                            f["table"].lower() == t.name.lower()
                            and len(txn.tree(other.tree))
                            and len(txn.tree(t.tree))
                        ):
                            raise ConstraintError(
                                f"FOREIGN KEY constraint failed: {other.name} references {t.name}"
                            )
            self._drop_tree(txn, t.tree, undo)
            for ix in t.indexes:
                self._drop_tree(txn, ix.tree, undo)
            for vx in t.vector_indexes:
                hnsw.method().drop(txn, vx)
            if t.fulltext is not None:
                fulltext.method().drop(txn, t.fulltext["index"])
            if t.autoincrement:
                sequence.forget(txn, cat, t.name, undo)  # sequence.py, invariant 3
            del tables[s.name.lower()]
            C.save(txn, tables, [], [t.name])
            return Outcome(rowcount=0)
        if isinstance(s, ast.CreateIndex):
            return self._create_index(txn, ctx, cat, tables, s)
        if isinstance(s, ast.DropIndex):
            hit = cat.find_index(s.name)
            if hit is None:
                if s.if_exists:
                    return Outcome(rowcount=0)
                raise SchemaError(f"no such index: {s.name}")
            t, dropped = hit
            if dropped.origin != "c":
                raise SQLError(
                    f"index associated with UNIQUE or PRIMARY KEY constraint cannot be dropped: {dropped.name}"
                )
            nt = t.copy()
            if isinstance(dropped, VectorIndexInfo):
                nt.vector_indexes = [i for i in nt.vector_indexes if i.name != dropped.name]
                hnsw.method().drop(txn, dropped)
            else:
                nt.indexes = [i for i in nt.indexes if i.name != dropped.name]
                self._drop_tree(txn, dropped.tree, undo)
            nt.refresh()
            tables[t.name.lower()] = nt
            C.save(txn, tables, [t.name], [])
            return Outcome(rowcount=0)
        if isinstance(s, ast.AlterTable):
            return self._alter(txn, ctx, cat, tables, s, undo)
        if isinstance(s, ast.Reindex):
            return reindex(txn, cat, s.name)
        raise SQLError(f"unsupported statement {type(s).__name__}")

    @staticmethod
    def _drop_tree(txn: Any, name: bytes, undo: list[Any] | None) -> None:
        # DDL validates everything before its first write and saves the catalog
        # last, so a failing DDL statement has written nothing to undo
        txn.drop_tree(name)

    def _create_table(
        self,
        txn: Any,
        ctx: Ctx,
        cat: Catalog,
        tables: dict[str, TableInfo],
        s: ast.CreateTable,
        state: Any,
    ) -> Outcome:
        if s.name.lower() in tables or s.name.lower() in cat.views:
            if s.if_not_exists:
                return Outcome(rowcount=0)
            kind = "table" if s.name.lower() in tables else "view"
            raise SchemaError(f"{kind} {s.name} already exists")
        if s.name.lower().startswith("sqlite_"):
            raise SchemaError(f"object name reserved for internal use: {s.name}")
        if s.as_select is not None:
            planner = Planner(cat, ctx, self.P)
            plan = planner.plan_select(s.as_select)
            cols = []
            seen: set[str] = set()
            for name, aff in zip(plan.columns, plan.affinities):
                base = name
                n = 1
                while name.lower() in seen:
                    name = f"{base}:{n}"
                    n += 1
                seen.add(name.lower())
                tn = {"INTEGER": "INT", "REAL": "REAL", "TEXT": "TEXT", "NUMERIC": "NUM"}.get(
                    aff or "", ""
                )
                cols.append(ColumnInfo(name, tn))
            tid = C.next_id(txn)
            t = TableInfo(s.name, tid, cols, [], [], [], [])
            tables[s.name.lower()] = t
            rows = list(plan.run())
            txn.tree(t.tree, create=True)
            tree = txn.tree(t.tree)
            for i, r in enumerate(rows, 1):
                vals = [T.apply_affinity(c.affinity, v) for c, v in zip(cols, r)]
                tree.put(rowid_key(i), encode_row(vals))
            C.save(txn, tables, [s.name], [])
            return Outcome(rowcount=0)
        names: set[str] = set()
        cols = []
        pk: list[str] = []
        # the PRIMARY KEY and UNIQUE constraints in the order written (SQLite
        # numbers their indexes so): ("pk" or "u", columns, COLLATEs or None, name)
        keys: list[tuple[str, list[str], list[str | None], str | None]] = []
        pk_name: str | None = None
        checks: list[tuple[str | None, str]] = []
        fks: list[dict[str, Any]] = []
        autoinc = False
        if not s.columns:
            raise SQLError(f"table {s.name} needs at least one column")
        for cd in s.columns:
            if cd.name.lower() in names:
                raise SchemaError(f"duplicate column name: {cd.name}")
            if s.strict:
                _strict_type(s.name, cd)
            names.add(cd.name.lower())
            ci = _column_info(cd)
            if ci.default is not None:
                self._check_default(ci)
            cols.append(ci)
            if cd.primary_key:
                if pk:
                    raise SchemaError(f"table {s.name} has more than one primary key")
                pk = [cd.name]
                keys.append(("pk", pk, [None], None))
                autoinc = cd.autoincrement
            if cd.unique:
                keys.append(("u", [cd.name], [None], None))
            for check_name, text in cd.checks:
                checks.append((check_name, text))
            if cd.references is not None:
                fks.append(self._fk_json(cd.references))
        for tc in s.constraints:
            for c in tc.columns:
                if c.lower() not in names:
                    raise SchemaError(f"no such column: {c} (in a constraint of {s.name})")
            if tc.kind == "PRIMARY":
                if pk:
                    raise SchemaError(f"table {s.name} has more than one primary key")
                pk = list(tc.columns)
                keys.append(("pk", pk, list(tc.collations), tc.name))
                pk_name = tc.name
            elif tc.kind == "UNIQUE":
                keys.append(("u", list(tc.columns), list(tc.collations), tc.name))
            elif tc.kind == "CHECK":
                checks.append((tc.name, tc.check_text or ""))
            elif tc.kind == "FOREIGN" and tc.fk is not None:
                fks.append({**self._fk_json(tc.fk), **({"name": tc.name} if tc.name else {})})
        for col in cols:
            col.pk = col.name.lower() in {p.lower() for p in pk}
        if autoinc and not (
            len(pk) == 1
            and cols[[c.name.lower() for c in cols].index(pk[0].lower())].type_name.strip().upper()
            == "INTEGER"
        ):
            raise SQLError("AUTOINCREMENT is only allowed on an INTEGER PRIMARY KEY")
        for _, text in checks:
            parse_expression(text)
        tid = C.next_id(txn)
        t = TableInfo(
            s.name, tid, cols, pk, checks, fks, [], autoinc, pk_name=pk_name, strict=s.strict
        )
        indexes: list[IndexInfo] = []
        for origin, key, given, key_name in keys:
            if origin == "pk" and t.rowid_col is not None:
                continue  # the rowid itself
            if len(key) == 1 and t.rowid_col is not None and key[0].lower() == pk[0].lower():
                continue  # UNIQUE on the rowid: it is unique
            colls = key_collations(t, key, given)
            # as SQLite: a constraint over the columns (and collations) of an
            # index already made adds none (a PRIMARY KEY takes that index over)
            same = [ix for ix in indexes if key == ix.columns and colls == ix.collations]
            if same:
                if origin == "pk":
                    same[0].origin, same[0].constraint = "pk", key_name
                continue
            n = len(indexes) + 1
            indexes.append(
                IndexInfo(
                    f"sqlite_autoindex_{s.name}_{n}",
                    list(key),
                    True,
                    f"sql:i:{tid}.{n}".encode(),
                    origin,
                    key_name,
                    colls,
                )
            )
        t.indexes = indexes
        t.refresh()
        # validate CHECK expressions against the new table (unknown columns fail now)
        scope = table_scope(t, None)
        planner = Planner(cat, ctx, self.P)
        for _, _, e in t.check_exprs:
            planner.ec.compile(e, scope, True)
        txn.tree(t.tree, create=True)
        for ix in indexes:
            txn.tree(ix.tree, create=True)
        tables[s.name.lower()] = t
        made = [s.name]
        if autoinc and sequence.NAME not in tables:  # sequence.py, invariant 1
            seqt = sequence.new_table(C.next_id(txn))
            txn.tree(seqt.tree, create=True)
            tables[sequence.NAME] = seqt
            made.append(sequence.NAME)
        C.save(txn, tables, made, [])
        return Outcome(rowcount=0)

    @staticmethod
    def _check_default(ci: ColumnInfo) -> None:
        d = ci.default
        ok = isinstance(d, ast.Literal) or (
            isinstance(d, ast.Unary) and isinstance(d.operand, ast.Literal)
        )
        if not ok:
            # any expression without columns is allowed (evaluated per row)
            def walk(n: Any) -> None:
                if isinstance(n, ast.Column):
                    raise SQLError(f"default value of column [{ci.name}] is not constant")
                if isinstance(n, ast.Node):
                    for k in n.__slots__:
                        walk(getattr(n, k))
                elif isinstance(n, (list, tuple)):
                    for x in n:
                        walk(x)

            walk(d)

    @staticmethod
    def _fk_json(fk: ast.ForeignKey) -> dict[str, Any]:
        return {
            "columns": list(fk.columns),
            "table": fk.ref_table,
            "ref_columns": list(fk.ref_columns) if fk.ref_columns else None,
            "on_delete": fk.on_delete,
            "on_update": fk.on_update,
        }

    def _create_index(
        self, txn: Any, ctx: Ctx, cat: Catalog, tables: dict[str, TableInfo], s: ast.CreateIndex
    ) -> Outcome:
        if cat.find_index(s.name) is not None or s.name.lower() in tables:
            if s.if_not_exists:
                return Outcome(rowcount=0)
            raise SchemaError(f"index {s.name} already exists")
        t = tables.get(s.table.lower())
        if t is None:
            raise SchemaError(f"no such table: {s.table}")
        if s.using is not None or s.options is not None:
            return self._create_hnsw_index(txn, tables, t, s)
        cols = []
        for name, _desc in s.columns:
            i = t.col_index.get(name.lower())
            if i is None:
                raise SchemaError(f"no such column: {name} (table {t.name})")
            cols.append(t.columns[i].name)
        nt = t.copy()
        n = len(nt.indexes) + 1
        tree_name = f"sql:i:{nt.id}.c{C.next_id(txn)}".encode()
        colls = key_collations(t, cols, s.collations)
        ix = IndexInfo(s.name, cols, s.unique, tree_name, "c", None, colls)
        nt.indexes.append(ix)
        nt.refresh()
        del n
        itree = txn.tree(tree_name, create=True)
        defaults = table_defaults(nt)
        seen: dict[bytes, int] = {}
        for k, v in list(txn.tree(nt.tree).scan()):
            r = decode_row(v, defaults, k)
            vals = ix.key_values(r)
            if s.unique and None not in vals:
                p = encode_values(vals)
                if p in seen:
                    txn.drop_tree(tree_name)
                    raise ConstraintError(
                        f"UNIQUE constraint failed: {', '.join(t.name + '.' + c for c in cols)} "
                        f"(values {', '.join(repr(r[i]) for i in ix.col_idx)} appear in rows {seen[p]} and {r[-1]}; index {s.name})"
                    )
                seen[p] = r[-1]
            itree.put(index_entry_key(ix, vals, k), k)
        tables[t.name.lower()] = nt
        C.save(txn, tables, [t.name], [])
        return Outcome(rowcount=0)

    def _create_hnsw_index(
        self, txn: Any, tables: dict[str, TableInfo], t: TableInfo, s: ast.CreateIndex
    ) -> Outcome:
        """CREATE INDEX name ON t USING hnsw (col) WITH (metric = ..., m = ...,
        ef_construction = ...): the index built from the table's rows on every core."""
        if (s.using or "").lower() != "hnsw":
            raise SQLError(
                f"unknown index method {s.using!r}: CREATE INDEX ... USING hnsw (column)"
                if s.using is not None
                else "WITH (...) options need an index method: CREATE INDEX ... USING hnsw"
            )
        if s.unique or len(s.columns) != 1:
            raise SQLError("an HNSW index is on one VECTOR(n) column, and not UNIQUE")
        name, desc = s.columns[0]
        i = t.col_index.get(name.lower())
        if i is None:
            raise SchemaError(f"no such column: {name} (table {t.name})")
        dim = dict(t.vector_cols).get(i)
        if dim is None:
            raise SchemaError(
                f"column {t.name}.{t.columns[i].name} is {t.columns[i].type_name or 'untyped'}: "
                "an HNSW index is on a VECTOR(n) column"
            )
        opts: dict[str, Any] = {
            "metric": "cosine",
            "m": hnsw.DEFAULT_M,
            "ef_construction": hnsw.DEFAULT_EF_CONSTRUCTION,
        }
        for key, value in s.options or []:
            if key not in opts:
                raise SQLError(
                    f"unknown HNSW index option {key!r}: metric, m and ef_construction are known"
                )
            opts[key] = value
        metric = str(opts["metric"]).lower()
        if metric not in hnsw.METRICS:
            raise SQLError(f"unknown metric {opts['metric']!r}: use 'cosine', 'l2' or 'ip'")
        for key, lo, hi in (("m", 2, 4096), ("ef_construction", 1, 1 << 20)):
            v = opts[key]
            if type(v) is not int or not lo <= v <= hi:
                raise SQLError(
                    f"HNSW index option {key} must be an integer in {lo}..{hi}, not {v!r}"
                )
        nt = t.copy()
        tree_name = f"sql:h:{nt.id}.{C.next_id(txn)}".encode()
        vx = VectorIndexInfo(
            s.name, t.columns[i].name, tree_name, metric, opts["m"], opts["ef_construction"]
        )
        nt.vector_indexes.append(vx)
        nt.refresh()
        rowids, blobs = [], []
        defaults = table_defaults(nt)
        col = t.columns[i].name
        for k, v in txn.tree(nt.tree).scan():
            r = decode_row(v, defaults, k)
            b = r[i]
            if b is None:
                continue
            rowids.append(r[-1])
            blobs.append(
                column_value(b, dim, t.name, col)
            )  # rows stored before VECTOR(n) was checked
        hnsw.method().build(txn, vx, rowids, b"".join(blobs))
        tables[t.name.lower()] = nt
        C.save(txn, tables, [t.name], [])
        return Outcome(rowcount=0)

    def _alter(
        self,
        txn: Any,
        ctx: Ctx,
        cat: Catalog,
        tables: dict[str, TableInfo],
        s: ast.AlterTable,
        undo: list[Any] | None,
    ) -> Outcome:
        t = tables.get(s.name.lower())
        if t is None:
            raise SchemaError(f"no such table: {s.name}")
        nt = t.copy()
        if s.action == "RENAME":
            new = s.new or ""
            if new.lower() in tables and new.lower() != t.name.lower():
                raise SchemaError(f"there is already another table or index with this name: {new}")
            old = nt.name
            nt.name = new
            del tables[old.lower()]
            tables[new.lower()] = nt
            changed = [new]
            for other in list(tables.values()):
                if other is nt:
                    for f in nt.fks:
                        if f["table"].lower() == old.lower():
                            f["table"] = new
                    continue
                if any(f["table"].lower() == old.lower() for f in other.fks):
                    o2 = other.copy()
                    for f in o2.fks:
                        if f["table"].lower() == old.lower():
                            f["table"] = new
                    tables[o2.name.lower()] = o2
                    changed.append(o2.name)
            views = rename_table(tables, cat.views, nt, old)  # and its CHECKs
            if nt.autoincrement:
                sequence.rename(txn, cat, old, new, undo)  # sequence.py, invariant 3
            nt.refresh()
            _check_views(ctx, cat, tables, views, self.P)
            C.save(txn, tables, changed, [old], views=views)  # type: ignore[arg-type]
            return Outcome(rowcount=0)
        if s.action == "ADD":
            cd = s.column
            assert cd is not None
            if cd.name.lower() in nt.col_index:
                raise SchemaError(f"duplicate column name: {cd.name}")
            if cd.primary_key or cd.unique:
                raise SQLError("Cannot add a PRIMARY KEY or UNIQUE column")
            if cd.generated is not None and cd.generated[1]:
                raise SQLError("cannot add a STORED column")  # as SQLite
            if nt.strict:
                _strict_type(nt.name, cd)
            ci = _column_info(cd)
            if ci.default is not None and not (
                isinstance(ci.default, ast.Literal)
                or (
                    isinstance(ci.default, ast.Unary)
                    and isinstance(ci.default.operand, ast.Literal)
                )
            ):
                raise SQLError("Cannot add a column with non-constant default")
            if ci.not_null and (
                ci.default is None
                or (isinstance(ci.default, ast.Literal) and ci.default.value is None)
            ):
                raise SQLError("Cannot add a NOT NULL column with default value NULL")
            nt.columns.append(ci)
            for name, text in cd.checks:
                nt.checks.append((name, text))
            if cd.references is not None:
                nt.fks.append(self._fk_json(cd.references))
            nt.refresh()
            tables[nt.name.lower()] = nt
            if cd.generated is not None:
                _fill_generated(txn, ctx, Catalog(cat.cookie, tables, cat.views), nt, self.P)
            C.save(txn, tables, [nt.name], [])
            return Outcome(rowcount=0)
        if s.action == "RENAME_COLUMN":
            i = nt.col_index.get((s.old or "").lower())
            if i is None:
                raise SchemaError(f"no such column: {s.old}")
            if (s.new or "").lower() in nt.col_index and (s.new or "").lower() != (
                s.old or ""
            ).lower():
                raise SchemaError(f"duplicate column name: {s.new}")
            oldname = nt.columns[i].name
            nt.columns[i].name = s.new or ""
            nt.pk = [s.new or "" if p.lower() == oldname.lower() else p for p in nt.pk]
            for ix in nt.indexes:
                ix.columns = [
                    s.new or "" if c.lower() == oldname.lower() else c for c in ix.columns
                ]
            for vx in nt.vector_indexes:
                if vx.column.lower() == oldname.lower():
                    vx.column = s.new or ""
            for f in nt.fks:
                f["columns"] = [
                    s.new or "" if c.lower() == oldname.lower() else c for c in f["columns"]
                ]
            tables[nt.name.lower()] = nt
            # CHECKs, generated columns, foreign keys and views that name it
            changed, views = rename_column(tables, cat.views, nt, oldname, s.new or "")
            nt.refresh()
            _check_views(ctx, cat, tables, views, self.P)
            C.save(txn, tables, [nt.name, *changed], [], views=views)  # type: ignore[arg-type]
            return Outcome(rowcount=0)
        if s.action == "DROP_COLUMN":
            i = nt.col_index.get((s.old or "").lower())
            if i is None:
                raise SchemaError(f"no such column: {s.old}")
            name = nt.columns[i].name
            indexes: tuple[IndexInfo | VectorIndexInfo, ...] = (*nt.indexes, *nt.vector_indexes)
            if nt.columns[i].pk or any(
                name.lower() in [c.lower() for c in ix.columns] for ix in indexes
            ):
                raise SQLError(
                    f"cannot drop column {name}: it is in a PRIMARY KEY, UNIQUE constraint or index"
                )
            if len(nt.columns) == 1:
                raise SQLError(f"cannot drop column {name}: no other columns exist")
            drop_column_uses(tables, nt, name)  # (a CHECK of its own goes with it)
            del nt.columns[i]
            nt.refresh()
            tables[nt.name.lower()] = nt
            _check_views(ctx, cat, tables, [], self.P)
            defaults = table_defaults(t)
            tree = txn.tree(t.tree)
            for k, v in list(tree.scan()):
                r = list(decode_row(v, defaults, k)[:-1])
                del r[i]
                if undo is not None:
                    undo.append((tree, k, v))
                tree.put(k, encode_row(r))
            C.save(txn, tables, [nt.name], [])
            return Outcome(rowcount=0)
        raise SQLError(f"unsupported ALTER TABLE action {s.action}")


def _check_views(
    ctx: Ctx,
    cat: Catalog,
    tables: dict[str, TableInfo],
    changed: list[tuple[str, dict[str, Any]]],
    params: Any,
) -> None:
    """Plan every view over the altered schema: one it would break fails the
    ALTER TABLE (SQLite's "error in view v: ...")."""
    views = {**cat.views, **{name.lower(): vdef for name, vdef in changed}}
    trial = Catalog(cat.cookie, tables, views)
    for vdef in views.values():
        try:
            view_ref(Planner(trial, ctx, params), ast.TableRef(vdef["name"], None))
        except SQLError as e:
            raise SQLError(f"error in view {vdef['name']}: {e}") from None


def key_collations(t: TableInfo, cols: list[str], given: list[str | None]) -> list[str]:
    """The collation of each key column of an index: its COLLATE in the index or
    constraint, else the column's declared collation, else BINARY (SQLite's rule)."""
    out = []
    for name, coll in zip(cols, given):
        if coll is None:
            coll = t.columns[t.column(name)].collation
        out.append((coll or "BINARY").upper())
    return out


STRICT_TYPES = ("INT", "INTEGER", "REAL", "TEXT", "BLOB", "ANY")


def _strict_type(table: str, cd: ast.ColumnDef) -> None:
    """A STRICT table's column names one of SQLite's six types."""
    tn = (cd.type_name or "").strip()
    if not tn:
        raise SQLError(f"missing datatype for {table}.{cd.name}")
    if tn.upper() not in STRICT_TYPES:
        raise SQLError(f'unknown datatype for {table}.{cd.name}: "{tn}"')


#: the collations a REINDEX may name (SQLite looks a name up as a collation first)
_COLLATIONS = ("BINARY", "NOCASE", "RTRIM")


def reindex(txn: Any, cat: Catalog, name: str | None) -> Outcome:
    """REINDEX [name], as SQLite: every index (no name); the indexes with a key
    column under a collation (the name of one); every index of a table; one
    index. Each is rebuilt from its table's rows. HNSW indexes are not B+tree
    indexes and are not rebuilt (SQLite's REINDEX leaves virtual tables alone)."""
    tables = cat.tables
    if name is None:
        targets = [(t, ix) for t in tables.values() for ix in t.indexes]
    elif name.upper() in _COLLATIONS:
        coll = name.upper()
        targets = [(t, ix) for t in tables.values() for ix in t.indexes if coll in ix.collations]
    elif name.lower() in tables:
        t = tables[name.lower()]
        targets = [(t, ix) for ix in t.indexes]
    else:
        hit = cat.find_index(name)
        if hit is None:
            raise SQLError("unable to identify the object to be reindexed")
        if isinstance(hit[1], VectorIndexInfo):
            raise SQLError(f"REINDEX rebuilds B+tree indexes; {name} is an HNSW index")
        targets = [(hit[0], hit[1])]
    # every entry computed (and a UNIQUE index checked) before the first write
    rebuilt = [(ix, _index_entries(txn, t, ix)) for t, ix in targets]
    for ix, entries in rebuilt:
        txn.drop_tree(ix.tree)
        tree = txn.tree(ix.tree, create=True)
        for key in sorted(entries):
            tree.put(key, entries[key])
    return Outcome(rowcount=0)


def _index_entries(txn: Any, t: TableInfo, ix: IndexInfo) -> dict[bytes, bytes]:
    """index entry key -> rowid key of every row of t, for index ix."""
    defaults = table_defaults(t)
    out: dict[bytes, bytes] = {}
    for k, v in txn.tree(t.tree).scan():
        r = decode_row(v, defaults, k)
        key = index_entry_key(ix, ix.key_values(r), k)
        if key in out:
            raise ConstraintError(
                f"UNIQUE constraint failed: {', '.join(t.name + '.' + c for c in ix.columns)} "
                f"(index {ix.name})"
            )
        out[key] = k
    return out


def _fill_generated(txn: Any, ctx: Ctx, cat: Catalog, t: TableInfo, params: Any) -> None:
    """ALTER TABLE ADD COLUMN ... VIRTUAL: toondb stores a VIRTUAL column's value
    like a STORED one's, so every existing row gets it computed now (and its CHECK
    and NOT NULL constraints tested), in the statement's transaction. A failure
    raises before the catalog is saved (the transaction's rollback restores rows)."""
    from toondb.sql.writer import TableWriter

    writer = TableWriter(ctx, t, cat, Planner(cat, ctx, params).ec, False)
    tree = txn.tree(t.tree)
    defaults = table_defaults(t)
    n = len(t.columns)
    for k, v in list(tree.scan()):
        r = decode_row(v, defaults, k)
        row = list(r[:n])
        writer.check_row(row, r[-1])
        tree.put(k, encode_row(row))
