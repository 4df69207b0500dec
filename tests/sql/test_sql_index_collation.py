"""Indexes, UNIQUE and PRIMARY KEY under NOCASE and RTRIM, against stdlib sqlite3:
an index key column takes its COLLATE (else its column's collation), UNIQUE
rejects values equal under it with SQLite's error, INSERT OR REPLACE / IGNORE
and upserts find the conflicting row under it, and a query gives SQLite's rows
whether the planner reads such an index (only when the comparison's collation
is the index column's) or not (``NOT INDEXED``)."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toondb import Database
from toondb.errors import ConstraintError
from toondb.sql import catalog
from toondb.sql.collation import key_nocase, key_rtrim

SCHEMAS = {
    # column collations carried into a UNIQUE constraint and indexes
    "unique": [
        "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT COLLATE NOCASE UNIQUE,"
        " r TEXT COLLATE RTRIM UNIQUE, b TEXT, n INT)",
        "CREATE INDEX t_b ON t(b COLLATE NOCASE)",
        "CREATE INDEX t_brn ON t(b COLLATE RTRIM, n)",
    ],
    # a PRIMARY KEY (not the rowid) over two collated key columns
    "pk": [
        "CREATE TABLE t (id INT, a TEXT, r TEXT, b TEXT, n INT,"
        " PRIMARY KEY (a COLLATE NOCASE, r COLLATE RTRIM))",
        "CREATE UNIQUE INDEX t_b ON t(b COLLATE RTRIM)",
    ],
    # plain indexes, one of them BINARY over a NOCASE column, and a UNIQUE pair
    "mixed": [
        "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT COLLATE NOCASE, r TEXT COLLATE RTRIM,"
        " b TEXT, n INT, UNIQUE (b COLLATE NOCASE, n))",
        "CREATE INDEX t_a ON t(a)",
        "CREATE INDEX t_ab ON t(a COLLATE BINARY)",
        "CREATE INDEX t_r ON t(r, n)",
    ],
}

INSERTS = [
    "INSERT INTO t (id, a, r, b, n) VALUES (?, ?, ?, ?, ?)",
    "INSERT OR REPLACE INTO t (id, a, r, b, n) VALUES (?, ?, ?, ?, ?)",
    "INSERT OR IGNORE INTO t (id, a, r, b, n) VALUES (?, ?, ?, ?, ?)",
    "INSERT INTO t (id, a, r, b, n) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT DO UPDATE SET n = excluded.n + 100, b = excluded.b",
]

# mixed case, trailing spaces, NULL, non-ASCII letters (NOCASE folds ASCII only)
TEXTS = ["a", "A", "a ", "A  ", "b", "B", "ab", "aB", "", " ", "ä", "Ä", "é ", "_", None, 1, "1"]

QUERIES = [
    "SELECT id FROM t WHERE a = {p} ORDER BY id",
    "SELECT id FROM t WHERE {p} = a ORDER BY id",
    "SELECT id FROM t WHERE a = {p} COLLATE BINARY ORDER BY id",
    "SELECT id FROM t WHERE a COLLATE RTRIM = {p} ORDER BY id",
    "SELECT id FROM t WHERE a COLLATE NOCASE = {p} AND r = 'a' ORDER BY id",
    "SELECT id FROM t WHERE r = {p} ORDER BY id",
    "SELECT id FROM t WHERE r = {p} AND n > 2 ORDER BY id",
    "SELECT id FROM t WHERE b = {p} ORDER BY id",
    "SELECT id FROM t WHERE b = {p} COLLATE NOCASE ORDER BY id",
    "SELECT id FROM t WHERE b COLLATE NOCASE = {p} ORDER BY id",
    "SELECT id FROM t WHERE b COLLATE RTRIM = {p} ORDER BY id",
    "SELECT id FROM t WHERE b COLLATE NOCASE = {p} AND n = 3 ORDER BY id",
    "SELECT id FROM t WHERE a > {p} ORDER BY id",
    "SELECT id FROM t WHERE a <= {p} ORDER BY id",
    "SELECT id FROM t WHERE r >= {p} ORDER BY id",
    "SELECT id FROM t WHERE a BETWEEN {p} AND 'b' ORDER BY id",
    "SELECT id FROM t WHERE a IN ({p}, 'B', 1) ORDER BY id",
    "SELECT id FROM t WHERE b COLLATE NOCASE IN ({p}, 'b') ORDER BY id",
    "SELECT id FROM t WHERE r IN ({p}, 'a') ORDER BY id",
    "SELECT a, id FROM t ORDER BY a, id",
    "SELECT r, id FROM t ORDER BY r DESC, id",
    "SELECT count(*), min(id) FROM t GROUP BY a ORDER BY 2",
    "SELECT x.id, y.id FROM t AS x JOIN t AS y ON y.a = x.b ORDER BY 1, 2",
    "SELECT x.id, y.id FROM t AS x JOIN t AS y ON x.b = y.a ORDER BY 1, 2",
]

# ORDER BY one collated term: rows equal under it may come in either order
ORDERED = [
    ("SELECT a FROM t ORDER BY a", key_nocase),
    ("SELECT a FROM t ORDER BY a DESC", key_nocase),
    ("SELECT r FROM t ORDER BY r", key_rtrim),
    ("SELECT b FROM t ORDER BY b COLLATE NOCASE", key_nocase),
    ("SELECT b FROM t ORDER BY b COLLATE RTRIM DESC", key_rtrim),
]


def _literal(v):
    if v is None:
        return "NULL"
    if isinstance(v, int):
        return str(v)
    return "'" + v.replace("'", "''") + "'"


def _rows(db, sql, params=()):
    return [tuple(r) for r in db.execute(sql, params).rows]


def _outcome(run, sql, params=()):
    try:
        return "ok", run(sql, params)
    except (sqlite3.IntegrityError, ConstraintError) as e:
        # toondb names the values and index after SQLite's message
        return "constraint", str(e).split(" (")[0]


def _not_indexed(sql):
    return re.sub(r"(FROM|JOIN) t( AS \w+)?", r"\g<0> NOT INDEXED", sql)


def _order_key(rows, key):
    """The rows' first values under the collation key, NULLs, numbers, texts."""

    def k(v):
        v = key(v)
        if v is None:
            return (0, 0, "")
        return (2, 0, v) if isinstance(v, str) else (1, v, "")

    return [k(r[0]) for r in rows]


