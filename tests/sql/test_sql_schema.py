"""toondb.sql.schema: the schema a transaction sees, as the CLI reads it. Its CREATE text
is checked against sqlite3 (which must accept it and see the same columns and indexes)
and against toondb itself (running it again gives the same schema)."""

from __future__ import annotations

import sqlite3

from toondb import Database
from toondb.sql import schema

DDL = [
    "CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT UNIQUE NOT NULL, "
    "age INTEGER DEFAULT 18 CHECK (age > 0), name TEXT COLLATE BINARY, photo BLOB, score)",
    'CREATE TABLE "order items" (a INTEGER, b TEXT, user_id INTEGER REFERENCES users(id) '
    "ON DELETE CASCADE, PRIMARY KEY (a, b), CONSTRAINT small CHECK (a < 100))",
    "CREATE INDEX ix_age ON users (age, name)",
    'CREATE UNIQUE INDEX ux ON "order items" (user_id)',
    "CREATE VIEW adults AS SELECT * FROM users WHERE age >= 18",
]


def _tables(db: Database) -> list[schema.Table]:
    txn = db.begin_transaction(read_only=True)
    try:
        return schema.tables(txn)
    finally:
        txn.abort()


def test_tables_columns_and_indexes(tmp_path):
    with Database.open(tmp_path / "db") as db:
        for stmt in DDL:
            db.execute_sql(stmt)
        txn = db.begin_transaction(read_only=True)
        try:
            assert schema.table_names(txn) == ["order items", "users"]  # views are not tables
            users = schema.table(txn, "USERS")
            assert schema.table(txn, "adults") is None
            assert schema.table(txn, "nope") is None
        finally:
            txn.abort()
    assert users is not None and users.name == "users"
    assert users.column_names == ["id", "email", "age", "name", "photo", "score"]
    assert [c.affinity for c in users.columns] == [
        "INTEGER", "TEXT", "INTEGER", "TEXT", "BLOB", "BLOB",
    ]  # fmt: skip
    assert [c.declared_type for c in users.columns][-1] == ""
    by_name = {ix.name: ix for ix in users.indexes}
    assert by_name["ix_age"] == schema.Index("ix_age", "users", ("age", "name"), False)
    assert [ix.columns for ix in users.indexes if ix.unique] == [("email",)]


def test_create_sql_makes_the_same_schema_here_and_in_sqlite(tmp_path):
    with Database.open(tmp_path / "a") as db:
        for stmt in DDL:
            db.execute_sql(stmt)
        first = _tables(db)
    text = [stmt for t in first for stmt in t.create_sql]
    assert all(stmt.endswith(";") for stmt in text)
    with Database.open(tmp_path / "b") as db:
        for stmt in text:
            db.execute_sql(stmt)
        assert _tables(db) == first

    ref = sqlite3.connect(":memory:")
    ref.executescript("\n".join(text))
    for t in first:
        quoted = schema.quote_identifier(t.name)
        cols = [row[1] for row in ref.execute(f"PRAGMA table_info({quoted})")]
        assert cols == t.column_names
        ref_indexes = {row[1]: bool(row[2]) for row in ref.execute(f"PRAGMA index_list({quoted})")}
        made = {ix.name: ix.unique for ix in t.indexes if not ix.name.startswith("sqlite_")}
        assert made == {k: v for k, v in ref_indexes.items() if not k.startswith("sqlite_")}
        assert sum(ix.unique for ix in t.indexes) == sum(ref_indexes.values())


def test_quote_identifier():
    assert schema.quote_identifier("plain_name1") == "plain_name1"
    assert schema.quote_identifier("order items") == '"order items"'
    assert schema.quote_identifier('say "hi"') == '"say ""hi"""'
    assert schema.quote_identifier("café") == '"café"'
    assert schema.quote_identifier("1st") == '"1st"'
