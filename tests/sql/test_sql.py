"""Tests of toondb's SQL engine through its public API: the product guide's SQL
examples with their exact printed output, results, parameters, errors,
atomicity, transactions mixing key-value and SQL writes, persistence, the key and
row formats, and pinned EXPLAIN plans. (Data-driven goldens: tests/sql/golden/*.slt via
test_sql_golden.py; differential tests against sqlite3: test_sql_differential.py.)"""

from __future__ import annotations

import contextlib
import io
import math
import os
import sqlite3
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import toondb
from toondb import ConstraintError, Database, SchemaError, SQLError, SQLSyntaxError
from toondb.codec import keycode, rowcodec
from toondb.sql import statements
from toondb.sql import types as T

# ---------------------------------------------------------------- the guide


def _run_printed(fn) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        fn()
    return out.getvalue()


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_guide_sql_section_prints_what_the_guide_shows(in_tmp):
    def guide():
        with Database.open("./sql_db") as db:
            # Create table
            db.execute_sql("""
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            email TEXT UNIQUE,
            age INTEGER
        )
    """)

            # Insert data
            db.execute_sql("""
        INSERT INTO users (id, name, email, age)
        VALUES (1, 'Alice', 'alice@example.com', 30)
    """)

            db.execute_sql("""
        INSERT INTO users (id, name, email, age)
        VALUES (2, 'Bob', 'bob@example.com', 25)
    """)

            # Select all
            results = db.execute_sql("SELECT * FROM users")
            for row in results:
                print(row)

            # WHERE clause
            results = db.execute_sql("SELECT name, age FROM users WHERE age > 26")
            for row in results:
                print(f"{row['name']}: {row['age']} years old")

            # Create orders table
            db.execute_sql("""
    CREATE TABLE orders (
        id INTEGER PRIMARY KEY,
        user_id INTEGER,
        product TEXT,
        amount REAL,
        FOREIGN KEY (user_id) REFERENCES users(id)
    )
""")

            # Insert orders
            db.execute_sql("INSERT INTO orders VALUES (1, 1, 'Laptop', 999.99)")
            db.execute_sql("INSERT INTO orders VALUES (2, 1, 'Mouse', 25.00)")
            db.execute_sql("INSERT INTO orders VALUES (3, 2, 'Keyboard', 75.00)")

            # JOIN query
            results = db.execute_sql("""
    SELECT users.name, orders.product, orders.amount
    FROM users
    JOIN orders ON users.id = orders.user_id
    WHERE orders.amount > 50
    ORDER BY orders.amount DESC
""")

            for row in results:
                print(f"{row['name']} bought {row['product']} for ${row['amount']}")

            # GROUP BY with aggregations
            results = db.execute_sql("""
    SELECT users.name, COUNT(*) as order_count, SUM(orders.amount) as total
    FROM users
    JOIN orders ON users.id = orders.user_id
    GROUP BY users.name
    ORDER BY total DESC
""")

            for row in results:
                print(f"{row['name']}: {row['order_count']} orders, ${row['total']} total")

            # Update
            db.execute_sql("UPDATE users SET age = 31 WHERE name = 'Alice'")

            # Delete
            db.execute_sql("DELETE FROM users WHERE age < 26")

            # Verify
            results = db.execute_sql("SELECT name, age FROM users")
            for row in results:
                print(row)
            db.check()

    assert _run_printed(guide) == (
        "{'id': 1, 'name': 'Alice', 'email': 'alice@example.com', 'age': 30}\n"
        "{'id': 2, 'name': 'Bob', 'email': 'bob@example.com', 'age': 25}\n"
        "Alice: 30 years old\n"
        "Alice bought Laptop for $999.99\n"
        "Bob bought Keyboard for $75.0\n"
        "Alice: 2 orders, $1024.99 total\n"
        "Bob: 1 orders, $75.0 total\n"
        "{'name': 'Alice', 'age': 31}\n"
    )


def test_guide_example_1_multi_tenant_saas(in_tmp):
    import json

    def main():
        with Database.open("./saas_db") as db:
            # SQL for tenant metadata
            db.execute_sql("""
            CREATE TABLE IF NOT EXISTS tenants (
                id INTEGER PRIMARY KEY,
                name TEXT,
                created_at TEXT
            )
        """)

            db.execute_sql("INSERT INTO tenants VALUES (1, 'ACME Corp', '2026-01-01')")
            db.execute_sql("INSERT INTO tenants VALUES (2, 'Globex Inc', '2026-01-01')")

            # K-V for tenant-specific data
            db.put(b"tenants/1/users/alice", b'{"role":"admin","email":"alice@acme.com"}')
            db.put(b"tenants/1/users/bob", b'{"role":"user","email":"bob@acme.com"}')
            db.put(b"tenants/2/users/charlie", b'{"role":"admin","email":"charlie@globex.com"}')

            # Query SQL
            tenants = db.execute_sql("SELECT * FROM tenants ORDER BY name")

            for tenant in tenants:
                tenant_id = tenant["id"]
                tenant_name = tenant["name"]

                # Scan tenant-specific K-V data
                prefix = f"tenants/{tenant_id}/".encode()
                end = f"tenants/{tenant_id};".encode()
                users = list(db.scan(prefix, end))

                print(f"\n{tenant_name} ({len(users)} users):")
                for key, value in users:
                    user_data = json.loads(value.decode())
                    print(f"  {key.decode()}: {user_data['email']} ({user_data['role']})")

    assert _run_printed(main) == (
        "\nACME Corp (2 users):\n"
        "  tenants/1/users/alice: alice@acme.com (admin)\n"
        "  tenants/1/users/bob: bob@acme.com (user)\n"
        "\nGlobex Inc (1 users):\n"
        "  tenants/2/users/charlie: charlie@globex.com (admin)\n"
    )


