"""The NOCASE and RTRIM collations (toondb.sql.collation) against SQLite's
COLLATE; stdlib sqlite3 (3.40) is the reference: these have not changed."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import toondb
from toondb.errors import SQLError
from toondb.sql.collation import COLLATIONS, collation, key_nocase, key_rtrim

_text = st.lists(st.sampled_from(list("aAbBzZ é É ß\tÄä_[`{@") + ["  "]), max_size=6).map("".join)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(a=_text, b=_text)
def test_comparators_agree_with_sqlite(a, b):
    conn = sqlite3.connect(":memory:")
    for name in ("BINARY", "NOCASE", "RTRIM"):
        lt, eq = conn.execute(
            f"SELECT ? < ? COLLATE {name}, ? = ? COLLATE {name}", (a, b, a, b)
        ).fetchone()
        key, compare = collation(name)
        assert compare(a, b) == (-1 if lt else (0 if eq else 1)), (name, a, b)
        assert (key(a) == key(b)) == bool(eq)
        assert (key(a) < key(b)) == bool(lt)


@settings(max_examples=50, deadline=None, derandomize=True)
@given(values=st.lists(_text, max_size=25))
def test_sort_and_group_like_sqlite(values):
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t(x TEXT)")
    conn.executemany("INSERT INTO t VALUES (?)", [(v,) for v in values])
    for name, (key, _) in COLLATIONS.items():
        want = [r[0] for r in conn.execute(f"SELECT x FROM t ORDER BY x COLLATE {name}, x")]
        assert sorted(values, key=lambda v, k=key: (k(v), v)) == want
        groups = conn.execute(f"SELECT count(DISTINCT x COLLATE {name}) FROM t").fetchone()[0]
        assert len({key(v) for v in values}) == groups


def test_rules():
    assert key_nocase("ÄbC") == "Äbc"  # only A-Z fold
    assert key_nocase(5) == 5 and key_nocase(None) is None and key_nocase(b"AB") == b"AB"
    assert key_rtrim("a \t  ") == "a \t"  # only spaces
    assert collation("nocase")[0] is key_nocase
    with pytest.raises(SQLError, match="no such collation sequence: fancy"):
        collation("fancy")


def test_a_left_column_without_a_declared_collation_compares_binary(tmp_path):
    """datatype3 7.1: a column on the left decides even when it declares no
    collation (BINARY); a column under + or CAST is still that column."""
    from toondb import Database

    sql = "SELECT b = a, a = b, +b = a, CAST(b AS TEXT) = a, b || '' = a, (b) = a FROM x"
    db = Database.open(str(tmp_path / "db"))
    conn = sqlite3.connect(":memory:")
    for c in (db, conn):
        c.execute("CREATE TABLE x (b TEXT, a TEXT COLLATE NOCASE)")
        c.execute("INSERT INTO x VALUES ('A', 'a')")
    assert [tuple(r) for r in db.execute(sql).rows] == conn.execute(sql).fetchall()
    db.close()


# ---------------------------------------------------------------- COLLATE inside expressions

_NESTED_EXPRS = [
    "(b COLLATE NOCASE) || 'x'", "'x' || (b COLLATE NOCASE)", "upper(b COLLATE NOCASE)",
    "a || ''", "+a", "CAST(a AS TEXT)", "(b COLLATE RTRIM) || (a COLLATE BINARY)",
    "CASE WHEN 1 THEN b COLLATE NOCASE END", "coalesce(b, a COLLATE NOCASE)",
    "-(b COLLATE NOCASE)", "(SELECT b COLLATE NOCASE)", "r", "a",
]  # fmt: skip
_OTHERS = ["'abcx'", "'ABCX'", "'abc'", "'ABC '", "b", "a", "'B'", "'b  '"]


@pytest.mark.parametrize("expr", _NESTED_EXPRS)
def test_a_collate_inside_an_expression_decides_as_in_sqlite(tmp_path, expr):
    """SQLite's sqlite3ExprCollSeq: an explicit COLLATE anywhere inside an operand
    (left first, not inside a subquery) gives the operand its collation; a column's
    declared collation only when the operand is the column (under + or CAST)."""
    db = toondb.Database.open(str(tmp_path / "db"))
    sq = sqlite3.connect(":memory:")
    try:
        for c in (db, sq):
            c.execute(
                "CREATE TABLE t(id INTEGER PRIMARY KEY, a TEXT COLLATE NOCASE, b TEXT,"
                " r TEXT COLLATE RTRIM)"
            )
            for v in [
                ("Abc", "abc", "x "),
                ("abc", "ABC", "X"),
                ("b ", "B", "b"),
                ("ä", "Ä", "a  "),
            ]:
                c.execute("INSERT INTO t(a, b, r) VALUES (?, ?, ?)", v)
        for o in _OTHERS:
            for q in (
                f"SELECT id FROM t WHERE {expr} = {o} ORDER BY id",
                f"SELECT id FROM t WHERE {o} = {expr} ORDER BY id",
                f"SELECT id FROM t WHERE {expr} < {o} ORDER BY id",
                f"SELECT {expr} FROM t ORDER BY {expr}, id",
                f"SELECT DISTINCT {expr} FROM t ORDER BY 1",
            ):
                assert db.execute(q).rows == sq.execute(q).fetchall(), q
    finally:
        db.close()
        sq.close()


# ---------------------------------------------------------------- collations out of subqueries

_SUBQUERY_SOURCES = [
    "(SELECT a, b, r, b COLLATE NOCASE AS bn, a || '' AS ax FROM t)",
    "v",
    "(SELECT a, b, r, b COLLATE NOCASE AS bn, a || '' AS ax FROM t"
    " UNION ALL SELECT b, a, r, b, b FROM t)",
    "c",
]


@pytest.fixture
def collated_pair(tmp_path):
    db = toondb.Database.open(str(tmp_path / "db"))
    sq = sqlite3.connect(":memory:")
    for c in (db, sq):
        c.execute(
            "CREATE TABLE t(id INTEGER PRIMARY KEY, a TEXT COLLATE NOCASE, b TEXT,"
            " r TEXT COLLATE RTRIM)"
        )
        for v in [("Abc", "abc", "x "), ("abc", "ABC", "X"), ("b ", "B", "b"), ("ä", "Ä", "a  "),
                  ("ABC", "b", "x")]:  # fmt: skip
            c.execute("INSERT INTO t(a, b, r) VALUES (?, ?, ?)", v)
        c.execute("CREATE VIEW v AS SELECT a, b, r, b COLLATE NOCASE AS bn, a || '' AS ax FROM t")
    yield db, sq
    db.close()
    sq.close()


@pytest.mark.parametrize("source", _SUBQUERY_SOURCES)
@pytest.mark.parametrize("col", ["a", "b", "r", "bn", "ax"])
def test_a_subquery_view_or_cte_column_keeps_its_collation(collated_pair, source, col):
    """SQLite gives a subquery's (view's, CTE's) output column the collation of its
    expression (sqlite3SubqueryColumnTypes): comparisons, GROUP BY, DISTINCT and
    ORDER BY over it follow it."""
    db, sq = collated_pair
    with_c = "WITH c AS (SELECT a, b, r, b COLLATE NOCASE AS bn, a || '' AS ax FROM t) "
    prefix = with_c if source == "c" else ""
    for q in (
        f"SELECT DISTINCT {col} FROM {source} AS s ORDER BY 1",
        f"SELECT {col}, count(*) FROM {source} AS s GROUP BY {col} ORDER BY 1",
        f"SELECT count(*) FROM {source} AS s WHERE {col} = 'abc'",
        f"SELECT count(*) FROM {source} AS s WHERE 'ABC' = {col}",
        f"SELECT {col} FROM {source} AS s ORDER BY {col}, 1",
    ):
        q = prefix + q
        assert db.execute(q).rows == sq.execute(q).fetchall(), q


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT a FROM t UNION SELECT b FROM t ORDER BY 1",
        "SELECT b FROM t UNION SELECT a FROM t ORDER BY 1",
        "SELECT 'x' UNION SELECT a FROM t ORDER BY 1",
        "SELECT a FROM t INTERSECT SELECT b FROM t ORDER BY 1",
        "SELECT a FROM t EXCEPT SELECT b FROM t ORDER BY 1",
        "SELECT b FROM t EXCEPT SELECT a FROM t ORDER BY 1",
        "SELECT count(*) FROM (SELECT a FROM t UNION SELECT a FROM t)",
        "WITH RECURSIVE c(x) AS (SELECT a FROM t UNION SELECT x FROM c)"
        " SELECT count(*) FROM c WHERE x = 'ABC'",
    ],
)
def test_compound_selects_compare_under_the_leftmost_collation(collated_pair, sql):
    """UNION, INTERSECT, EXCEPT and a compound's ORDER BY compare each column under
    the collation of the leftmost SELECT that gives it one (multiSelectCollSeq).
    Which of several rows equal under it a UNION keeps is SQLite's plan's choice:
    compared here under the collation (toondb keeps the first)."""
    db, sq = collated_pair
    got, want = db.execute(sql).rows, sq.execute(sql).fetchall()
    fold = lambda rows: [tuple(key_nocase(v) for v in r) for r in rows]  # noqa: E731
    assert fold(got) == fold(want), (got, want)
    if " UNION SELECT" not in sql:
        assert got == want
