"""Vector search from SQL: VECTOR(n) columns, CREATE INDEX ... USING hnsw, and the k-NN
plan (toondb/sql/planner/knn.py), against NumPy's exact search: the promise under
filters at every selectivity for each metric, joins, ties, k above the matching rows,
transactions, the planner's choice, NULL vectors, errors."""

from __future__ import annotations

import numpy as np
import pytest

from toondb import ConstraintError, Database, SchemaError, SQLError, VectorValueError

N, DIM, K = 4000, 16, 10
METRICS = ("l2", "cosine", "ip")
FN = {"l2": "vec_distance_l2", "cosine": "vec_distance_cosine", "ip": "vec_distance_ip"}
SELECTIVITIES = (1.0, 0.5, 0.1, 0.01, 0.001)


def mixture(n, dim, seed):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((20, dim))
    x = centers[rng.integers(0, 20, n)] + 0.5 * rng.standard_normal((n, dim))
    return x.astype(np.float32)


def distances(x, q, metric):
    """The SQL functions' values in float64 (sql/fn_vector.py)."""
    xs, qs = x.astype(np.float64), q.astype(np.float64)
    if metric == "l2":
        return np.sqrt(((xs - qs) ** 2).sum(1))
    if metric == "ip":
        return -(xs @ qs)
    return 1 - (xs @ qs) / (np.linalg.norm(xs, axis=1) * np.linalg.norm(qs))


def exact_ids(x, q, metric, mask, k=K):
    d = distances(x, q, metric)
    d[~mask] = np.inf
    order = np.argsort(d, kind="stable")[: min(k, int(mask.sum()))]
    return order


def recall(found, truth):
    return float(np.mean([len(set(f) & set(t)) / max(len(t), 1) for f, t in zip(found, truth)]))


@pytest.fixture(scope="module")
def data():
    x = mixture(N + 25, DIM, 11)
    cats = np.random.default_rng(3).integers(0, 10_000, N)
    return x[:N], x[N:], cats


def make_db(path, x, cats, metric, index_cat=True):
    db = Database.open(str(path))
    db.execute_sql("CREATE TABLE docs(id INTEGER PRIMARY KEY, cat INT, body TEXT, emb VECTOR(16))")
    db.executemany(
        "INSERT INTO docs VALUES (?, ?, ?, ?)",
        [(i, int(c), f"doc {i}", x[i]) for i, c in enumerate(cats)],
    )
    if index_cat:
        db.execute_sql("CREATE INDEX docs_cat ON docs(cat)")
    db.execute_sql(f"CREATE INDEX docs_emb ON docs USING hnsw (emb) WITH (metric = '{metric}')")
    return db


@pytest.fixture(scope="module", params=METRICS)
def filled(request, tmp_path_factory, data):
    x, _, cats = data
    path = tmp_path_factory.mktemp("knn") / "db"
    db = make_db(path, x, cats, request.param)
    yield request.param, db
    db.close()


def plan(db, sql):
    return "\n".join(r[0] for r in db.execute_sql("EXPLAIN QUERY PLAN " + sql).rows)


# ---------------------------------------------------------------------------------------
# the promise


@pytest.mark.parametrize("indexed", [True, False], ids=["prefilter", "postfilter"])
@pytest.mark.parametrize("sel", SELECTIVITIES)
def test_count_and_recall_under_filters(filled, data, sel, indexed):
    metric, db = filled
    x, qs, cats = data
    bound = int(sel * 10_000)
    mask = cats < bound
    col = "cat" if indexed else "cat + 0"  # no index on the expression: postfilter
    sql = f"SELECT id, {FN[metric]}(emb, ?) AS d FROM docs WHERE {col} < ? ORDER BY d LIMIT {K}"
    assert "USING HNSW INDEX docs_emb" in plan(db, sql)
    found, truth = [], []
    for q in qs:
        rows = db.execute_sql(sql, [q, bound]).rows
        ids = [r[0] for r in rows]
        assert len(ids) == min(K, int(mask.sum()))  # exactly min(k, matching)
        assert all(mask[i] for i in ids)
        d = [r[1] for r in rows]
        assert d == sorted(d)
        assert np.allclose(d, distances(x[ids], q, metric), rtol=1e-6, atol=1e-6)
        found.append(ids)
        truth.append(exact_ids(x, q, metric, mask).tolist())
    assert recall(found, truth) >= 0.95