class _Pair:
    """A toondb database and a sqlite3 one given the same statements."""

    def __init__(self, path, schema):
        self.db = Database.open(str(path / "db"))
        self.sq = sqlite3.connect(":memory:", isolation_level=None)
        for stmt in SCHEMAS[schema]:
            self.run(stmt)

    def run(self, sql, params=()):
        """The outcome of sql in both: its rows, or the UNIQUE error SQLite
        names (it checks the newest index first; so does toondb)."""
        got = _outcome(lambda q, p: _rows(self.db, q, p), sql, params)
        want = _outcome(lambda q, p: self.sq.execute(q, p).fetchall(), sql, params)
        assert got == want, (sql, params)
        return got

    def close(self):
        self.db.close()
        self.sq.close()


def _check_queries(pair, probes):
    for p in probes:
        for q in QUERIES:
            sql = q.format(p=_literal(p))
            pair.run(sql)
            assert _rows(pair.db, _not_indexed(sql)) == pair.sq.execute(sql).fetchall(), sql
    for sql, key in ORDERED:
        want = pair.sq.execute(sql).fetchall()
        for form in (sql, _not_indexed(sql)):
            got = _rows(pair.db, form)
            assert _order_key(got, key) == _order_key(want, key), form
            assert sorted(got, key=repr) == sorted(want, key=repr), form


