"""The SQL catalog: table and index definitions, kept in the named tree ``sql:catalog``.

Trees of the SQL engine in the page file (names are bytes; ``sql:`` is reserved
for SQL, so they never meet the user's key-value keys or other named trees)::

    sql:catalog        the catalog (below)
    sql:t:<id>         one table's rows: key = keycode.rowid_key(rowid),
                       value = rowcodec.encode_row(values of every column)
    sql:i:<id>...      one index: key = keycode.encode_values(indexed values,
                       each under its index column's collation: invariant 7)
                       + rowid_key(rowid); value = rowid_key(rowid). In a UNIQUE
                       index an entry whose values hold no NULL has no rowid
                       suffix: the values alone are the key (invariant 3)
    fts:sql:<id>       one full-text table's index (toondb/text/index.py)
    sql:h:<id>...      one HNSW index on a VECTOR(n) column (CREATE INDEX ... USING
                       hnsw): a vector index's tree (toondb/vector/store.py), its
                       labels the rows' rowids (sql/hnsw.py, invariant 5)

Catalog tree entries::

    key                 value
    b"cookie"           8 random bytes, replaced by every schema change: a handle's
                        cached schema (and plans compiled against it) stay valid
                        while the cookie it was read with is current
    b"next_id"          decimal text: the next tree id
    b"user_version"     decimal text: PRAGMA user_version, a 32-bit signed integer;
    b"application_id"   PRAGMA application_id, the same; each absent is 0 (written
                        only by those PRAGMAs, sql/pragmas.py; not a schema change)
    b"t:" + lower name  JSON of one table: its columns, constraints and indexes
    b"v:" + lower name  JSON of one view: {"name", "columns" (or null), "sql" (its SELECT)}

Invariants:

1. Every table has exactly one rows tree and one tree per index; ids are never
   reused, so a dropped table's tree name cannot be confused with a new one.
2. An index tree holds exactly one entry per row of its table (NULLs included):
   rows and index entries change in the same transaction, in the same statement.
3. A UNIQUE index never holds two entries with equal non-NULL values (NULLs are
   distinct, as in SQLite). Such an entry is keyed by the values alone, so two
   optimistic transactions that insert the same value write the same key and
   the later commit fails with TransactionConflictError (first committer wins)
   rather than both committing a duplicate.
4. A schema change replaces the cookie in the same transaction as the change.
5. An HNSW index holds exactly the rows of its table whose vector column is not
   NULL, each under its rowid: every statement that writes the table moves the
   index before it ends, in the same transaction (sql/hnsw.py).
6. The full-text index of a full-text table with its own content
   (``TableInfo.fulltext``) indexes exactly the table's rows, each under its
   rowid: every statement that writes the table hands the index its changes
   before it ends, in the same transaction (sql/fulltext.py).
7. An index column under NOCASE or RTRIM (``IndexInfo.collations``; absent in
   the JSON means every column BINARY, as every index written before
   collations existed) holds its values' collation keys (collation.py: TEXT
   folded A-Z to a-z, or trailing spaces removed; other values as they are),
   so the tree orders and (UNIQUE) deduplicates as SQLite's index does. Such
   a key is not the stored value: values are read from the table row.
"""

from __future__ import annotations

import json
import os
from typing import Any

from toondb.errors import SchemaError
from toondb.sql import ast
from toondb.sql.collation import collation
from toondb.sql.fn_vector import vector_dim
from toondb.sql.types import affinity_of

CATALOG_TREE = b"sql:catalog"
COOKIE_KEY = b"cookie"
NEXT_ID_KEY = b"next_id"
ROWID_NAMES = ("rowid", "_rowid_", "oid")


