"""Full-text search: toondb.text's FullTextIndex side by side with SQLite's FTS5
(the stdlib sqlite3), in one run.

    python -m pytest bench/bench_fulltext.py --benchmark-only -p no:cacheprovider -q -s

Corpus (fulltext_data.py): 30,000 distinct paragraphs of the standard
library's docstrings and comments, two columns (qualified name, paragraph).

- build: a fresh index, every row inserted through the Python API
  (``FullTextIndex.insert``; FTS5: ``executemany`` of INSERT), in one
  transaction, committed. FTS5 is contentless (``content=''``), as toondb's
  index stores no row text either (the SQL layer keeps it).
- queries: 1,000 mixed queries (terms, prefixes, phrases, NEAR, OR / NOT,
  column filters), top 10 by rank each: ``index.search(q, limit=10)`` on one
  handle against ``SELECT rowid, rank FROM t WHERE t MATCH ? ORDER BY rank
  LIMIT 10``.
- size: the page file against the SQLite file after the build.

Targets (issue 16): build and queries within 3x of FTS5's time, size within 1.5x.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile

import pytest
from fulltext_data import corpus, queries

from toondb import Database
from toondb.text import FullTextIndex

_dir = tempfile.mkdtemp(prefix="toondb-bench-fulltext-")
_round = [0]
_sizes: dict[str, int] = {}


def teardown_module(module):
    shutil.rmtree(_dir, ignore_errors=True)


def _path(name: str) -> str:
    _round[0] += 1
    return os.path.join(_dir, f"{name}-{_round[0]}")


def build_toondb(path: str) -> Database:
    db = Database.open(path)
    with db.transaction() as txn:
        ix = FullTextIndex.create(txn, "docs", ["name", "body"])
        for rowid, (name, body) in enumerate(corpus(), start=1):
            ix.insert(rowid, [name, body])
        ix.flush()
    return db


def build_fts5(path: str) -> sqlite3.Connection:
    con = sqlite3.connect(path)
    con.execute("CREATE VIRTUAL TABLE docs USING fts5(name, body, content='')")
    with con:
        con.executemany(
            "INSERT INTO docs(rowid, name, body) VALUES (?, ?, ?)",
            ((i, n, b) for i, (n, b) in enumerate(corpus(), start=1)),
        )
    return con


@pytest.fixture(scope="module")
def built():
    corpus()
    queries()
    tpath, spath = _path("toondb"), _path("fts5.db")
    db = build_toondb(tpath)
    con = build_fts5(spath)
    _sizes["toondb"] = os.path.getsize(os.path.join(tpath, "toondb.data"))
    _sizes["fts5"] = os.path.getsize(spath)
    yield db, con
    db.close()
    con.close()


@pytest.mark.parametrize("engine", ["toondb", "fts5"])
def test_build(benchmark, engine):
    benchmark.group = "fulltext: index 30k paragraphs (rows/s)"
    rows = corpus()
    made = []

    def run():
        path = _path(engine if engine == "toondb" else "fts5.db")
        made.append(path)
        handle = build_toondb(path) if engine == "toondb" else build_fts5(path)
        handle.close()

    benchmark.pedantic(run, rounds=3, iterations=1)
    for path in made:
        shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.remove(path)
    benchmark.extra_info.update(engine=engine, ops=len(rows), unit="rows/s")


@pytest.mark.parametrize("engine", ["toondb", "fts5"])
def test_queries_top10(benchmark, built, engine):
    benchmark.group = "fulltext: 1000 mixed queries, top 10 by rank"
    db, con = built
    qs = queries()
    if engine == "toondb":
        txn = db.transaction(read_only=True)
        ix = FullTextIndex.open(txn, "docs")

        def run():
            return sum(len(ix.search(q, limit=10)) for q in qs)

        found = benchmark.pedantic(run, rounds=5, iterations=1)
        txn.abort()
    else:
        sql = "SELECT rowid, rank FROM docs WHERE docs MATCH ? ORDER BY rank LIMIT 10"

        def run():
            return sum(len(con.execute(sql, (q,)).fetchall()) for q in qs)

        found = benchmark.pedantic(run, rounds=5, iterations=1)
    assert found > 1000
    benchmark.extra_info.update(engine=engine, ops=len(qs), unit="queries/s")


@pytest.mark.parametrize("engine", ["toondb", "fts5"])
def test_index_size(benchmark, built, engine):
    benchmark.group = "fulltext: file size after the build (smaller is better)"
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    benchmark.extra_info.update(engine=engine, size=_sizes[engine])
    if engine == "fts5":
        ratio = _sizes["toondb"] / _sizes["fts5"]
        benchmark.extra_info["summary"] = [f"fulltext size toondb/fts5: {ratio:.2f}x (target 1.5x)"]


# ---- the SQL path: CREATE VIRTUAL TABLE ... USING fts5 (with its content) on both


def sql_rows() -> list[tuple[int, str, str]]:
    """The corpus as (rowid, name, body), made before any timing starts."""
    return [(i, n, b) for i, (n, b) in enumerate(corpus(), start=1)]


def build_sql(engine: str, path: str, rows: list[tuple[int, str, str]]) -> object:
    ins = "INSERT INTO docs(rowid, name, body) VALUES (?, ?, ?)"
    if engine == "toondb":
        db = Database.open(path)
        db.execute("CREATE VIRTUAL TABLE docs USING fts5(name, body)")
        db.executemany(ins, rows)
        return db
    con = sqlite3.connect(path)
    con.execute("CREATE VIRTUAL TABLE docs USING fts5(name, body)")
    with con:
        con.executemany(ins, rows)
    return con


@pytest.fixture(scope="module")
def built_sql():
    corpus()
    queries()
    rows = sql_rows()
    db = build_sql("toondb", _path("toondb-sql"), rows)
    con = build_sql("fts5", _path("fts5-sql.db"), rows)
    yield db, con
    db.close()  # type: ignore[attr-defined]
    con.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize("engine", ["toondb", "fts5"])
def test_sql_build(benchmark, engine):
    benchmark.group = "fulltext SQL: INSERT 30k paragraphs into an fts5 table (rows/s)"
    rows = sql_rows()
    made = []

    def run():
        path = _path(engine + ("" if engine == "toondb" else ".db"))
        made.append(path)
        build_sql(engine, path, rows).close()  # type: ignore[attr-defined]

    benchmark.pedantic(run, rounds=2, iterations=1)
    for path in made:
        shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.remove(path)
    benchmark.extra_info.update(engine=engine, ops=len(rows), unit="rows/s")


@pytest.mark.parametrize("engine", ["toondb", "fts5"])
def test_sql_queries_top10(benchmark, built_sql, engine):
    benchmark.group = "fulltext SQL: 1000 mixed queries, SELECT ... ORDER BY rank LIMIT 10"
    db, con = built_sql
    qs = queries()
    sql = "SELECT rowid, name, rank FROM docs WHERE docs MATCH ? ORDER BY rank LIMIT 10"
    handle = db if engine == "toondb" else con

    def run():
        return sum(
            len(
                list(
                    handle.execute(sql, (q,)).fetchall()
                    if engine == "fts5"
                    else handle.execute(sql, [q]).rows
                )
            )
            for q in qs
        )  # type: ignore[attr-defined]

    found = benchmark.pedantic(run, rounds=3, iterations=1)
    assert found > 1000
    benchmark.extra_info.update(engine=engine, ops=len(qs), unit="queries/s")
