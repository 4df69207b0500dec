"""Compiled INSERT, UPDATE and DELETE.

INSERT takes its rows from VALUES, a SELECT or parameters alone (``run_many``
for a batch), applies column affinities and defaults, then writes them: a plain
INSERT through a loop of its own (``_insert_fast``), one with an OR clause, an
upsert or foreign keys row by row (``_insert_one``). UPDATE and DELETE find
their target rows through the planner's access path for the table and WHERE,
then write each through the statement's TableWriter (writer.py).
"""

from __future__ import annotations

import struct
from typing import Any, Callable

from toondb.codec.keycode import encode_values, rowid_key
from toondb.codec.rowcodec import decode_row, encode_row
from toondb.errors import ConstraintError, SchemaError, SQLError
from toondb.sql import ast, fulltext, hnsw
from toondb.sql import catalog as C
from toondb.sql import types as T
from toondb.sql.catalog import Catalog, TableInfo
from toondb.sql.compiled import NO_ROW, ONE_ROW, Compiled, Outcome
from toondb.sql.executor import Ctx, FullScan, RowidEq
from toondb.sql.planner import Planner, SelectPlan, split_and, sql_text, table_defaults, table_scope
from toondb.sql.planner.access import choose_access
from toondb.sql.returning import Returning
from toondb.sql.scope import Scope, Source
from toondb.sql.writer import TableWriter

_pack_q = struct.Struct(">Q").pack

Fn = Callable[[Any], Any]


class CompiledWrite(Compiled):
    """A statement that writes one table (INSERT, UPDATE, DELETE) through a TableWriter."""

    table: TableInfo
    catalog: Catalog
    ec: Any
    fk: bool

    def writer(self) -> TableWriter:
        """The statement's TableWriter, built once (constraint checks compiled),
        its per-execution state reset."""
        w: TableWriter | None = getattr(self, "_writer", None)
        if w is None:
            w = self._writer = TableWriter(self.ctx, self.table, self.catalog, self.ec, self.fk)
        w.next_rowid = None
        return w


def ast_and(conjs: list[ast.Expr]) -> ast.Expr:
    """The conjuncts joined by AND again (the WHERE left after the access path)."""
    node = conjs[0]
    for c in conjs[1:]:
        node = ast.Binary("AND", node, c)
    return node


# ---------------------------------------------------------------- INSERT


def insert_source(
    planner: Planner, src: ast.Select | None, width: int, count_msg: Callable[[int], str]
) -> tuple[list[list[Fn]] | None, SelectPlan | None]:
    """An INSERT's rows: (one list of compiled expressions per VALUES row, None),
    or (None, the plan of its SELECT); DEFAULT VALUES (src None) is one empty row.
    A row of another width than width is the SQLError count_msg(its width)."""
    if src is None:
        return [[]], None
    if (
        len(src.cores) == 1
        and src.cores[0].values is not None
        and not src.order_by
        and src.limit is None
        and not src.ctes
    ):
        rows = src.cores[0].values or []
        for r in rows:
            if len(r) != width:
                raise SQLError(count_msg(len(r)))
        empty = Scope([], None)
        return [[planner.ec.compile(e, empty) for e in r] for r in rows], None
    select = planner.plan_select(src)
    if select.ncolumns != width:
        raise SQLError(count_msg(select.ncolumns))
    return None, select