def test_guide_example_2_ecommerce(in_tmp):
    def main():
        with Database.open("./ecommerce") as db:
            # Create schema
            db.execute_sql("""
        CREATE TABLE products (
            id INTEGER PRIMARY KEY,
            name TEXT,
            price REAL,
            category TEXT
        )
    """)

            db.execute_sql("""
        CREATE TABLE orders (
            id INTEGER PRIMARY KEY,
            product_id INTEGER,
            quantity INTEGER,
            total REAL
        )
    """)

            # Insert data
            db.execute_sql("INSERT INTO products VALUES (1, 'Laptop', 999.99, 'Electronics')")
            db.execute_sql("INSERT INTO products VALUES (2, 'Mouse', 25.00, 'Electronics')")
            db.execute_sql("INSERT INTO products VALUES (3, 'Desk', 299.99, 'Furniture')")

            db.execute_sql("INSERT INTO orders VALUES (1, 1, 2, 1999.98)")
            db.execute_sql("INSERT INTO orders VALUES (2, 2, 5, 125.00)")

            # Analytics query
            results = db.execute_sql("""
        SELECT
            products.category,
            COUNT(orders.id) as order_count,
            SUM(orders.total) as revenue
        FROM products
        JOIN orders ON products.id = orders.product_id
        GROUP BY products.category
        ORDER BY revenue DESC
    """)

            print("Category Performance:")
            for row in results:
                print(f"{row['category']}: {row['order_count']} orders, ${row['revenue']:.2f}")

    assert _run_printed(main) == "Category Performance:\nElectronics: 2 orders, $2124.98\n"


def test_guide_best_practice_select_where(db):
    db.execute_sql("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, age INTEGER)")
    db.execute_sql("INSERT INTO users VALUES (1, 'Ann', 20), (2, 'Ben', 30), (3, 'Cid', 40)")
    results = db.execute_sql("SELECT * FROM users WHERE age > 25")
    assert [r["name"] for r in results] == ["Ben", "Cid"]


# ---------------------------------------------------------------- results


@pytest.fixture
def people(db):
    db.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, age INTEGER, city TEXT)")
    db.executemany(
        "INSERT INTO people VALUES (?, ?, ?, ?)",
        [
            (1, "Ann", 31, "Oslo"),
            (2, "Ben", 25, "Rome"),
            (3, "Cid", None, "Oslo"),
            (4, "Dee", 40, None),
        ],
    )
    return db


def test_select_result_is_a_list_of_dicts_in_select_list_order(people):
    res = people.execute("SELECT age, name FROM people WHERE id = 1")
    assert list(res) == [{"age": 31, "name": "Ann"}]
    assert list(res[0]) == ["age", "name"]
    assert res.columns == ["age", "name"]
    assert res.rows == [(31, "Ann")]
    assert len(res) == 1 and res == [{"age": 31, "name": "Ann"}]


def test_star_gives_table_column_order_and_qualified_names_drop_the_table(people):
    res = people.execute("SELECT * FROM people WHERE id = 2")
    assert res.columns == ["id", "name", "age", "city"]
    res = people.execute("SELECT people.name, people.city AS town FROM people WHERE people.id = 2")
    assert res.columns == ["name", "town"]
    assert res[0] == {"name": "Ben", "town": "Rome"}


def test_duplicate_output_names_both_survive(people):
    people.execute("CREATE TABLE pets (id INTEGER PRIMARY KEY, owner INTEGER, name TEXT)")
    people.execute("INSERT INTO pets VALUES (1, 1, 'Rex')")
    res = people.execute(
        "SELECT people.name, pets.name FROM people JOIN pets ON pets.owner = people.id"
    )
    assert res.columns == ["name", "name"]
    assert res[0] == {"name": "Ann", "name:1": "Rex"}
    assert res.rows == [("Ann", "Rex")]


def test_expression_columns_are_named_by_their_text(people):
    res = people.execute("SELECT COUNT(*), max(age) + 1, upper(name) FROM people WHERE id = 1")
    assert res.columns == ["COUNT(*)", "max(age) + 1", "upper(name)"]


def test_write_results_have_rowcount_and_lastrowid(people):
    res = people.execute("INSERT INTO people (name, age) VALUES ('Eve', 22), ('Fay', 23)")
    assert res.rowcount == 2 and res.lastrowid == 6 and list(res) == []
    assert people.execute("UPDATE people SET age = age + 1 WHERE city = 'Oslo'").rowcount == 2
    assert people.execute("DELETE FROM people WHERE age IS NULL").rowcount == 1
    assert people.execute("SELECT age FROM people WHERE id = 1").rows == [(32,)]


def test_integer_primary_key_is_assigned_when_omitted(db):
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    db.execute("INSERT INTO t (v) VALUES ('a')")
    db.execute("INSERT INTO t VALUES (10, 'b')")
    db.execute("INSERT INTO t (v) VALUES ('c')")
    db.execute("INSERT INTO t VALUES (NULL, 'd')")
    assert db.execute("SELECT id, v FROM t ORDER BY id").rows == [
        (1, "a"),
        (10, "b"),
        (11, "c"),
        (12, "d"),
    ]


# ---------------------------------------------------------------- parameters