_value = st.sampled_from(TEXTS)
_row = st.tuples(st.integers(1, 12), _value, _value, _value, st.integers(0, 3))


@pytest.mark.parametrize("schema", sorted(SCHEMAS))
@given(
    st.lists(st.tuples(st.sampled_from(range(len(INSERTS))), _row), max_size=14),
    st.lists(_value, min_size=1, max_size=2),
)
@settings(max_examples=40, deadline=None, derandomize=True)
def test_writes_and_reads_like_sqlite(tmp_path_factory, schema, writes, probes):
    pair = _Pair(tmp_path_factory.mktemp("ixcoll"), schema)
    try:
        for which, row in writes:
            pair.run(INSERTS[which], row)
        pair.run("SELECT id, a, r, b, n FROM t ORDER BY id, a, r")
        for sql in (
            "UPDATE t SET a = upper(a) WHERE n = 1",
            "UPDATE t SET r = r || ' ', b = lower(b) WHERE n = 2",
            "UPDATE OR REPLACE t SET a = 'A', r = 'a' WHERE n = 0",
        ):
            pair.run(sql)
            pair.run("SELECT id, a, r, b, n FROM t ORDER BY id, a, r")
        _check_queries(pair, probes)
        pair.db.check(deep=True)
    finally:
        pair.close()


@pytest.fixture
def pair(tmp_path):
    p = _Pair(tmp_path, "unique")
    yield p
    p.close()


def test_unique_under_nocase_and_rtrim(pair):
    pair.run("INSERT INTO t (a, r) VALUES ('abc', 'x')")
    assert pair.run("INSERT INTO t (a, r) VALUES ('ABC', 'y')") == (
        "constraint",
        "UNIQUE constraint failed: t.a",
    )
    assert pair.run("INSERT INTO t (a, r) VALUES ('abd', 'x  ')")[0] == "constraint"
    pair.run("INSERT INTO t (a, r) VALUES ('ÄBC', ' x')")  # Ä is not folded; a leading space counts
    pair.run("INSERT OR REPLACE INTO t (a, r, n) VALUES ('AbC', 'z', 7)")
    pair.run("INSERT INTO t (a, r) VALUES ('abc ', 'x') ON CONFLICT (r) DO UPDATE SET n = 9")
    pair.run(
        "INSERT INTO t (a, r) VALUES ('aBC', 'q') ON CONFLICT (a COLLATE NOCASE) DO UPDATE SET n = 5"
    )
    pair.run("SELECT * FROM t ORDER BY id")
    with pytest.raises(ConstraintError, match="UNIQUE constraint failed: t.a"):
        pair.db.execute("UPDATE t SET a = 'ABC' WHERE a = 'ÄBC'")
    pair.run("UPDATE t SET a = 'ABC' WHERE a = 'abc'")  # the row's own key: no conflict
    pair.run("SELECT * FROM t ORDER BY id")


def test_create_unique_index_over_rows_equal_under_its_collation(pair):
    pair.run("INSERT INTO t (a, b) VALUES ('x', 'Q'), ('y', 'q')")
    assert pair.run("CREATE UNIQUE INDEX t_bu ON t(b COLLATE NOCASE)")[0] == "constraint"
    pair.run("CREATE UNIQUE INDEX t_bu ON t(b)")  # BINARY: 'Q' and 'q' differ
    assert pair.run("INSERT INTO t (a, b) VALUES ('z', 'q ')")[0] == "ok"
    assert pair.run("INSERT INTO t (a, b) VALUES ('w', 'q')")[0] == "constraint"


def _plan(db, sql):
    return " / ".join(r[0] for r in db.execute("EXPLAIN QUERY PLAN " + sql).rows)


