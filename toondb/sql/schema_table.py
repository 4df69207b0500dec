"""``sqlite_schema`` (alias ``sqlite_master``): SQLite's read-only table of the schema,
for tools that read it (SQLAlchemy's SQLite dialect lists tables, views and indexes
and parses constraint names from it).

One row per table, view and index, as SQLite's (fileformat2.html#the_schema_table)::

    column     value
    type       'table', 'view' or 'index'
    name       the object's name
    tbl_name   the table an index is on (a table's or view's own name)
    rootpage   0 (toondb keeps no root page numbers; SQLite gives 0 for views)
    sql        the CREATE statement (without ';'), regenerated from the catalog
               (toondb.sql.schema: equivalent to, not the text of, what was run);
               NULL for an index made by a UNIQUE or PRIMARY KEY constraint

``sqlite_temp_schema`` / ``sqlite_temp_master`` are empty: toondb has no TEMP schema.
A table or view the user named so wins over these names. The rows are built when a
statement is compiled; compiled statements are keyed by the catalog's cookie, so a
schema change recompiles them (catalog.py invariant 4).
"""

from __future__ import annotations

from toondb.sql import ast
from toondb.sql.catalog import Catalog
from toondb.sql.schema import _create_statements, quote_identifier

__all__ = ["NAMES", "schema_select"]

NAMES = frozenset({"sqlite_schema", "sqlite_master", "sqlite_temp_schema", "sqlite_temp_master"})
COLUMNS = ("type", "name", "tbl_name", "rootpage", "sql")


def rows(catalog: Catalog) -> list[tuple[str, str, str, int, str | None]]:
    """The schema table's rows for catalog: tables with their indexes, then views."""
    out: list[tuple[str, str, str, int, str | None]] = []
    for t in sorted(catalog.tables.values(), key=lambda t: t.name.lower()):
        statements = _create_statements(t)
        out.append(("table", t.name, t.name, 0, statements[0].rstrip(";")))
        made = iter(statements[1:])  # CREATE INDEX statements, in the order below
        for ix in t.indexes:
            sql = next(made).rstrip(";") if ix.origin == "c" else None
            out.append(("index", ix.name, t.name, 0, sql))
        for vx in t.vector_indexes:
            out.append(("index", vx.name, t.name, 0, next(made).rstrip(";")))
    for v in sorted(catalog.views.values(), key=lambda v: v["name"].lower()):
        cols = v.get("columns")
        head = f"CREATE VIEW {quote_identifier(v['name'])}"
        if cols:
            head += " (" + ", ".join(map(quote_identifier, cols)) + ")"
        out.append(("view", v["name"], v["name"], 0, f"{head} AS {v['sql']}"))
    return out


def _literal(value: object) -> ast.Expr:
    return ast.Literal(value)


def schema_select(catalog: Catalog, name: str) -> ast.Select:
    """The SELECT that stands for the schema table called name (one of NAMES)."""
    found = [] if "temp" in name.lower() else rows(catalog)
    if not found:  # no rows, but the columns: SELECT NULL AS type, ... WHERE 0
        cols = [ast.ResultColumn(_literal(None), c, c) for c in COLUMNS]
        core = ast.SelectCore(False, cols, None, _literal(0), [], None)
        return ast.Select([core], [], [], None, None)
    cores = [
        ast.SelectCore(
            False,
            [ast.ResultColumn(_literal(v), c, c) for v, c in zip(row, COLUMNS)],
            None,
            None,
            [],
            None,
        )
        for row in found
    ]
    return ast.Select(cores, ["UNION ALL"] * (len(cores) - 1), [], None, None)
