"""sqlite_schema (sqlite_master) and the PRAGMAs SQLAlchemy's SQLite dialect reflects
through (table_info, table_xinfo, index_list, index_info, foreign_key_list), against
stdlib sqlite3 on the same statements."""

from __future__ import annotations

import sqlite3

import pytest

import toondb.dbapi as tdb

SCHEMA = [
    "CREATE TABLE p (id INTEGER PRIMARY KEY, code TEXT NOT NULL UNIQUE, n REAL DEFAULT 1.5)",
    "CREATE TABLE c (id INTEGER, a INTEGER, b TEXT, CONSTRAINT pk_c PRIMARY KEY (id), "
    'CONSTRAINT ck_a CHECK (a > 0), CONSTRAINT "uq.ab" UNIQUE (a, b), '
    "CONSTRAINT fk_a FOREIGN KEY (a) REFERENCES p(id) ON DELETE CASCADE, "
    "FOREIGN KEY (b) REFERENCES p(code))",
    "CREATE INDEX c_ab ON c (a, b)",
    "CREATE VIEW v AS SELECT id, code FROM p",
]


@pytest.fixture
def both(tmp_path):
    ref = sqlite3.connect(":memory:")
    con = tdb.connect(str(tmp_path / "db"))
    for sql in SCHEMA:
        ref.execute(sql)
        con.execute(sql)
    yield con, ref
    con.close()
    ref.close()


@pytest.mark.parametrize(
    "sql",
    [
        "PRAGMA table_info(p)",
        "PRAGMA table_info(c)",
        "PRAGMA table_xinfo(c)",
        "PRAGMA table_info(v)",
        "PRAGMA table_info(nope)",
        "PRAGMA index_list(p)",
        "PRAGMA index_list(c)",
        "PRAGMA index_info(c_ab)",
        "PRAGMA foreign_key_list(c)",
        "SELECT type, name, tbl_name FROM sqlite_master ORDER BY type, name",
        "SELECT name FROM sqlite_schema WHERE type='table' AND name NOT LIKE 'sqlite~_%' "
        "ESCAPE '~' ORDER BY name",
        "SELECT name FROM sqlite_temp_master",
        "SELECT sql IS NULL FROM sqlite_master WHERE type = 'index' ORDER BY name",
    ],
)
def test_reflection_queries_answer_as_sqlite(both, sql):
    con, ref = both
    assert con.execute(sql).fetchall() == ref.execute(sql).fetchall()


def test_schema_sql_makes_an_equal_table(both, tmp_path):
    con, _ = both
    rows = con.execute("SELECT type, sql FROM sqlite_master WHERE sql IS NOT NULL").fetchall()
    again = sqlite3.connect(":memory:")
    for _type, sql in sorted(rows, key=lambda r: ("table", "index", "view").index(r[0])):
        again.execute(sql)
    assert (
        again.execute("PRAGMA table_info(c)").fetchall()
        == con.execute("PRAGMA table_info(c)").fetchall()
    )


def test_constraint_names_are_kept(both):
    con, _ = both
    sql = con.execute("SELECT sql FROM sqlite_schema WHERE name = 'c'").fetchone()[0]
    for part in (
        "CONSTRAINT pk_c",
        "CONSTRAINT ck_a",
        'CONSTRAINT "uq.ab" UNIQUE',
        "CONSTRAINT fk_a",
    ):
        assert part in sql


def test_the_schema_table_follows_schema_changes(tmp_path):
    con = tdb.connect(str(tmp_path / "db"))
    con.execute("CREATE TABLE t (x)")
    assert con.execute("SELECT count(*) FROM sqlite_master").fetchone() == (1,)
    con.execute("CREATE TABLE t2 (y)")  # the schema change is seen by the next statement
    assert con.execute("SELECT count(*) FROM sqlite_master").fetchone() == (2,)
    con.close()