def test_unfiltered_recall_with_default_ef(filled, data):
    metric, db = filled
    x, qs, _ = data
    found = [
        [
            r[0]
            for r in db.execute_sql(
                f"SELECT id FROM docs ORDER BY {FN[metric]}(emb, ?) LIMIT 10", [q]
            ).rows
        ]
        for q in qs
    ]
    truth = [exact_ids(x, q, metric, np.ones(N, bool)).tolist() for q in qs]
    assert recall(found, truth) >= 0.95


def test_k_larger_than_the_matching_rows(filled, data):
    metric, db = filled
    x, qs, cats = data
    mask = cats < 3
    n = int(mask.sum())
    for col in ("cat", "cat + 0"):
        rows = db.execute_sql(
            f"SELECT id FROM docs WHERE {col} < 3 ORDER BY {FN[metric]}(emb, ?) LIMIT 100", [qs[0]]
        ).rows
        assert sorted(r[0] for r in rows) == sorted(np.flatnonzero(mask).tolist())
        assert len(rows) == n
    none = db.execute_sql(
        f"SELECT id FROM docs WHERE cat < 0 ORDER BY {FN[metric]}(emb, ?) LIMIT 5", [qs[0]]
    ).rows
    assert none == []
    # OFFSET: the rows after the first ones, in order
    a = db.execute_sql(f"SELECT id FROM docs ORDER BY {FN[metric]}(emb, ?) LIMIT 8", [qs[1]]).rows
    b = db.execute_sql(
        f"SELECT id FROM docs ORDER BY {FN[metric]}(emb, ?) LIMIT 5 OFFSET 3", [qs[1]]
    ).rows
    assert b == a[3:8]


# ---------------------------------------------------------------------------------------
# joins, ties, aliases, NULL vectors


def test_join_with_a_filtered_vector_search(tmp_path, data):
    x, qs, cats = data
    db = make_db(tmp_path / "db", x, cats, "l2")
    db.execute_sql("CREATE TABLE cats(id INTEGER PRIMARY KEY, name TEXT, active INT)")
    db.executemany(
        "INSERT INTO cats VALUES (?, ?, ?)", [(c, f"c{c}", int(c % 3 != 0)) for c in range(2000)]
    )
    sql = (
        "SELECT d.id, c.name FROM docs d JOIN cats c ON c.id = d.cat "
        "WHERE c.active = 1 AND d.cat < 2000 ORDER BY vec_distance_l2(d.emb, ?) LIMIT 10"
    )
    text = plan(db, sql)
    assert (
        text.startswith("SEARCH docs USING HNSW INDEX docs_emb") and "STRATEGY prefilter by" in text
    )
    mask = (cats < 2000) & (cats % 3 != 0)
    found, truth = [], []
    for q in qs:
        rows = db.execute_sql(sql, [q]).rows
        assert len(rows) == K
        assert all(name == f"c{cats[i]}" for i, name in rows)
        found.append([i for i, _ in rows])
        truth.append(exact_ids(x, q, "l2", mask).tolist())
    assert recall(found, truth) >= 0.95
    # the vector table second in FROM: the plain plan, the same rows
    other = (
        "SELECT d.id, c.name FROM cats c JOIN docs d ON c.id = d.cat "
        "WHERE c.active = 1 AND d.cat < 2000 ORDER BY vec_distance_l2(d.emb, ?) LIMIT 10"
    )
    assert "HNSW" not in plan(db, other)
    assert [r[0] for r in db.execute_sql(other, [qs[0]]).rows] == truth[0]
    db.close()


def test_order_by_with_ties(tmp_path):
    db = Database.open(str(tmp_path / "db"))
    db.execute_sql("CREATE TABLE t(id INTEGER PRIMARY KEY, v VECTOR(2))")
    rows = [(i, f"[{i % 4}, 0]") for i in range(40)]  # ten rows at each of four points
    db.executemany("INSERT INTO t VALUES (?, ?)", rows)
    db.execute_sql("CREATE INDEX tv ON t USING hnsw (v) WITH (metric = 'l2')")
    for k in (5, 10, 15, 25):
        sql = f"SELECT id, vec_distance_l2(v, '[0.1, 0]') AS d FROM t ORDER BY d LIMIT {k}"
        plain = sql.replace("ORDER BY d", "ORDER BY vec_distance_l2(v, '[0.1, 0]') + 0")
        got = db.execute_sql(sql).rows
        exact = db.execute_sql(plain).rows
        assert "HNSW" in plan(db, sql) and "HNSW" not in plan(db, plain)
        assert [d for _, d in got] == [d for _, d in exact]  # the same distances, in order
        assert len({i for i, _ in got}) == k
        ranks = [i % 4 for i, _ in got]
        assert ranks == sorted(ranks)  # ties grouped, nearest group first
    db.close()