def test_qmark_named_and_numbered_parameters(people):
    q = people.execute
    assert q("SELECT name FROM people WHERE id = ?", (2,)).rows == [("Ben",)]
    assert q("SELECT name FROM people WHERE id = :id", {"id": 3}).rows == [("Cid",)]
    assert q("SELECT name FROM people WHERE id = $id", {"id": 4}).rows == [("Dee",)]
    assert q("SELECT name FROM people WHERE id = @id", {"id": 1}).rows == [("Ann",)]
    assert q("SELECT ?2, ?1", ("a", "b")).rows == [("b", "a")]
    assert q("SELECT :x + :x", {"x": 21}).rows == [(42,)]


def test_parameter_values_are_never_formatted_into_sql(people):
    evil = "x'); DROP TABLE people; --"
    people.execute("INSERT INTO people (name) VALUES (?)", (evil,))
    assert people.execute("SELECT name FROM people WHERE name = ?", [evil]).rows == [(evil,)]
    assert people.execute("SELECT COUNT(*) FROM people").rows == [(5,)]


def test_parameter_errors(people):
    with pytest.raises(SQLError, match="Incorrect number of bindings"):
        people.execute("SELECT ? + ?", (1,))
    with pytest.raises(SQLError, match=":who"):
        people.execute("SELECT name FROM people WHERE name = :who", {"whom": 1})
    with pytest.raises(SQLError, match="unsupported parameter type"):
        people.execute("SELECT ?", (object(),))
    assert people.execute("SELECT ?, ?, ?", (True, bytearray(b"ab"), 2.5)).rows == [(1, b"ab", 2.5)]


def test_executemany_and_batch_execute(db):
    db.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER)")
    res = db.executemany("INSERT INTO kv VALUES (?, ?)", [("a", 1), ("b", 2)])
    assert res.rowcount == 2
    db.execute_sql("INSERT INTO kv VALUES (:k, :v)", [{"k": "c", "v": 3}, {"k": "d", "v": 4}])
    assert db.execute("SELECT SUM(v) FROM kv").rows == [(10,)]
    # a batch is atomic: the duplicate key fails it whole
    with pytest.raises(ConstraintError):
        db.executemany("INSERT INTO kv VALUES (?, ?)", [("e", 5), ("a", 6)])
    assert db.execute("SELECT COUNT(*) FROM kv").rows == [(4,)]
    assert db.executemany("UPDATE kv SET v = v * 10 WHERE k = ?", [("a",), ("b",)]).rowcount == 2
    assert db.execute("SELECT v FROM kv WHERE k IN ('a', 'b') ORDER BY k").rows == [(10,), (20,)]


def test_repeated_statement_is_parsed_once(db):
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)")
    sql = "INSERT INTO t (v) VALUES (?) -- parse-cache probe"
    db.execute(sql, (0,))
    before = statements.cache_info()["texts"]
    for i in range(20):
        db.execute(sql, (i,))
    after = statements.cache_info()["texts"]
    assert after["misses"] == before["misses"]
    assert after["hits"] - before["hits"] == 20


# ---------------------------------------------------------------- errors


def test_syntax_error_has_line_column_and_caret(db):
    sql = "SELECT name\nFROM users\nWHERE age >> > 3"
    with pytest.raises(SQLSyntaxError) as ei:
        db.execute(sql)
    err = ei.value
    assert err.line == 3
    assert err.column == 14
    lines = str(err).splitlines()
    assert lines[-2].strip() == "WHERE age >> > 3"
    assert lines[-1].index("^") - lines[-2].index("W") == 13
    assert "line 3, column 14" in lines[0]


def test_misspelled_keyword_points_at_it(db):
    with pytest.raises(SQLSyntaxError) as ei:
        db.execute("SELEC * FROM t")
    assert ei.value.column == 1
    with pytest.raises(SQLSyntaxError) as ei:
        db.execute("SELECT * FORM t")
    assert ei.value.column == 10


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE t (a TEXT COLLATE german UNIQUE)",
        "CREATE TABLE t (a TEXT, PRIMARY KEY (a COLLATE german))",
        "CREATE TABLE t (a TEXT, UNIQUE (a COLLATE german))",
        "CREATE INDEX i ON kept (a COLLATE german)",
        "SELECT a FROM kept WHERE a = 'X' COLLATE german",
    ],
)
def test_an_unknown_collation_is_refused_and_changes_nothing(db, sql):
    """BINARY, NOCASE and RTRIM work in comparisons, ORDER BY, GROUP BY,
    DISTINCT, indexes and keys (tests/sql/test_sql_index_collation.py); any
    other collation is SQLite's error, and nothing is made."""
    db.execute("CREATE TABLE kept (a TEXT COLLATE BINARY)")
    db.execute("CREATE TABLE nocase (a TEXT COLLATE NOCASE)")
    db.execute("INSERT INTO kept VALUES ('x')")
    with pytest.raises(SQLError, match=r"(?i)COLLATE|collation"):
        db.execute(sql)
    from toondb.sql import catalog

    with db.transaction(read_only=True) as txn:
        schema = catalog.load(txn)
    assert sorted(schema.tables) == ["kept", "nocase"] and schema.find_index("i") is None
    assert db.execute("SELECT a FROM kept WHERE a = 'x' COLLATE BINARY").rows == [("x",)]
    assert db.execute("SELECT a FROM kept WHERE a = 'X' COLLATE BINARY").rows == []


def test_unknown_table_and_column(people):
    with pytest.raises(SchemaError, match="no such table: nope"):
        people.execute("SELECT * FROM nope")
    with pytest.raises(SchemaError, match="no such column: salary"):
        people.execute("SELECT salary FROM people")
    with pytest.raises(SchemaError, match="has no column named salary"):
        people.execute("INSERT INTO people (salary) VALUES (1)")
    with pytest.raises(SchemaError, match="ambiguous column name: id"):
        people.execute("SELECT id FROM people a, people b")
    with pytest.raises(SchemaError, match="already exists"):
        people.execute("CREATE TABLE people (x)")