def test_the_planner_uses_an_index_only_under_its_collation(pair):
    db = pair.db
    assert "USING INDEX sqlite_autoindex_t_1" in _plan(db, "SELECT * FROM t WHERE a = 'X'")
    assert "USING INDEX sqlite_autoindex_t_1" in _plan(db, "SELECT * FROM t WHERE 'X' = a")
    assert "USING INDEX" not in _plan(db, "SELECT * FROM t WHERE a = 'X' COLLATE BINARY")
    assert "USING INDEX t_b" not in _plan(db, "SELECT * FROM t WHERE b = 'X'")
    assert "USING INDEX t_b " in _plan(db, "SELECT * FROM t WHERE b = 'X' COLLATE NOCASE")
    assert "USING INDEX t_b " in _plan(db, "SELECT * FROM t WHERE b COLLATE NOCASE = 'X'")
    assert "USING INDEX t_brn" in _plan(db, "SELECT * FROM t WHERE b COLLATE RTRIM = 'X'")
    assert "USING INDEX t_b " in _plan(db, "SELECT b FROM t ORDER BY b COLLATE NOCASE")
    assert "SORT" in _plan(db, "SELECT b FROM t ORDER BY b")
    assert "USING INDEX sqlite_autoindex_t_2" in _plan(db, "SELECT r FROM t ORDER BY r")


def test_index_xinfo_shows_the_collations(pair):
    rows = pair.db.execute("PRAGMA index_xinfo(t_brn)").rows
    want = pair.sq.execute("PRAGMA index_xinfo(t_brn)").fetchall()
    assert [tuple(r) for r in rows] == want
    for ix in ("sqlite_autoindex_t_1", "sqlite_autoindex_t_2", "t_b"):
        got = [tuple(r) for r in pair.db.execute(f"PRAGMA index_xinfo({ix})").rows]
        assert got == pair.sq.execute(f"PRAGMA index_xinfo({ix})").fetchall()


def test_schema_sql_keeps_the_collations(tmp_path):
    db = Database.open(str(tmp_path / "db"))
    db.execute(
        "CREATE TABLE s (a TEXT COLLATE NOCASE, b TEXT, c TEXT COLLATE RTRIM UNIQUE,"
        " PRIMARY KEY (b COLLATE NOCASE), UNIQUE (a COLLATE BINARY))"
    )
    db.execute("CREATE INDEX s_a ON s(a)")
    db.execute("CREATE INDEX s_ab ON s(a COLLATE BINARY, b COLLATE RTRIM)")
    from toondb.sql import schema

    with db.transaction(read_only=True) as txn:
        stmts = schema.table(txn, "s").create_sql
    db2 = Database.open(str(tmp_path / "db2"))
    for s in stmts:
        db2.execute(s)
    with db.transaction(read_only=True) as t1, db2.transaction(read_only=True) as t2:
        one, two = catalog.load(t1).table("s"), catalog.load(t2).table("s")
        assert [(ix.name, ix.columns, ix.collations) for ix in one.indexes] == [
            (ix.name, ix.columns, ix.collations) for ix in two.indexes
        ]
    assert "PRIMARY KEY (b COLLATE NOCASE)" in stmts[0]
    assert "CREATE INDEX s_ab ON s (a COLLATE BINARY, b COLLATE RTRIM);" in stmts
    db.close()
    db2.close()


def test_a_binary_index_keeps_the_format_of_older_files(tmp_path):
    """An index written before collations (no "collations" in its catalog JSON)
    is BINARY, whatever its column declares: its keys are what they were, the
    planner reads it only for BINARY comparisons, and check() accepts it."""
    db = Database.open(str(tmp_path / "db"))
    db.execute("CREATE TABLE n (name TEXT COLLATE NOCASE)")
    db.execute("CREATE INDEX n_bin ON n(name COLLATE BINARY)")
    db.execute("INSERT INTO n VALUES ('Bob'), ('BOB'), ('alice')")
    with db.transaction(read_only=True) as txn:
        raw = txn.tree(catalog.CATALOG_TREE).get(b"t:n")
    ix_json = json.loads(raw)["indexes"][0]
    assert "collations" not in ix_json and ix_json["name"] == "n_bin"
    assert db.execute("SELECT count(*) FROM n WHERE name = 'bob'").rows == [(2,)]
    assert "USING INDEX" not in _plan(db, "SELECT * FROM n WHERE name = 'bob'")
    assert "USING INDEX n_bin" in _plan(db, "SELECT * FROM n WHERE name = 'Bob' COLLATE BINARY")
    assert db.execute("SELECT name FROM n WHERE name = 'Bob' COLLATE BINARY").rows == [("Bob",)]
    db.check(deep=True)
    db.close()


