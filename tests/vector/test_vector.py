"""Vector indexes inside a database (toondb/vector.py): the Database and Transaction
API, persistence, atomicity with key-value writes, deletes and upserts, filters, the
three metrics against brute force, input validation (nothing written on bad input),
handles that follow new commits (also from other processes), and closing while
searches run."""

from __future__ import annotations

import multiprocessing as mp
import threading

import numpy as np
import pytest

from toondb import Database
from toondb.errors import (
    ClosedError,
    DatabaseFullError,
    ReadOnlyError,
    TransactionClosedError,
    TransactionConflictError,
    VectorIndexError,
)
from toondb.vector import MAX_ID, Neighbor, VectorIndex


def gaussian_mixture(n, dim, centers, seed, spread=0.35):
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centers, dim)).astype(np.float32)
    which = rng.integers(0, centers, n)
    return (c[which] + spread * rng.standard_normal((n, dim))).astype(np.float32)


def brute_force(data, queries, k, metric):
    if metric == "l2":
        d = ((queries[:, None, :] - data[None, :, :]) ** 2).sum(-1)
    elif metric == "ip":
        d = 1 - queries @ data.T
    else:
        dn = data / np.linalg.norm(data, axis=1, keepdims=True)
        qn = queries / np.linalg.norm(queries, axis=1, keepdims=True)
        d = 1 - qn @ dn.T
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(d, idx, 1)


def recall(found, truth):
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


DIM = 16


@pytest.fixture
def data():
    return gaussian_mixture(3000, DIM, 10, seed=3)


@pytest.fixture
def filled(db, data):
    idx = db.create_vector_index("docs", DIM, "l2", m=8, ef_construction=64)
    idx.add(np.arange(len(data)) * 10, data)
    return idx


def version(db, name="docs"):
    with db.transaction(read_only=True) as t:
        return t.tree(b"vec:" + name.encode()).get(b"meta")


# ---------------------------------------------------------------------------------------
# catalog


def test_create_list_drop(db):
    assert db.vector_indexes() == []
    idx = db.create_vector_index("a", 8)
    assert isinstance(idx, VectorIndex)
    assert (idx.name, idx.dimension, idx.metric, idx.m, idx.ef_construction) == (
        "a",
        8,
        "cosine",
        16,
        100,
    )
    assert len(idx) == 0 and idx.count == 0 and idx.search(np.ones(8, np.float32)) == []
    db.create_vector_index("b", 4, metric="ip", m=4, ef_construction=20)
    assert db.vector_indexes() == ["a", "b"]
    with pytest.raises(VectorIndexError, match="already exists"):
        db.create_vector_index("a", 8)
    assert db.create_vector_index("a", 8, exist_ok=True).dimension == 8
    with pytest.raises(VectorIndexError, match="dimension=8"):
        db.create_vector_index("a", 9, exist_ok=True)
    assert db.drop_vector_index("a") is True
    assert db.drop_vector_index("a") is False
    assert db.vector_indexes() == ["b"]
    with pytest.raises(VectorIndexError, match="no vector index named 'a'"):
        db.vector_index("a")
    with pytest.raises(VectorIndexError):
        idx.search(np.ones(8, np.float32))  # the handle of the dropped index
    # vector indexes are named trees of their own: the key-value space is untouched
    assert list(db.scan(b"")) == []


@pytest.mark.parametrize(
    "kw,err",
    [
        ({"metric": "euclid"}, ValueError),
        ({"metric": None}, ValueError),
        ({"dimension": 0}, ValueError),
        ({"dimension": 2.5}, TypeError),
        ({"m": 1}, ValueError),
        ({"ef_construction": 0}, ValueError),
        ({"name": ""}, ValueError),
        ({"name": 5}, TypeError),
        ({"name": "a\x00b"}, ValueError),
    ],
)
def test_create_rejects_bad_arguments(db, kw, err):
    args = {"name": "x", "dimension": 4, **kw}
    with pytest.raises(err):
        db.create_vector_index(**args)
    assert db.vector_indexes() == []


def test_the_handle_from_a_database_is_shared(db, filled):
    assert db.vector_index("docs") is db.vector_index("docs")
    assert "docs" in repr(filled) and "3000 x 16 l2" in repr(filled)