def test_wrong_number_of_values(people):
    with pytest.raises(SQLError, match="table people has 4 columns but 2 values were supplied"):
        people.execute("INSERT INTO people VALUES (9, 'x')")
    with pytest.raises(SQLError, match="3 values for 2 columns"):
        people.execute("INSERT INTO people (id, name) VALUES (9, 'x', 1)")


def test_constraint_errors_name_the_constraint_and_values(db):
    db.execute(
        "CREATE TABLE acct (id INTEGER PRIMARY KEY, email TEXT UNIQUE NOT NULL, "
        "balance INTEGER CHECK (balance >= 0), CONSTRAINT two CHECK (id < 100))"
    )
    db.execute("INSERT INTO acct VALUES (1, 'a@x', 5)")
    with pytest.raises(ConstraintError, match=r"UNIQUE constraint failed: acct\.email.*'a@x'"):
        db.execute("INSERT INTO acct VALUES (2, 'a@x', 5)")
    with pytest.raises(ConstraintError, match=r"UNIQUE constraint failed: acct\.id.*1"):
        db.execute("INSERT INTO acct VALUES (1, 'b@x', 5)")
    with pytest.raises(ConstraintError, match=r"NOT NULL constraint failed: acct\.email"):
        db.execute("INSERT INTO acct VALUES (3, NULL, 5)")
    with pytest.raises(ConstraintError, match=r"CHECK constraint failed: balance >= 0"):
        db.execute("INSERT INTO acct VALUES (3, 'c@x', -1)")
    with pytest.raises(ConstraintError, match="CHECK constraint failed: two"):
        db.execute("INSERT INTO acct VALUES (300, 'c@x', 1)")
    with pytest.raises(SQLError, match="datatype mismatch"):
        db.execute("INSERT INTO acct VALUES ('one', 'c@x', 1)")
    # the database stays usable
    db.execute("INSERT INTO acct VALUES (3, 'c@x', 1)")
    assert db.execute("SELECT id FROM acct ORDER BY id").rows == [(1,), (3,)]


def test_errors_are_toondb_errors(db):
    for sql in ("SELEC", "SELECT * FROM missing", "SELECT nofunc(1)"):
        with pytest.raises(toondb.ToonDBError):
            db.execute(sql)


# ---------------------------------------------------------------- atomicity


def test_failing_multi_row_insert_leaves_nothing(people):
    with pytest.raises(ConstraintError):
        people.execute(
            "INSERT INTO people (id, name) VALUES (10, 'a'), (11, 'b'), (1, 'dup'), (12, 'c')"
        )
    assert people.execute("SELECT COUNT(*) FROM people").rows == [(4,)]


def test_failing_update_leaves_nothing(db):
    db.execute("CREATE TABLE u (id INTEGER PRIMARY KEY, code INTEGER UNIQUE)")
    db.executemany("INSERT INTO u VALUES (?, ?)", [(i, i) for i in range(1, 6)])
    with pytest.raises(ConstraintError):
        db.execute("UPDATE u SET code = code + 10 WHERE id < 5 OR id = 5")  # fine
        db.execute("UPDATE u SET code = 13")  # breaks UNIQUE on the second row
    assert db.execute("SELECT code FROM u ORDER BY id").rows == [(11,), (12,), (13,), (14,), (15,)]


def test_failed_statement_inside_a_transaction_is_undone_and_the_rest_commits(people):
    with people.transaction() as txn:
        txn.execute("INSERT INTO people (id, name) VALUES (20, 'ok')")
        with pytest.raises(ConstraintError):
            txn.execute("INSERT INTO people (id, name) VALUES (21, 'x'), (1, 'dup')")
        with pytest.raises(ConstraintError):
            txn.execute("UPDATE people SET id = 2 WHERE id = 20")
        txn.put(b"k", b"v")
    assert people.execute("SELECT id FROM people WHERE id >= 20").rows == [(20,)]
    assert people.get(b"k") == b"v"
    people.check()


def test_sql_and_key_value_writes_commit_or_abort_together(people):
    with pytest.raises(RuntimeError):
        with people.transaction() as txn:
            txn.put(b"audit:1", b"insert")
            txn.execute("INSERT INTO people (id, name) VALUES (30, 'Zed')")
            assert txn.execute("SELECT name FROM people WHERE id = 30").rows == [("Zed",)]
            raise RuntimeError("abort")
    assert people.get(b"audit:1") is None
    assert people.execute("SELECT COUNT(*) FROM people WHERE id = 30").rows == [(0,)]
    with people.transaction() as txn:
        txn.put(b"audit:1", b"insert")
        txn.execute("INSERT INTO people (id, name) VALUES (30, 'Zed')")
    assert people.get(b"audit:1") == b"insert"
    assert people.execute("SELECT name FROM people WHERE id = 30").rows == [("Zed",)]


def test_sql_tables_never_collide_with_key_value_keys(people):
    people.put(b"people", b"kv value")
    assert [k for k, _ in people.scan(b"")] == [b"people"]
    assert people.execute("SELECT COUNT(*) FROM people").rows == [(4,)]
    people.execute("DROP TABLE people")
    assert people.get(b"people") == b"kv value"


# ---------------------------------------------------------------- SQL transactions


