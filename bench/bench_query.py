"""Benchmarks of query results as TOON: the query builder's ``to_toon()`` and
``execute_sql(..., format="toon")`` against their JSON forms (``to_json()``,
``format="json"``: compact JSON), in tokens and in rows per second.

Run with ``pytest bench/bench_query.py --benchmark-only``. Tokens are counted as in
bench_toon.py (tiktoken's cl100k_base when it loads without the network, else
characters; the summary says which). The documents are the product guide's examples
(its Query Builder products, its SQL users, join and aggregate results) and a 1000-row
table, stored both as SQL rows and as JSON documents under a key prefix.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from token_savings import Savings, rows_per_s

from toondb import Database

ROWS = 1000


def _user(i: int) -> dict[str, Any]:
    return {
        "id": i,
        "name": f"user{i}",
        "email": f"user{i}@example.com",
        "score": round(i * 1.37, 2),
        "active": i % 3 != 0,
    }


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("bench_query") / "db"
    with Database.open(path) as db:
        # the guide's Query Builder section
        db.put(b"products/laptop", b'{"name":"Laptop","price":999,"stock":5}')
        db.put(b"products/mouse", b'{"name":"Mouse","price":25,"stock":20}')
        # the guide's SQL section
        db.execute_sql(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT UNIQUE, "
            "age INTEGER)"
        )
        db.execute_sql("INSERT INTO users VALUES (1, 'Alice', 'alice@example.com', 30)")
        db.execute_sql("INSERT INTO users VALUES (2, 'Bob', 'bob@example.com', 25)")
        db.execute_sql(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER, product TEXT, "
            "amount REAL)"
        )
        db.execute_sql("INSERT INTO orders VALUES (1, 1, 'Laptop', 999.99)")
        db.execute_sql("INSERT INTO orders VALUES (2, 1, 'Mouse', 25.00)")
        db.execute_sql("INSERT INTO orders VALUES (3, 2, 'Keyboard', 75.00)")
        # the 1000-row table, as SQL rows and as JSON documents
        db.execute_sql(
            "CREATE TABLE members (id INTEGER PRIMARY KEY, name TEXT, email TEXT, score REAL, "
            "active INTEGER)"
        )
        with db.transaction() as txn:
            txn.executemany(
                "INSERT INTO members VALUES (?, ?, ?, ?, ?)",
                [list(_user(i).values()) for i in range(ROWS)],
            )
            for i in range(ROWS):
                txn.put(b"members/%06d" % i, json.dumps(_user(i)).encode())
        yield db


GUIDE_SQL = {
    "guide: SELECT * FROM users": "SELECT * FROM users",
    "guide: users JOIN orders": (
        "SELECT users.name, orders.product, orders.amount FROM users "
        "JOIN orders ON users.id = orders.user_id WHERE orders.amount > 50 "
        "ORDER BY orders.amount DESC"
    ),
    "guide: GROUP BY aggregate": (
        "SELECT users.name, COUNT(*) as order_count, SUM(orders.amount) as total FROM users "
        "JOIN orders ON users.id = orders.user_id GROUP BY users.name ORDER BY total DESC"
    ),
    f"SQL {ROWS}-row table": "SELECT * FROM members",
}


SAVINGS = Savings("query results: TOON vs compact JSON", "result", 34)
_record = SAVINGS.record


@pytest.fixture(scope="module", autouse=True)
def _print_summary(request: pytest.FixtureRequest) -> Any:
    SAVINGS.register(request.config)
    yield


# -- token savings -------------------------------------------------------------------


def test_tokens_guide_query_builder(benchmark: Any, db: Any) -> None:
    q = db.query("products/").select(["name", "price"]).limit(10)
    toon = benchmark(q.to_toon)
    assert toon == "products[2]{name,price}:\n  Laptop,999\n  Mouse,25"
    _record(benchmark, "guide: query products (select)", toon, q.to_json())


def test_tokens_guide_query_builder_whole_documents(benchmark: Any, db: Any) -> None:
    q = db.query("products/")
    toon = benchmark(q.to_toon)
    _record(benchmark, "guide: query products (whole docs)", toon, q.to_json())


@pytest.mark.parametrize("label", list(GUIDE_SQL))
def test_tokens_execute_sql(benchmark: Any, db: Any, label: str) -> None:
    sql = GUIDE_SQL[label]
    toon = benchmark(db.execute_sql, sql, format="toon")
    _record(benchmark, label, toon, db.execute_sql(sql, format="json"))


def test_tokens_query_builder_table(benchmark: Any, db: Any) -> None:
    q = db.query("members/")
    toon = benchmark(q.to_toon)
    assert toon.count("\n") == ROWS
    _record(benchmark, f"query {ROWS} JSON documents", toon, q.to_json())


# -- speed ---------------------------------------------------------------------------


@pytest.mark.parametrize("terminal", ["to_toon", "to_json", "to_list", "to_dicts"])
def test_query_builderrows_per_s(benchmark: Any, db: Any, terminal: str) -> None:
    q = db.query("members/")
    out = benchmark(getattr(q, terminal))
    assert len(out) > 0
    rows_per_s(benchmark, ROWS)


def test_query_builder_filtered_sortedrows_per_s(benchmark: Any, db: Any) -> None:
    q = db.query("members/").where("active", "=", True).select(["name", "score"])
    q = q.order_by("score", desc=True).limit(50)
    assert benchmark(q.to_toon).startswith("members[50]{name,score}:")
    rows_per_s(benchmark, ROWS)  # every document is read to sort


@pytest.mark.parametrize("fmt", ["toon", "json", None])
def test_execute_sqlrows_per_s(benchmark: Any, db: Any, fmt: str | None) -> None:
    out = benchmark(db.execute_sql, "SELECT * FROM members", format=fmt)
    assert len(out) > 0
    rows_per_s(benchmark, ROWS)