# ---------------------------------------------------------------------------------------
# add, search, get, delete, upsert


def test_add_search_get(db, data, filled):
    assert len(filled) == 3000 and filled.count == 3000
    assert 20 in filled and 21 not in filled and -1 not in filled and "x" not in filled
    res = filled.search(data[7], k=5)
    assert isinstance(res[0], Neighbor) and res[0].id == 70 and res[0].distance == pytest.approx(0)
    assert [r.distance for r in res] == sorted(r.distance for r in res)
    assert np.array_equal(filled.get(70), data[7]) and filled.get(71) is None
    assert filled.get(MAX_ID + 1) is None
    with pytest.raises(TypeError):
        filled.get("70")
    assert list(filled.ids()[:3]) == [0, 10, 20]
    info = filled.info()
    assert (info.vectors, info.dimension, info.metric, info.m, info.ef_construction) == (
        3000,
        16,
        "l2",
        8,
        64,
    )
    assert info.levels >= 2 and info.deleted == 0 and info.bytes > 3000 * 16 * 4
    assert info.file_bytes >= info.bytes and info.as_dict()["vectors"] == 3000


def test_batch_search_and_arrays(data, filled):
    q = data[:20] + 0.01
    rows = filled.search(q, k=4)
    assert len(rows) == 20 and all(len(r) == 4 for r in rows)
    assert [r[0].id for r in rows] == [i * 10 for i in range(20)]
    ids, dists = filled.search_arrays(q, k=4, threads=2)
    assert ids.dtype == np.int64 and dists.dtype == np.float32 and ids.shape == (20, 4)
    assert [[n.id for n in r] for r in rows] == ids.tolist()
    one_ids, one_d = filled.search_arrays(q[3], k=4)
    assert one_ids.tolist() == ids[3].tolist()
    # lists and float64 queries are converted
    assert filled.search(q[3].astype(np.float64).tolist(), k=4) == rows[3]


def test_k_larger_than_count_returns_what_there_is(db):
    idx = db.create_vector_index("small", 3, "l2")
    idx.add([5, 6, 7], np.eye(3))
    assert sorted(r.id for r in idx.search(np.zeros(3), k=50)) == [5, 6, 7]
    ids, d = idx.search_arrays(np.zeros((2, 3)), k=5)
    assert (ids[:, 3:] == -1).all() and np.isinf(d[:, 3:]).all()
    assert [len(r) for r in idx.search(np.zeros((2, 3)), k=5)] == [3, 3]


@pytest.mark.parametrize("metric", ["cosine", "l2", "ip"])
def test_metrics_against_brute_force(db, metric):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((1500, DIM)).astype(np.float32)
    if metric == "ip":
        x /= np.linalg.norm(x, axis=1, keepdims=True)  # ip as hnswlib: meaningful on unit vectors
    q = rng.standard_normal((30, DIM)).astype(np.float32)
    idx = db.create_vector_index("m", DIM, metric)
    idx.add(np.arange(1500), x, threads=1)
    ids, dists = idx.search_arrays(q, k=10, ef_search=400)
    tid, td = brute_force(x, q, 10, metric)
    assert recall(ids.tolist(), tid.tolist()) >= (0.97 if metric == "ip" else 0.99)
    # the distances are the metric's: 1 - cos, squared l2, 1 - dot
    _, full = brute_force(x, q, 1500, metric)
    order, _ = brute_force(x, q, 1500, metric)
    exact = np.empty_like(full)
    np.put_along_axis(exact, order, full, 1)  # exact[r, id] = distance of id to query r
    np.testing.assert_allclose(dists, np.take_along_axis(exact, ids, 1), rtol=1e-4, atol=1e-4)
    if metric == "cosine":
        v = idx.get(3)
        assert np.linalg.norm(v) == pytest.approx(1, abs=1e-6)
        np.testing.assert_allclose(v, x[3] / np.linalg.norm(x[3]), rtol=1e-6)