def test_begin_commit_rollback_through_sql(people):
    people.execute("BEGIN")
    people.execute("INSERT INTO people (id, name) VALUES (50, 'tmp')")
    assert people.execute("SELECT COUNT(*) FROM people").rows == [(5,)]
    people.execute("ROLLBACK")
    assert people.execute("SELECT COUNT(*) FROM people").rows == [(4,)]
    people.execute("BEGIN IMMEDIATE")
    people.execute("INSERT INTO people (id, name) VALUES (50, 'kept')")
    people.execute("COMMIT")
    assert people.execute("SELECT name FROM people WHERE id = 50").rows == [("kept",)]
    with pytest.raises(SQLError, match="no transaction is active"):
        people.execute("COMMIT")
    people.execute("BEGIN")
    with pytest.raises(SQLError, match="within a transaction"):
        people.execute("BEGIN")
    people.execute("ROLLBACK")


def test_concurrent_inserts_of_one_unique_value_conflict(db):
    db.execute("CREATE TABLE u (id INTEGER PRIMARY KEY, email TEXT UNIQUE)")
    a = db.begin_transaction()
    b = db.begin_transaction()
    a.execute("INSERT INTO u VALUES (1, 'x@y')")
    b.execute("INSERT INTO u VALUES (2, 'x@y')")
    a.commit()
    with pytest.raises(toondb.TransactionConflictError):
        b.commit()
    assert db.execute("SELECT id, email FROM u").rows == [(1, "x@y")]


def test_sql_transaction_belongs_to_its_thread(people):
    people.execute("BEGIN")
    people.execute("INSERT INTO people (id, name) VALUES (60, 'mine')")
    seen = []
    t = threading.Thread(
        target=lambda: seen.append(people.execute("SELECT COUNT(*) FROM people").rows)
    )
    t.start()
    t.join()
    assert seen == [[(4,)]]
    people.execute("COMMIT")
    assert people.execute("SELECT COUNT(*) FROM people").rows == [(5,)]


def test_begin_inside_a_transaction_object_is_refused(people):
    with people.transaction() as txn:
        with pytest.raises(SQLError, match="commit"):
            txn.execute("BEGIN")


def test_transaction_snapshot_isolation_for_sql(people):
    reader = people.transaction(read_only=True)
    people.execute("DELETE FROM people")
    assert reader.execute("SELECT COUNT(*) FROM people").rows == [(4,)]
    reader.abort()
    assert people.execute("SELECT COUNT(*) FROM people").rows == [(0,)]


# ---------------------------------------------------------------- schema


def test_schema_and_data_persist_across_reopen(open_db, db_path):
    db = open_db()
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, score REAL)")
    db.execute("CREATE INDEX t_score ON t(score)")
    db.executemany("INSERT INTO t VALUES (?, ?, ?)", [(i, f"n{i}", i / 2) for i in range(200)])
    db.close()
    db = open_db()
    assert db.execute("SELECT COUNT(*), SUM(score) FROM t").rows == [
        (200, sum(i / 2 for i in range(200)))
    ]
    assert db.execute("SELECT name FROM t WHERE score = 50.0").rows == [("n100",)]
    plan = db.execute("EXPLAIN SELECT name FROM t WHERE score = 50.0").rows
    assert plan[0] == ("SEARCH t USING INDEX t_score (score=50.0)",)


def test_create_if_not_exists_drop_if_exists_and_alter(db):
    db.execute("CREATE TABLE t (a INTEGER)")
    db.execute("CREATE TABLE IF NOT EXISTS t (b TEXT)")
    db.execute("INSERT INTO t VALUES (1)")
    db.execute("ALTER TABLE t ADD COLUMN b TEXT DEFAULT 'x'")
    db.execute("INSERT INTO t VALUES (2, 'y')")
    assert db.execute("SELECT a, b FROM t ORDER BY a").rows == [(1, "x"), (2, "y")]
    db.execute("ALTER TABLE t RENAME TO t2")
    with pytest.raises(SchemaError):
        db.execute("SELECT * FROM t")
    db.execute("ALTER TABLE t2 RENAME COLUMN b TO c")
    assert db.execute("SELECT c FROM t2 WHERE a = 2").rows == [("y",)]
    db.execute("DROP TABLE t2")
    db.execute("DROP TABLE IF EXISTS t2")
    with pytest.raises(SchemaError):
        db.execute("DROP TABLE t2")


def test_a_parenthesised_column_default_is_an_expression_as_in_sqlite(db):
    # parsing DEFAULT (expr) parses the expression text again inside parse():
    # this used to wait forever on the parser's own lock
    ddl = "CREATE TABLE t (a, b DEFAULT (1 + 2), c TEXT DEFAULT (upper('x')))"
    ref = sqlite3.connect(":memory:")
    for conn in (db, ref):
        conn.execute(ddl)
        conn.execute("INSERT INTO t (a) VALUES (1)")
    assert db.execute("SELECT * FROM t").rows == ref.execute("SELECT * FROM t").fetchall()
    assert db.execute("SELECT * FROM t").rows == [(1, 3, "X")]


def test_unique_index_creation_fails_on_duplicates(people):
    with pytest.raises(ConstraintError, match="UNIQUE constraint failed: people.city"):
        people.execute("CREATE UNIQUE INDEX ucity ON people(city)")
    people.execute("CREATE UNIQUE INDEX uname ON people(name)")
    with pytest.raises(ConstraintError):
        people.execute("INSERT INTO people (name) VALUES ('Ann')")
    people.execute("DROP INDEX uname")
    people.execute("INSERT INTO people (name) VALUES ('Ann')")