def test_order_by_an_alias_and_either_argument_order(filled, data):
    metric, db = filled
    _, qs, _ = data
    f = FN[metric]
    a = db.execute_sql(f"SELECT id, {f}(emb, ?) AS dist FROM docs ORDER BY dist LIMIT 5", [qs[2]])
    b = db.execute_sql(f"SELECT id FROM docs ORDER BY {f}(?, emb) LIMIT 5", [qs[2]])
    assert [r[0] for r in a.rows] == [r[0] for r in b.rows]
    assert "HNSW" in plan(db, f"SELECT id FROM docs ORDER BY {f}(?, emb) LIMIT 5")


def test_a_correlated_subquery_searches_per_outer_row(tmp_path):
    db = Database.open(str(tmp_path / "db"))
    db.execute_sql("CREATE TABLE docs(id INTEGER PRIMARY KEY, v VECTOR(2))")
    db.executemany("INSERT INTO docs VALUES (?, ?)", [(i, f"[{i}, 0]") for i in range(100)])
    db.execute_sql("CREATE INDEX dv ON docs USING hnsw (v) WITH (metric = 'l2')")
    db.execute_sql("CREATE TABLE probes(id INTEGER PRIMARY KEY, q VECTOR(2))")
    db.executemany(
        "INSERT INTO probes VALUES (?, ?)", [(i, f"[{i * 10 + 0.2}, 1]") for i in range(5)]
    )
    sql = (
        "SELECT p.id, (SELECT d.id FROM docs d ORDER BY vec_distance_l2(d.v, p.q) LIMIT 1) "
        "FROM probes p"
    )
    assert db.execute_sql(sql).rows == [(i, 10 * i) for i in range(5)]
    db.close()


def test_null_vectors_sort_first_as_in_the_plain_plan(tmp_path):
    db = Database.open(str(tmp_path / "db"))
    db.execute_sql("CREATE TABLE t(id INTEGER PRIMARY KEY, tag INT, v VECTOR(3))")
    x = mixture(300, 3, 1)
    db.executemany(
        "INSERT INTO t VALUES (?, ?, ?)",
        [(i, i % 5, None if i % 50 == 7 else x[i]) for i in range(300)],
    )
    db.execute_sql("CREATE INDEX tv ON t USING hnsw (v) WITH (metric = 'l2')")
    for order in ("", " NULLS FIRST", " NULLS LAST"):
        for where in ("", "WHERE tag = 2 ", "WHERE tag + 0 = 2 "):
            sql = f"SELECT id FROM t {where}ORDER BY vec_distance_l2(v, '[0, 0, 0]'){order} LIMIT 9"
            exact = sql.replace("'[0, 0, 0]')", "'[0, 0, 0]') + 0")
            assert "HNSW" in plan(db, sql) and "HNSW" not in plan(db, exact)
            assert db.execute_sql(sql).rows == db.execute_sql(exact).rows, (order, where)
    db.close()


# ---------------------------------------------------------------------------------------
# the planner's choice


def test_the_index_only_when_the_metric_matches_and_a_limit_is_given(tmp_path, data):
    x, qs, cats = data
    db = make_db(tmp_path / "db", x[:500], cats[:500], "l2")
    db.execute_sql("PRAGMA hnsw_ef_search = 500")  # the index then answers exactly here
    q = qs[0]
    cases = {
        "SELECT id FROM docs ORDER BY vec_distance_l2(emb, ?) LIMIT 7": True,
        "SELECT id FROM docs WHERE cat < 5000 ORDER BY vec_distance_l2(emb, ?) LIMIT 7": True,
        "SELECT id FROM docs ORDER BY vec_distance_cosine(emb, ?) LIMIT 7": False,
        "SELECT id FROM docs ORDER BY vec_distance_ip(emb, ?) LIMIT 7": False,
        "SELECT id FROM docs ORDER BY vec_distance_l2(emb, ?)": False,
        "SELECT id FROM docs ORDER BY vec_distance_l2(emb, ?) DESC LIMIT 7": False,
        "SELECT DISTINCT cat FROM docs ORDER BY vec_distance_l2(emb, ?) LIMIT 7": False,
        "SELECT id FROM docs ORDER BY vec_distance_l2(emb, emb) LIMIT 7": False,
    }
    for sql, uses in cases.items():
        text = plan(db, sql)
        assert ("USING HNSW INDEX docs_emb" in text) == uses, (sql, text)
        params = [q] if "?" in sql else []
        got = db.execute_sql(sql, params).rows
        exact = db.execute_sql(sql.replace("(emb, ?)", "(emb, ?) + 0"), params).rows
        assert got == exact, sql
    db.execute_sql("DROP INDEX docs_emb")
    sql = "SELECT id FROM docs ORDER BY vec_distance_l2(emb, ?) LIMIT 7"
    assert "HNSW" not in plan(db, sql)
    db.close()


