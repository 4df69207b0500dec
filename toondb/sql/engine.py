"""Statement execution: DDL, DML, SELECT, PRAGMA and EXPLAIN inside one transaction.

``compile_statement(parsed, index, catalog, fk)`` turns a parsed statement into a
``Compiled`` whose ``run(txn, params, undo)`` executes it. Compiled statements
are cached per thread by (SQL text, statement index, schema cookie, foreign-keys
setting), so a statement repeated with new parameters is neither parsed nor
planned again.

Statement atomicity: inside a user's transaction every write of a statement is
recorded in an undo list (tree, key, previous value); if the statement fails,
the list is replayed backwards and the transaction is as it was before the
statement. Outside one, the statement's own transaction is simply aborted.
"""

from __future__ import annotations

import struct
import threading
from typing import Any, Callable

from toondb.codec.keycode import encode_values, key_rowid, prefix_end, rowid_key
from toondb.codec.rowcodec import decode_row, encode_row
from toondb.errors import ConstraintError, SchemaError, SQLError
from toondb.sql import ast
from toondb.sql import catalog as C
from toondb.sql import types as T
from toondb.sql.catalog import Catalog, ColumnInfo, IndexInfo, TableInfo
from toondb.sql.executor import Ctx, FullScan, rowid_probe
from toondb.sql.expressions import Scope, Source
from toondb.sql.grammar import parse_expression
from toondb.sql.planner import Planner, SelectPlan, split_and, sql_text

_pack_q = struct.Struct(">Q").pack
_PLAIN = {int, float, str, bytes, type(None)}  # parameter types bound as they are

Fn = Callable[[Any], Any]
READ_ONLY_KINDS = (ast.Select, ast.Explain)


class Outcome:
    """What a statement produced: rows (SELECT) or a row count."""

    __slots__ = ("columns", "rows", "rowcount", "lastrowid", "schema_changed")

    def __init__(
        self,
        columns: list[str] | None = None,
        rows: list[tuple[Any, ...]] | None = None,
        rowcount: int = -1,
        lastrowid: int | None = None,
    ) -> None:
        self.columns = columns
        self.rows = rows
        self.rowcount = rowcount
        self.lastrowid = lastrowid


class Compiled:
    """A statement ready to run; run(txn, params, undo, engine_state) -> Outcome."""

    read_only = False

    def __init__(self, nparams: int, names: dict[str, int]) -> None:
        self.nparams = nparams
        self.names = names
        self.P: list[Any] = [None] * nparams
        self.ctx = Ctx()

    def bind(self, params: Any) -> None:
        P = self.P
        n = self.nparams
        if params is None:
            if n:
                raise SQLError(
                    f"Incorrect number of bindings supplied. The current statement uses {n}, and there are 0 supplied."
                )
            return
        check = T.check_value
        if isinstance(params, dict):
            for name, slot in self.names.items():
                if name not in params:
                    raise SQLError(f"You did not supply a value for binding parameter :{name}.")
                P[slot] = check(params[name])
            if len(self.names) < n:
                raise SQLError("positional parameters ('?') need a sequence of values, not a dict")
            return
        tp = type(params)
        if (tp is tuple or tp is list) and len(params) == n:
            P[:] = params
            for v in params:
                if type(v) not in _PLAIN or (type(v) is int and not T.I64_MIN <= v <= T.I64_MAX):
                    break
            else:
                return
        if isinstance(params, (str, bytes)) or not hasattr(params, "__len__"):
            raise SQLError("parameters must be a sequence (for ?) or a dict (for :name)")
        if len(params) != n:
            raise SQLError(
                f"Incorrect number of bindings supplied. The current statement uses {n}, and there are {len(params)} supplied."
            )
        for i in range(n):
            P[i] = check(params[i])

    def start(self, txn: Any, undo: list[Any] | None) -> Ctx:
        ctx = self.ctx
        ctx.txn = txn
        ctx.epoch += 1
        ctx.undo = undo
        ctx.trees = {}
        return ctx

    def run(self, txn: Any, params: Any, undo: list[Any] | None, state: Any) -> Outcome:
        raise NotImplementedError

    def writer(self) -> TableWriter:
        """The statement's TableWriter, built once (constraint checks compiled),
        its per-execution state reset."""
        w: TableWriter | None = getattr(self, "_writer", None)
        if w is None:
            w = self._writer = TableWriter(self.ctx, self.table, self.catalog, self.ec, self.fk)  # type: ignore[attr-defined]
        w.next_rowid = None
        return w

    def explain(self) -> list[str]:
        return [type(self).__name__.upper()]


# ---------------------------------------------------------------- SELECT


class CompiledSelect(Compiled):
    read_only = True

    def __init__(self, parsed: ast.Parsed, stmt: ast.Select, catalog: Catalog) -> None:
        super().__init__(parsed.nparams, parsed.names)
        planner = Planner(catalog, self.ctx, self.P)
        self.plan: SelectPlan = planner.plan_select(stmt)

    def run(self, txn: Any, params: Any, undo: list[Any] | None, state: Any) -> Outcome:
        self.bind(params)
        self.start(txn, undo)
        rows = list(self.plan.run())
        return Outcome(self.plan.columns, rows)

    def explain(self) -> list[str]:
        return self.plan.explain_lines