def test_composite_primary_key(db):
    db.execute("CREATE TABLE m (a INTEGER, b TEXT, v REAL, PRIMARY KEY (a, b))")
    db.execute("INSERT INTO m VALUES (1, 'x', 1.0), (1, 'y', 2.0), (2, 'x', 3.0)")
    with pytest.raises(ConstraintError, match=r"m\.a, m\.b"):
        db.execute("INSERT INTO m VALUES (1, 'x', 9.0)")
    assert db.execute("SELECT v FROM m WHERE a = 1 AND b = 'y'").rows == [(2.0,)]
    assert (
        "USING INDEX sqlite_autoindex_m_1 (a=1 AND b='y')"
        in db.execute("EXPLAIN SELECT v FROM m WHERE a = 1 AND b = 'y'").rows[0][0]
    )


def test_conflict_clauses(db):
    db.execute("CREATE TABLE c (id INTEGER PRIMARY KEY, name TEXT UNIQUE, n INTEGER DEFAULT 0)")
    db.execute("INSERT INTO c VALUES (1, 'a', 1), (2, 'b', 2)")
    assert db.execute("INSERT OR IGNORE INTO c VALUES (3, 'a', 3)").rowcount == 0
    db.execute("INSERT OR REPLACE INTO c VALUES (4, 'a', 4)")
    assert db.execute("SELECT id, name, n FROM c ORDER BY id").rows == [(2, "b", 2), (4, "a", 4)]
    db.execute("INSERT INTO c VALUES (5, 'b', 5) ON CONFLICT DO NOTHING")
    db.execute(
        "INSERT INTO c (id, name) VALUES (6, 'b') ON CONFLICT(name) DO UPDATE SET n = n + 10"
    )
    assert db.execute("SELECT id, name, n FROM c ORDER BY id").rows == [(2, "b", 12), (4, "a", 4)]
    db.execute("REPLACE INTO c VALUES (2, 'z', 0)")
    assert db.execute("SELECT name FROM c WHERE id = 2").rows == [("z",)]


def test_foreign_keys_are_recorded_and_enforced_only_when_on(db):
    db.execute("CREATE TABLE p (id INTEGER PRIMARY KEY)")
    db.execute(
        "CREATE TABLE ch (id INTEGER PRIMARY KEY, pid INTEGER REFERENCES p(id) ON DELETE CASCADE)"
    )
    db.execute("INSERT INTO ch VALUES (1, 99)")  # off: as in SQLite, not checked
    assert db.execute("PRAGMA foreign_keys").rows == [(0,)]
    db.execute("PRAGMA foreign_keys = ON")
    with pytest.raises(ConstraintError, match="FOREIGN KEY constraint failed"):
        db.execute("INSERT INTO ch VALUES (2, 98)")
    db.execute("INSERT INTO p VALUES (1)")
    db.execute("INSERT INTO ch VALUES (2, 1)")
    db.execute("DELETE FROM p WHERE id = 1")
    assert db.execute("SELECT id FROM ch").rows == [(1,)]
    fk = db.execute("PRAGMA foreign_key_list(ch)").rows
    assert fk[0][2:5] == ("p", "pid", "id") and fk[0][6] == "CASCADE"


def test_pragma_table_info(people):
    rows = people.execute("PRAGMA table_info(people)").rows
    assert rows[0] == (0, "id", "INTEGER", 0, None, 1)
    assert [r[1] for r in rows] == ["id", "name", "age", "city"]


# ---------------------------------------------------------------- semantics (SQLite's)


@pytest.mark.parametrize(
    "expr",
    [
        "7 / 2",
        "-7 / 2",
        "7 % -3",
        "7.0 / 2",
        "1 / 0",
        "9223372036854775807 + 1",
        "'12abc' + 1",
        "'3' = 3",
        "NULL = NULL",
        "NULL AND 0",
        "NULL OR 1",
        "1 < 'a'",
        "'a' < x'00'",
        "CAST('12.7abc' AS INTEGER)",
        "CAST(1e20 AS TEXT)",
        "typeof(1 = 1)",
        "5 BETWEEN 1 AND NULL",
        "3 IN (1, NULL)",
        "3 NOT IN (1, 2)",
        "'ABC' LIKE 'a_c'",
        "'ABC' GLOB 'a*'",
        "round(2.5)",
        "round(1000000000000000.0, 15)",  # 31 digits: past decimal's default precision
        "round(123456789012345.5, 14)",
        "round(-9999999999999.995, 2)",
        "substr('hello', -3, 2)",
        "coalesce(NULL, NULL, 'z')",
        "CASE WHEN NULL THEN 1 ELSE 2 END",
        "1 || 2.5",
    ],
)
def test_scalar_semantics_match_sqlite(db, expr):
    expected = sqlite3.connect(":memory:").execute(f"SELECT {expr}").fetchall()
    got = db.execute(f"SELECT {expr}").rows
    assert got == expected and [type(v) for v in got[0]] == [type(v) for v in expected[0]]


def test_affinity_nulls_first_and_aggregates_of_empty_sets(db):
    db.execute("CREATE TABLE a (i INTEGER, r REAL, t TEXT, n NUMERIC, b BLOB)")
    db.execute("INSERT INTO a VALUES ('5', 1, 2, '3.0', '4')")
    assert db.execute(
        "SELECT typeof(i), typeof(r), typeof(t), typeof(n), typeof(b) FROM a"
    ).rows == [("integer", "real", "text", "integer", "text")]
    db.execute("INSERT INTO a (i) VALUES (NULL), (-1)")
    assert db.execute("SELECT i FROM a ORDER BY i").rows == [(None,), (-1,), (5,)]
    assert db.execute("SELECT i FROM a ORDER BY i DESC").rows == [(5,), (-1,), (None,)]
    assert db.execute(
        "SELECT SUM(i), COUNT(i), COUNT(*), AVG(i), TOTAL(i) FROM a WHERE i > 100"
    ).rows == [(None, 0, 0, None, 0.0)]