def test_recall_of_batched_adds(db):
    x = gaussian_mixture(8000 + 200, 32, 20, seed=5)
    base, q = x[:8000], x[8000:]
    idx = db.create_vector_index("r", 32, "l2", m=16, ef_construction=100)
    for s in range(0, 8000, 2000):  # four commits, the graph grows each time
        idx.add(np.arange(s, s + 2000), base[s : s + 2000])
    tid, _ = brute_force(base, q, 10, "l2")
    ids, _ = idx.search_arrays(q, k=10, ef_search=64)
    assert recall(ids.tolist(), tid.tolist()) >= 0.95


def test_delete_is_never_returned(db, data, filled):
    gone = [i * 10 for i in range(0, 3000, 3)]
    assert filled.delete(gone + [5, 10**12]) == len(gone)  # absent ids are ignored
    assert filled.delete(gone) == 0
    assert len(filled) == 2000 and 0 not in filled and filled.get(0) is None
    gset = set(gone)
    ids, _ = filled.search_arrays(data[:300], k=10)
    assert not gset & set(ids.ravel().tolist()) and (ids >= 0).all()
    assert filled.info().deleted == 1000
    with pytest.raises(VectorIndexError, match="already in the vector index"):
        filled.add([10], data[:1])
    filled.add([0], data[:1])  # a deleted id can come back
    assert filled.search(data[0], k=1)[0].id == 0


def test_upsert_replaces_the_vector(db, data, filled):
    new = data[100:103] + 5.0
    assert filled.upsert([0, 10, 99999], new) == 3
    assert len(filled) == 3001
    np.testing.assert_array_equal(filled.get(10), new[1])
    assert filled.search(new[1], k=1)[0].id == 10
    # the old vector of 10 is gone: its neighbourhood no longer returns it
    assert 10 not in [r.id for r in filled.search(data[1], k=20)]
    ids, _ = filled.search_arrays(new, k=50, ef_search=200)
    for row in ids:
        assert len(set(row.tolist())) == len(row)  # never two records of one id


def test_single_id_and_vector(db):
    idx = db.create_vector_index("one", 4, "l2")
    assert idx.add(3, np.arange(4.0)) == 1
    assert idx.upsert(np.int64(3), [0.0, 0, 0, 1]) == 1
    assert idx.search(np.array([0, 0, 0, 1.0], np.float32), k=1) == [(3, 0.0)]


# ---------------------------------------------------------------------------------------
# filters