# ---------------------------------------------------------------- writing rows


class TableWriter:
    """Row and index writes of one table, with constraint checks and undo records."""

    def __init__(self, ctx: Ctx, table: TableInfo, catalog: Catalog, ec: Any, fk: bool) -> None:
        self.ctx = ctx
        self.table = table
        self.catalog = catalog
        self.ncols = len(table.columns)
        self.unique = [ix for ix in table.indexes if ix.unique]
        self.defaults = Planner._defaults(table)
        src = Source(table.name, [c.name for c in table.columns], list(table.affinities), 0, table)
        scope = Scope([src], None)
        self.checks = [
            (name or text, ec.compile(expr, scope, True)) for name, text, expr in table.check_exprs
        ]
        self.not_null = [
            i for i, c in enumerate(table.columns) if c.not_null and i != table.rowid_col
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

    def new_rowid(self) -> int:
        if self.next_rowid is None:
            last = next(iter(self.ctx.tree(self.table.tree).scan(b"", None, True)), None)
            # max(rowid) + 1, or 1 for an empty table (as SQLite)
            self.next_rowid = key_rowid(last[0]) + 1 if last is not None else 1
        rid = self.next_rowid
        if rid > T.I64_MAX:
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
        """NOT NULL and CHECK; returns None or raises ConstraintError."""
        t = self.table
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
            vals = [row[i] for i in ix.col_idx]
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
        for ix in parent.indexes:
            if ix.col_idx[: len(idx)] == idx:
                prefix = encode_values(vals)
                return (
                    next(iter(self.ctx.tree(ix.tree).scan(prefix, prefix_end(prefix))), None)
                    is not None
                )
        defaults = Planner._defaults(parent)
        for k, v in self.ctx.tree(parent.tree).scan():
            r = decode_row(v, defaults, k)
            if all(
                T.compare(r[i], x) == 0 for i, x in zip(idx, vals) if r[i] is not None
            ) and None not in [r[i] for i in idx]:
                return True
        return False

    def child_rows(
        self, child: TableInfo, f: dict[str, Any], vals: list[Any]
    ) -> list[tuple[Any, ...]]:
        idx = [child.column(c) for c in f["columns"]]
        defaults = Planner._defaults(child)
        out = []
        for ix in child.indexes:
            if ix.col_idx[: len(idx)] == idx:
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
            if all(r[i] is not None and T.compare(r[i], x) == 0 for i, x in zip(idx, vals)):
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
        return index_entry_key(ix, [row[i] for i in ix.col_idx], rk)

    def insert_row(self, row: list[Any], rowid: int) -> None:
        rk = rowid_key(rowid)
        self._put(self.ctx.tree(self.table.tree), rk, encode_row(row), None)
        for ix in self.table.indexes:
            self._put(self.ctx.tree(ix.tree), self.index_key(ix, row, rk), rk, None)

    def delete_row(
        self, old: tuple[Any, ...], writers: dict[str, TableWriter] | None = None, ec: Any = None
    ) -> None:
        rid = old[-1]
        rk = rowid_key(rid)
        tree = self.ctx.tree(self.table.tree)
        raw = tree.get(rk)
        if raw is None:
            return
        if self.children and writers is not None:
            self.on_parent_delete(old, writers, ec)
        for ix in self.table.indexes:
            self._del(self.ctx.tree(ix.tree), self.index_key(ix, old, rk), rk)
        self._del(tree, rk, raw)

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
        ork = rowid_key(old_rid)
        nrk = rowid_key(new_rowid)
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


def index_entry_key(ix: IndexInfo, vals: list[Any], rk: bytes) -> bytes:
    """An index entry's key (catalog.py, invariant 3): the encoded values, then the
    rowid key, except in a UNIQUE index when no value is NULL: there the values
    alone, so two transactions inserting the same value write the same key and
    the second to commit gets a conflict instead of a duplicate."""
    k = encode_values(vals)
    if ix.unique and None not in vals:
        return k
    return k + rk


def ast_and(conjs: list[ast.Expr]) -> ast.Expr:
    node = conjs[0]
    for c in conjs[1:]:
        node = ast.Binary("AND", node, c)
    return node


def _table_scope(table: TableInfo, alias: str | None) -> Scope:
    src = Source(
        alias or table.name, [c.name for c in table.columns], list(table.affinities), 0, table
    )
    return Scope([src], None)


# ---------------------------------------------------------------- INSERT


class CompiledInsert(Compiled):
    def __init__(self, parsed: ast.Parsed, stmt: ast.Insert, catalog: Catalog, fk: bool) -> None:
        super().__init__(parsed.nparams, parsed.names)
        self.catalog = catalog
        self.table = table = catalog.table(stmt.table)
        self.fk = fk
        planner = Planner(catalog, self.ctx, self.P)
        planner.with_ctes(stmt.ctes)
        self.planner = planner
        ec = planner.ec
        ncols = len(table.columns)
        if stmt.columns is None:
            targets = list(range(ncols))
        else:
            targets = []
            for name in stmt.columns:
                i = table.col_index.get(name.lower())
                if i is None:
                    if name.lower() in C.ROWID_NAMES and table.rowid_col is not None:
                        i = table.rowid_col
                    else:
                        raise SchemaError(f"table {table.name} has no column named {name}")
                if i in targets:
                    raise SchemaError(f"column {name} is given twice")
                targets.append(i)
        self.targets = targets
        self.conflict = stmt.conflict or "ABORT"
        self.upsert = stmt.upsert
        src = stmt.source
        self.values_fns: list[list[Fn]] | None = None
        self.select: SelectPlan | None = None
        empty = Scope([], None)
        if src is None:
            self.values_fns = [[]]
            self.targets = []
        elif (
            len(src.cores) == 1
            and src.cores[0].values is not None
            and not src.order_by
            and src.limit is None
            and not src.ctes
        ):
            rows = src.cores[0].values or []
            for r in rows:
                if len(r) != len(targets):
                    raise SQLError(self._count_msg(len(r)))
            self.values_fns = [[ec.compile(e, empty) for e in r] for r in rows]
        else:
            self.select = planner.plan_select(src)
            if self.select.ncolumns != len(targets):
                raise SQLError(self._count_msg(self.select.ncolumns))
        # VALUES (?, ?, ...) of exactly the table's columns: rows come from the
        # parameters directly, converted only where a value's type needs it
        self.param_slots: list[int] | None = None
        self.type_fixes: list[tuple[int, tuple[type, ...], str]] = []
        vrows = self.values_fns is not None and src is not None and src.cores[0].values
        if vrows and len(vrows) == 1 and all(isinstance(e, ast.Param) for e in vrows[0]):
            slots = [e.index for e in vrows[0]]
            if slots == list(range(len(slots))) and parsed.nparams == len(slots):
                self.param_slots = slots
                ok_types = {
                    T.INTEGER: (int, type(None)),
                    T.NUMERIC: (int, float, type(None)),
                    T.REAL: (float, type(None)),
                    T.TEXT: (str, type(None)),
                    T.BLOB: (int, float, str, bytes, type(None)),
                }
                self.type_fixes = [(i, ok_types[a], a) for i, a in enumerate(table.affinities)]
        # DEFAULTs that are not constants are evaluated per row
        self.default_fns: list[Fn | None] = []
        for c in table.columns:
            if c.default is None or isinstance(c.default, ast.Literal):
                self.default_fns.append(None)
            else:
                self.default_fns.append(ec.compile(c.default, empty))
        self.upsert_sets: list[tuple[int, Fn]] = []
        self.upsert_where: Fn | None = None
        if self.upsert is not None and self.upsert[0] == "update":
            _, target, sets, where = self.upsert
            s1 = Source(
                table.name, [c.name for c in table.columns], list(table.affinities), 0, table
            )
            s2 = Source(
                "excluded",
                [c.name for c in table.columns],
                list(table.affinities),
                ncols + 1,
                table,
            )
            s2.hidden = set(s2.lower)  # excluded.x must be qualified
            scope = Scope([s1, s2], None)
            for name, e in sets:
                self.upsert_sets.append((table.column(name), ec.compile(e, scope)))
            if where is not None:
                self.upsert_where = ec.compile(where, scope, True)
        self.ec = ec

    def _count_msg(self, got: int) -> str:
        if len(self.targets) == len(self.table.columns) and True:
            return f"table {self.table.name} has {len(self.table.columns)} columns but {got} values were supplied"
        return f"{got} values for {len(self.targets)} columns"

    def explain(self) -> list[str]:
        lines = [
            f"INSERT INTO {self.table.name}"
            + (f" OR {self.conflict}" if self.conflict != "ABORT" else "")
        ]
        if self.select is not None:
            lines += ["  " + ln for ln in self.select.explain_lines]
        else:
            lines.append(f"  VALUES ({len(self.values_fns or [])} rows)")
        return lines

    def run(self, txn: Any, params: Any, undo: list[Any] | None, state: Any) -> Outcome:
        return self.run_many(txn, [params], undo, state)

    def run_many(self, txn: Any, batches: Any, undo: list[Any] | None, state: Any) -> Outcome:
        ctx = self.start(txn, undo)
        w = self.writer()
        rows = self._rows(batches, w)
        if self.conflict == "ABORT" and self.upsert is None and not w.fks:
            return self._insert_fast(w, rows, ctx)
        count = 0
        last = None
        writers: dict[str, TableWriter] = {self.table.name.lower(): w}
        rowid_col = self.table.rowid_col
        for row in rows:
            saved = w.next_rowid
            r = self._insert_one(w, row, rowid_col, self.conflict, writers, ctx)
            if r is not None:
                count += 1
                last = r
            else:
                w.next_rowid = saved  # an ignored row takes no rowid
        return Outcome(rowcount=count, lastrowid=last)

    def _rows(self, batches: Any, w: TableWriter) -> Any:
        """The full rows to insert (affinity applied), one parameter set after another."""
        table = self.table
        ncols = len(table.columns)
        targets = self.targets
        affs = table.affinities
        defaults = w.defaults
        default_fns = self.default_fns
        apply_aff = T.apply_affinity
        check = T.check_value
        I64_MIN, I64_MAX = T.I64_MIN, T.I64_MAX
        simple_targets = targets == list(range(ncols))
        no_dyn_defaults = all(f is None for f in default_fns)
        empty: tuple[Any, ...] = ()
        fast = self.param_slots is not None and simple_targets
        fixes = self.type_fixes
        for params in batches:
            if fast and type(params) in (tuple, list) and len(params) == self.nparams:
                row = list(params)
                for i, ok, aff in fixes:
                    v = row[i]
                    if type(v) not in ok or (type(v) is int and not I64_MIN <= v <= I64_MAX):
                        row[i] = apply_aff(aff, check(v))
                yield row
                continue
            self.bind(params)
            if self.select is not None:
                self.ctx.epoch += 1
                sources: Any = list(self.select.run())
            else:
                sources = ([f(empty) for f in fns] for fns in self.values_fns or [])
            for vals in sources:
                if simple_targets:
                    row = [apply_aff(affs[i], vals[i]) for i in range(ncols)]
                else:
                    row = list(defaults)
                    if not no_dyn_defaults:
                        for i, f in enumerate(default_fns):
                            if f is not None:
                                row[i] = apply_aff(affs[i], f(empty))
                    for i, v in zip(targets, vals):
                        row[i] = apply_aff(affs[i], v)
                yield row

    def _insert_fast(self, w: TableWriter, rows: Any, ctx: Ctx) -> Outcome:
        """Plain INSERT (no OR clause, no upsert, no foreign keys to check)."""
        table = self.table
        tree = ctx.tree(table.tree)
        get, put = tree.get, tree.put
        idx = [(ctx.tree(ix.tree), ix.col_idx, ix.unique, ix) for ix in table.indexes]
        undo = ctx.undo
        rowid_col = table.rowid_col
        not_null = w.not_null
        checks = w.checks
        enc_key = encode_values
        enc_row = encode_row
        pack = _pack_q
        bias = 1 << 63
        count = 0
        last = None
        for row in rows:
            rid = row[rowid_col] if rowid_col is not None else None
            if rid is None:
                rid = w.new_rowid()
                if rowid_col is not None:
                    row[rowid_col] = rid
            elif type(rid) is not int:
                raise SQLError(
                    f"datatype mismatch: {table.name}.{table.columns[rowid_col].name} is an "  # type: ignore[index]
                    f"INTEGER PRIMARY KEY and {rid!r} is not an integer"
                )
            elif w.next_rowid is not None and rid >= w.next_rowid:
                w.next_rowid = rid + 1
            for i in not_null:
                if row[i] is None:
                    raise ConstraintError(
                        f"NOT NULL constraint failed: {table.name}.{table.columns[i].name}"
                    )
            if checks:
                w.check_row(row, rid)
            rk = pack(rid + bias)
            if get(rk) is not None:
                raise w.pk_error(rid)
            for itree, cols, uniq, ix in idx:
                vals = [row[i] for i in cols]
                k = enc_key(vals)
                if uniq and None not in vals:
                    if itree.get(k) is not None:
                        raise w.unique_error(ix, row)
                else:
                    k += rk
                itree.put(k, rk)
                if undo is not None:
                    undo.append((itree, k, None))
            put(rk, enc_row(row))
            if undo is not None:
                undo.append((tree, rk, None))
            count += 1
            last = rid
        return Outcome(rowcount=count, lastrowid=last)

    def _insert_one(
        self,
        w: TableWriter,
        row: list[Any],
        rowid_col: int | None,
        conflict: str,
        writers: dict[str, TableWriter],
        ctx: Ctx,
    ) -> int | None:
        table = self.table
        if rowid_col is not None:
            rid = row[rowid_col]
            if rid is None:
                rid = w.new_rowid()
                row[rowid_col] = rid
            elif type(rid) is not int:
                raise SQLError(
                    f"datatype mismatch: {table.name}.{table.columns[rowid_col].name} is an INTEGER PRIMARY KEY and {rid!r} is not an integer"
                )
            else:
                w.saw_rowid(rid)
        else:
            rid = w.new_rowid()
        try:
            w.check_row(row, rid)
        except ConstraintError as e:
            if conflict == "IGNORE" and "NOT NULL" in str(e):
                return None
            if conflict == "REPLACE" and "NOT NULL" in str(e):
                fixed = False
                for i in w.not_null:
                    if row[i] is None and w.defaults[i] is not None:
                        row[i] = w.defaults[i]
                        fixed = True
                if not fixed:
                    raise
                w.check_row(row, rid)
            else:
                raise
        tree = ctx.tree(table.tree)
        rk = rowid_key(rid)
        pk_clash = rowid_col is not None and tree.get(rk) is not None
        clashes = w.unique_conflicts(row, rid)
        if pk_clash or clashes:
            if self.upsert is not None and self.upsert[0] == "update":
                other = rid if pk_clash else clashes[0][1]
                okey = rowid_key(other)
                old = decode_row(tree.get(okey), w.defaults, okey)
                full = old + tuple(row) + (rid,)
                if self.upsert_where is not None and not self.upsert_where(full):
                    return None
                new = list(old[: len(table.columns)])
                for ci, f in self.upsert_sets:
                    new[ci] = T.apply_affinity(table.affinities[ci], f(full))
                new_rid = new[rowid_col] if rowid_col is not None else other
                w.check_row(new, new_rid)
                for ix, _o in w.unique_conflicts(new, other):
                    raise w.unique_error(ix, new)
                w.update_row(old, new, new_rid, writers, self.ec)
                return other
            if conflict == "IGNORE":
                return None
            if conflict == "REPLACE":
                victims = set()
                if pk_clash:
                    victims.add(rid)
                for _, other in clashes:
                    victims.add(other)
                for v in sorted(victims):
                    vk = rowid_key(v)
                    raw = tree.get(vk)
                    if raw is not None:
                        w.delete_row(
                            decode_row(raw, w.defaults, vk), writers if self.fk else None, self.ec
                        )
            else:
                if pk_clash:
                    raise w.pk_error(rid)
                raise w.unique_error(clashes[0][0], row)
        if w.fks:
            w.check_fk_parent(row)
        w.insert_row(row, rid)
        return rid


# ---------------------------------------------------------------- UPDATE / DELETE


class _Targeted(Compiled):
    """UPDATE and DELETE: find the target rows through the planner's access path."""

    def _setup(self, catalog: Catalog, stmt: ast.Update | ast.Delete) -> Scope:
        table_name, alias, where = stmt.table, stmt.alias, stmt.where
        self.catalog = catalog
        self.table = table = catalog.table(table_name)
        planner = Planner(catalog, self.ctx, self.P)
        planner.with_ctes(stmt.ctes)
        self.planner = planner
        self.ec = planner.ec
        scope = _table_scope(table, alias)
        conjs = split_and(where)
        access, _, _ = planner._access(scope, 0, conjs, set())
        if access is None:
            access = FullScan(self.ctx, table)
        access.defaults = Planner._defaults(table)
        self.access = access
        # equality conjuncts the lookup enforces exactly are not checked again
        rest = [c for c in conjs if not any(c is u for u in access.consumed)]
        self.where = self.ec.compile(ast_and(rest), scope, True) if rest else None
        self.where_text = " AND ".join(sql_text(c) for c in rest) if rest else None
        return scope

    def targets(self) -> list[tuple[Any, ...]]:
        rows = self.access.rows(())
        if self.where is not None:
            return [r for r in rows if self.where(r)]
        return list(rows)


class CompiledUpdate(_Targeted):
    def __init__(self, parsed: ast.Parsed, stmt: ast.Update, catalog: Catalog, fk: bool) -> None:
        super().__init__(parsed.nparams, parsed.names)
        scope = self._setup(catalog, stmt)
        table = self.table
        self.fk = fk
        self.sets: list[tuple[int, Fn]] = []
        for name, e in stmt.sets:
            i = table.col_index.get(name.lower())
            if i is None:
                if name.lower() in C.ROWID_NAMES and table.rowid_col is not None:
                    i = table.rowid_col
                elif name.lower() in C.ROWID_NAMES:
                    i = -1
                else:
                    raise SchemaError(f"no such column: {name}")
            self.sets.append((i, self.ec.compile(e, scope)))
        self.conflict = stmt.conflict or "ABORT"
        # the indexes an UPDATE that keeps the rowid can change
        changed = {ci for ci, _ in self.sets}
        self.changed_indexes = [ix for ix in table.indexes if changed & set(ix.col_idx)]
        self.changed_unique = [ix for ix in self.changed_indexes if ix.unique]
        self.checks_needed = bool(table.check_exprs) or any(
            table.columns[ci].not_null for ci in changed if ci >= 0
        )

    def explain(self) -> list[str]:
        lines = [f"UPDATE {self.table.name}", "  " + self.access.explain()]
        if self.where_text:
            lines.append(f"    FILTER {self.where_text}")
        return lines

    def run(self, txn: Any, params: Any, undo: list[Any] | None, state: Any) -> Outcome:
        self.bind(params)
        ctx = self.start(txn, undo)
        table = self.table
        w = self.writer()
        writers = {table.name.lower(): w}
        ncols = len(table.columns)
        affs = table.affinities
        rowid_col = table.rowid_col
        count = 0
        tree = ctx.tree(table.tree)
        for old in self.targets():
            new = list(old[:ncols])
            new_rid = old[-1]
            for ci, f in self.sets:
                v = f(old)
                if ci == -1:
                    new_rid = v
                    continue
                new[ci] = T.apply_affinity(affs[ci], v)
            if rowid_col is not None:
                new_rid = new[rowid_col]
            if type(new_rid) is not int:
                if new_rid is None and rowid_col is not None:
                    raise ConstraintError(
                        f"NOT NULL constraint failed: {table.name}.{table.columns[rowid_col].name}"
                    )
                raise SQLError(f"datatype mismatch: the rowid must be an integer, not {new_rid!r}")
            if self.checks_needed:
                try:
                    w.check_row(new, new_rid)
                except ConstraintError:
                    if self.conflict == "IGNORE":
                        continue
                    raise
            moved = new_rid != old[-1]
            if moved and tree.get(rowid_key(new_rid)) is not None:
                if self.conflict == "IGNORE":
                    continue
                if self.conflict == "REPLACE":
                    vk = rowid_key(new_rid)
                    w.delete_row(
                        decode_row(tree.get(vk), w.defaults, vk),
                        writers if self.fk else None,
                        self.ec,
                    )
                else:
                    raise w.pk_error(new_rid)
            clashes = (
                w.unique_conflicts(new, old[-1], old, None if moved else self.changed_unique)
                if (moved or self.changed_unique)
                else None
            )
            if clashes:
                if self.conflict == "IGNORE":
                    continue
                if self.conflict == "REPLACE":
                    for _, other in clashes:
                        vk = rowid_key(other)
                        raw = tree.get(vk)
                        if raw is not None:
                            w.delete_row(
                                decode_row(raw, w.defaults, vk),
                                writers if self.fk else None,
                                self.ec,
                            )
                else:
                    raise w.unique_error(clashes[0][0], new)
            if w.fks:
                w.check_fk_parent(new)
            w.update_row(
                old,
                new,
                new_rid,
                writers if self.fk else None,
                self.ec,
                None if moved else self.changed_indexes,
            )
            count += 1
        return Outcome(rowcount=count)


class CompiledDelete(_Targeted):
    def __init__(self, parsed: ast.Parsed, stmt: ast.Delete, catalog: Catalog, fk: bool) -> None:
        super().__init__(parsed.nparams, parsed.names)
        self._setup(catalog, stmt)
        self.fk = fk

    def explain(self) -> list[str]:
        lines = [f"DELETE FROM {self.table.name}", "  " + self.access.explain()]
        if self.where_text:
            lines.append(f"    FILTER {self.where_text}")
        return lines

    def run(self, txn: Any, params: Any, undo: list[Any] | None, state: Any) -> Outcome:
        self.bind(params)
        self.start(txn, undo)
        w = self.writer()
        writers = {self.table.name.lower(): w}
        count = 0
        for old in self.targets():
            w.delete_row(old, writers if self.fk else None, self.ec)
            count += 1
        return Outcome(rowcount=count)


# ---------------------------------------------------------------- DDL


def _column_info(cd: ast.ColumnDef) -> ColumnInfo:
    default_sql = None
    if cd.default is not None:
        default_sql = cd.default_text if cd.default_text is not None else sql_text(cd.default)
    return ColumnInfo(cd.name, cd.type_name, cd.not_null, default_sql, cd.primary_key, cd.collation)


class CompiledDDL(Compiled):
    """CREATE/DROP/ALTER: run against the catalog as read at run time."""

    def __init__(self, parsed: ast.Parsed, stmt: ast.Statement) -> None:
        super().__init__(parsed.nparams, parsed.names)
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
            Planner(trial, ctx, self.P)._view_ref(
                ast.TableRef(s.name, None)
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
            t, ix = hit
            if ix.origin != "c":
                raise SQLError(
                    f"index associated with UNIQUE or PRIMARY KEY constraint cannot be dropped: {ix.name}"
                )
            nt = t.copy()
            nt.indexes = [i for i in nt.indexes if i.name != ix.name]
            nt.refresh()
            tables[t.name.lower()] = nt
            self._drop_tree(txn, ix.tree, undo)
            C.save(txn, tables, [t.name], [])
            return Outcome(rowcount=0)
        if isinstance(s, ast.AlterTable):
            return self._alter(txn, ctx, cat, tables, s, undo)
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
        uniques: list[list[str]] = []
        checks: list[tuple[str | None, str]] = []
        fks: list[dict[str, Any]] = []
        autoinc = False
        if not s.columns:
            raise SQLError(f"table {s.name} needs at least one column")
        for cd in s.columns:
            if cd.name.lower() in names:
                raise SchemaError(f"duplicate column name: {cd.name}")
            names.add(cd.name.lower())
            ci = _column_info(cd)
            if ci.default is not None:
                self._check_default(ci)
            cols.append(ci)
            if cd.primary_key:
                if pk:
                    raise SchemaError(f"table {s.name} has more than one primary key")
                pk = [cd.name]
                autoinc = cd.autoincrement
            if cd.unique:
                uniques.append([cd.name])
            for name, text in cd.checks:
                checks.append((name, text))
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
            elif tc.kind == "UNIQUE":
                uniques.append(list(tc.columns))
            elif tc.kind == "CHECK":
                checks.append((tc.name, tc.check_text or ""))
            elif tc.kind == "FOREIGN" and tc.fk is not None:
                fks.append(self._fk_json(tc.fk))
        for c in cols:
            c.pk = c.name.lower() in {p.lower() for p in pk}
        if autoinc and not (
            len(pk) == 1
            and cols[[c.name.lower() for c in cols].index(pk[0].lower())].type_name.strip().upper()
            == "INTEGER"
        ):
            raise SQLError("AUTOINCREMENT is only allowed on an INTEGER PRIMARY KEY")
        for _, text in checks:
            parse_expression(text)
        tid = C.next_id(txn)
        t = TableInfo(s.name, tid, cols, pk, checks, fks, [], autoinc)
        indexes = []
        n = 0
        if pk and t.rowid_col is None:
            n += 1
            indexes.append(
                IndexInfo(
                    f"sqlite_autoindex_{s.name}_{n}",
                    list(pk),
                    True,
                    f"sql:i:{tid}.{n}".encode(),
                    "pk",
                )
            )
        for u in uniques:
            if any(u == ix.columns for ix in indexes):
                continue
            if len(u) == 1 and t.rowid_col is not None and u[0].lower() == pk[0].lower():
                continue
            n += 1
            indexes.append(
                IndexInfo(
                    f"sqlite_autoindex_{s.name}_{n}",
                    list(u),
                    True,
                    f"sql:i:{tid}.{n}".encode(),
                    "u",
                )
            )
        t.indexes = indexes
        t.refresh()
        # validate CHECK expressions against the new table (unknown columns fail now)
        scope = _table_scope(t, None)
        planner = Planner(cat, ctx, self.P)
        for _, _, e in t.check_exprs:
            planner.ec.compile(e, scope, True)
        txn.tree(t.tree, create=True)
        for ix in indexes:
            txn.tree(ix.tree, create=True)
        tables[s.name.lower()] = t
        C.save(txn, tables, [s.name], [])
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
        cols = []
        for name, _desc in s.columns:
            i = t.col_index.get(name.lower())
            if i is None:
                raise SchemaError(f"no such column: {name} (table {t.name})")
            cols.append(t.columns[i].name)
        nt = t.copy()
        n = len(nt.indexes) + 1
        tree_name = f"sql:i:{nt.id}.c{C.next_id(txn)}".encode()
        ix = IndexInfo(s.name, cols, s.unique, tree_name, "c")
        nt.indexes.append(ix)
        nt.refresh()
        del n
        itree = txn.tree(tree_name, create=True)
        defaults = Planner._defaults(nt)
        seen: dict[bytes, int] = {}
        for k, v in list(txn.tree(nt.tree).scan()):
            r = decode_row(v, defaults, k)
            vals = [r[i] for i in ix.col_idx]
            if s.unique and None not in vals:
                p = encode_values(vals)
                if p in seen:
                    txn.drop_tree(tree_name)
                    raise ConstraintError(
                        f"UNIQUE constraint failed: {', '.join(t.name + '.' + c for c in cols)} "
                        f"(values {', '.join(map(repr, vals))} appear in rows {seen[p]} and {r[-1]}; index {s.name})"
                    )
                seen[p] = r[-1]
            itree.put(index_entry_key(ix, vals, k), k)
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
            C.save(txn, tables, changed, [old])
            return Outcome(rowcount=0)
        if s.action == "ADD":
            cd = s.column
            assert cd is not None
            if cd.name.lower() in nt.col_index:
                raise SchemaError(f"duplicate column name: {cd.name}")
            if cd.primary_key or cd.unique:
                raise SQLError("Cannot add a PRIMARY KEY or UNIQUE column")
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
            for f in nt.fks:
                f["columns"] = [
                    s.new or "" if c.lower() == oldname.lower() else c for c in f["columns"]
                ]
            nt.refresh()
            tables[nt.name.lower()] = nt
            C.save(txn, tables, [nt.name], [])
            return Outcome(rowcount=0)
        if s.action == "DROP_COLUMN":
            i = nt.col_index.get((s.old or "").lower())
            if i is None:
                raise SchemaError(f"no such column: {s.old}")
            name = nt.columns[i].name
            if nt.columns[i].pk or any(
                name.lower() in [c.lower() for c in ix.columns] for ix in nt.indexes
            ):
                raise SQLError(
                    f"cannot drop column {name}: it is in a PRIMARY KEY, UNIQUE constraint or index"
                )
            if len(nt.columns) == 1:
                raise SQLError(f"cannot drop column {name}: no other columns exist")
            defaults = Planner._defaults(t)
            tree = txn.tree(t.tree)
            for k, v in list(tree.scan()):
                r = list(decode_row(v, defaults, k)[:-1])
                del r[i]
                if undo is not None:
                    undo.append((tree, k, v))
                tree.put(k, encode_row(r))
            del nt.columns[i]
            nt.refresh()
            tables[nt.name.lower()] = nt
            C.save(txn, tables, [nt.name], [])
            return Outcome(rowcount=0)
        raise SQLError(f"unsupported ALTER TABLE action {s.action}")


# ---------------------------------------------------------------- PRAGMA, EXPLAIN


class CompiledPragma(Compiled):
    read_only = True

    def __init__(self, parsed: ast.Parsed, stmt: ast.Pragma) -> None:
        super().__init__(parsed.nparams, parsed.names)
        self.stmt = stmt
        self.read_only = stmt.value is None or stmt.name not in ("foreign_keys",)

    def run(self, txn: Any, params: Any, undo: list[Any] | None, state: Any) -> Outcome:
        s = self.stmt
        name = s.name
        if name == "foreign_keys":
            if s.value is None:
                return Outcome(["foreign_keys"], [(1 if state.foreign_keys else 0,)])
            v = s.value
            on = str(v).upper() in ("1", "ON", "TRUE", "YES")
            state.foreign_keys = on
            return Outcome(rowcount=0)
        if name in ("table_info", "index_list", "index_info", "foreign_key_list"):
            cat = C.load(txn)
            arg = str(s.value) if s.value is not None else ""
            if name == "index_info":
                hit = cat.find_index(arg)
                if hit is None:
                    return Outcome(["seqno", "cid", "name"], [])
                t, ix = hit
                return Outcome(
                    ["seqno", "cid", "name"],
                    [(i, ci, t.columns[ci].name) for i, ci in enumerate(ix.col_idx)],
                )
            t = cat.tables.get(arg.lower())
            if t is None:
                return Outcome(["cid"], [])
            if name == "table_info":
                rows = []
                for i, c in enumerate(t.columns):
                    pkpos = [p.lower() for p in t.pk].index(c.name.lower()) + 1 if c.pk else 0
                    rows.append(
                        (i, c.name, c.type_name, 1 if c.not_null else 0, c.default_sql, pkpos)
                    )
                return Outcome(["cid", "name", "type", "notnull", "dflt_value", "pk"], rows)
            if name == "index_list":
                rows = [
                    (i, ix.name, 1 if ix.unique else 0, ix.origin, 0)
                    for i, ix in enumerate(t.indexes)
                ]
                return Outcome(["seq", "name", "unique", "origin", "partial"], rows)
            rows = []
            for i, f in enumerate(t.fks):
                for j, c in enumerate(f["columns"]):
                    ref = (f["ref_columns"] or [None] * len(f["columns"]))[j]
                    rows.append((i, j, f["table"], c, ref, f["on_update"], f["on_delete"], "NONE"))
            return Outcome(
                ["id", "seq", "table", "from", "to", "on_update", "on_delete", "match"], rows
            )
        raise SQLError(f"unsupported PRAGMA {name}")


class CompiledExplain(Compiled):
    read_only = True

    def __init__(self, parsed: ast.Parsed, inner: Compiled) -> None:
        super().__init__(parsed.nparams, parsed.names)
        self.inner = inner

    def run(self, txn: Any, params: Any, undo: list[Any] | None, state: Any) -> Outcome:
        return Outcome(["plan"], [(line,) for line in self.inner.explain()])


def compile_statement(
    parsed: ast.Parsed, stmt: ast.Statement, catalog: Catalog, fk: bool
) -> Compiled:
    if isinstance(stmt, (ast.Insert, ast.Update, ast.Delete)) and stmt.returning is not None:
        raise SQLError("RETURNING is not supported")
    if isinstance(stmt, ast.Select):
        return CompiledSelect(parsed, stmt, catalog)
    if isinstance(stmt, ast.Insert):
        return CompiledInsert(parsed, stmt, catalog, fk)
    if isinstance(stmt, ast.Update):
        return CompiledUpdate(parsed, stmt, catalog, fk)
    if isinstance(stmt, ast.Delete):
        return CompiledDelete(parsed, stmt, catalog, fk)
    if isinstance(
        stmt,
        (
            ast.CreateTable,
            ast.DropTable,
            ast.CreateIndex,
            ast.DropIndex,
            ast.AlterTable,
            ast.CreateView,
            ast.DropView,
        ),
    ):
        return CompiledDDL(parsed, stmt)
    if isinstance(stmt, ast.Pragma):
        return CompiledPragma(parsed, stmt)
    if isinstance(stmt, ast.Explain):
        inner = compile_statement(parsed, stmt.statement, catalog, fk)
        return CompiledExplain(parsed, inner)
    raise SQLError(f"unsupported statement {type(stmt).__name__}")


# ---------------------------------------------------------------- the per-thread cache

_local = threading.local()
CACHE_SIZE = 256


def compiled_for(parsed: ast.Parsed, index: int, catalog: Catalog, fk: bool) -> Compiled:
    cache: dict[Any, Compiled] | None = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = {}
    key = (parsed.text, index, catalog.cookie, fk)
    c = cache.get(key)
    if c is None:
        if len(cache) >= CACHE_SIZE:
            cache.clear()
        c = compile_statement(parsed, parsed.statement, catalog, fk)
        if not isinstance(c, CompiledDDL):
            cache[key] = c
    return c


def undo_writes(undo: list[Any]) -> None:
    """Replay a statement's undo records backwards: the transaction is as before it."""
    for tree, key, old in reversed(undo):
        if old is None:
            tree.delete(key)
        else:
            tree.put(key, old)


__all__ = [
    "compile_statement",
    "compiled_for",
    "Outcome",
    "undo_writes",
    "READ_ONLY_KINDS",
    "FullScan",
]
