"""Bare columns in aggregate queries, against stdlib sqlite3: a column that is
neither grouped nor aggregated shows the group's first row (SQLite 3.40's
choice; SQLite calls it arbitrary, but applications written against it read
"one row per group" this way), the row of the extreme with a single min() or
max() (the first such row on ties), and a row of NULLs for the one group of an
empty input."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toondb import Database

SCHEMA = "CREATE TABLE t (id INTEGER PRIMARY KEY, g INT, v TEXT, n INT)"
QUERIES = [
    "SELECT g, v, count(*) FROM t GROUP BY g",
    "SELECT g, v, n, sum(n) FROM t WHERE n > 2 GROUP BY g",
    "SELECT v, count(*) FROM t",
    "SELECT v, n, avg(n) FROM t WHERE n < 5",
    "SELECT g, v, max(n) FROM t GROUP BY g",
    "SELECT g, v, min(n) FROM t GROUP BY g",
    "SELECT v, max(n) FROM t",
    "SELECT g, v, count(*) FROM t GROUP BY g HAVING count(*) > 1",
    "SELECT g, (SELECT v || '!') AS s, count(*) FROM t GROUP BY g",
    "SELECT g, id, group_concat(v) FROM t GROUP BY g ORDER BY 3",
]


def _load(db, sq, rows):
    for c in (db, sq):
        c.execute(SCHEMA)
        for g, v, n in rows:
            c.execute("INSERT INTO t (g, v, n) VALUES (?, ?, ?)", (g, v, n))


@pytest.mark.parametrize("sql", QUERIES)
def test_like_sqlite(tmp_path, sql):
    rows = [(1, "a", 3), (1, "b", 7), (2, "c", 7), (1, "z", 7), (2, "d", 1), (None, "e", 4)]
    db, sq = Database.open(str(tmp_path / "db")), sqlite3.connect(":memory:")
    try:
        _load(db, sq, rows)
        assert db.execute(sql).rows == sq.execute(sql).fetchall()
        if "GROUP BY" not in sql and "WHERE" not in sql:
            empty = sql + " WHERE 0"  # one group of no rows: bare columns are NULL
            assert db.execute(empty).rows == sq.execute(empty).fetchall()
    finally:
        db.close()
        sq.close()


@given(
    st.lists(
        st.tuples(st.sampled_from([1, 2, 3, None]), st.text("abc", max_size=2), st.integers(0, 9)),
        max_size=14,
    )
)
@settings(max_examples=60, deadline=None)
def test_generated_rows(tmp_path_factory, rows):
    db = Database.open(str(tmp_path_factory.mktemp("bare") / "db"))
    sq = sqlite3.connect(":memory:")
    try:
        _load(db, sq, rows)
        for sql in QUERIES:
            assert db.execute(sql).rows == sq.execute(sql).fetchall(), (sql, rows)
    finally:
        db.close()
        sq.close()
