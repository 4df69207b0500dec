"""The declared types of a statement's result columns, as ``sqlite3_column_decltype``
gives them: for a result column that reads a table's column directly (``x``,
``t.x``, or one that ``*`` expands to), the type that column was declared with in
CREATE TABLE (``""`` if none was); for anything else (an expression, an aggregate)
None. Views, subqueries in FROM and WITH names pass their columns' types through;
a compound SELECT takes its first part's. The DB-API uses them for
``Cursor.description`` and for sqlite3's ``detect_types=PARSE_DECLTYPES``.

Only the AST and the names in scope are read: nothing is planned or run.
``declared_types(statement, columns_of)`` takes a function that gives a table's
or view's columns (a list of ``(name, declared type)``) or None when there is no
such table, so that a client of the server can answer with ``PRAGMA table_info``;
``declared_types_in(txn, sql)`` answers from the catalog a transaction sees.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from toondb.sql import ast
from toondb.sql import catalog as C
from toondb.sql.fn_vector import VECTOR_RESULT, vector_dim

__all__ = ["declared_types", "declared_types_in", "vector_results", "columns_in"]

Columns = list[tuple[str, Optional[str]]]  # (name, declared type or None)
ColumnsOf = Callable[[str], Optional[Columns]]

_ROWID_NAMES = ("rowid", "oid", "_rowid_")
_MAX_DEPTH = 32  # views of views: deeper than this is described as unknown


def declared_types(statement: ast.Statement, columns_of: ColumnsOf) -> list[str | None] | None:
    """The declared type of each result column of statement (see the module), or
    None when its columns cannot be told (a table that does not exist)."""
    if isinstance(statement, ast.Select):
        cols = _select(statement, columns_of, {}, 0)
        return None if cols is None else [decl for _, decl in cols]
    if isinstance(statement, (ast.Insert, ast.Update, ast.Delete)):
        return []
    return None


# (sql, catalog cookie) -> declared types: a schema change replaces the cookie
_cache: dict[tuple[str, bytes], list[str | None] | None] = {}
_CACHE_SIZE = 512


def declared_types_in(txn: Any, sql: str) -> list[str | None] | None:
    """declared_types of sql's (last) statement, from the catalog txn sees (cached by
    the text and the schema's version)."""
    catalog = C.load(txn)
    key = (sql, catalog.cookie)
    try:
        return _cache[key]
    except KeyError:
        pass
    types = _declared_types_in(catalog, sql)
    if len(_cache) >= _CACHE_SIZE:
        _cache.clear()
    _cache[key] = types
    return types


def _declared_types_in(catalog: C.Catalog, sql: str) -> list[str | None] | None:
    from toondb.sql import grammar

    parsed = grammar.parse(sql)
    if not parsed:
        return []
    return declared_types(parsed[-1].statement, columns_in(catalog))


def vector_results(statement: ast.Statement, catalog: C.Catalog) -> list[int]:
    """The result columns of a SELECT that hold vectors, read back as NumPy arrays: those
    that read a ``VECTOR(n)`` column (directly, or through a view, a subquery or a WITH
    name) and those that call a vector-valued function (``vec_normalize``, ``vec_f32``)."""
    if not isinstance(statement, ast.Select):
        return []
    cols = _select(statement, columns_in(catalog), {}, 0, vector_calls=True)
    if cols is None:
        return []
    return [i for i, (_, decl) in enumerate(cols) if decl and vector_dim(decl) is not None]


def columns_in(catalog: C.Catalog) -> ColumnsOf:
    """columns_of for declared_types: the tables and views of catalog."""
    from toondb.sql import grammar

    seen: set[str] = set()

    def columns_of(name: str) -> Columns | None:
        low = name.lower()
        table = catalog.tables.get(low)
        if table is not None:
            return [(c.name, c.type_name) for c in table.columns]
        view = catalog.views.get(low)
        if view is None or low in seen or len(seen) > _MAX_DEPTH:
            return None
        seen.add(low)
        try:
            inner = grammar.parse(view["sql"])
            stmt = inner[-1].statement if inner else None
            cols = _select(stmt, columns_of, {}, 1) if isinstance(stmt, ast.Select) else None
        finally:
            seen.discard(low)
        names = view.get("columns")
        if cols is not None and names:
            cols = list(zip(names, [d for _, d in cols])) if len(names) == len(cols) else None
        return cols

    return columns_of


