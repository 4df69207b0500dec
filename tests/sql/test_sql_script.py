"""Scripts (``executescript``) and the one-statement rule of ``execute_sql``, against
stdlib sqlite3: a dump written by ``iterdump()`` loads in one call, an error midway
stops the script and names its statement and line, and ``execute_sql`` refuses more
than one statement as sqlite3's ``execute`` does."""

from __future__ import annotations

import sqlite3

import pytest

from toondb import ConstraintError, Database, MultipleStatementsError, SQLError
from toondb.dbapi import ProgrammingError

SOURCE = """
CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL, note TEXT, photo BLOB, score REAL);
CREATE TABLE tags (person INTEGER REFERENCES people(id), tag TEXT, UNIQUE (person, tag));
CREATE INDEX people_name ON people(name);
CREATE VIEW scored AS SELECT name, score FROM people WHERE score IS NOT NULL;
INSERT INTO people VALUES (1, 'Ann', 'it''s "quoted"; with a semicolon', X'00FF10', 1.5);
INSERT INTO people VALUES (2, '日本語の名前', NULL, NULL, NULL);
INSERT INTO people VALUES (3, 'Zoë -- not a comment', 'line one
line two', X'', -2.25e10);
INSERT INTO people VALUES (4, 'big', '/* not a comment */', NULL, 9223372036854775807);
INSERT INTO tags VALUES (1, 'a'), (1, 'b'), (2, 'ü');
"""


def _dump() -> tuple[str, sqlite3.Connection]:
    src = sqlite3.connect(":memory:")
    src.executescript(SOURCE)
    return "\n".join(src.iterdump()), src


def test_iterdump_of_sqlite3_loads_in_one_call(tmp_path):
    dump, src = _dump()
    with Database.open(tmp_path / "db") as db:
        db.executescript(dump)
        for table in ("people", "tags", "scored"):
            sql = f"SELECT * FROM {table} ORDER BY 1, 2"
            assert db.execute_sql(sql).rows == src.execute(sql).fetchall(), table
        # the index exists and is used as sqlite3's is
        assert db.execute_sql(
            "SELECT id FROM people INDEXED BY people_name WHERE name = 'big'"
        ).rows == [(4,)]
        assert db.execute_sql("SELECT count(*) FROM tags WHERE person = 1").rows == [(2,)]
        with pytest.raises(ConstraintError):
            db.execute_sql("INSERT INTO tags VALUES (1, 'a')")


def test_a_script_error_names_statement_and_line_and_keeps_what_was_committed(tmp_path):
    script = (
        "CREATE TABLE q (a UNIQUE);\n"
        "INSERT INTO q VALUES (1);\n"
        "BEGIN;\n"
        "INSERT INTO q VALUES (2);\n"
        "\n"
        "INSERT INTO q VALUES (1);\n"
        "INSERT INTO q VALUES (3);\n"
        "COMMIT;\n"
    )
    ref = sqlite3.connect(":memory:", isolation_level=None)
    with pytest.raises(sqlite3.IntegrityError):
        ref.executescript(script)
    ref.rollback() if ref.in_transaction else None
    ref_rows = ref.execute("SELECT a FROM q ORDER BY a").fetchall()
    with Database.open(tmp_path / "db") as db:
        with pytest.raises(ConstraintError) as caught:
            db.executescript(script)
        assert caught.value.statement == 5 and caught.value.line == 6
        assert "in statement 5 of the script, at line 6: INSERT INTO q VALUES (1)" in str(
            caught.value
        )
        assert db.execute_sql("SELECT a FROM q ORDER BY a").rows == ref_rows == [(1,)]


def test_a_syntax_error_in_a_script_stops_it_there(tmp_path):
    with Database.open(tmp_path / "db") as db:
        with pytest.raises(SQLError) as caught:
            db.executescript(
                "CREATE TABLE t (a);\nINSERT INTO t VALUES (1);\nINSERT INTO t VALUS (2);"
            )
        assert caught.value.statement == 3 and caught.value.line == 3
        assert db.execute_sql("SELECT a FROM t").rows == [(1,)]


def test_transaction_executescript_runs_inside_it(tmp_path):
    with Database.open(tmp_path / "db") as db:
        db.execute_sql("CREATE TABLE t (a)")
        with db.transaction() as txn:
            txn.put(b"k", b"v")
            txn.executescript("INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)")
            with pytest.raises(SQLError, match="inside a Transaction"):
                txn.executescript("INSERT INTO t VALUES (3); COMMIT")
        assert db.execute_sql("SELECT a FROM t ORDER BY a").rows == [(1,), (2,), (3,)]
        assert db.get(b"k") == b"v"


