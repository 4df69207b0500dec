"""json_each / json_tree in FROM, against stdlib sqlite3: constant and correlated
arguments (``FROM t, json_each(t.doc) AS j``), paths, LEFT JOIN, filters on the
function's columns, SELECT * without the HIDDEN columns json and root, and
correlated subqueries over a table-valued function."""

from __future__ import annotations

import json
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toondb import Database
from toondb.errors import SQLError

DOCS = [
    (1, '{"a": 1, "b": [1, 2, {"c": "x"}], "d": null}', "$.b"),
    (2, '[10, 20.5, "s", true, false, null, [1], {}]', "$"),
    (3, '{"b": []}', "$.b"),
    (4, '"scalar"', "$"),
    (5, None, "$"),
    (6, '{"k": {"b": [7]}}', "$.k"),
]

QUERIES = [
    "SELECT t.id, j.key, j.value, j.type FROM t, json_each(t.doc) AS j ORDER BY 1, j.id",
    "SELECT t.id, j.key, j.value FROM t JOIN json_each(t.doc, t.p) j ORDER BY 1, j.id",
    "SELECT t.id, j.fullkey, j.atom, j.path, j.parent IS NULL FROM t, json_tree(t.doc) j"
    " ORDER BY 1, j.id",
    "SELECT t.id, j.value FROM t LEFT JOIN json_each(t.doc, '$.b') j ORDER BY 1, j.id",
    "SELECT t.id, count(*) FROM t, json_each(t.doc) GROUP BY t.id ORDER BY 1",
    "SELECT t.id, j.value FROM t, json_each(t.doc) j WHERE j.type = 'integer' ORDER BY 1, 2",
    # id and parent are left out: toondb numbers nodes as SQLite 3.51, stdlib's 3.40 differs
    "SELECT key, value, type, atom, fullkey, path FROM json_each('[1, 2, {\"a\": 3}]')",
    "SELECT key, value, type, atom, fullkey, path FROM json_tree('{\"a\": [1, {\"b\": 2}]}', '$.a')",
    "SELECT j.json, j.root, j.key FROM json_each('[5, 6]', '$') j",
    "SELECT key, value FROM json_each('{\"x\": 1, \"y\": [2]}') WHERE key = 'y'",
    "SELECT id, (SELECT sum(value) FROM json_each(t.doc, '$.b') WHERE type = 'integer')"
    " FROM t ORDER BY id",
    "SELECT a.value, b.value FROM json_each('[1, 2]') a, json_each('[3, 4]') b ORDER BY 1, 2",
    "SELECT j.value FROM json_each('[3, 1, 2]') j ORDER BY j.value DESC",
]


@pytest.fixture
def pair(tmp_path):
    db = Database.open(str(tmp_path / "db"))
    sq = sqlite3.connect(":memory:")
    for c in (db, sq):
        c.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, doc TEXT, p TEXT)")
        for row in DOCS:
            c.execute("INSERT INTO t VALUES (?, ?, ?)", row)
    yield db, sq
    db.close()
    sq.close()


@pytest.mark.parametrize("sql", QUERIES)
def test_like_sqlite(pair, sql):
    db, sq = pair
    want = [tuple(r) for r in sq.execute(sql).fetchall()]
    got = [tuple(r) for r in db.execute(sql).rows]
    assert got == want


def test_star_names_visible_columns(pair):
    db, sq = pair
    sql = "SELECT * FROM t, json_each(t.doc) j WHERE t.id = 1"
    want = [d[0] for d in sq.execute(sql).description]
    assert db.execute(sql).columns == want


def test_malformed_json_and_unknown_function(pair):
    db, _ = pair
    db.execute("INSERT INTO t VALUES (9, '[1,', '$')")
    with pytest.raises(SQLError, match="malformed JSON"):
        db.execute("SELECT j.value FROM t, json_each(t.doc) j")
    with pytest.raises(SQLError, match="no such table-valued function"):
        db.execute("SELECT * FROM nope(1)")


# no NUL (sqlite3 3.40 cuts text there) and no lone surrogates
_chars = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(_chars, max_size=4),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(_chars, max_size=3), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=40, deadline=None)
@given(docs=st.lists(json_values, min_size=1, max_size=5))
def test_generated_documents(tmp_path_factory, docs):
    path = tmp_path_factory.mktemp("gen")
    db = Database.open(str(path / "db"))
    sq = sqlite3.connect(":memory:")
    try:
        for c in (db, sq):
            c.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, doc TEXT)")
            for i, d in enumerate(docs):
                c.execute("INSERT INTO t VALUES (?, ?)", (i, json.dumps(d)))
        for fn in ("json_each", "json_tree"):
            sql = (
                f"SELECT t.id, j.key, j.value, j.type, j.atom, j.fullkey, j.path"
                f" FROM t, {fn}(t.doc) j ORDER BY t.id, j.id"
            )
            assert db.execute(sql).rows == sq.execute(sql).fetchall(), (fn, docs)
    finally:
        db.close()
        sq.close()
