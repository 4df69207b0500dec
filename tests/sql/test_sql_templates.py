"""The template cache (toondb/sql/statements.py): a statement that differs from one
seen before only in its literals reuses that one's parse and plan. Property: for
generated statements, the result through the template path (rows and column names)
equals the result of parsing the text directly, and sqlite3's column names."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toondb import Database, SQLError
from toondb.sql import statements

SETUP = [
    "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b TEXT, c REAL, d BLOB)",
    "CREATE INDEX t_a ON t(a)",
    "INSERT INTO t VALUES (1, 10, 'x', 1.5, X'00'), (2, 20, 'y''s', -2.0, NULL),"
    " (3, 10, NULL, 0.25, X'FF10'), (4, -5, 'zz', NULL, X'')",
]

ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
small = st.integers(min_value=-3, max_value=25)
texts = st.text(alphabet="ab'%_ é日", max_size=4)
reals = st.floats(allow_nan=False, allow_infinity=False, width=32)


def q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def num(v: float) -> str:
    return repr(float(v))


SHAPES = [
    st.builds(
        lambda x, y: f"SELECT id, a + {x}, b || {q(y)} FROM t WHERE a > {x} ORDER BY 1",
        small,
        texts,
    ),
    st.builds(lambda x: f"SELECT * FROM t ORDER BY {x}", st.integers(1, 5)),
    st.builds(
        lambda x, k: f"SELECT a, count(*) FROM t GROUP BY {x} ORDER BY {x} LIMIT {k}",
        st.integers(1, 2),
        st.integers(0, 5),
    ),
    st.builds(
        lambda xs: f"SELECT id FROM t WHERE a IN ({', '.join(map(str, xs))}) ORDER BY id",
        st.lists(small, min_size=1, max_size=5),
    ),
    st.builds(lambda x, y: f"SELECT {x}, {q(y)}, {x} * 2, -{x}", ints, texts),
    st.builds(
        lambda r, k, o: f"SELECT id, c FROM t WHERE c < {num(r)} ORDER BY id LIMIT {k} OFFSET {o}",
        reals,
        st.integers(-1, 4),
        st.integers(0, 3),
    ),
    st.builds(lambda y: f"SELECT id FROM t WHERE b LIKE {q(y)} OR d = X'00' ORDER BY id", texts),
    st.builds(
        lambda x: f"SELECT CAST({x} AS VARCHAR(10)), typeof({x})", st.one_of(ints, reals.map(num))
    ),
    st.builds(lambda x, y: f"SELECT * FROM (SELECT a + {x} FROM t WHERE id = {y})", small, small),
    st.builds(
        lambda x, y: f"SELECT CASE WHEN a > {x} THEN {q(y)} ELSE {x} END FROM t ORDER BY id",
        small,
        texts,
    ),
    st.builds(
        lambda x: f"SELECT id FROM t WHERE id BETWEEN {x} AND {x} + 2 ORDER BY id DESC", small
    ),
    st.builds(lambda x: f"VALUES ({x}, {x} + 1), (2, 3)", small),
]


def _run(db, sql):
    try:
        r = db.execute_sql(sql)
    except SQLError as e:
        return ("error", type(e).__name__)
    return (r.columns, r.rows)


@pytest.fixture(scope="module")
def dbs(tmp_path_factory):
    path = tmp_path_factory.mktemp("templates")
    ref = sqlite3.connect(":memory:")
    with Database.open(path / "db") as db:
        for sql in SETUP:
            db.execute_sql(sql)
            ref.execute(sql)
        yield db, ref


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.one_of(*SHAPES), min_size=1, max_size=4))
def test_template_path_equals_the_direct_parse(dbs, sqls):
    db, ref = dbs
    for sql in sqls:
        shared = _run(db, sql)  # through the template cache (warm after the first)
        statements.TEXTS.clear()
        saved = statements._TEMPLATED
        statements._TEMPLATED = frozenset()
        try:
            direct = _run(db, sql)
        finally:
            statements._TEMPLATED = saved
            statements.TEXTS.clear()
        assert shared == direct, sql
        if shared[0] != "error":
            cur = ref.execute(sql)
            assert shared[0] == [d[0] for d in cur.description], sql


def test_the_caches_stay_bounded():
    lru = statements.LRU(3, 10)
    for i in range(10):
        lru.put(i, i, 4)
    assert len(lru) == 2 and lru.size == 8  # 10 chars at most
    lru = statements.LRU(3, 1000)
    for i in range(10):
        lru.put(i, i, 1)
    assert len(lru) == 3 and lru.get(9) == 9 and lru.get(0) is None


def test_a_plan_is_kept_from_a_statements_second_run(tmp_path, monkeypatch):
    """A statement with literals run once leaves no plan behind; at the second
    sighting of its template the plan is kept: later runs, with any literals,
    plan nothing. A statement with parameters only is planned once."""
    from toondb.sql import engine

    compiled: list[object] = []
    real = engine.compile_statement

    def counting(*args: object) -> object:
        compiled.append(args[1])
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "compile_statement", counting)
    with Database.open(tmp_path / "db") as db:
        db.execute_sql("CREATE TABLE t(a, b)")
        db.execute_sql("INSERT INTO t VALUES (1, 2), (3, 4)")
        compiled.clear()
        for n in range(5):
            assert db.execute_sql(f"SELECT b FROM t WHERE a = {2 * n + 1}").rows == (
                [(2,)] if n == 0 else [(4,)] if n == 1 else []
            )
        assert len(compiled) == 2
        compiled.clear()
        for n in range(3):
            assert db.execute_sql("SELECT b FROM t WHERE a = ?", (n,)).rows == (
                [(2,)] if n == 1 else []
            )
        assert len(compiled) == 1


def test_a_text_with_literals_is_cached_from_its_second_sighting(tmp_path):
    """Text built with its values in it is often run once: its parse is kept only
    when it comes again (a text with parameters only: at once)."""
    with Database.open(tmp_path / "db") as db:
        db.execute_sql("CREATE TABLE t(a, b)")
        db.execute_sql("INSERT INTO t VALUES (1, 2)")
        statements.clear_caches()
        once = "SELECT b FROM t WHERE a = 1 -- text-cache probe"
        db.execute_sql(once)
        assert statements.TEXTS.get(once) is None
        assert len(statements.TEMPLATES) == 0
        for _ in range(3):
            assert db.execute_sql(once).rows == [(2,)]
        assert statements.TEXTS.get(once) is not None and len(statements.TEMPLATES) == 1
        # another text of the same template: its template is already kept
        assert db.execute_sql(once.replace("1", "3")).rows == []
        assert len(statements.TEMPLATES) == 1
        with_params = "SELECT b FROM t WHERE a = ? -- text-cache probe"
        db.execute_sql(with_params, (1,))
        assert statements.TEXTS.get(with_params) is not None


def test_seen_once_remembers_a_window_of_recent_keys():
    seen = statements.SeenOnce(8, 1000)
    assert not seen.again("a") and seen.again("a") and not seen.again("a")
    for k in "bcdefghijk":  # more keys than the window: "a" is forgotten
        seen.again(k)
    assert not seen.again("a")
    assert seen.again("k") and seen.again("j")  # the newest are remembered
    small = statements.SeenOnce(100, 10)  # bounded by characters too
    small.again("x" * 4)
    small.again("y" * 4)
    small.again("z" * 4)
    assert not small.again("x" * 4)
