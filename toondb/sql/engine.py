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

Where each statement kind is: SELECT, PRAGMA and EXPLAIN here; INSERT, UPDATE
and DELETE in dml.py (their row writes in writer.py); CREATE, DROP and ALTER in
ddl.py; ``Compiled`` and ``Outcome`` in compiled.py.
"""

from __future__ import annotations

import threading
from typing import Any

from toondb.errors import SQLError
from toondb.sql import ast, hnsw
from toondb.sql import catalog as C
from toondb.sql.catalog import Catalog
from toondb.sql.compiled import Compiled, Outcome
from toondb.sql.ddl import CompiledDDL
from toondb.sql.describe import columns_in, vector_results
from toondb.sql.dml import CompiledDelete, CompiledInsert, CompiledUpdate
from toondb.sql.executor import FullScan
from toondb.sql.fn_vector import as_array
from toondb.sql.planner import Planner, SelectPlan
from toondb.sql.planner.join_order import PLANNING_TXN, size_class

READ_ONLY_KINDS = (ast.Select, ast.Explain)


# ---------------------------------------------------------------- SELECT


class CompiledSelect(Compiled):
    read_only = True

    def __init__(self, parsed: ast.Parsed, stmt: ast.Select, catalog: Catalog) -> None:
        super().__init__(parsed.nparams, parsed.names, parsed.nslots)
        planner = Planner(catalog, self.ctx, self.P)
        self.plan: SelectPlan = planner.plan_select(stmt)
        # result columns holding vectors: read back as NumPy arrays (sql/fn_vector.py)
        self.vectors = vector_results(stmt, catalog)

    def run(self, txn: Any, params: Any, undo: list[Any] | None, state: Any) -> Outcome:
        self.bind(params)
        self.start(txn, undo)
        rows = list(self.plan.run())
        if self.vectors and rows:
            rows = vector_rows(rows, self.vectors)
        return Outcome(self.plan.columns, rows)

    def explain(self) -> list[str]:
        return self.plan.explain_lines


def vector_rows(rows: list[tuple[Any, ...]], cols: list[int]) -> list[tuple[Any, ...]]:
    """rows with the vector blobs of the columns cols as NumPy float32 arrays."""
    out = []
    for r in rows:
        lst = list(r)
        for i in cols:
            lst[i] = as_array(lst[i])
        out.append(tuple(lst))
    return out


# ---------------------------------------------------------------- PRAGMA, EXPLAIN


class CompiledPragma(Compiled):
    read_only = True

    def __init__(self, parsed: ast.Parsed, stmt: ast.Pragma) -> None:
        super().__init__(parsed.nparams, parsed.names, parsed.nslots)
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
        if name == "hnsw_ef_search":
            if s.value is None:
                return Outcome(["hnsw_ef_search"], [(state.hnsw_ef_search,)])
            v = s.value
            if type(v) is not int or not 1 <= v <= hnsw.MAX_EF_SEARCH:
                raise SQLError(f"hnsw_ef_search must be an integer in 1..{hnsw.MAX_EF_SEARCH}")
            state.hnsw_ef_search = v
            return Outcome(rowcount=0)
        if name in (
            "table_info",
            "table_xinfo",
            "index_list",
            "index_info",
            "index_xinfo",
            "foreign_key_list",
        ):
            cat = C.load(txn)
            arg = str(s.value) if s.value is not None else ""
            t: C.TableInfo | None
            rows: list[tuple[Any, ...]]
            if name == "index_info":
                hit = cat.find_index(arg)
                if hit is None:
                    return Outcome(["seqno", "cid", "name"], [])
                t, ix = hit
                cols = ix.col_idx if isinstance(ix.col_idx, list) else [ix.col_idx]
                return Outcome(
                    ["seqno", "cid", "name"],
                    [(i, ci, t.columns[ci].name) for i, ci in enumerate(cols)],
                )
            if name == "index_xinfo":
                return _index_xinfo(cat, arg)
            t = cat.tables.get(arg.lower())
            # table_xinfo adds SQLite's "hidden" (generated columns; 0 for a view's)
            extra = (0,) if name == "table_xinfo" else ()
            names = ["cid", "name", "type", "notnull", "dflt_value", "pk"]
            names += ["hidden"] if extra else []
            if t is None and name in ("table_info", "table_xinfo") and arg.lower() in cat.views:
                # a view's columns, with their declared types where they read a column
                view_cols = columns_in(cat)(arg) or []
                rows = [
                    (i, n, decl or "", 0, None, 0) + extra for i, (n, decl) in enumerate(view_cols)
                ]
                return Outcome(names, rows)
            if t is None:
                return Outcome(["cid"], [])
            if name in ("table_info", "table_xinfo"):
                rows = []
                for c in t.columns:
                    # hidden: 2 a VIRTUAL generated column, 3 a STORED one (table_info
                    # leaves them out, as SQLite)
                    hidden = 0 if c.generated_sql is None else 3 if c.stored else 2
                    if hidden and not extra:
                        continue
                    pkpos = [p.lower() for p in t.pk].index(c.name.lower()) + 1 if c.pk else 0
                    rows.append(
                        (len(rows), c.name, c.type_name, 1 if c.not_null else 0, c.default_sql)
                        + (pkpos,)
                        + ((hidden,) if extra else ())
                    )
                return Outcome(names, rows)
            if name == "index_list":
                # as SQLite's: the most recently made index first
                indexes: tuple[C.IndexInfo | C.VectorIndexInfo, ...] = (
                    *t.indexes,
                    *t.vector_indexes,
                )
                rows = [
                    (i, ix.name, 1 if ix.unique else 0, ix.origin, 0)
                    for i, ix in enumerate(reversed(indexes))
                ]
                return Outcome(["seq", "name", "unique", "origin", "partial"], rows)
            rows = []
            # as SQLite's: the last declared foreign key first, numbered 0
            for i, f in enumerate(reversed(t.fks)):
                for j, c in enumerate(f["columns"]):
                    ref = (f["ref_columns"] or [None] * len(f["columns"]))[j]
                    rows.append((i, j, f["table"], c, ref, f["on_update"], f["on_delete"], "NONE"))
            return Outcome(
                ["id", "seq", "table", "from", "to", "on_update", "on_delete", "match"], rows
            )
        raise SQLError(f"unsupported PRAGMA {name}")


def _index_xinfo(cat: C.Catalog, name: str) -> Outcome:
    """PRAGMA index_xinfo(i) as SQLite's: each key column with its collation
    (key 1), then the rowid every entry carries (cid -1, key 0). Every index
    is ascending here (docs/sql.md)."""
    names = ["seqno", "cid", "name", "desc", "coll", "key"]
    hit = cat.find_index(name)
    if hit is None:
        return Outcome(names, [])
    t, ix = hit
    if isinstance(ix, C.VectorIndexInfo):
        colls = ["BINARY"]
        cols = [ix.col_idx]
    else:
        colls, cols = ix.collations, ix.col_idx
    rows: list[tuple[Any, ...]] = [
        (i, ci, t.columns[ci].name, 0, coll, 1) for i, (ci, coll) in enumerate(zip(cols, colls))
    ]
    rows.append((len(rows), -1, None, 0, "BINARY", 0))
    return Outcome(names, rows)


class CompiledExplain(Compiled):
    read_only = True

    def __init__(self, parsed: ast.Parsed, inner: Compiled) -> None:
        super().__init__(parsed.nparams, parsed.names, parsed.nslots)
        self.inner = inner
        self.ctx.size_marks = inner.ctx.size_marks  # re-planned with the inner statement

    def run(self, txn: Any, params: Any, undo: list[Any] | None, state: Any) -> Outcome:
        return Outcome(["plan"], [(line,) for line in self.inner.explain()])


def compile_statement(
    parsed: ast.Parsed, stmt: ast.Statement, catalog: Catalog, fk: bool
) -> Compiled:
    if isinstance(stmt, ast.Select):
        return CompiledSelect(parsed, stmt, catalog)
    if isinstance(stmt, ast.Insert):
        t = catalog.tables.get(stmt.table.lower())
        if t is not None and t.fulltext is not None:
            from toondb.sql.fts_statements import CompiledFtsInsert

            return CompiledFtsInsert(parsed, stmt, catalog, fk)
        return CompiledInsert(parsed, stmt, catalog, fk)
    if isinstance(stmt, ast.Update):
        return CompiledUpdate(parsed, stmt, catalog, fk)
    if isinstance(stmt, ast.Delete):
        return CompiledDelete(parsed, stmt, catalog, fk)
    if isinstance(
        stmt,
        (
            ast.CreateTable,
            ast.CreateVirtualTable,
            ast.DropTable,
            ast.CreateIndex,
            ast.DropIndex,
            ast.Reindex,
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


def compiled_for(
    parsed: ast.Parsed, index: int, catalog: Catalog, fk: bool, txn: Any = None
) -> Compiled:
    """The compiled statement, from the cache unless a table its join order was
    chosen for has changed size class since (planner/join_order.py)."""
    cache: dict[Any, Compiled] | None = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = {}
    # a template's plan serves it wherever it stands in a text
    key = (parsed.key, 0 if parsed.nslots else index, catalog.cookie, fk)
    c = cache.get(key)
    if c is not None and c.ctx.size_marks and txn is not None and _resized(c, txn):
        c = None
    if c is None:
        if len(cache) >= CACHE_SIZE:
            cache.clear()
        token = PLANNING_TXN.set(txn)
        try:
            c = compile_statement(parsed, parsed.statement, catalog, fk)
        finally:
            PLANNING_TXN.reset(token)
        if not isinstance(c, CompiledDDL):
            cache[key] = c
    return c


def _resized(c: Compiled, txn: Any) -> bool:
    for tree, n in c.ctx.size_marks.items():  # type: ignore[union-attr]
        try:
            now = txn.tree(tree).count() if txn.has_tree(tree) else 0
        except Exception:  # noqa: BLE001 - a count is only an estimate
            return False
        if size_class(now) != size_class(n):
            return True
    return False


def undo_writes(undo: list[Any]) -> None:
    """Replay a statement's undo records backwards: the transaction is as before it."""
    for tree, key, old in reversed(undo):
        if old is None:
            tree.delete(key)
        else:
            tree.put(key, old)


__all__ = [
    "compile_statement",
    "Compiled",
    "CompiledInsert",
    "compiled_for",
    "Outcome",
    "undo_writes",
    "READ_ONLY_KINDS",
    "FullScan",
]