# ---------------------------------------------------------------- EXPLAIN (pinned plans)


@pytest.fixture
def shop(db):
    db.execute(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT UNIQUE, age INTEGER)"
    )
    db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER, amount REAL)")
    db.execute("CREATE INDEX orders_user ON orders(user_id)")
    db.execute("CREATE INDEX users_age ON users(age)")
    return db


PLANS = [
    (
        "SELECT * FROM users WHERE id = ?",
        ["SEARCH users USING ROWID (rowid=?)", "PROJECT id, name, email, age"],
    ),
    (
        "SELECT name FROM users WHERE id IN (1, 2, 3)",
        ["SEARCH users USING ROWID (rowid IN (3 values))", "PROJECT name"],
    ),
    (
        "SELECT name FROM users WHERE id > 10 AND id <= 20",
        [
            "SEARCH users USING ROWID RANGE (rowid>10 AND rowid<=20)",
            "  FILTER id > 10 AND id <= 20",
            "PROJECT name",
        ],
    ),
    (
        "SELECT name FROM users WHERE email = 'a@x'",
        ["SEARCH users USING INDEX sqlite_autoindex_users_1 (email='a@x')", "PROJECT name"],
    ),
    (
        "SELECT name FROM users WHERE age BETWEEN 20 AND 30",
        [
            "SEARCH users USING INDEX users_age (age>=20 AND age<=30)",
            "  FILTER age BETWEEN 20 AND 30",
            "PROJECT name",
        ],
    ),
    (
        "SELECT name FROM users WHERE name = 'x'",
        ["SCAN users", "  FILTER name = 'x'", "PROJECT name"],
    ),
    (
        "SELECT name FROM users ORDER BY id DESC LIMIT 3",
        [
            "SCAN users (rowid order, descending)",
            "ORDER BY (scan order)",
            "LIMIT 3",
            "PROJECT name",
        ],
    ),
    (
        "SELECT name FROM users ORDER BY age",
        ["SCAN users USING INDEX users_age", "ORDER BY (scan order)", "PROJECT name"],
    ),
    ("SELECT name FROM users ORDER BY name", ["SCAN users", "SORT BY name", "PROJECT name"]),
    (
        "SELECT users.name, orders.amount FROM users JOIN orders ON orders.user_id = users.id",
        [
            "SCAN users",
            "NESTED LOOP: SEARCH orders USING INDEX orders_user (user_id=users.id)",
            "PROJECT name, amount",
        ],
    ),
    (
        "SELECT users.name FROM orders JOIN users ON users.id = orders.user_id WHERE orders.amount > 5",
        [
            "SCAN orders",
            "  FILTER orders.amount > 5",
            "NESTED LOOP: SEARCH users USING ROWID (rowid=orders.user_id)",
            "PROJECT name",
        ],
    ),
    (
        "SELECT u.name FROM users u JOIN orders o ON o.amount = u.age",
        ["SCAN users", "HASH JOIN ON o.amount = u.age: build SCAN orders", "PROJECT name"],
    ),
    (
        "SELECT u.name FROM users u LEFT JOIN orders o ON o.amount > u.age",
        [
            "SCAN users",
            "LEFT NESTED LOOP: SCAN orders (read once)",
            "  ON o.amount > u.age",
            "PROJECT name",
        ],
    ),
    (
        "SELECT age, COUNT(*) FROM users GROUP BY age HAVING COUNT(*) > 1",
        ["SCAN users", "AGGREGATE GROUP BY age", "  HAVING COUNT(*) > 1", "PROJECT age, COUNT(*)"],
    ),
    (
        "UPDATE users SET age = 1 WHERE id = 5",
        ["UPDATE users", "  SEARCH users USING ROWID (rowid=5)"],
    ),
    (
        "DELETE FROM orders WHERE user_id = ?",
        ["DELETE FROM orders", "  SEARCH orders USING INDEX orders_user (user_id=?)"],
    ),
]


@pytest.mark.parametrize("sql,plan", PLANS, ids=[p[0][:50] for p in PLANS])
def test_explain_plans_are_pinned(shop, sql, plan):
    assert [r[0] for r in shop.execute("EXPLAIN " + sql).rows] == plan


def test_planned_queries_give_sqlite_answers(shop):
    ref = sqlite3.connect(":memory:")
    for stmt in (
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT UNIQUE, age INTEGER)",
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER, amount REAL)",
    ):
        ref.execute(stmt)
    users = [
        (i, f"u{i}", f"u{i}@x" if i % 7 else None, (i * 37) % 50 if i % 5 else None)
        for i in range(1, 60)
    ]
    orders = [(i, (i * 13) % 70, float((i * 7) % 40)) for i in range(1, 150)]
    for db in (shop, ref):
        db.executemany("INSERT INTO users VALUES (?, ?, ?, ?)", users)
        db.executemany("INSERT INTO orders VALUES (?, ?, ?)", orders)
    params = {
        "SELECT * FROM users WHERE id = ?": (7,),
        "DELETE FROM orders WHERE user_id = ?": (3,),
    }
    for sql, _ in PLANS:
        if sql.startswith(("UPDATE", "DELETE")):
            continue
        p = params.get(sql, ())
        got = shop.execute(sql, p).rows
        want = ref.execute(sql, p).fetchall()
        if "ORDER BY" in sql:
            assert got == want, sql
        else:
            assert sorted(got, key=repr) == sorted(want, key=repr), sql


# ---------------------------------------------------------------- formats


values = st.one_of(
    st.none(),
    st.integers(min_value=T.I64_MIN, max_value=T.I64_MAX),
    st.floats(allow_nan=False),
    st.text(),
    st.binary(),
)