class CompiledInsert(CompiledWrite):
    def __init__(self, parsed: ast.Parsed, stmt: ast.Insert, catalog: Catalog, fk: bool) -> None:
        super().__init__(parsed.nparams, parsed.names, parsed.nslots)
        self.catalog = catalog
        self.table = table = catalog.table(stmt.table)
        self.fk = fk
        planner = Planner(catalog, self.ctx, self.P)
        planner.with_ctes(stmt.ctes)
        self.planner = planner
        ec = planner.ec
        ncols = len(table.columns)
        if stmt.columns is None:
            targets = [i for i in range(ncols) if i not in table.generated]
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
                if i in table.generated:
                    raise SQLError(f'cannot INSERT into generated column "{name}"')
                targets.append(i)
        self.targets = targets
        self.conflict = stmt.conflict or "ABORT"
        self.upsert = stmt.upsert
        src = stmt.source
        if src is None:
            self.targets = []
        self.values_fns, self.select = insert_source(planner, src, len(targets), self._count_msg)
        # VALUES (?, ?, ...) of exactly the table's columns: rows come from the
        # parameters directly, converted only where a value's type needs it
        self.param_slots: list[int] | None = None
        self.type_fixes: list[tuple[int, tuple[type, ...], str]] = []
        vrows = self.values_fns is not None and src is not None and src.cores[0].values
        if vrows and len(vrows) == 1 and all(isinstance(e, ast.Param) for e in vrows[0]):
            slots = [e.index for e in vrows[0] if isinstance(e, ast.Param)]  # all are
            if slots == list(range(len(slots))) and parsed.nparams == len(slots):
                self.param_slots = slots
                ok_types = {
                    T.INTEGER: (int, type(None)),
                    T.NUMERIC: (int, type(None)),  # a REAL may become an INTEGER
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
                self.default_fns.append(ec.compile(c.default, Scope([], None)))
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
        self.returning = (
            Returning(ec, table, None, stmt.returning) if stmt.returning is not None else None
        )
        self.written: list[tuple[Any, ...]] | None = None  # RETURNING rows of a run

    def _count_msg(self, got: int) -> str:
        n = len(self.table.columns) - len(self.table.generated)
        if len(self.targets) == n:
            return f"table {self.table.name} has {n} columns but {got} values were supplied"
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
        ret = self.returning
        self.written = [] if ret is not None else None
        autoinc = self.table.autoincrement
        if autoinc:
            w.start_autoincrement()
        if self.conflict == "ABORT" and self.upsert is None and not w.fks and ret is None:
            out = self._insert_fast(w, rows, ctx)
            if autoinc:
                w.finish_autoincrement()
            hnsw.flush(ctx)  # the statement's last step (sql/hnsw.py)
            fulltext.flush(ctx)
            return out
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
            elif not autoinc:
                w.next_rowid = saved  # an ignored row takes no rowid (but an AUTOINCREMENT one)
        if autoinc:
            w.finish_autoincrement()
        hnsw.flush(ctx)
        fulltext.flush(ctx)
        if ret is not None:
            returned = [ret.row(r) for r in self.written or []]
            self.written = None
            return Outcome(ret.columns, returned, count, last)
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
        slots = list(self.slots)
        nparams = self.nparams
        vec = w.fix_vectors if w.vcols else None
        for params in batches:
            if fast and (
                (type(params) in (tuple, list) and len(params) == nparams)
                or (params is None and not nparams)
            ):
                row = list(params) + slots if params else slots[:]
                for i, ok, aff in fixes:
                    v = row[i]
                    if type(v) not in ok or (type(v) is int and not I64_MIN <= v <= I64_MAX):
                        row[i] = apply_aff(aff, check(v))
                if vec is not None:
                    vec(row)
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
                if vec is not None:
                    vec(row)
                yield row

    def _insert_fast(self, w: TableWriter, rows: Any, ctx: Ctx) -> Outcome:
        """Plain INSERT (no OR clause, no upsert, no foreign keys to check)."""
        table = self.table
        tree = ctx.tree(table.tree)
        get, put = tree.get, tree.put
        # newest index first, as TableWriter.unique
        idx = [(ctx.tree(ix.tree), ix.col_idx, ix.unique, ix) for ix in reversed(table.indexes)]
        vectors = w.vector_set if table.vector_indexes else None
        undo = ctx.undo
        rowid_col = table.rowid_col
        not_null = w.not_null
        checks = w.checks or w.strict or w.generated  # check_row does these too
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
                if ix.folds is not None:  # NOCASE / RTRIM keys (catalog invariant 7)
                    vals = ix.fold(vals)
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
            if vectors is not None:
                vectors(rid, row)
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
            msg = str(e)
            # as SQLite: IGNORE skips a row a NOT NULL or CHECK refuses (a STRICT type error stays)
            if conflict == "IGNORE" and ("NOT NULL" in msg or msg.startswith("CHECK constraint")):
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
                if w.vcols:
                    w.fix_vectors(new)
                new_rid = new[rowid_col] if rowid_col is not None else other
                w.check_row(new, new_rid)
                for ix, _o in w.unique_conflicts(new, other):
                    raise w.unique_error(ix, new)
                w.update_row(old, new, new_rid, writers, self.ec)
                if self.written is not None:
                    self.written.append((*new, new_rid))
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
        if self.written is not None:
            self.written.append((*row, rid))
        return rid


# ---------------------------------------------------------------- UPDATE / DELETE


class _Targeted(CompiledWrite):
    """UPDATE and DELETE: find the target rows through the planner's access path."""

    returning: Returning | None

    def _setup(self, catalog: Catalog, stmt: ast.Update | ast.Delete) -> Scope:
        table_name, alias, where = stmt.table, stmt.alias, stmt.where
        self.catalog = catalog
        self.table = table = catalog.table(table_name)
        planner = Planner(catalog, self.ctx, self.P)
        planner.with_ctes(stmt.ctes)
        self.planner = planner
        self.ec = planner.ec
        scope = table_scope(table, alias)
        if stmt.indexed:
            if not any(ix.name.lower() == stmt.indexed.lower() for ix in table.indexes):
                raise SQLError(f"no such index: {stmt.indexed}")
        scope.sources[0].indexed = stmt.indexed  # INDEXED BY / NOT INDEXED
        if table.fulltext is not None:  # MATCH in the WHERE (sql/fulltext.py)
            from toondb.sql.planner.fts import fts_access

            where = fulltext.rewrite_where(planner, table, alias, where)
            conjs = split_and(where)
            access: Any = fts_access(planner, scope, 0, conjs, None, True)[0]
        else:
            conjs = split_and(where)
            access, _, _ = choose_access(planner, scope, 0, conjs, set())
            if access is None:
                access = FullScan(self.ctx, table)
            access.defaults = table_defaults(table)
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


def _one_row_by_rowid(c: _Targeted, table: TableInfo, fk: bool) -> bool:
    """Does an UPDATE or DELETE reach one row by its rowid, with nothing to do
    beside its row and index writes (no foreign keys, RETURNING, vectors or
    full-text index, no WHERE left after the lookup)? Then it runs without the
    general loop (_run_by_rowid, CompiledDelete.run)."""
    return (
        type(c.access) is RowidEq
        and c.where is None
        and c.returning is None
        and not fk
        and not table.vector_cols
        and not table.vector_indexes
        and table.fulltext is None
    )


class CompiledUpdate(_Targeted):
    def __init__(self, parsed: ast.Parsed, stmt: ast.Update, catalog: Catalog, fk: bool) -> None:
        super().__init__(parsed.nparams, parsed.names, parsed.nslots)
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
            if i in table.generated:
                raise SQLError(f'cannot UPDATE generated column "{name}"')
            self.sets.append((i, self.ec.compile(e, scope)))
        self.conflict = stmt.conflict or "ABORT"
        # the indexes an UPDATE that keeps the rowid can change
        changed = {ci for ci, _ in self.sets} | set(table.generated)
        self.changed_indexes = [ix for ix in table.indexes if changed & set(ix.col_idx)]
        self.changed_unique = [ix for ix in self.changed_indexes if ix.unique]
        self.checks_needed = (
            bool(table.check_exprs)
            or table.strict
            or bool(table.generated)
            or any(table.columns[ci].not_null for ci in changed if ci >= 0)
        )
        self.vector_sets = {ci for ci, _ in table.vector_cols} & changed
        self.returning = (
            Returning(self.ec, table, stmt.alias, stmt.returning)
            if stmt.returning is not None
            else None
        )
        # WHERE rowid = ? setting plain columns, nothing to check: _run_by_rowid
        self.by_rowid = (
            _one_row_by_rowid(self, table, fk)
            and not self.checks_needed
            and not self.changed_unique
            and all(0 <= ci != table.rowid_col for ci, _ in self.sets)
        )
        # its row and index writes read no clock: only a function of the statement could
        self.reads_clock = not self.by_rowid or ast.calls_function(stmt)
        self.set_affs = [(ci, f, table.affinities[ci]) for ci, f in self.sets if ci >= 0]

    def explain(self) -> list[str]:
        lines = [f"UPDATE {self.table.name}", "  " + self.access.explain()]
        if self.where_text:
            lines.append(f"    FILTER {self.where_text}")
        return lines

    def _run_by_rowid(self, txn: Any, params: Any, undo: list[Any] | None) -> Outcome:
        """run() for the one row a rowid names, when no constraint, index entry but
        those of the changed columns, trigger-like action or RETURNING is involved
        (by_rowid): the general loop without its per-row decisions."""
        self.bind(params)
        self.start(txn, undo)
        rows = self.access.rows(())
        if not rows:
            return NO_ROW
        old = rows[0]
        new = list(old[: len(self.table.columns)])
        affinity = T.apply_affinity
        for ci, f, aff in self.set_affs:
            new[ci] = affinity(aff, f(old))
        self.writer().update_row(old, new, old[-1], None, self.ec, self.changed_indexes)
        return ONE_ROW

    def run(self, txn: Any, params: Any, undo: list[Any] | None, state: Any) -> Outcome:
        if self.by_rowid:
            return self._run_by_rowid(txn, params, undo)
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
        ret = self.returning
        out: list[tuple[Any, ...]] = []
        gone: set[int] = set()  # rows OR REPLACE deleted: no longer there to update
        for old in self.targets():
            if gone and old[-1] in gone:
                continue
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
            if self.vector_sets:
                w.fix_vectors(new, self.vector_sets)
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
                    gone.add(new_rid)
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
                        gone.add(other)
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
            if ret is not None:
                out.append(ret.row((*new, new_rid)))
        hnsw.flush(ctx)
        fulltext.flush(ctx)
        if ret is not None:
            return Outcome(ret.columns, out, count)
        return Outcome(rowcount=count)


class CompiledDelete(_Targeted):
    def __init__(self, parsed: ast.Parsed, stmt: ast.Delete, catalog: Catalog, fk: bool) -> None:
        super().__init__(parsed.nparams, parsed.names, parsed.nslots)
        self._setup(catalog, stmt)
        self.fk = fk
        self.returning = (
            Returning(self.ec, self.table, stmt.alias, stmt.returning)
            if stmt.returning is not None
            else None
        )
        self.by_rowid = _one_row_by_rowid(self, self.table, fk)
        self.reads_clock = not self.by_rowid or ast.calls_function(stmt)

    def explain(self) -> list[str]:
        lines = [f"DELETE FROM {self.table.name}", "  " + self.access.explain()]
        if self.where_text:
            lines.append(f"    FILTER {self.where_text}")
        return lines

    def run(self, txn: Any, params: Any, undo: list[Any] | None, state: Any) -> Outcome:
        if self.by_rowid:  # the one row a rowid names (see _one_row_by_rowid)
            self.bind(params)
            self.start(txn, undo)
            rows = self.access.rows(())
            if not rows:
                return NO_ROW
            self.writer().delete_row(rows[0], None, self.ec)
            return ONE_ROW
        self.bind(params)
        self.start(txn, undo)
        w = self.writer()
        writers = {self.table.name.lower(): w}
        count = 0
        ret = self.returning
        out: list[tuple[Any, ...]] = []
        for old in self.targets():
            w.delete_row(old, writers if self.fk else None, self.ec)
            count += 1
            if ret is not None:
                out.append(ret.row(old))
        hnsw.flush(self.ctx)
        fulltext.flush(self.ctx)
        if ret is not None:
            return Outcome(ret.columns, out, count)
        return Outcome(rowcount=count)