@pytest.mark.parametrize("coll", ["BINARY", "NOCASE"])
def test_update_or_replace_does_not_bring_back_a_row_it_replaced(tmp_path, coll):
    """The first row's new key replaces the second row; the second is then not
    updated (it is gone), as in SQLite."""
    db = Database.open(str(tmp_path / "db"))
    sq = sqlite3.connect(":memory:", isolation_level=None)
    for c in (db, sq):
        c.execute(f"CREATE TABLE u (a TEXT COLLATE {coll}, r TEXT, n INT, PRIMARY KEY (a, r))")
        c.execute("INSERT INTO u VALUES ('q', 'q', 0), ('A', 'a', 0), ('x', 'x', 1)")
        c.execute("UPDATE OR REPLACE u SET a = 'A', r = 'a' WHERE n = 0")
    sql = "SELECT rowid, * FROM u ORDER BY rowid"
    assert _rows(db, sql) == sq.execute(sql).fetchall()
    db.check(deep=True)
    db.close()


FK_SCRIPT = [
    "PRAGMA foreign_keys = ON",
    "CREATE TABLE p (name TEXT COLLATE NOCASE PRIMARY KEY, r TEXT COLLATE RTRIM UNIQUE)",
    "CREATE TABLE c (id INTEGER PRIMARY KEY, pn TEXT REFERENCES p(name), pr TEXT REFERENCES p(r))",
    "CREATE TABLE p2 (name TEXT PRIMARY KEY)",
    "CREATE TABLE c2 (id INTEGER PRIMARY KEY, pn TEXT COLLATE NOCASE REFERENCES p2(name))",
    "CREATE INDEX c2_pn ON c2(pn)",
    "INSERT INTO p VALUES ('abc', 'x'), ('q', 'y')",
    "INSERT INTO p2 VALUES ('abc')",
    "INSERT INTO c VALUES (1, 'ABC', 'x  ')",
    "INSERT INTO c VALUES (2, 'Q', 'y')",
    "INSERT INTO c VALUES (3, 'zz', NULL)",
    "INSERT INTO c VALUES (4, NULL, 'x ')",
    "INSERT INTO c2 VALUES (1, 'ABC')",
    "INSERT INTO c2 VALUES (2, 'abc')",
    "DELETE FROM p WHERE name = 'abc'",
    "DELETE FROM c WHERE id = 1",
    "DELETE FROM p WHERE name = 'abc'",
    "DELETE FROM c WHERE id = 4",
    "DELETE FROM p WHERE name = 'ABC'",
    "DELETE FROM p2",
    "SELECT * FROM p ORDER BY name",
    "SELECT * FROM c ORDER BY id",
]


def test_foreign_keys_compare_under_the_parent_keys_collation(tmp_path):
    """A child value matches its parent key under the parent column's collation,
    on INSERT (the parent exists) and on DELETE of the parent (a child remains)."""
    db = Database.open(str(tmp_path / "db"))
    sq = sqlite3.connect(":memory:", isolation_level=None)
    for sql in FK_SCRIPT:
        got = _outcome(lambda q, p: _rows(db, q, p), sql)
        want = _outcome(lambda q, p: sq.execute(q, p).fetchall(), sql)
        assert got[0] == want[0], (sql, got, want)
        if got[0] == "ok":
            assert got == want, sql
    db.close()