@settings(max_examples=400, deadline=None)
@given(values, values)
def test_key_encoding_preserves_sqlite_order(a, b):
    ka, kb = keycode.py_encode_values([a]), keycode.py_encode_values([b])
    assert keycode.encode_values([a]) == ka  # the C encoder agrees
    if a is None or b is None:
        expect = (a is not None) - (b is not None)
    else:
        expect = T.compare(a, b)
    got = (ka > kb) - (ka < kb)
    assert got == expect, (a, b, ka, kb)


@settings(max_examples=200, deadline=None)
@given(st.lists(values, max_size=4), st.lists(values, max_size=4))
def test_key_encoding_of_tuples_is_prefix_free_and_ordered(xs, ys):
    kx, ky = keycode.encode_values(xs), keycode.encode_values(ys)
    n = min(len(xs), len(ys))
    first_diff = next(
        (i for i in range(n) if keycode.encode_values([xs[i]]) != keycode.encode_values([ys[i]])),
        None,
    )
    if first_diff is None:
        expect = (len(xs) > len(ys)) - (len(xs) < len(ys))
    else:
        ka, kb = keycode.encode_values([xs[first_diff]]), keycode.encode_values([ys[first_diff]])
        expect = (ka > kb) - (ka < kb)
    assert ((kx > ky) - (kx < ky)) == expect


@settings(max_examples=300, deadline=None)
@given(st.lists(values, max_size=8), st.integers(min_value=T.I64_MIN, max_value=T.I64_MAX))
def test_row_codec_round_trips_in_c_and_python(row, rowid):
    data = rowcodec.encode_row(row)
    assert data == rowcodec.py_encode_row(row)
    defaults = tuple(range(len(row) + 2))
    key = keycode.rowid_key(rowid)
    expect = tuple(row) + defaults[len(row) :] + (rowid,)
    got = rowcodec.decode_row(data, defaults, key)
    assert got == rowcodec.py_decode_row(data, defaults, key)
    assert len(got) == len(expect)
    for x, y in zip(got, expect):
        assert type(x) is type(y) and (
            x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y))
        )


def test_rowid_keys_sort_as_integers():
    ids = [T.I64_MIN, -5, -1, 0, 1, 2, 255, 256, T.I64_MAX]
    keys = [keycode.rowid_key(i) for i in ids]
    assert keys == sorted(keys)
    assert [keycode.key_rowid(k) for k in keys] == ids


def test_rows_are_binary_not_json(db):
    db.execute("CREATE TABLE b (id INTEGER PRIMARY KEY, s TEXT, x REAL)")
    db.execute("INSERT INTO b VALUES (1, 'hello', 2.5)")
    with db.transaction(read_only=True) as txn:
        names = [n for n in txn.tree_names(b"sql:") if n.startswith(b"sql:t:")]
        ((key, value),) = list(txn.tree(names[0]).scan())
    assert key == keycode.rowid_key(1)
    assert value == rowcodec.encode_row([1, "hello", 2.5])
    assert not value.startswith((b"{", b"["))


def test_database_file_checks_clean_after_sql_work(open_db, db_path):
    db = open_db()
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    db.execute("CREATE INDEX tv ON t(v)")
    db.executemany("INSERT INTO t VALUES (?, ?)", [(i, "x" * (i % 300)) for i in range(3000)])
    db.execute("DELETE FROM t WHERE id % 3 = 0")
    db.execute("UPDATE t SET v = 'y' WHERE id % 3 = 1")
    db.execute("DROP INDEX tv")
    counts = db.check()
    assert counts and os.path.exists(db_path)
    assert db.execute("SELECT COUNT(*) FROM t WHERE v = 'y'").rows == [(1000,)]


# ---------------------------------------------------------------- the C scan filter


MIXED = [
    None,
    0,
    1,
    -1,
    2**53,
    2**53 + 1,
    -(2**60),
    2**62,
    0.5,
    -0.0,
    1e300,
    "abc",
    "12",
    "",
    b"x",
    b"",
    3.0,
    7,
]


@pytest.fixture(params=["c", "python"])
def mixed_tables(request, db, monkeypatch):
    """The same mixed-type table in toondb and sqlite3; "python" swaps the C row
    decoder's filter for the pure-Python one, so both paths answer the same queries."""
    if request.param == "python":
        from toondb.sql import executor

        monkeypatch.setattr(executor, "decode_scan", rowcodec.py_decode_scan)
    ref = sqlite3.connect(":memory:")
    ddl = "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b TEXT, c REAL, d, e NUMERIC)"
    rnd = __import__("random").Random(5)
    rows = [(i, *(rnd.choice(MIXED) for _ in range(5))) for i in range(300)]
    for conn in (db, ref):
        conn.execute(ddl)
        conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", rows)
    return db, ref


@pytest.mark.parametrize("op", ["<", "<=", ">", ">=", "=", "!="])
def test_scan_filter_on_a_column_matches_sqlite(mixed_tables, op):
    db, ref = mixed_tables
    for col in "abcde":
        for v in (0, 1, -1, 2**53, 2**53 + 1, 0.5, 3.0, 1e300, -(2**60), "12", "abc", None):
            q = f"SELECT id FROM t WHERE {col} {op} ?"
            assert sorted(db.execute(q, (v,)).rows) == sorted(ref.execute(q, (v,)).fetchall()), (
                q,
                v,
            )
        q = f"SELECT id FROM t WHERE 2.5 {op} {col}"
        assert sorted(db.execute(q).rows) == sorted(ref.execute(q).fetchall()), q