def test_filter_by_ids_finds_k(data, filled):
    rng = np.random.default_rng(2)
    allowed = set((rng.choice(3000, 90, replace=False) * 10).tolist())  # 3% of the ids
    for q in data[:20]:
        res = filled.search(q, k=10, filter=allowed)
        assert len(res) == 10 and {r.id for r in res} <= allowed
    rows = filled.search(data[:5], k=10, filter=np.array(sorted(allowed)))
    assert all(len(r) == 10 and {x.id for x in r} <= allowed for r in rows)
    # exact: the 10 nearest allowed ones
    al = np.array(sorted(allowed))
    tid, _ = brute_force(data[al // 10], data[:20], 10, "l2")
    ids, _ = filled.search_arrays(data[:20], k=10, ef_search=128, filter=al)
    assert recall(ids.tolist(), al[tid].tolist()) >= 0.95
    assert [r.id for r in filled.search(data[0], k=10, filter=[10, 20, 7])] == sorted(
        [10, 20], key=lambda i: ((data[i // 10] - data[0]) ** 2).sum()
    )
    assert filled.search(data[0], k=10, filter=[]) == []


def test_filter_by_predicate(data, filled):
    def odd_hundreds(i):
        return (i // 100) % 2 == 1

    for q in data[:10]:
        res = filled.search(q, k=10, filter=odd_hundreds)
        assert len(res) == 10 and all(odd_hundreds(r.id) for r in res)
    rare = filled.search(data[0], k=10, filter=lambda i: i in (10, 29990))
    assert sorted(r.id for r in rare) == [10, 29990]  # grows until the index is exhausted
    ids, d = filled.search_arrays(data[:3], k=5, filter=odd_hundreds)
    assert ids.shape == (3, 5) and all(odd_hundreds(i) for i in ids.ravel())
    assert filled.search(data[:2], k=3, filter=odd_hundreds)[1][0].id == ids[1][0]


# ---------------------------------------------------------------------------------------
# bad input writes nothing


@pytest.mark.parametrize(
    "ids,vectors,err,match",
    [
        ([1, 2], np.ones((2, DIM + 1)), ValueError, "dimension"),
        ([1, 2], np.full((2, DIM), np.nan), ValueError, "NaN"),
        ([1, 2], np.full((2, DIM), np.inf), ValueError, "NaN or infinity"),
        ([1, 2], np.full((2, DIM), 1e300), ValueError, "too large"),
        ([1, 2], [["a"] * DIM] * 2, TypeError, "real numbers"),
        ([1, 2], np.ones((2, DIM), complex), TypeError, "real numbers"),
        ([1, 2], np.ones((2, DIM), bool), TypeError, "real numbers"),
        ([1, 1], np.ones((2, DIM)), ValueError, "duplicate ids"),
        ([1], np.ones((2, DIM)), ValueError, "2 vectors but 1 ids"),
        ([-1, 2], np.ones((2, DIM)), ValueError, ">= 0"),
        ([2**63, 2], np.ones((2, DIM)), ValueError, "2\\*\\*63"),
        ([2**70, 2], np.ones((2, DIM)), ValueError, "2\\*\\*63"),
        ([1.5, 2], np.ones((2, DIM)), TypeError, "integers"),
        ([1, 2], np.ones(DIM), ValueError, "2-D"),
        ([0, 2], np.ones((2, DIM)), VectorIndexError, "already in"),
    ],
)
def test_bad_input_raises_and_writes_nothing(db, filled, ids, vectors, err, match):
    before = version(db)
    with pytest.raises(err, match=match):
        filled.add(ids, vectors)
    if err is not VectorIndexError:
        with pytest.raises(err, match=match):
            filled.upsert(ids, vectors)
    assert version(db) == before and len(filled) == 3000


def test_float64_and_integer_vectors_are_converted(db):
    idx = db.create_vector_index("conv", 3, "l2")
    idx.add([1, 2], np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int16))
    idx.add([3], np.array([[0.5, 0.5, 0.5]], dtype=np.float64))
    np.testing.assert_array_equal(idx.get(2), np.array([4, 5, 6], np.float32))
    assert idx.get(3).dtype == np.float32


@pytest.mark.parametrize(
    "kw,err",
    [
        ({"k": 0}, ValueError),
        ({"ef_search": 0}, ValueError),
        ({"k": 2.0}, TypeError),
        ({"query": np.ones(DIM + 2)}, ValueError),
        ({"query": np.full(DIM, np.nan)}, ValueError),
        ({"query": np.full((2, DIM), np.inf)}, ValueError),
        ({"query": ["x"] * DIM}, TypeError),
        ({"filter": ["x"]}, TypeError),
        ({"filter": [-3]}, ValueError),
    ],
)
def test_bad_search_arguments(filled, kw, err):
    args = {"query": np.ones(DIM, np.float32), **kw}
    with pytest.raises(err):
        filled.search(**args)
    q = args.pop("query")
    with pytest.raises(err):
        filled.search_arrays(q, **args)


# ---------------------------------------------------------------------------------------
# persistence and transactions


def test_persists_across_reopen(open_db, db_path, data, filled):
    q = data[:50] + 0.02
    before = filled.search_arrays(q, k=10)
    filled.delete([0, 10])
    after_delete = filled.search_arrays(q, k=10)
    db = filled.database
    db.close()
    with Database.open(db_path) as again:
        idx = again.vector_index("docs")
        assert len(idx) == 2998 and 0 not in idx
        got = idx.search_arrays(q, k=10)
        assert np.array_equal(got[0], after_delete[0]) and np.array_equal(got[1], after_delete[1])
        assert not np.array_equal(before[0], got[0])
        again.check()


def test_a_transaction_commits_vectors_and_keys_together(db, data, filled):
    reader = db.transaction(read_only=True)
    with db.transaction() as txn:
        tidx = txn.vector_index("docs")
        tidx.add([5, 15], data[:2] + 1)
        tidx.delete([0])
        txn.put(b"doc:5", b"five")
        # the transaction sees its own writes; others do not
        assert len(tidx) == 3001 and 5 in tidx and 0 not in tidx
        assert txn.vector_index("docs").search(data[0] + 1, k=1)[0].id == 5
        assert len(filled) == 3000 and 5 not in filled and db.get(b"doc:5") is None
    assert len(filled) == 3001 and 5 in filled and 0 not in filled and db.get(b"doc:5") == b"five"
    # a snapshot taken before the commit still sees the old index
    old = reader.vector_index("docs")
    assert len(old) == 3000 and 0 in old and 5 not in old
    assert old.search(data[0], k=1)[0].id == 0
    reader.abort()
    with pytest.raises(TransactionClosedError):
        old.search(data[0])


def test_an_aborted_transaction_leaves_nothing(db, data, filled):
    before = version(db)
    with pytest.raises(RuntimeError):
        with db.transaction() as txn:
            txn.vector_index("docs").add([7, 17], data[:2])
            txn.vector_index("docs").delete([0, 10])
            txn.put(b"k", b"v")
            raise RuntimeError("abort")
    assert version(db) == before and len(filled) == 3000 and 7 not in filled and 0 in filled
    assert db.get(b"k") is None
    txn = db.transaction()
    txn.create_vector_index("temp", 4)
    txn.drop_vector_index("docs")
    assert txn.vector_indexes() == ["temp"]
    txn.abort()
    assert db.vector_indexes() == ["docs"]


def test_index_created_in_a_transaction(db, data):
    with db.transaction() as txn:
        idx = txn.create_vector_index("t", DIM, "l2")
        idx.add(np.arange(100), data[:100])
        assert idx.search(data[3], k=1)[0].id == 3
    assert db.vector_index("t").search(data[3], k=1)[0].id == 3


def test_read_only_transactions_and_databases_refuse_writes(db_path, data, filled):
    with filled.database.transaction(read_only=True) as t:
        with pytest.raises(ReadOnlyError):
            t.vector_index("docs").add([1], data[:1])
        with pytest.raises(ReadOnlyError):
            t.vector_index("docs").delete([0])
    with Database.open(db_path, read_only=True) as ro:
        idx = ro.vector_index("docs")
        assert len(idx) == 3000
        with pytest.raises(ReadOnlyError):
            idx.add([1], data[:1])


def test_concurrent_writers_first_committer_wins(db, data, filled):
    t1, t2 = db.transaction(), db.transaction()
    t1.vector_index("docs").add([1], data[:1])
    t2.vector_index("docs").add([2], data[1:2])
    t1.commit()
    with pytest.raises(TransactionConflictError):
        t2.commit()
    assert 1 in filled and 2 not in filled


def test_a_failed_write_aborts_the_transaction(db, data, filled, monkeypatch):
    from toondb.database import Transaction

    real_tree = Transaction.tree

    class Failing:
        def __init__(self, tree):
            self.tree, self.puts = tree, 0

        def __getattr__(self, name):
            return getattr(self.tree, name)

        def put(self, key, value):
            self.puts += 1
            if self.puts == 3:
                raise OSError("disk on fire")
            self.tree.put(key, value)

    txn = db.transaction()
    txn.put(b"k", b"v")
    monkeypatch.setattr(
        Transaction, "tree", lambda self, *a, **kw: Failing(real_tree(self, *a, **kw))
    )
    with pytest.raises(OSError, match="disk on fire"):
        txn.vector_index("docs").add(np.arange(5) + 1, data[:5])
    monkeypatch.setattr(Transaction, "tree", real_tree)
    assert txn.closed  # some of the index's values were written: it can never commit
    assert len(filled) == 3000 and 1 not in filled and db.get(b"k") is None


def test_a_commit_too_big_for_the_file_applies_nothing(tmp_path):
    db = Database.open(tmp_path / "small", {"map_size": 1 << 20})
    try:
        idx = db.create_vector_index("x", 256, "l2")
        big = np.random.default_rng(0).standard_normal((2000, 256)).astype(np.float32)
        with pytest.raises(DatabaseFullError):
            idx.add(np.arange(2000), big)
        assert len(idx) == 0 and db.vector_index("x").search(big[0]) == []
        idx.add([1], big[:1])
        assert idx.search(big[0], k=1)[0].id == 1
        db.check()
    finally:
        db.close()


def test_an_interrupted_change_leaves_the_transaction_usable(db, data, filled, monkeypatch):
    # interrupted after the working graph changed, before its values were written:
    # the working copy is dropped, the transaction keeps its earlier writes
    import toondb.vector.store

    real_merge = toondb.vector.store._merge

    def interrupted(*a, **kw):
        raise KeyboardInterrupt

    txn = db.transaction()
    tidx = txn.vector_index("docs")
    tidx.add([1], data[:1])
    monkeypatch.setattr(toondb.vector.store, "_merge", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tidx.add([2], data[1:2])
    with pytest.raises(KeyboardInterrupt):
        tidx.upsert([1], data[1:2])
    monkeypatch.setattr(toondb.vector.store, "_merge", real_merge)
    assert not txn.closed and 1 in tidx and 2 not in tidx
    np.testing.assert_array_equal(tidx.get(1), data[0])
    tidx.add([3], data[2:3])
    txn.commit()
    assert 1 in filled and 3 in filled and 2 not in filled
    assert filled.search(data[1], k=1)[0].id != 2


# ---------------------------------------------------------------------------------------
# handles follow commits; snapshots are not held back; closing


def test_a_handle_sees_new_commits_and_releases_old_snapshots(db, data, filled):
    assert filled.search(data[0], k=1)[0].id == 0
    other = db.transaction()
    other.vector_index("docs").upsert([0], data[1:2] + 3)
    other.commit()
    assert filled.search(data[1] + 3, k=1)[0].id == 0  # the next search sees it
    # key-value commits do not change the index: the handle keeps its graph but moves
    # its snapshot forward, so it never holds old pages back
    g = filled._state.graph
    for i in range(5):
        db.put(b"k%d" % i, b"v")
    filled.search(data[0], k=1)
    assert filled._state.graph is g
    assert db.stats()["oldest_reader_txn_id"] == db.stats()["last_txn_id"]


def _child_watch(path, q, n_expected, out):
    import time

    with Database.open(path) as db:
        idx = db.vector_index("docs")
        out.put(len(idx))
        deadline = time.monotonic() + 60
        while len(idx) != n_expected and time.monotonic() < deadline:
            time.sleep(0.01)
        out.put((len(idx), idx.search(q, k=1)[0].id))


def test_other_processes_open_and_follow_the_index(db_path, db, data, filled):
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_child_watch, args=(str(db_path), data[5] + 9, 3002, out))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    assert [out.get(timeout=60) for _ in procs] == [3000, 3000]
    filled.add([123456, 654321], np.stack([data[5] + 9, data[6] + 9]))
    assert [out.get(timeout=60) for _ in procs] == [(3002, 123456)] * 2
    for p in procs:
        p.join(30)
        assert p.exitcode == 0


def test_search_after_close_raises(db_path, data):
    db = Database.open(db_path)
    idx = db.create_vector_index("c", DIM)
    idx.add(np.arange(10), data[:10])
    txn = db.transaction()
    tidx = txn.vector_index("c")
    db.close()
    for call in (
        lambda: idx.search(data[0]),
        lambda: idx.get(1),
        lambda: len(idx),
        lambda: 1 in idx,
    ):
        with pytest.raises(ClosedError):
            call()
    with pytest.raises((ClosedError, TransactionClosedError)):
        tidx.search(data[0])


def test_close_waits_for_running_searches(db_path):
    db = Database.open(db_path)
    x = np.random.default_rng(1).standard_normal((5000, 32)).astype(np.float32)
    idx = db.create_vector_index("w", 32, "l2", m=8, ef_construction=40)
    idx.add(np.arange(5000), x)
    expected = idx.search_arrays(x[:200], k=10, ef_search=200, threads=1)[0]
    errors, results = [], []
    two_done = threading.Event()

    def searcher():
        # a bounded run: close() waits until the pins drop to zero, which searches
        # that never stop could postpone (see docs/vector.md, "Closing")
        try:
            for _ in range(40):
                results.append(idx.search_arrays(x[:200], k=10, ef_search=200, threads=1)[0])
                if len(results) >= 2:
                    two_done.set()
        except ClosedError:
            pass
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=searcher) for _ in range(2)]
    for t in ts:
        t.start()
    two_done.wait(30)
    db.close()  # waits for the searches in flight; later ones raise ClosedError
    for t in ts:
        t.join(30)
    assert not errors and results and all(np.array_equal(r, expected) for r in results)


def test_threads_search_while_another_adds(db, data):
    idx = db.create_vector_index("tw", DIM, "l2", m=8, ef_construction=40)
    idx.add(np.arange(500), data[:500])
    stop, errors = threading.Event(), []

    def searcher():
        try:
            while not stop.is_set():
                n = len(idx)
                res = idx.search(data[3], k=5)
                assert res[0].id == 3 and n >= 500
        except Exception as e:  # pragma: no cover
            errors.append(e)

    ts = [threading.Thread(target=searcher) for _ in range(2)]
    for t in ts:
        t.start()
    for s in range(500, 3000, 500):
        idx.add(np.arange(s, s + 500), data[s : s + 500], threads=1)
    stop.set()
    for t in ts:
        t.join()
    assert not errors and len(idx) == 3000


def test_rebuild_drops_tombstones(db, data, filled):
    filled.delete(np.arange(0, 30000, 20))  # every other id
    filled.upsert([10, 30], data[:2] + 2)
    assert filled.info().deleted == 1502 and len(filled) == 1500
    before_ids = filled.ids()
    q = data[1::40] + 0.01
    found_before = filled.search_arrays(q, k=10, ef_search=200)[0]
    v30 = filled.get(30)
    assert filled.rebuild() == 1502
    info = filled.info()
    assert info.deleted == 0 and info.vectors == 1500 and len(filled) == 1500
    assert np.array_equal(filled.ids(), before_ids)
    np.testing.assert_array_equal(filled.get(30), v30)
    found = filled.search_arrays(q, k=10, ef_search=200)[0]
    assert recall(found.tolist(), found_before.tolist()) >= 0.95
    assert not set(found.ravel().tolist()) & set(range(0, 30000, 20))
    # the file holds only the live records now (the chunks past them are gone)
    with db.transaction(read_only=True) as t:
        keys = [k for k, _ in t.tree(b"vec:docs").scan(b"l0:", b"l0;")]
    per = 1 << filled._state.meta.chunk_shift
    assert len(keys) == (1500 + per - 1) // per
    # aborted: nothing changes
    filled.delete([50])
    with pytest.raises(RuntimeError), db.transaction() as txn:
        txn.vector_index("docs").rebuild()
        raise RuntimeError
    assert filled.info().deleted == 1


# ---------------------------------------------------------------------------------------
# damage in the level-0 chunks (mapped without a checksum pass at open)


@pytest.mark.damages_files
def test_a_damaged_chunk_is_found_by_the_first_search_that_reaches_it(tmp_path):
    """Opening an index reads no chunk (so it costs the same at any size); the
    first search that reaches a damaged chunk raises CorruptionError instead of
    ranking on wrong vectors, and so does every later one."""
    from toondb.errors import CorruptionError

    data = gaussian_mixture(2000, DIM, 4, seed=11)
    path = tmp_path / "db"
    with Database.open(path) as db:
        db.create_vector_index("v", DIM, "l2", m=8, ef_construction=64).add(
            np.arange(len(data)), data
        )
    raw = bytearray((path / "toondb.data").read_bytes())
    at = raw.find(data[7].tobytes())
    assert at > 0
    raw[at + 5] ^= 0x40  # one bit of vector 7, inside its chunk's extent
    (path / "toondb.data").write_bytes(bytes(raw))
    with Database.open(path) as db:
        idx = db.vector_index("v")  # opening does not read the chunk
        assert idx.count == len(data)
        for _ in range(2):
            with pytest.raises(CorruptionError, match="checksum"):
                idx.search(data[7], k=5)
        with pytest.raises(CorruptionError):
            idx.get(7)