def _select(
    select: ast.Select,
    columns_of: ColumnsOf,
    ctes: dict[str, Columns | None],
    depth: int,
    vector_calls: bool = False,
) -> Columns | None:
    """The result columns of select: (name, declared type) each; None if unknown.
    vector_calls: a call of a vector-valued function counts as declared VECTOR(1)."""
    if depth > _MAX_DEPTH:
        return None
    if select.ctes:
        ctes = dict(ctes)
        for cte in select.ctes:
            ctes[cte.name.lower()] = None  # a recursive CTE names itself: unknown inside
            cols = _select(cte.select, columns_of, ctes, depth + 1, vector_calls)
            if cols is not None and cte.columns:
                if len(cte.columns) != len(cols):
                    cols = None
                else:
                    cols = [(n, decl) for n, (_, decl) in zip(cte.columns, cols)]
            ctes[cte.name.lower()] = cols
    core = select.cores[0]
    if core.values is not None:
        width = len(core.values[0]) if core.values else 0
        return [(f"column{i + 1}", None) for i in range(width)]
    scope: list[tuple[str, Columns, set[str]]] = []  # (name or alias, columns, hidden by USING)
    if core.from_ is not None and not _scope(
        core.from_, columns_of, ctes, depth, scope, vector_calls
    ):
        return None
    out: Columns = []
    for rc in core.columns:
        e = rc.expr
        if isinstance(e, ast.Star):
            found = False
            for name, cols, hidden in scope:
                if e.table is not None and name.lower() != e.table.lower():
                    continue
                found = True
                for col, decl in cols:
                    if e.table is None and col.lower() in hidden:
                        continue
                    out.append((col, decl))
            if not found:
                return None
        elif isinstance(e, ast.Column):
            out.append((rc.alias or e.name, _column(e, scope)))
        elif vector_calls and isinstance(e, ast.Func) and e.name in VECTOR_RESULT:
            out.append((rc.alias or rc.text, "VECTOR(1)"))
        else:
            out.append((rc.alias or rc.text, None))
    return out


def _column(e: ast.Column, scope: list[tuple[str, Columns, set[str]]]) -> str | None:
    low = e.name.lower()
    for name, cols, _hidden in scope:
        if e.table is not None and name.lower() != e.table.lower():
            continue
        for col, decl in cols:
            if col.lower() == low:
                return decl
        if low in _ROWID_NAMES:
            return "INTEGER"
    return None


def _scope(
    node: ast.Node,
    columns_of: ColumnsOf,
    ctes: dict[str, Columns | None],
    depth: int,
    scope: list[tuple[str, Columns, set[str]]],
    vector_calls: bool = False,
) -> bool:
    """Append the FROM item's tables to scope, left to right; False if one is unknown."""
    if isinstance(node, ast.Join):
        if not _scope(node.left, columns_of, ctes, depth, scope, vector_calls):
            return False
        mark = len(scope)
        if not _scope(node.right, columns_of, ctes, depth, scope, vector_calls):
            return False
        using: list[str] | None = node.using
        if isinstance(using, ast.Natural):
            left = {c.lower() for _, cols, _ in scope[:mark] for c, _ in cols}
            using = [c for _, cols, _ in scope[mark:] for c, _ in cols if c.lower() in left]
        if using:
            hidden = {u.lower() for u in using}
            for i in range(mark, len(scope)):
                scope[i] = (scope[i][0], scope[i][1], scope[i][2] | hidden)
        return True
    if isinstance(node, ast.TableRef):
        low = node.name.lower()
        cols = ctes[low] if low in ctes else columns_of(node.name)
        if cols is None:
            return False
        scope.append((node.alias or node.name, cols, set()))
        return True
    if isinstance(node, ast.SubqueryRef):
        cols = _select(node.select, columns_of, ctes, depth + 1, vector_calls)
        if cols is None:
            return False
        scope.append((node.alias or "", cols, set()))
        return True
    return False
