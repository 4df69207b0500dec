"""Statement execution: DDL, DML, SELECT, PRAGMA and EXPLAIN inside one transaction.

``compile_statement(parsed, index, catalog, fk)`` turns a parsed statement into a
``Compiled`` whose ``run(txn, params, undo)`` executes it. Compiled statements
are cached per thread by (SQL text, statement index, schema cookie, foreign-keys
setting), so a statement repeated with new parameters is neither parsed nor
planned again. The plan of a statement at the first sighting of its text and
template (``Parsed.once``, statements.py) is not kept: a plan is hundreds of
objects (closures, cells) that would outlive the young collections and be
promoted to the garbage collector's oldest generation, whose full collections
then grow with them; an application that runs each statement once (a script,
a test suite, sqllogictest's select files) kept plans it never ran again and
paid for them in full collections (about a fifth of select3.test's time).

Statement atomicity: inside a user's transaction every write of a statement is
recorded in an undo list (tree, key, previous value); if the statement fails,
the list is replayed backwards and the transaction is as it was before the
statement. Outside one, the statement's own transaction is simply aborted.

Where each statement kind is: SELECT and EXPLAIN here; PRAGMA, VACUUM and
ANALYZE in pragmas.py; INSERT, UPDATE
and DELETE in dml.py (their row writes in writer.py); CREATE, DROP and ALTER in
ddl.py; ``Compiled`` and ``Outcome`` in compiled.py.
"""

from __future__ import annotations

import threading
from typing import Any

from toondb.errors import SQLError
from toondb.sql import ast
from toondb.sql.catalog import Catalog
from toondb.sql.compiled import Compiled, Outcome
from toondb.sql.ddl import CompiledDDL
from toondb.sql.describe import vector_results
from toondb.sql.dml import CompiledDelete, CompiledInsert, CompiledUpdate
from toondb.sql.executor import FullScan
from toondb.sql.fn_vector import as_array
from toondb.sql.planner import Planner, SelectPlan
from toondb.sql.planner.join_order import PLANNING_TXN, size_class
from toondb.sql.pragmas import CompiledAnalyze, CompiledPragma, CompiledVacuum
from toondb.sql.user_functions import USER_FUNCTIONS, UserFunctions

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


# ---------------------------------------------------------------- EXPLAIN


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
    if isinstance(stmt, ast.Vacuum):
        return CompiledVacuum(parsed, stmt)
    if isinstance(stmt, ast.Analyze):
        return CompiledAnalyze(parsed, stmt, catalog)
    if isinstance(stmt, ast.Explain):
        inner = compile_statement(parsed, stmt.statement, catalog, fk)
        return CompiledExplain(parsed, inner)
    raise SQLError(f"unsupported statement {type(stmt).__name__}")


# ---------------------------------------------------------------- the per-thread cache

_local = threading.local()
CACHE_SIZE = 256


def compiled_for(
    parsed: ast.Parsed,
    index: int,
    catalog: Catalog,
    fk: bool,
    txn: Any = None,
    functions: UserFunctions | None = None,
) -> Compiled:
    """The compiled statement, from the cache unless a table its join order was
    chosen for has changed size class since (planner/join_order.py). functions:
    the handle's user-defined functions (the plan calls the ones of its key's
    version)."""
    cache: dict[Any, Compiled] | None = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = {}
    # a template's plan serves it wherever it stands in a text
    key = (
        parsed.key,
        0 if parsed.nslots else index,
        catalog.cookie,
        fk,
        0 if functions is None else functions.version,
    )
    c = cache.get(key)
    if c is not None and c.ctx.size_marks and txn is not None and _resized(c, txn):
        c = None
    if c is None:
        token = PLANNING_TXN.set(txn)
        ftoken = USER_FUNCTIONS.set(functions or None)
        try:
            c = compile_statement(parsed, parsed.statement, catalog, fk)
        finally:
            USER_FUNCTIONS.reset(ftoken)
            PLANNING_TXN.reset(token)
        if not parsed.once and not isinstance(c, CompiledDDL):
            if len(cache) >= CACHE_SIZE:
                cache.clear()
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
