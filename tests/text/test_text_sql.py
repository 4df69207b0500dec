"""Full-text tables through SQL, differentially against SQLite's FTS5: the same
CREATE VIRTUAL TABLE, INSERT / UPDATE / DELETE and SELECT statements run on both,
on a corpus of standard-library docstring paragraphs and queries drawn from it.
Same rowid sets, same ORDER BY rank order, bm25 within 1e-6, same highlight() and
snippet(); also after updates and deletes, with rollback, special commands,
external content tables and joins with ordinary tables."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.text.conftest import reference_sqlite, stdlib_paragraphs
from tests.text.test_text_corpus import corpus_queries
from toondb import Database
from toondb.errors import CorruptionError, FullTextError, SQLError

N_PARAGRAPHS = 800


@pytest.fixture(scope="module")
def paragraphs() -> list[tuple[str, str]]:
    return stdlib_paragraphs(N_PARAGRAPHS)


def both(db: Database, ref, sql: str, params=()) -> tuple[list, list]:
    got = [tuple(r) for r in db.execute(sql, list(params)).rows]
    want = [tuple(r) for r in ref.execute(sql, params).fetchall()]
    return got, want


def same(got: list, want: list, sql: str) -> None:
    assert len(got) == len(want), sql
    for g, w in zip(got, want):
        assert len(g) == len(w), sql
        for a, b in zip(g, w):
            if isinstance(b, float):
                assert a is not None and math.isclose(a, b, rel_tol=0, abs_tol=1e-6), (sql, g, w)
            else:
                assert a == b, (sql, g, w)


def valid(ref, q: str) -> bool:
    try:
        ref.execute("SELECT rowid FROM t WHERE t MATCH ?", (q,)).fetchall()
    except reference_sqlite.OperationalError:
        return False
    return True


QUERIES = [
    "SELECT rowid, rank FROM t WHERE t MATCH ? ORDER BY rank",
    "SELECT rowid, bm25(t, 2.0, 1.0) FROM t WHERE t MATCH ? ORDER BY bm25(t, 2.0, 1.0), rowid",
    "SELECT rowid, highlight(t, 1, '[', ']') FROM t WHERE t MATCH ? ORDER BY rank LIMIT 10",
    "SELECT rowid, snippet(t, -1, '<', '>', '...', 8) FROM t WHERE t = ? ORDER BY rank LIMIT 5",
    "SELECT rowid, a FROM t WHERE t MATCH ? ORDER BY rank DESC LIMIT 7 OFFSET 2",
    "SELECT rowid FROM t WHERE t MATCH ? ORDER BY rowid",
    "SELECT rowid, rank, a FROM t(?) ORDER BY rank LIMIT 10",
]


def make(tmp_path, paragraphs, extra: str = ""):
    db = Database.open(tmp_path / "db")
    ref = reference_sqlite.connect(":memory:")
    for conn in (db, ref):
        conn.execute(f"CREATE VIRTUAL TABLE t USING fts5(a, b{extra})")
    rows = [(i, name, text) for i, (name, text) in enumerate(paragraphs, start=1)]
    db.executemany("INSERT INTO t(rowid, a, b) VALUES (?, ?, ?)", rows)
    ref.executemany("INSERT INTO t(rowid, a, b) VALUES (?, ?, ?)", rows)
    return db, ref


def check_queries(db, ref, queries) -> int:
    n = 0
    for q in queries:
        if not valid(ref, q):
            continue
        for sql in QUERIES:
            got, want = both(db, ref, sql, (q,))
            same(got, want, f"{sql} / {q}")
        n += 1
    return n


def test_sql_queries_match_fts5(tmp_path, paragraphs) -> None:
    db, ref = make(tmp_path, paragraphs)
    with db:
        assert check_queries(db, ref, corpus_queries(paragraphs, 120, seed=16)) > 60
        # a column on the left of MATCH is a column filter
        for q in ("data", "file OR path", '"return the"'):
            same(*both(db, ref, "SELECT rowid, rank FROM t WHERE b MATCH ? ORDER BY rank", (q,)), q)
        db.execute("INSERT INTO t(t) VALUES ('integrity-check')")


def test_sql_after_updates_and_deletes(tmp_path, paragraphs) -> None:
    db, ref = make(tmp_path, paragraphs, ", tokenize='porter', prefix='2 3'")
    with db:
        for conn in (db, ref):
            conn.execute("DELETE FROM t WHERE rowid % 7 = 0")
            conn.execute("UPDATE t SET b = a || ' ' || b WHERE rowid % 5 = 1")
            conn.execute("DELETE FROM t WHERE t MATCH 'module'")
            conn.execute("INSERT INTO t(a, b) VALUES ('new row', 'returns the module data')")
        same(*both(db, ref, "SELECT rowid, a, b FROM t ORDER BY rowid"), "content")
        assert check_queries(db, ref, corpus_queries(paragraphs, 60, seed=17)) > 30
        db.execute("INSERT INTO t(t) VALUES ('optimize')")
        db.execute("INSERT INTO t(t) VALUES ('rebuild')")
        db.execute("INSERT INTO t(t) VALUES ('integrity-check')")
        assert check_queries(db, ref, corpus_queries(paragraphs, 30, seed=18)) > 15
        assert db.check(deep=True)


def test_sql_rollback_leaves_index_as_content(tmp_path, paragraphs) -> None:
    db, ref = make(tmp_path, paragraphs[:200])
    with db:
        before = db.execute("SELECT rowid FROM t WHERE t MATCH 'the' ORDER BY rank").rows
        db.execute("BEGIN")
        db.execute("DELETE FROM t WHERE rowid < 100")
        db.execute("INSERT INTO t(a, b) VALUES ('x', 'the the the')")
        assert db.execute("SELECT count(*) FROM t WHERE t MATCH 'the'").rows != [(len(before),)]
        db.execute("ROLLBACK")
        assert db.execute("SELECT rowid FROM t WHERE t MATCH 'the' ORDER BY rank").rows == before
        # a transaction's own pending rows are visible to its queries, then commit
        with db.transaction() as txn:
            txn.execute("INSERT INTO t(rowid, a, b) VALUES (5000, 'zebra', 'quagga')")
            assert txn.execute("SELECT rowid FROM t WHERE t MATCH 'quagga'").rows == [(5000,)]
        assert db.execute("SELECT rowid FROM t WHERE t MATCH 'zebra'").rows == [(5000,)]
        db.execute("INSERT INTO t(t) VALUES ('integrity-check')")


def test_sql_joins_and_toon(tmp_path, paragraphs) -> None:
    db, ref = make(tmp_path, paragraphs[:300])
    with db:
        for conn in (db, ref):
            conn.execute("CREATE TABLE meta (id INTEGER PRIMARY KEY, tag TEXT)")
            conn.executemany(
                "INSERT INTO meta VALUES (?, ?)", [(i, f"tag{i % 3}") for i in range(1, 301)]
            )
        for sql in (
            "SELECT t.rowid, m.tag, rank FROM t JOIN meta m ON m.id = t.rowid "
            "WHERE t MATCH 'file' ORDER BY rank LIMIT 10",
            "SELECT m.id, m.tag FROM meta m JOIN t ON t.rowid = m.id "
            "WHERE t MATCH 'data' AND m.tag = 'tag1' ORDER BY m.id",
            "SELECT m.tag, count(*) FROM t JOIN meta m ON m.id = t.rowid "
            "WHERE t MATCH 'return' GROUP BY m.tag ORDER BY m.tag",
        ):
            same(*both(db, ref, sql), sql)
        text = db.execute(
            "SELECT rowid, a, rank FROM t WHERE t MATCH ? ORDER BY rank LIMIT 3",
            ["file"],
            format="toon",
        )
        n = len(db.execute("SELECT rowid FROM t WHERE t MATCH ? LIMIT 3", ["file"]).rows)
        assert text.startswith(f"result[{n}]{{rowid,a,rank}}:") and n > 0


def test_external_content_table(tmp_path, paragraphs) -> None:
    db = Database.open(tmp_path / "db")
    ref = reference_sqlite.connect(":memory:")
    rows = [(i, n, t) for i, (n, t) in enumerate(paragraphs[:300], start=1)]
    with db:
        for conn in (db, ref):
            conn.execute("CREATE TABLE docs (id INTEGER PRIMARY KEY, a TEXT, b TEXT)")
            conn.executemany("INSERT INTO docs VALUES (?, ?, ?)", rows)
            conn.execute(
                "CREATE VIRTUAL TABLE t USING fts5(a, b, content='docs', content_rowid='id')"
            )
            conn.execute("INSERT INTO t(t) VALUES ('rebuild')")
        for q in ("file", "data OR path", "ret*"):
            for sql in QUERIES:
                same(*both(db, ref, sql, (q,)), f"{sql} / {q}")
        # kept in step by the statements FTS5's documentation gives
        for conn in (db, ref):
            conn.execute(
                "INSERT INTO t(t, rowid, a, b) SELECT 'delete', id, a, b FROM docs WHERE id < 50"
            )
            conn.execute("DELETE FROM docs WHERE id < 50")
        same(*both(db, ref, "SELECT rowid, rank FROM t WHERE t MATCH 'the' ORDER BY rank"), "x")
        db.execute("INSERT INTO t(t) VALUES ('integrity-check')")


def test_errors_and_drop(tmp_path) -> None:
    with Database.open(tmp_path / "db") as db:
        with pytest.raises(SQLError, match="no such module"):
            db.execute("CREATE VIRTUAL TABLE v USING nosuch(a)")
        with pytest.raises(FullTextError):
            db.execute("CREATE VIRTUAL TABLE v USING fts5(a, tokenize='nosuch')")
        db.execute("CREATE VIRTUAL TABLE v USING fts5(a, b UNINDEXED)")
        db.execute("INSERT INTO v VALUES ('alpha beta', 'gamma')")
        assert db.execute("SELECT b FROM v WHERE v MATCH 'alpha'").rows == [("gamma",)]
        assert db.execute("SELECT b FROM v WHERE v MATCH 'gamma'").rows == []
        with pytest.raises(FullTextError):
            db.execute("SELECT * FROM v WHERE v MATCH 'alpha AND'")
        with pytest.raises(FullTextError):
            db.execute("INSERT INTO v(v) VALUES ('delete-all')")
        db.execute("DROP TABLE v")
        with pytest.raises(SQLError):
            db.execute("SELECT * FROM v")
        with db.transaction(read_only=True) as txn:
            assert not txn.has_tree(b"fts:sql:1")


def test_corrupted_index_is_found(tmp_path) -> None:
    with Database.open(tmp_path / "db") as db:
        db.execute("CREATE VIRTUAL TABLE e USING fts5(a, content='c')")
        db.execute("CREATE TABLE c (a TEXT)")
        db.execute("INSERT INTO c VALUES ('one two')")
        db.execute("INSERT INTO e(rowid, a) VALUES (1, 'three four')")
        with pytest.raises(CorruptionError):
            db.execute("INSERT INTO e(e) VALUES ('integrity-check')")


def _python_fusion(db, query: str, v) -> list[tuple[int, float]]:
    """Reciprocal rank fusion (k = 60) of the top 20 by FTS5 rank and the top 20 by
    L2 distance to v, computed in Python: (id, score), best first."""
    fts = [
        r[0]
        for r in db.execute(
            "SELECT rowid FROM docs_fts WHERE docs_fts MATCH ? ORDER BY rank LIMIT 20", [query]
        ).rows
    ]
    all_rows = db.execute("SELECT id, emb FROM docs").rows
    dist = sorted((float(((e - v) ** 2).sum()), i) for i, e in all_rows)
    vec = [i for _, i in dist[:20]]
    score: dict[int, float] = {}
    for ranked in (fts, vec):
        for r, i in enumerate(ranked, 1):
            score[i] = score.get(i, 0.0) + 1.0 / (60 + r)
    return sorted(score.items(), key=lambda kv: (-kv[1], kv[0]))


def _hybrid_docs(db, paragraphs) -> None:
    db.execute("CREATE TABLE docs (id INTEGER PRIMARY KEY, body TEXT, emb VECTOR(2))")
    db.executemany(
        "INSERT INTO docs VALUES (?, ?, ?)",
        [
            (i, t, np.array([i % 7 + i / 1000, i % 11], dtype=np.float32))
            for i, (_, t) in enumerate(paragraphs[:200], 1)
        ],
    )
    db.execute("CREATE INDEX docs_emb ON docs USING hnsw (emb) WITH (metric = 'l2')")
    db.execute("CREATE VIRTUAL TABLE docs_fts USING fts5(body, content='docs', content_rowid='id')")
    db.execute("INSERT INTO docs_fts(docs_fts) VALUES ('rebuild')")


def test_hybrid_reciprocal_rank_fusion(tmp_path, paragraphs) -> None:
    """The RRF query of docs/fulltext.md as written (row_number() OVER each side's
    order): its scores are the fusion done in Python."""
    with Database.open(tmp_path / "db") as db:
        _hybrid_docs(db, paragraphs)
        v = np.array([1.0, 2.0], np.float32)
        rows = db.execute(
            """
            WITH fts AS (
              SELECT rowid AS id, row_number() OVER (ORDER BY rank) AS r
              FROM docs_fts WHERE docs_fts MATCH :q ORDER BY rank LIMIT 20
            ),
            vec AS (
              SELECT id, row_number() OVER (ORDER BY vec_distance_l2(emb, :v)) AS r
              FROM docs ORDER BY vec_distance_l2(emb, :v) LIMIT 20
            )
            SELECT docs.id,
                   coalesce(1.0 / (60 + fts.r), 0) + coalesce(1.0 / (60 + vec.r), 0) AS score
            FROM docs LEFT JOIN fts ON fts.id = docs.id LEFT JOIN vec ON vec.id = docs.id
            WHERE fts.id IS NOT NULL OR vec.id IS NOT NULL
            ORDER BY score DESC LIMIT 10
            """,
            {"q": "file OR data", "v": v},
        ).rows
        want = _python_fusion(db, "file OR data", v)
        assert len(rows) == 10
        got = sorted(rows, key=lambda r: (-r[1], r[0]))
        assert [r[0] for r in got] == [i for i, _ in want[:10]]
        assert all(math.isclose(a[1], b[1]) for a, b in zip(got, want))


@pytest.mark.damages_files
def test_deep_check_finds_an_index_that_lost_postings(tmp_path) -> None:
    with Database.open(tmp_path / "db") as db:
        db.execute("CREATE VIRTUAL TABLE d USING fts5(a)")
        db.executemany("INSERT INTO d(a) VALUES (?)", [(f"word{i} common",) for i in range(50)])
        assert db.check(deep=True)["fulltext_indexes"] == 1
        with db.transaction() as txn:
            tree = txn.tree(b"fts:sql:1")
            key = next(k for k, _ in tree.scan(b"t0word7", b"t0word8"))
            tree.delete(key)
        with pytest.raises(CorruptionError, match="full-text table d"):
            db.check(deep=True)


EDGE_STATEMENTS = [
    "SELECT rowid, rank FROM t",
    "SELECT rowid, highlight(t, 0, '[', ']'), bm25(t), snippet(t, -1, '<', '>', '..', 3) FROM t",
    "SELECT rowid, a, b FROM t WHERE t MATCH '12'",
    "SELECT rowid, highlight(t, 1, '[', ']') FROM t WHERE t MATCH 'foo OR 3'",
    "SELECT rowid FROM t WHERE t MATCH 'hello' AND rowid > 0",
    "SELECT rowid FROM t WHERE t MATCH 'hello' OR rowid = 10",
    "SELECT count(*) FROM t WHERE t MATCH 'hello OR thing'",
    "SELECT rowid FROM t WHERE rowid = 10 AND t MATCH '12'",
    "SELECT rowid, rank FROM t WHERE t MATCH 'hello' ORDER BY rank DESC LIMIT 1",
    "SELECT rowid, rank FROM t WHERE t MATCH 'y OR hello OR thing' ORDER BY rank LIMIT -1",
    "SELECT rowid FROM t WHERE t MATCH 'hello OR thing' ORDER BY rank LIMIT 1 OFFSET 1",
    "SELECT * FROM t WHERE a MATCH 'foo'",
    "SELECT * FROM t WHERE t MATCH 'a : hello'",
    "SELECT typeof(a), typeof(b) FROM t",
    "SELECT x.rowid, y.rowid FROM t AS x JOIN t AS y ON y.rowid = x.rowid + 1 "
    "WHERE x.t MATCH 'hello' AND y.t MATCH 'thing'",
]


def test_edge_statements_match_fts5(tmp_path) -> None:
    ref = reference_sqlite.connect(":memory:")
    with Database.open(tmp_path / "db") as db:
        for s in (
            "CREATE VIRTUAL TABLE t USING fts5(a, b)",
            "INSERT INTO t VALUES ('hello world. Next sentence here', 'foo bar')",
            "INSERT INTO t VALUES ('other thing', NULL)",
            "INSERT INTO t(rowid, a, b) VALUES (10, 12, 3.5)",
        ):
            db.execute(s)
            ref.execute(s)
        for sql in EDGE_STATEMENTS:
            same(*both(db, ref, sql), sql)


def test_contentless_tables_match_fts5(tmp_path) -> None:
    ref = reference_sqlite.connect(":memory:")
    with Database.open(tmp_path / "db") as db:
        for s in (
            "CREATE VIRTUAL TABLE c USING fts5(a, content='', contentless_delete=1)",
            "CREATE VIRTUAL TABLE u USING fts5(a, content='')",
            "INSERT INTO c(rowid, a) VALUES (1, 'x y'), (5, 'y z'), (9, 'z z y')",
            "INSERT INTO u(rowid, a) VALUES (1, 'x y')",
            "DELETE FROM c WHERE rowid = 5",
        ):
            db.execute(s)
            ref.execute(s)
        for sql in (
            "SELECT rowid, a FROM c",
            "SELECT rowid, rank, a FROM c WHERE c MATCH 'y' ORDER BY rank",
            "SELECT rowid FROM u WHERE u MATCH 'x'",
        ):
            same(*both(db, ref, sql), sql)
        with pytest.raises(SQLError, match="contentless"):
            db.execute("DELETE FROM u WHERE rowid = 1")
        db.execute("INSERT INTO c(c) VALUES ('integrity-check')")
        assert db.check(deep=True)


def test_pending_rows_reach_the_index_through_every_commit_path(tmp_path) -> None:
    """Inserted rows wait in the index's accumulator until the transaction commits
    (no read in between flushes them): each way of committing writes them."""
    with Database.open(tmp_path / "db") as db:
        db.execute("CREATE VIRTUAL TABLE t USING fts5(a)")
        with db.transaction() as txn:
            txn.execute("INSERT INTO t VALUES ('alpha one')")
        db.execute("BEGIN")
        db.execute("INSERT INTO t VALUES ('alpha two')")
        db.execute("COMMIT")
        con = db.connection()
        con.execute("INSERT INTO t VALUES ('alpha three')")
        con.commit()
        txn = db.begin_transaction()
        txn.execute("INSERT INTO t VALUES ('alpha four')")
        txn.commit()
        db.execute("INSERT INTO t VALUES ('alpha five')")
        rows = db.execute("SELECT rowid FROM t WHERE t MATCH 'alpha' ORDER BY rowid").rows
        assert rows == [(1,), (2,), (3,), (4,), (5,)]
        db.execute("INSERT INTO t(t) VALUES ('integrity-check')")


def test_hybrid_fusion_with_ranks_by_count(tmp_path, paragraphs) -> None:
    """The RRF query of docs/fulltext.md with each side's ranks counted by a
    subquery instead of row_number() (until window functions): the full-text CTE,
    the HNSW k-NN CTE and the fusion agree with the same fusion done in Python."""
    with Database.open(tmp_path / "db") as db:
        db.execute("CREATE TABLE docs (id INTEGER PRIMARY KEY, body TEXT, emb VECTOR(2))")
        db.executemany(
            "INSERT INTO docs VALUES (?, ?, ?)",
            [
                (i, t, np.array([i % 7 + i / 1000, i % 11], dtype=np.float32))
                for i, (_, t) in enumerate(paragraphs[:200], 1)
            ],
        )
        db.execute("CREATE INDEX docs_emb ON docs USING hnsw (emb) WITH (metric = 'l2')")
        db.execute(
            "CREATE VIRTUAL TABLE docs_fts USING fts5(body, content='docs', content_rowid='id')"
        )
        db.execute("INSERT INTO docs_fts(docs_fts) VALUES ('rebuild')")
        v = np.array([1.0, 2.0], np.float32)
        rows = db.execute(
            """
            WITH fts AS (
              SELECT rowid AS id, rank AS s FROM docs_fts WHERE docs_fts MATCH ?
              ORDER BY rank LIMIT 20
            ),
            vec AS (
              SELECT id, vec_distance_l2(emb, ?) AS s FROM docs
              ORDER BY vec_distance_l2(emb, ?) LIMIT 20
            ),
            fr AS (SELECT a.id, 1 + (SELECT count(*) FROM fts b
                     WHERE b.s < a.s OR (b.s = a.s AND b.id < a.id)) AS r FROM fts a),
            vr AS (SELECT a.id, 1 + (SELECT count(*) FROM vec b
                     WHERE b.s < a.s OR (b.s = a.s AND b.id < a.id)) AS r FROM vec a)
            SELECT docs.id,
                   coalesce(1.0 / (60 + fr.r), 0) + coalesce(1.0 / (60 + vr.r), 0) AS score
            FROM docs LEFT JOIN fr ON fr.id = docs.id LEFT JOIN vr ON vr.id = docs.id
            WHERE fr.id IS NOT NULL OR vr.id IS NOT NULL
            ORDER BY score DESC, docs.id LIMIT 10
            """,
            ["file OR data", v, v],
        ).rows
        fts = [
            r[0]
            for r in db.execute(
                "SELECT rowid FROM docs_fts WHERE docs_fts MATCH ? ORDER BY rank LIMIT 20",
                ["file OR data"],
            ).rows
        ]
        all_rows = db.execute("SELECT id, emb FROM docs").rows
        dist = sorted((float(((e - v) ** 2).sum()), i) for i, e in all_rows)
        vec = [i for _, i in dist[:20]]
        score: dict[int, float] = {}
        for ranked in (fts, vec):
            for r, i in enumerate(ranked, 1):
                score[i] = score.get(i, 0.0) + 1.0 / (60 + r)
        want = sorted(score.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        assert [r[0] for r in rows] == [i for i, _ in want]
        assert all(math.isclose(a[1], b[1]) for a, b in zip(rows, want))


def test_savepoints_match_fts5(tmp_path, paragraphs) -> None:
    """SAVEPOINT / ROLLBACK TO / RELEASE around full-text writes, against FTS5: rows
    pending in the index's accumulator when a savepoint opens survive a ROLLBACK TO
    it, rows written after it are gone from the index as from the content (at once
    and after COMMIT), with or without a query flushing them in between."""
    db, ref = make(tmp_path, paragraphs[:300])
    ref.commit()
    ref.isolation_level = None
    extra = [(f"extra {i}", text) for i, (_, text) in enumerate(paragraphs[300:420])]
    queries = [q for q in corpus_queries(paragraphs[:420], 40, seed=19) if valid(ref, q)][:12]
    queries += ["extra", "zebra OR quagga", "the"]

    def run(sql: str, params=()) -> None:
        for conn in (db, ref):
            conn.execute(sql, params)

    def insert(rows) -> None:
        for conn in (db, ref):
            conn.executemany("INSERT INTO t(a, b) VALUES (?, ?)", rows)

    def compare(what: str) -> None:
        same(*both(db, ref, "SELECT rowid, a, b FROM t ORDER BY rowid"), what)
        for q in queries:
            for sql in QUERIES[:4]:
                same(*both(db, ref, sql, (q,)), f"{what}: {sql} / {q}")

    with db:
        run("BEGIN")
        insert(extra[:20])  # pending in the accumulator when s1 opens
        run("SAVEPOINT s1")
        insert(extra[20:60])
        run("DELETE FROM t WHERE rowid % 9 = 0")
        run("UPDATE t SET b = 'zebra ' || b WHERE rowid % 11 = 1")
        run("SAVEPOINT s2")
        insert(extra[60:80])
        run("ROLLBACK TO s2")  # no read in between: the rows were only pending
        compare("after ROLLBACK TO s2")
        insert(extra[80:100])
        compare("a read flushed the rows")
        run("INSERT INTO t(a, b) VALUES ('quagga', 'zebra quagga')")
        run("ROLLBACK TO s1")
        compare("after ROLLBACK TO s1")
        insert(extra[100:120])
        run("RELEASE s1")
        run("COMMIT")
        compare("after COMMIT")
        # through the Python API: a savepoint rolled back by an exception
        with db.transaction() as txn:
            txn.execute("INSERT INTO t(a, b) VALUES ('kept', 'zebra kept')")
            with pytest.raises(RuntimeError), txn.savepoint("sp"):
                txn.execute("INSERT INTO t(a, b) VALUES ('undone', 'quagga undone')")
                raise RuntimeError("undo the savepoint")
        rows = db.execute("SELECT a FROM t WHERE t MATCH 'zebra OR quagga' ORDER BY rowid").rows
        assert ("kept",) in rows and ("undone",) not in rows
        db.execute("INSERT INTO t(t) VALUES ('integrity-check')")
        assert db.check(deep=True)["fulltext_indexes"] == 1


def test_window_functions_and_reordered_joins_match_fts5(tmp_path) -> None:
    """Window functions over a full-text search (OVER (ORDER BY rank), a named
    WINDOW, ranks before a LIMIT) and joins the planner may reorder, against FTS5."""
    db = Database.open(tmp_path / "db")
    ref = reference_sqlite.connect(":memory:")
    rows = [(i, f"w{i % 5} x{i % 3} " + "y " * (i % 4)) for i in range(1, 60)]
    for conn in (db, ref):
        conn.execute("CREATE VIRTUAL TABLE t USING fts5(a)")
        conn.executemany("INSERT INTO t(rowid, a) VALUES (?, ?)", rows)
        conn.execute("CREATE TABLE m (id INTEGER PRIMARY KEY, tag TEXT)")
        conn.executemany("INSERT INTO m VALUES (?, ?)", [(i, f"tag{i % 4}") for i in range(1, 60)])
    with db:
        for sql in (
            "SELECT rowid, row_number() OVER w FROM t WHERE t MATCH 'y' "
            "WINDOW w AS (ORDER BY rank, rowid) ORDER BY rowid",
            "SELECT rowid, row_number() OVER (ORDER BY rank, rowid), rank FROM t "
            "WHERE t MATCH 'y' ORDER BY rank, rowid LIMIT 5",
            "SELECT rowid, sum(rowid) OVER (PARTITION BY a ORDER BY rowid) FROM t('x1') "
            "ORDER BY rowid",
            "SELECT m.tag, count(*) FROM m JOIN t ON t.rowid = m.id "
            "WHERE t MATCH 'w1 OR w2' GROUP BY m.tag ORDER BY 1",
            "SELECT m.tag, t.rowid FROM t, m WHERE m.id = t.rowid AND t MATCH 'y' "
            "AND m.tag = 'tag1' ORDER BY 2",
            "SELECT m.tag, t.rowid, bm25(t) FROM m, t('y') WHERE m.id = t.rowid "
            "AND m.tag = 'tag1' ORDER BY 2",
        ):
            same(*both(db, ref, sql), sql)