def test_pragma_hnsw_ef_search(tmp_path):
    db = Database.open(str(tmp_path / "db"))
    assert db.execute_sql("PRAGMA hnsw_ef_search").rows == [(64,)]
    db.execute_sql("PRAGMA hnsw_ef_search = 200")
    assert db.execute_sql("PRAGMA hnsw_ef_search").rows == [(200,)]
    for bad in ("0", "'x'", "70000"):
        with pytest.raises(SQLError, match="hnsw_ef_search"):
            db.execute_sql(f"PRAGMA hnsw_ef_search = {bad}")
    db.close()


# ---------------------------------------------------------------------------------------
# transactions


def near(db, q, k=3, where=""):
    return [
        r[0]
        for r in db.execute_sql(
            f"SELECT id FROM docs {where}ORDER BY vec_distance_l2(emb, ?) LIMIT {k}", [q]
        ).rows
    ]


def test_transactions_move_the_index(tmp_path, data):
    x, qs, cats = data
    db = make_db(tmp_path / "db", x[:1000], cats[:1000], "l2")
    q = qs[3]
    before = near(db, q)
    # an insert in a rolled-back transaction is never found
    db.execute_sql("BEGIN")
    db.execute_sql("INSERT INTO docs VALUES (5000, 1, 'x', ?)", [q])
    assert near(db, q)[0] == 5000  # the transaction sees its own row
    assert near(db, q, where="WHERE cat = 1 ")[0] == 5000
    db.execute_sql("ROLLBACK")
    assert near(db, q) == before
    with pytest.raises(KeyError):
        with db.transaction() as txn:
            txn.execute_sql("INSERT INTO docs VALUES (5001, 1, 'x', ?)", [q])
            assert txn.execute_sql(
                "SELECT id FROM docs ORDER BY vec_distance_l2(emb, ?) LIMIT 1", [q]
            ).rows == [(5001,)]
            raise KeyError("abort")
    assert near(db, q) == before
    # update moves a vector; delete removes it
    far = before[-1]
    db.execute_sql("UPDATE docs SET emb = ? WHERE id = ?", [q, 17])
    assert near(db, q)[0] == 17
    db.execute_sql("UPDATE docs SET emb = ? WHERE id = ?", [x[17] + 100, 17])
    assert 17 not in near(db, q, 50)
    assert near(db, x[17] + 100, 1) == [17]
    db.execute_sql("DELETE FROM docs WHERE id = ?", [before[0]])
    assert near(db, q)[:2] == before[1:3]
    db.execute_sql("UPDATE docs SET id = 7777 WHERE id = ?", [far])  # a new rowid
    assert 7777 in near(db, q, 5) and far not in near(db, q, 5)
    db.execute_sql("UPDATE docs SET emb = NULL WHERE id = 7777")
    assert 7777 not in near(db, q, 50, "WHERE emb IS NOT NULL ")
    assert near(db, q, 1) == [7777]  # a NULL distance sorts first, as in SQLite
    db.execute_sql("DELETE FROM docs WHERE id = 7777")
    # a failing statement inside a transaction leaves the index as it was
    db.execute_sql("BEGIN")
    db.execute_sql("INSERT INTO docs VALUES (6000, 1, 'a', ?)", [q])
    with pytest.raises(ConstraintError):
        db.execute_sql("INSERT INTO docs VALUES (6001, 1, 'b', ?), (6000, 1, 'c', ?)", [q, q])
    assert near(db, q, 2) == [6000, before[1]]
    db.execute_sql("COMMIT")
    assert near(db, q, 2) == [6000, before[1]]
    db.check()
    db.close()
    with Database.open(str(tmp_path / "db")) as again:  # persisted
        assert near(again, q, 2) == [6000, before[1]]