class ColumnInfo:
    __slots__ = (
        "name",
        "type_name",
        "affinity",
        "not_null",
        "default_sql",
        "default",
        "pk",
        "collation",
        "generated_sql",
        "generated",
        "stored",
    )

    def __init__(
        self,
        name: str,
        type_name: str,
        not_null: bool = False,
        default_sql: str | None = None,
        pk: bool = False,
        collation: str | None = None,
        generated_sql: str | None = None,
        stored: bool = False,
    ) -> None:
        self.name = name
        self.type_name = type_name
        self.affinity = affinity_of(type_name)
        self.not_null = not_null
        self.default_sql = default_sql  # SQL text of the DEFAULT expression, or None
        self.default: ast.Expr | None = None
        self.pk = pk
        self.collation = collation
        if default_sql is not None:
            from toondb.sql.grammar import parse_expression

            self.default = parse_expression(default_sql)
        # GENERATED ALWAYS AS (generated_sql): computed on every write (a VIRTUAL
        # column is stored too; stored says only what the schema declared)
        self.generated_sql = generated_sql
        self.stored = stored
        self.generated: ast.Expr | None = None
        if generated_sql is not None:
            from toondb.sql.grammar import parse_expression

            self.generated = parse_expression(generated_sql)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type_name,
            "not_null": self.not_null,
            "default": self.default_sql,
            "pk": self.pk,
            "collation": self.collation,
            **(
                {"generated": self.generated_sql, "stored": self.stored}
                if self.generated_sql is not None
                else {}
            ),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ColumnInfo:
        return cls(
            d["name"],
            d["type"],
            d["not_null"],
            d["default"],
            d["pk"],
            d.get("collation"),
            d.get("generated"),
            d.get("stored", False),
        )


class IndexInfo:
    """origin: "c" (CREATE INDEX), "u" (a UNIQUE constraint), "pk" (a PRIMARY KEY
    that is not the rowid). collations: one upper-case name per column (BINARY,
    NOCASE or RTRIM; invariant 7)."""

    __slots__ = (
        "name",
        "columns",
        "unique",
        "tree",
        "origin",
        "col_idx",
        "constraint",
        "collations",
        "folds",
    )

    def __init__(
        self,
        name: str,
        columns: list[str],
        unique: bool,
        tree: bytes,
        origin: str,
        constraint: str | None = None,
        collations: list[str] | None = None,
    ):
        self.name = name
        self.columns = columns
        self.unique = unique
        self.tree = tree
        self.origin = origin
        self.constraint = constraint  # CONSTRAINT name of a "u" or "pk" index, if given
        self.collations = (
            [c.upper() for c in collations] if collations else ["BINARY"] * len(columns)
        )
        # the key function of each column (None when the whole index is BINARY)
        self.folds: list[Any] | None = None
        if any(c != "BINARY" for c in self.collations):
            self.folds = [collation(c)[0] for c in self.collations]
        self.col_idx: list[int] = []

    def key_values(self, row: Any) -> list[Any]:
        """The values of row (indexed by column) as this index's key holds them."""
        return self.fold([row[i] for i in self.col_idx])

    def fold(self, vals: list[Any]) -> list[Any]:
        """Leading index column values (probes) under the index's collations."""
        if self.folds is None:
            return vals
        return [f(v) for f, v in zip(self.folds, vals)]

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "columns": self.columns,
            "unique": self.unique,
            "tree": self.tree.decode(),
            "origin": self.origin,
        }
        if self.constraint is not None:
            d["constraint"] = self.constraint
        if self.folds is not None:
            d["collations"] = self.collations
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> IndexInfo:
        return cls(
            d["name"],
            d["columns"],
            d["unique"],
            d["tree"].encode(),
            d["origin"],
            d.get("constraint"),
            d.get("collations"),
        )


class VectorIndexInfo:
    """An HNSW index on one VECTOR(n) column (CREATE INDEX ... USING hnsw): its name,
    column, tree and build parameters. ``origin`` is "c" as for any CREATE INDEX."""

    __slots__ = ("name", "column", "tree", "metric", "m", "ef_construction", "col_idx", "dim")

    origin = "c"
    unique = False

    def __init__(
        self, name: str, column: str, tree: bytes, metric: str, m: int, ef_construction: int
    ) -> None:
        self.name = name
        self.column = column
        self.tree = tree
        self.metric = metric
        self.m = m
        self.ef_construction = ef_construction
        self.col_idx = -1  # set by TableInfo.refresh
        self.dim = 0

    @property
    def columns(self) -> list[str]:
        return [self.column]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "column": self.column,
            "tree": self.tree.decode(),
            "metric": self.metric,
            "m": self.m,
            "ef_construction": self.ef_construction,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> VectorIndexInfo:
        return cls(
            d["name"], d["column"], d["tree"].encode(), d["metric"], d["m"], d["ef_construction"]
        )