@pytest.mark.parametrize(
    "sql", ["SELECT 1; SELECT 2", "CREATE TABLE x (a); INSERT INTO x VALUES (1)"]
)
def test_execute_refuses_more_than_one_statement_as_sqlite3(tmp_path, sql):
    with pytest.raises(sqlite3.ProgrammingError, match="one statement at a time"):
        sqlite3.connect(":memory:").execute(sql)
    with Database.open(tmp_path / "db") as db:
        with pytest.raises(
            MultipleStatementsError, match="You can only execute one statement at a time"
        ):
            db.execute_sql(sql)
        with db.transaction() as txn, pytest.raises(MultipleStatementsError):
            txn.execute_sql(sql)
        if sql.startswith("CREATE"):
            with pytest.raises(SQLError, match="no such table"):
                db.execute_sql("SELECT * FROM x")
        # one statement with a trailing ';' or comment is one statement
        assert db.execute_sql("SELECT 1; -- done\n").rows == [(1,)]
        con = db.connection()
        with pytest.raises(ProgrammingError, match="one statement at a time"):
            con.execute(sql)
        con.close()


def test_non_ascii_and_quoted_identifiers_as_sqlite3(tmp_path):
    script = (
        'CREATE TABLE 日本 (名前 TEXT, "my col" INTEGER, [br col], `bq col`);'
        "INSERT INTO 日本 VALUES ('a', 1, 2, 3);"
    )
    ref = sqlite3.connect(":memory:")
    ref.executescript(script)
    query = 'SELECT 名前, "my col", [br col], `bq col` FROM 日本'
    with Database.open(tmp_path / "db") as db:
        db.executescript(script)
        result = db.execute_sql(query)
        cur = ref.execute(query)
        assert result.rows == cur.fetchall()
        assert result.columns == [d[0] for d in cur.description]


@pytest.mark.parametrize(
    "query",
    [
        "SELECT count(*) FROM u INDEXED BY ua WHERE a = 1",
        "SELECT count(*) FROM u AS x INDEXED BY ua WHERE x.a = 1",
        "SELECT count(*) FROM u x INDEXED BY ua WHERE x.a = 1 AND b = 2",
        "SELECT count(*) FROM u NOT INDEXED WHERE a = 1",
        "SELECT count(*) FROM u x NOT INDEXED WHERE a = 1",
        "SELECT id FROM u INDEXED BY ub WHERE a = 1 ORDER BY id",
        "SELECT id FROM u INDEXED BY ua WHERE id = 1",
        "SELECT id FROM u INDEXED BY nope WHERE a = 1",
        "UPDATE u INDEXED BY ua SET b = 9 WHERE a = 1",
        "UPDATE u AS x NOT INDEXED SET b = 8 WHERE a = 2",
        "DELETE FROM u INDEXED BY ub WHERE a = 2",
        "DELETE FROM u NOT INDEXED WHERE b = 2",
        "DELETE FROM u INDEXED BY nope WHERE a = 2",
    ],
)
def test_indexed_by_and_not_indexed_as_sqlite3(tmp_path, query):
    setup = [
        "CREATE TABLE u (id INTEGER PRIMARY KEY, a, b)",
        "CREATE INDEX ua ON u(a)",
        "CREATE INDEX ub ON u(b)",
        "INSERT INTO u VALUES (1, 1, 2), (2, 1, 3), (3, 2, 2)",
    ]
    ref = sqlite3.connect(":memory:")
    with Database.open(tmp_path / "db") as db:
        for sql in setup:
            ref.execute(sql)
            db.execute_sql(sql)
        try:
            expected = ref.execute(query).fetchall()
        except sqlite3.Error as e:
            with pytest.raises(SQLError, match=str(e)):
                db.execute_sql(query)
            return
        assert db.execute_sql(query).rows == expected
        table = "SELECT * FROM u ORDER BY id"
        assert db.execute_sql(table).rows == ref.execute(table).fetchall()


def test_indexed_by_uses_the_named_index(tmp_path):
    with Database.open(tmp_path / "db") as db:
        db.executescript(
            "CREATE TABLE u (id INTEGER PRIMARY KEY, a, b); CREATE INDEX ua ON u(a); CREATE INDEX ub ON u(b)"
        )
        plan = db.execute_sql(
            "EXPLAIN QUERY PLAN SELECT * FROM u INDEXED BY ub WHERE a = 1 AND b = 2"
        ).rows
        assert "INDEX ub" in plan[0][0]
        plan = db.execute_sql("EXPLAIN QUERY PLAN SELECT * FROM u NOT INDEXED WHERE a = 1").rows
        assert "INDEX" not in " ".join(r[0] for r in plan)