def test_the_committed_working_graph_is_reused_only_for_its_own_state(tmp_path, data):
    """After a commit the process keeps the index's working graph for the next writer
    (toondb/vector/sql_index.py); a rolled-back writer, a failed statement or another
    handle's commit must never let a stale graph be used."""
    from toondb.vector.sql_index import HNSW

    x, qs, cats = data
    path = tmp_path / "db"
    db = make_db(path, x[:600], cats[:600], "l2")
    other = Database.open(str(path))
    q = qs[5]

    def check(handle, expect_first=None):
        """The index plan gives the exact plan's rows (ef above the table's size)."""
        handle.execute_sql("PRAGMA hnsw_ef_search = 1000")
        sql = "SELECT id FROM docs ORDER BY vec_distance_l2(emb, ?) LIMIT 5"
        got = handle.execute_sql(sql, [q]).rows
        assert got == handle.execute_sql(sql.replace("?)", "?) + 0"), [q]).rows
        assert expect_first is None or got[0][0] == expect_first

    db.execute_sql("INSERT INTO docs VALUES (1001, 1, '', ?)", [q])
    assert HNSW._owned[db]  # kept for the next writer
    check(db, 1001)
    db.execute_sql("BEGIN")
    db.execute_sql("INSERT INTO docs VALUES (1002, 1, '', ?)", [q * 0.999])
    db.execute_sql("ROLLBACK")  # it took the kept graph and changed it: not kept again
    db.execute_sql("INSERT INTO docs VALUES (1003, 1, '', ?)", [x[7] + 50])
    check(db, 1001)
    with pytest.raises(ConstraintError):
        db.execute_sql("INSERT INTO docs VALUES (1004, 1, '', ?), (1001, 1, '', ?)", [q, q])
    check(db, 1001)
    other.execute_sql("DELETE FROM docs WHERE id = 1001")  # another handle's commit
    db.execute_sql("INSERT INTO docs VALUES (1005, 1, '', ?)", [x[8] + 50])
    check(db)
    check(other)
    n = db.execute_sql("SELECT count(*) FROM docs WHERE id IN (1001, 1002, 1004)").rows
    assert n == [(0,)]
    db.check()
    other.close()
    db.close()


def test_statements_write_many_rows_at_once(tmp_path, data):
    x, qs, cats = data
    db = Database.open(str(tmp_path / "db"))
    db.execute_sql("CREATE TABLE docs(id INTEGER PRIMARY KEY, cat INT, body TEXT, emb VECTOR(16))")
    db.execute_sql("CREATE INDEX docs_emb ON docs USING hnsw (emb) WITH (metric = 'l2')")
    db.executemany("INSERT INTO docs VALUES (?, ?, ?, ?)", [(i, 0, "", x[i]) for i in range(2000)])
    db.execute_sql("CREATE TABLE copy AS SELECT * FROM docs")
    db.execute_sql("DELETE FROM docs WHERE id % 2 = 0")
    db.execute_sql("INSERT INTO docs SELECT id + 100000, 0, '', emb FROM docs WHERE id < 1000")
    ids = near(db, x[3], 2)
    assert set(ids) == {3, 100003}
    assert near(db, x[4], 1) != [4]
    db.check()
    db.close()


def test_negative_rowids(tmp_path):
    db = Database.open(str(tmp_path / "db"))
    db.execute_sql("CREATE TABLE t(id INTEGER PRIMARY KEY, v VECTOR(2))")
    db.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"[{i}, 0]") for i in range(-20, 20)])
    db.execute_sql("CREATE INDEX tv ON t USING hnsw (v) WITH (metric = 'l2')")
    rows = db.execute_sql("SELECT id FROM t ORDER BY vec_distance_l2(v, '[-7.2, 0]') LIMIT 3").rows
    assert rows == [(-7,), (-8,), (-6,)]
    db.close()


# ---------------------------------------------------------------------------------------
# VECTOR(n) values and DDL errors