class TableInfo:
    def __init__(
        self,
        name: str,
        tid: int,
        columns: list[ColumnInfo],
        pk: list[str],
        checks: list[tuple[str | None, str]],
        fks: list[dict[str, Any]],
        indexes: list[IndexInfo],
        autoincrement: bool = False,
        vector_indexes: list[VectorIndexInfo] | None = None,
        fulltext: dict[str, Any] | None = None,
        pk_name: str | None = None,
        strict: bool = False,
    ) -> None:
        self.name = name
        self.strict = strict  # a STRICT table: its column types are checked on write
        self.pk_name = pk_name  # CONSTRAINT name of the PRIMARY KEY, if given
        self.id = tid
        self.tree = f"sql:t:{tid}".encode()
        self.columns = columns
        self.pk = pk  # PRIMARY KEY column names (empty: none)
        self.checks = checks  # (constraint name, SQL text)
        self.fks = fks  # {"columns", "table", "ref_columns", "on_delete", "on_update"[, "name"]}
        self.indexes = indexes
        self.autoincrement = autoincrement
        self.vector_indexes = vector_indexes or []  # HNSW indexes (not B+trees)
        # a full-text table (CREATE VIRTUAL TABLE ... USING fts5; sql/fulltext.py):
        # {"module", "args", "index", "content", "content_rowid"}, else None
        self.fulltext = fulltext
        self.refresh()

    def refresh(self) -> None:
        self.col_index = {c.name.lower(): i for i, c in enumerate(self.columns)}
        self.rowid_col: int | None = None
        if len(self.pk) == 1:
            i = self.col_index[self.pk[0].lower()]
            if self.columns[i].type_name.strip().upper() == "INTEGER":
                self.rowid_col = i
        for ix in self.indexes:
            ix.col_idx = [self.col_index[c.lower()] for c in ix.columns]
        # VECTOR(n) columns: (column index, n); their values are float32 blobs
        self.vector_cols = [
            (i, n) for i, c in enumerate(self.columns) if (n := vector_dim(c.type_name))
        ]
        dims = dict(self.vector_cols)
        for vx in self.vector_indexes:
            vx.col_idx = self.col_index[vx.column.lower()]
            vx.dim = dims.get(vx.col_idx, 0)
        self.affinities = [c.affinity for c in self.columns]
        self.generated = [i for i, c in enumerate(self.columns) if c.generated is not None]
        if self.strict:  # ANY in a STRICT table stores values as given
            self.affinities = [
                "BLOB" if c.type_name.strip().upper() == "ANY" else a
                for c, a in zip(self.columns, self.affinities)
            ]
        self.check_exprs: list[tuple[str | None, str, ast.Expr]] = []
        if self.checks:
            from toondb.sql.grammar import parse_expression

            self.check_exprs = [(n, t, parse_expression(t)) for n, t in self.checks]

    def column(self, name: str) -> int:
        i = self.col_index.get(name.lower())
        if i is None:
            raise SchemaError(f"table {self.name} has no column named {name}")
        return i

    def to_json(self) -> str:
        return json.dumps(
            {
                "name": self.name,
                "id": self.id,
                "columns": [c.to_json() for c in self.columns],
                "pk": self.pk,
                "checks": self.checks,
                "fks": self.fks,
                "indexes": [ix.to_json() for ix in self.indexes],
                "autoincrement": self.autoincrement,
                **(
                    {"vector_indexes": [vx.to_json() for vx in self.vector_indexes]}
                    if self.vector_indexes
                    else {}
                ),
                **({"fulltext": self.fulltext} if self.fulltext is not None else {}),
                **({"pk_name": self.pk_name} if self.pk_name is not None else {}),
                **({"strict": True} if self.strict else {}),
            }
        )

    @classmethod
    def from_json(cls, text: bytes) -> TableInfo:
        d = json.loads(text)
        return cls(
            d["name"],
            d["id"],
            [ColumnInfo.from_json(c) for c in d["columns"]],
            d["pk"],
            [tuple(c) for c in d["checks"]],
            d["fks"],
            [IndexInfo.from_json(ix) for ix in d["indexes"]],
            d.get("autoincrement", False),
            [VectorIndexInfo.from_json(vx) for vx in d.get("vector_indexes", ())],
            d.get("fulltext"),
            d.get("pk_name"),
            d.get("strict", False),
        )

    def copy(self) -> TableInfo:
        return TableInfo.from_json(self.to_json().encode())


