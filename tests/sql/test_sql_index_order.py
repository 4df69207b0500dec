"""ORDER BY delivered by an index probe's own order (planner rule 4): a range, an
IN list or equalities on an index's leading columns followed by ORDER BY the next
column read the index in order (backwards for DESC) instead of sorting every
matching row, differentially against stdlib sqlite3 (the exact row order)."""

from __future__ import annotations

import random
import sqlite3
from typing import Any

import pytest

import toondb

SCHEMA = [
    "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, g INTEGER, x REAL, s TEXT)",
    "CREATE INDEX t_a ON t(a)",
    "CREATE INDEX t_gx ON t(g, x)",
]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    db = toondb.Database.open(str(tmp_path_factory.mktemp("order") / "db"))
    ref = sqlite3.connect(":memory:")
    rng = random.Random(3)
    values: list[Any] = list(range(-50, 400)) + [i + 0.5 for i in range(0, 100, 7)]
    values += ["abc", "b", "zz", "10", b"\x01"]  # text and blobs sort after numbers
    rng.shuffle(values)
    rows = []
    for i, a in enumerate(values):
        # a unique (or NULL), x unique within g: the expected order has no ties
        rows.append((i + 1, None if i % 23 == 0 else a, i % 5, float((i * 37) % 1000), f"s{i}"))
    for stmt in SCHEMA:
        db.execute_sql(stmt)
        ref.execute(stmt)
    db.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?)", rows)
    ref.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?)", rows)
    yield db, ref
    db.close()
    ref.close()


QUERIES = [
    ("SELECT id, a FROM t WHERE a >= ? ORDER BY a LIMIT 7", [5]),
    ("SELECT id, a FROM t WHERE a >= ? ORDER BY a DESC LIMIT 7", [5]),
    ("SELECT id, a FROM t WHERE a > ? ORDER BY a LIMIT 5 OFFSET 3", [390]),
    ("SELECT * FROM t WHERE a BETWEEN ? AND ? ORDER BY a", [-10, 20]),
    ("SELECT * FROM t WHERE a < ? ORDER BY a DESC", [0]),
    ("SELECT a FROM t WHERE a >= 'a' ORDER BY a", []),
    ("SELECT id, a FROM t WHERE a IN (7, -3, 'b', 100, 7.5, 2) ORDER BY a", []),
    ("SELECT id, a FROM t WHERE a IN (7, -3, 'b', 100, 7.5, 2) ORDER BY a DESC LIMIT 4", []),
    ("SELECT id, x FROM t WHERE g = ? ORDER BY x LIMIT 10", [2]),
    ("SELECT id, x FROM t WHERE g = ? ORDER BY x DESC LIMIT 10", [4]),
    ("SELECT id, x FROM t WHERE g = ? AND x > ? ORDER BY x", [1, 500.0]),
    ("SELECT id, a FROM t WHERE a >= ? AND id % 3 = 0 ORDER BY a LIMIT 6", [0]),
]


@pytest.mark.parametrize(("sql", "params"), QUERIES)
def test_rows_come_in_sqlites_order(pair, sql, params):
    db, ref = pair
    assert db.execute_sql(sql, params).rows == ref.execute(sql, params).fetchall()
    plan = [r[0] for r in db.execute_sql("EXPLAIN QUERY PLAN " + sql, params).rows]
    assert "ORDER BY (scan order)" in plan, plan


def test_an_order_the_index_does_not_give_is_sorted(pair):
    db, ref = pair
    for sql in (
        "SELECT id, x FROM t WHERE a >= 5 ORDER BY x LIMIT 5",
        "SELECT id, g FROM t WHERE g = 1 ORDER BY id DESC LIMIT 5",
    ):
        assert db.execute_sql(sql).rows == ref.execute(sql).fetchall()
        plan = [r[0] for r in db.execute_sql("EXPLAIN QUERY PLAN " + sql).rows]
        assert any(line.startswith("SORT BY") for line in plan), plan
