"""The SQL schema as a transaction sees it, for readers outside the SQL engine: the
tables, their columns and indexes, and CREATE statements equivalent to them. The CLI's
``.tables``, ``.schema`` and ``.indexes`` and ``toondb import`` read the schema only
through this module; how the catalog stores it (toondb.sql.catalog) stays the engine's
business. Everything here is a read-only snapshot: values, not live catalog objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from toondb.sql import catalog

__all__ = ["Column", "Index", "Table", "tables", "table", "table_names", "quote_identifier"]


@dataclass(frozen=True)
class Column:
    name: str
    declared_type: str  # as written in CREATE TABLE ("" when none was)
    affinity: str  # INTEGER, REAL, NUMERIC, TEXT or BLOB (SQLite's rules, datatype3.html)


@dataclass(frozen=True)
class Index:
    """An index of a table: made by CREATE INDEX, or by a UNIQUE or (non-rowid)
    PRIMARY KEY constraint. method: "hnsw" for an HNSW index on a VECTOR(n) column
    (CREATE INDEX ... USING hnsw), with its options (metric, m, ef_construction)."""

    name: str
    table: str
    columns: tuple[str, ...]
    unique: bool
    method: str = "btree"
    options: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    indexes: tuple[Index, ...]
    create_sql: tuple[str, ...]
    """CREATE TABLE, then CREATE INDEX for each index made by CREATE INDEX: statements
    (each ending with ';') that make an equal table."""

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def _user_tables(txn: Any) -> list[Any]:
    """The tables of txn's catalog but SQLite's own (``sqlite_sequence``: as the
    sqlite3 shell's ``.tables``, listings leave out the ``sqlite_`` names)."""
    infos = catalog.load(txn).tables.values()
    return sorted(
        (t for t in infos if not t.name.lower().startswith("sqlite_")), key=lambda t: t.name.lower()
    )


def tables(txn: Any) -> list[Table]:
    """Every table txn sees but SQLite's own, by name (case-insensitively)."""
    return [_table(t) for t in _user_tables(txn)]


def table(txn: Any, name: str) -> Table | None:
    """The table called name (case-insensitively) that txn sees, or None."""
    info = catalog.load(txn).tables.get(name.lower())
    return None if info is None else _table(info)


def table_names(txn: Any) -> list[str]:
    """The names of the tables txn sees (but SQLite's own), sorted case-insensitively."""
    return [t.name for t in _user_tables(txn)]


def quote_identifier(name: str) -> str:
    """name as a SQL identifier: bare when it is a plain ASCII identifier, else quoted."""
    if name.isidentifier() and name.isascii():
        return name
    return '"' + name.replace('"', '""') + '"'


def _table(info: catalog.TableInfo) -> Table:
    return Table(
        name=info.name,
        columns=tuple(Column(c.name, c.type_name, c.affinity) for c in info.columns),
        indexes=tuple(
            Index(ix.name, info.name, tuple(ix.columns), ix.unique) for ix in info.indexes
        )
        + tuple(
            Index(
                vx.name,
                info.name,
                (vx.column,),
                False,
                "hnsw",
                (("metric", vx.metric), ("m", vx.m), ("ef_construction", vx.ef_construction)),
            )
            for vx in info.vector_indexes
        ),
        create_sql=tuple(_create_statements(info)),
    )


def _create_statements(table: catalog.TableInfo) -> list[str]:
    """CREATE TABLE (and CREATE INDEX) statements equivalent to a catalog TableInfo."""
    ident = quote_identifier
    fx = table.fulltext
    if fx is not None:  # a full-text table: its module arguments as they were given
        args = ", ".join(fx["args"])
        return [f"CREATE VIRTUAL TABLE {ident(table.name)} USING {fx['module']}({args});"]
    defs = []

    def key_cols(ix: catalog.IndexInfo) -> str:
        """An index's columns, each with COLLATE where it is not the column's own."""
        out = []
        for name, ci, coll in zip(ix.columns, ix.col_idx, ix.collations):
            own = (table.columns[ci].collation or "BINARY").upper()
            out.append(ident(name) + ("" if coll == own else f" COLLATE {coll}"))
        return ", ".join(out)

    pk_index = next((ix for ix in table.indexes if ix.origin == "pk"), None)
    pk_cols = key_cols(pk_index) if pk_index is not None else ", ".join(map(ident, table.pk))
    # inline when it is one column without a COLLATE of its own and made first
    # (the constraints keep their order: the order of their indexes' names and
    # of the UNIQUE checks)
    inline_pk = (
        len(table.pk) == 1
        and pk_cols == ident(table.pk[0])
        and (pk_index is None or table.indexes[0] is pk_index)
    )
    for c in table.columns:
        parts = [ident(c.name)]
        if c.type_name.strip():
            parts.append(c.type_name.strip())
        if c.pk and inline_pk:
            if table.pk_name is not None:
                parts.append(f"CONSTRAINT {ident(table.pk_name)}")
            parts.append("PRIMARY KEY")
            if table.autoincrement:
                parts.append("AUTOINCREMENT")
        if c.not_null:
            parts.append("NOT NULL")
        if c.default_sql is not None:
            parts.append(f"DEFAULT {c.default_sql}")
        if c.collation:
            parts.append(f"COLLATE {c.collation}")
        if c.generated_sql is not None:
            kind = "STORED" if c.stored else "VIRTUAL"
            parts.append(f"GENERATED ALWAYS AS ({c.generated_sql}) {kind}")
        defs.append(" ".join(parts))

    def named(name: str | None) -> str:
        return f"CONSTRAINT {ident(name)} " if name is not None else ""

    if table.pk and not inline_pk and pk_index is None:
        defs.append(named(table.pk_name) + "PRIMARY KEY (" + pk_cols + ")")
    for ix in table.indexes:
        if ix.origin == "pk" and not inline_pk:
            defs.append(named(table.pk_name) + "PRIMARY KEY (" + pk_cols + ")")
        elif ix.origin == "u":
            defs.append(named(ix.constraint) + "UNIQUE (" + key_cols(ix) + ")")
    for name, text in table.checks:
        defs.append((f"CONSTRAINT {ident(name)} " if name else "") + f"CHECK ({text})")
    for fk in table.fks:
        ref = ident(fk["table"])
        if fk.get("ref_columns"):
            ref += "(" + ", ".join(map(ident, fk["ref_columns"])) + ")"
        s = (
            named(fk.get("name"))
            + "FOREIGN KEY ("
            + ", ".join(map(ident, fk["columns"]))
            + f") REFERENCES {ref}"
        )
        for what in ("on_delete", "on_update"):
            act = fk.get(what)
            if act and act != "NO ACTION":
                s += f" {what.replace('_', ' ').upper()} {act}"
        defs.append(s)
    strict = " STRICT" if table.strict else ""
    out = [f"CREATE TABLE {ident(table.name)} (\n  " + ",\n  ".join(defs) + f"\n){strict};"]
    for ix in table.indexes:
        if ix.origin == "c":
            unique = "UNIQUE " if ix.unique else ""
            cols = key_cols(ix)
            out.append(f"CREATE {unique}INDEX {ident(ix.name)} ON {ident(table.name)} ({cols});")
    for vx in table.vector_indexes:
        out.append(
            f"CREATE INDEX {ident(vx.name)} ON {ident(table.name)} USING hnsw "
            f"({ident(vx.column)}) WITH (metric = '{vx.metric}', m = {vx.m}, "
            f"ef_construction = {vx.ef_construction});"
        )
    return out
