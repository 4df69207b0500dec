"""GROUP BY and DISTINCT under NOCASE and RTRIM, against stdlib sqlite3: groups
of values equal under the collation, each showing its first row's value (as
SQLite's sorter does), aggregates over the group, HAVING, ORDER BY of the
groups, DISTINCT keeping the first of equal rows; column collations and
COLLATE in the query."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toondb import Database

ROWS = [
    ("x", "X", 1), ("X", "x", 2), ("y", "Y", 3), ("Y ", "y", 4), ("Y", "yy", 5), ("x", "a", 6),
    (None, None, 7), ("y  ", "Y ", 8), ("ä", "Ä", 9), (1, "1", 10), ("1", "1 ", 11),
]  # fmt: skip
SCHEMA = "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT COLLATE NOCASE, b TEXT, n INT, r TEXT COLLATE RTRIM)"  # fmt: skip

QUERIES = [
    "SELECT a, count(*), sum(n) FROM t GROUP BY a",
    "SELECT b COLLATE NOCASE, count(*) FROM t GROUP BY b COLLATE NOCASE",
    "SELECT b COLLATE NOCASE AS k, count(*) FROM t GROUP BY k",
    "SELECT r, count(*), group_concat(n) FROM t GROUP BY r",
    "SELECT b COLLATE RTRIM, count(*) FROM t GROUP BY 1",
    "SELECT a, count(*) FROM t GROUP BY a HAVING count(*) > 1",
    "SELECT a, count(*) FROM t GROUP BY a ORDER BY a DESC",
    "SELECT a, b COLLATE NOCASE, count(*) FROM t GROUP BY a, b COLLATE NOCASE",
    "SELECT DISTINCT a FROM t",
    "SELECT DISTINCT b COLLATE NOCASE FROM t",
    "SELECT DISTINCT r FROM t",
    "SELECT DISTINCT a, b COLLATE NOCASE FROM t",
    "SELECT DISTINCT a FROM t ORDER BY a",
    "SELECT DISTINCT b COLLATE NOCASE FROM t ORDER BY 1 DESC",
]


def _engines(tmp, rows):
    db = Database.open(str(tmp / "db"))
    sq = sqlite3.connect(":memory:")
    for c in (db, sq):
        c.execute(SCHEMA)
        for a, b, n in rows:
            c.execute("INSERT INTO t (a, b, n, r) VALUES (?, ?, ?, ?)", (a, b, n, b))
    return db, sq


@pytest.fixture
def pair(tmp_path):
    db, sq = _engines(tmp_path, ROWS)
    yield db, sq
    db.close()
    sq.close()


@pytest.mark.parametrize("sql", QUERIES)
def test_like_sqlite(pair, sql):
    db, sq = pair
    assert db.execute(sql).rows == sq.execute(sql).fetchall()


_text = st.sampled_from(["a", "A", "a ", "A  ", "b", "B", "ab", "aB", "", " ", None, 1, "1"])


@given(st.lists(st.tuples(_text, _text, st.integers(0, 9)), max_size=12))
@settings(max_examples=50, deadline=None)
def test_generated_rows(tmp_path_factory, rows):
    db, sq = _engines(tmp_path_factory.mktemp("coll"), rows)
    try:
        for sql in QUERIES:
            assert db.execute(sql).rows == sq.execute(sql).fetchall(), (sql, rows)
    finally:
        db.close()
        sq.close()