class Catalog:
    """The schema as one snapshot saw it (immutable once built; a change makes a new one)."""

    def __init__(
        self,
        cookie: bytes,
        tables: dict[str, TableInfo],
        views: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.cookie = cookie
        self.tables = tables  # lower name -> TableInfo
        self.views = views or {}  # lower name -> {"name", "columns", "sql"}

    def table(self, name: str) -> TableInfo:
        t = self.tables.get(name.lower())
        if t is None:
            if name.lower() in self.views:
                raise SchemaError(f"cannot modify {name} because it is a view")
            raise SchemaError(f"no such table: {name}")
        return t

    def find_index(self, name: str) -> tuple[TableInfo, IndexInfo | VectorIndexInfo] | None:
        low = name.lower()
        for t in self.tables.values():
            both: tuple[IndexInfo | VectorIndexInfo, ...] = (*t.indexes, *t.vector_indexes)
            for ix in both:
                if ix.name.lower() == low:
                    return t, ix
        return None


_cache: dict[bytes, Catalog] = {}
_EMPTY = Catalog(b"", {})


def load(txn: Any) -> Catalog:
    """The catalog of txn's snapshot; cached by its cookie (random per schema version)."""
    try:
        tree = txn.tree(CATALOG_TREE)
    except KeyError:
        return _EMPTY
    cookie = tree.get(COOKIE_KEY) or b""
    cat = _cache.get(cookie)
    if cat is not None:
        return cat
    tables = {}
    for _k, v in tree.scan(b"t:", b"t;"):
        t = TableInfo.from_json(v)
        tables[t.name.lower()] = t
    cat = Catalog(cookie, tables, _views(tree))
    if len(_cache) > 256:
        _cache.clear()
    _cache[cookie] = cat
    return cat


def _views(tree: Any) -> dict[str, dict[str, Any]]:
    return {k[2:].decode(): json.loads(v) for k, v in tree.scan(b"v:", b"v;")}


def save(
    txn: Any,
    tables: dict[str, TableInfo],
    changed: list[str],
    removed: list[str],
    view: tuple[str, dict[str, Any] | None] | None = None,
    views: list[tuple[str, dict[str, Any] | None]] | None = None,
) -> Catalog:
    """Write the changed tables, remove the removed ones, write or (None) remove
    one view (and those of views), replace the cookie."""
    tree = txn.tree(CATALOG_TREE, create=True)
    for name in removed:
        tree.delete(b"t:" + name.lower().encode())
    for name in changed:
        t = tables[name.lower()]
        tree.put(b"t:" + name.lower().encode(), t.to_json().encode())
    for vname, vdef in ([view] if view is not None else []) + (views or []):
        if vdef is None:
            tree.delete(b"v:" + vname.lower().encode())
        else:
            tree.put(b"v:" + vname.lower().encode(), json.dumps(vdef).encode())
    cookie = os.urandom(8)
    tree.put(COOKIE_KEY, cookie)
    cat = Catalog(cookie, dict(tables), _views(tree))
    _cache[cookie] = cat
    return cat


def next_id(txn: Any) -> int:
    tree = txn.tree(CATALOG_TREE, create=True)
    raw = tree.get(NEXT_ID_KEY)
    n = int(raw) if raw else 1
    tree.put(NEXT_ID_KEY, str(n + 1).encode())
    return n
