"""HAVING terms that test only GROUP BY columns filter rows before grouping, and a
WHERE term without a subquery is tested before one with a subquery, as SQLite
does (its havingToWhere, and its coding of cheap terms first): the answers are
the same, and a subquery the cheap terms make unnecessary never runs (so an
error it would raise, such as sum()'s integer overflow, does not surface).
Checked against sqlite3; the first case was found by the slow differential run."""

from __future__ import annotations

import sqlite3

import pytest

from toondb import Database

SETUP = [
    "CREATE TABLE t0(k INTEGER PRIMARY KEY, c0 INTEGER, n TEXT COLLATE NOCASE, b TEXT)",
    "INSERT INTO t0 VALUES (0, NULL, 'a', 'a')",
    "INSERT INTO t0(c0, n, b) VALUES (NULL, 'A', 'A'), (NULL, 'b', 'B'), (2, 'B', 'b')",
]
OVERFLOW = "(SELECT SUM(REPLACE(9223372036854775807, s.k, s.k)) FROM t0 AS s WHERE s.k <> a.k)"
QUERIES = [
    f"SELECT COUNT(*) FROM t0 AS a WHERE {OVERFLOW} GROUP BY a.k, a.c0 HAVING a.k = a.c0",
    f"SELECT COUNT(*) FROM t0 AS a JOIN t0 AS b ON (a.k = a.k) WHERE {OVERFLOW} "
    "GROUP BY a.k, a.c0 HAVING a.c0 > 5",
    f"SELECT a.k FROM t0 AS a WHERE {OVERFLOW} AND a.k > 100",
    "SELECT n, count(*) FROM t0 GROUP BY n HAVING n = 'a' ORDER BY 1",
    "SELECT b, count(*) FROM t0 GROUP BY b HAVING b = 'a' ORDER BY 1",
    "SELECT b COLLATE NOCASE AS x, count(*) FROM t0 GROUP BY x HAVING x = 'a'",
    "SELECT c0, count(*) FROM t0 GROUP BY c0 HAVING c0 IS NULL OR count(*) > 1 ORDER BY 1",
    "SELECT c0, count(*) AS m FROM t0 GROUP BY c0 HAVING m > 1 AND c0 IS NULL",
    "SELECT k % 2 AS p, count(*) FROM t0 GROUP BY k % 2 HAVING k % 2 = 1",
    "SELECT b, max(k) FROM t0 GROUP BY b HAVING b > 'A' ORDER BY 1",
    # result aliases in HAVING: a name no FROM column has means the alias
    "SELECT c0, count(*) AS m FROM t0 GROUP BY c0 HAVING m > 1",
    "SELECT b AS x, count(*) FROM t0 GROUP BY b HAVING x = 'a'",
    "SELECT k AS b, count(*) FROM t0 GROUP BY b HAVING b = 'a'",
    "SELECT k AS c0, sum(k) AS s FROM t0 GROUP BY c0 HAVING c0 > 0 AND s > 1 ORDER BY 1",
]


@pytest.mark.parametrize("sql", QUERIES)
def test_like_sqlite(tmp_path, sql):
    ref = sqlite3.connect(":memory:")
    for s in SETUP:
        ref.execute(s)
    want = ref.execute(sql).fetchall()
    with Database.open(tmp_path / "db") as db:
        for s in SETUP:
            db.execute_sql(s)
        assert db.execute_sql(sql).rows == want


def test_a_having_term_on_a_nocase_group_stays_a_having_term(tmp_path):
    """A NOCASE group shows its first row's value: moved into WHERE, n = 'a' would
    drop the 'A' row, which is the same group (SQLite moves only BINARY terms)."""
    with Database.open(tmp_path / "db") as db:
        for s in SETUP:
            db.execute_sql(s)
        plan = [
            r[0]
            for r in db.execute_sql(
                "EXPLAIN QUERY PLAN SELECT n, count(*) FROM t0 GROUP BY n HAVING n = 'a'"
            ).rows
        ]
        assert not any("FILTER" in line and "n = 'a'" in line for line in plan), plan
        assert db.execute_sql("SELECT n, count(*) FROM t0 GROUP BY n HAVING n = 'a'").rows == [
            ("a", 2)
        ]
