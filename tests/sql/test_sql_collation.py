"""The NOCASE and RTRIM collations (toondb.sql.collation) against SQLite's
COLLATE; stdlib sqlite3 (3.40) is the reference: these have not changed."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