def test_vector_values_and_their_errors(tmp_path):
    db = Database.open(str(tmp_path / "db"))
    db.execute_sql("CREATE TABLE t(id INTEGER PRIMARY KEY, v VECTOR(3) NOT NULL)")
    db.execute_sql("INSERT INTO t VALUES (1, ?)", [np.array([1, 2, 3], dtype=np.float64)])
    db.execute_sql("INSERT INTO t VALUES (2, '[4, 5.5, 6]')")
    db.execute_sql("INSERT INTO t VALUES (3, ?)", [np.array([7, 8, 9], np.float32).tobytes()])
    got = db.execute_sql("SELECT v FROM t ORDER BY id").rows
    assert [r[0].tolist() for r in got] == [[1, 2, 3], [4, 5.5, 6], [7, 8, 9]]
    assert all(r[0].dtype == np.float32 for r in got)
    assert db.execute_sql("SELECT typeof(v), length(v) FROM t WHERE id = 2").rows == [("blob", 12)]
    assert db.execute_sql("SELECT vec_to_json(v) FROM t WHERE id = 2").rows == [("[4.0,5.5,6.0]",)]
    for bad, match in (
        (np.zeros(4), r"column t\.v: 4 dimensions"),
        ("[1, 2]", r"column t\.v: 2 dimensions"),
        (np.array([1, np.nan, 2]), r"column t\.v: .*NaN"),
        (np.array([1, np.inf, 2]), r"column t\.v: .*NaN or infinity"),
        (b"\x00" * 8, r"column t\.v: 2 dimensions"),
        (7, r"column t\.v: integer is not a vector"),
        ("hello", r"column t\.v: the text is not a JSON array"),
    ):
        with pytest.raises(VectorValueError, match=match):
            db.execute_sql("INSERT INTO t VALUES (9, ?)", [bad])
        with pytest.raises(VectorValueError, match=match):
            db.execute_sql("UPDATE t SET v = ? WHERE id = 1", [bad])
    assert db.execute_sql("SELECT count(*) FROM t").rows == [(3,)]
    db.close()


def test_create_index_errors_and_persistence(tmp_path):
    db = Database.open(str(tmp_path / "db"))
    db.execute_sql("CREATE TABLE t(id INTEGER PRIMARY KEY, n INT, v VECTOR(2))")
    for sql, err, match in (
        ("CREATE INDEX i ON t USING hnsw (n)", SchemaError, "VECTOR"),
        ("CREATE INDEX i ON t USING hnsw (nope)", SchemaError, "no such column"),
        ("CREATE INDEX i ON t USING btree (v)", SQLError, "unknown index method"),
        ("CREATE INDEX i ON t USING hnsw (v) WITH (metric = 'hamming')", SQLError, "metric"),
        ("CREATE INDEX i ON t USING hnsw (v) WITH (m = 1)", SQLError, "m must be"),
        ("CREATE INDEX i ON t USING hnsw (v) WITH (ef = 5)", SQLError, "unknown HNSW"),
        ("CREATE INDEX i ON t USING hnsw (v, n)", SQLError, "one VECTOR"),
        ("CREATE INDEX i ON t(v) WITH (m = 4)", SQLError, "index method"),
    ):
        with pytest.raises(err, match=match):
            db.execute_sql(sql)
    db.execute_sql("CREATE INDEX i ON t USING hnsw (v) WITH (metric = 'ip', m = 4)")
    db.execute_sql("CREATE INDEX IF NOT EXISTS i ON t USING hnsw (v)")
    with pytest.raises(SchemaError, match="already exists"):
        db.execute_sql("CREATE INDEX i ON t USING hnsw (v)")
    db.executemany("INSERT INTO t VALUES (?, ?, ?)", [(i, i, f"[{i}, 1]") for i in range(50)])
    with pytest.raises(SQLError, match="cannot drop column v"):
        db.execute_sql("ALTER TABLE t DROP COLUMN v")
    db.execute_sql("ALTER TABLE t RENAME COLUMN v TO w")
    assert db.execute_sql("PRAGMA index_list(t)").rows == [(0, "i", 0, "c", 0)]
    assert db.execute_sql("PRAGMA index_info(i)").rows == [(0, 2, "w")]
    db.close()
    db = Database.open(str(tmp_path / "db"))
    sql = "SELECT id FROM t ORDER BY vec_distance_ip(w, '[1, 0]') LIMIT 2"
    assert "USING HNSW INDEX i" in plan(db, sql)
    assert db.execute_sql(sql).rows == [(49,), (48,)]
    db.execute_sql("DROP TABLE t")
    assert not [n for n in db.begin_transaction(read_only=True).tree_names(b"sql:h:")]
    db.check()
    db.close()
