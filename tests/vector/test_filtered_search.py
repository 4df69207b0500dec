"""Filtered k-NN in the HNSW kernel (toondb/vector/_filter.pxi) and through VectorIndex:
the promise (exactly min(k, allowed) results, recall@10 >= 0.95 against NumPy's exact
search at every selectivity, for each metric), each strategy, the choice between them,
and filters that outlive a write."""

import numpy as np
import pytest

from toondb import Database
from toondb.vector._hnsw import HnswGraph, IdFilter

N, DIM, K = 6000, 32, 10
SELECTIVITIES = (1.0, 0.5, 0.1, 0.01, 0.001)
METRICS = ("l2", "ip", "cosine")


def mixture(n, dim, seed):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((30, dim))
    x = centers[rng.integers(0, 30, n)] + 0.45 * rng.standard_normal((n, dim))
    return x.astype(np.float32)


def exact(x, q, k, metric, allowed):
    """NumPy's answer in float64: for each query the k nearest allowed rows (row
    numbers), and their distances."""
    xs, qs = x.astype(np.float64), q.astype(np.float64)
    if metric == "cosine":
        xs = xs / np.linalg.norm(xs, axis=1, keepdims=True)
        qs = qs / np.linalg.norm(qs, axis=1, keepdims=True)
    d = (xs**2).sum(1)[None, :] - 2 * qs @ xs.T if metric == "l2" else -(qs @ xs.T)
    d[:, ~allowed] = np.inf
    kk = min(k, int(allowed.sum()))
    return np.argsort(d, axis=1, kind="stable")[:, :kk]


def recall(found, truth):
    return float(np.mean([len(set(f) & set(t)) / max(len(t), 1) for f, t in zip(found, truth)]))


@pytest.fixture(scope="module")
def data():
    x = mixture(N + 60, DIM, 3)
    rng = np.random.default_rng(5)
    return x[:N], x[N:], rng.random(N)  # vectors, queries, the column a filter selects on


@pytest.fixture(scope="module", params=METRICS)
def built(request, data):
    x, _, _ = data
    g = HnswGraph(DIM, request.param, m=16, ef_construction=100, capacity=N)
    g.add(x, np.arange(N, dtype=np.uint64), threads=2)
    return request.param, g


def mask_of(u, sel):
    return u < sel


@pytest.mark.parametrize("sel", SELECTIVITIES)
def test_the_promise_count_and_recall_at_every_selectivity(built, data, sel):
    metric, g = built
    x, q, u = data
    allowed = mask_of(u, sel)
    n = int(allowed.sum())
    truth = exact(x, q, K, metric, allowed)
    f = g.id_filter(np.flatnonzero(allowed))
    assert len(f) == n
    found = []
    for v in q:
        labels, dists = g.search(v, K, 64, f)
        assert len(labels) == min(K, n)  # (F2)
        assert allowed[labels.astype(np.int64)].all()
        assert np.all(np.diff(dists) >= 0)
        found.append(labels.astype(np.int64).tolist())
    assert recall(found, truth) >= 0.95


@pytest.mark.parametrize("strategy", ["exact", "graph", "acorn"])
@pytest.mark.parametrize("sel", SELECTIVITIES)
def test_each_strategy_returns_min_k_allowed(built, data, sel, strategy):
    metric, g = built
    x, q, u = data
    allowed = mask_of(u, sel)
    n = int(allowed.sum())
    f = g.id_filter(np.flatnonzero(allowed))
    labels, dists = g.search_batch(q, K, 64, filter=f, strategy=strategy, threads=2)
    kk = min(K, n)
    assert (labels[:, :kk] != 2**64 - 1).all() and (labels[:, kk:] == 2**64 - 1).all()
    assert allowed[labels[:, :kk].astype(np.int64)].all()
    truth = exact(x, q, K, metric, allowed)
    r = recall(labels[:, :kk].astype(np.int64).tolist(), truth)
    if strategy == "exact":
        assert r >= 0.999
    elif metric != "ip" and (strategy == "graph" or sel >= 0.1):
        assert r >= 0.95  # (ip: auto takes the exact scan where a traversal falls short)
    single = g.search(q[0], K, 64, f, strategy)[0]
    assert single.tolist() == labels[0, :kk].tolist()


def test_the_choice_follows_the_allowed_fraction(data):
    x, _, u = data
    g = HnswGraph(DIM, "l2", m=16, ef_construction=60, capacity=N)
    g.add(x, np.arange(N, dtype=np.uint64), threads=2)
    # ef=16: the exact scan below 640 allowed records, and below 5% of them
    assert g.filter_strategy(np.flatnonzero(u < 0.08), 16) == "exact"  # ~480 records
    assert g.filter_strategy(np.flatnonzero(u < 0.3), 16) == "acorn"
    assert g.filter_strategy(np.flatnonzero(u < 0.6), 16) == "graph"
    assert g.filter_strategy(np.flatnonzero(u < 0.6), 256) == "exact"  # 40 * 256 > 3600
    gi = HnswGraph(DIM, "ip", m=16, ef_construction=60, capacity=N)
    gi.add(x, np.arange(N, dtype=np.uint64), threads=2)
    assert gi.filter_strategy(np.flatnonzero(u < 0.3), 16) == "exact"  # never acorn for ip
    assert gi.filter_strategy(np.flatnonzero(u < 0.6), 16) == "graph"
    with pytest.raises(ValueError, match="unknown strategy"):
        g.search(x[0], 5, 16, [1, 2], strategy="fast")


def test_deleted_records_are_never_allowed(data):
    x, q, _ = data
    g = HnswGraph(DIM, "l2", m=16, ef_construction=60, capacity=2000)
    g.add(x[:2000], np.arange(2000, dtype=np.uint64))
    g.mark_deleted(np.arange(0, 2000, 2))
    f = g.id_filter(np.arange(0, 40))  # 20 of them live
    assert len(f) == 20 and f.internal_ids().tolist() == list(range(1, 40, 2))
    for strategy in ("exact", "graph", "acorn"):
        labels, _ = g.search(q[0], 30, 64, f, strategy)
        assert sorted(labels.tolist()) == list(range(1, 40, 2))


def test_a_filter_is_refused_after_a_write_or_on_another_graph(data):
    x, q, _ = data
    g = HnswGraph(DIM, "l2", capacity=300)
    g.add(x[:200], np.arange(200, dtype=np.uint64))
    f = g.id_filter([1, 2, 3])
    assert isinstance(f, IdFilter) and g.search(q[0], 2, 16, f)[0].size == 2
    other = HnswGraph(DIM, "l2", capacity=300)
    other.add(x[:200], np.arange(200, dtype=np.uint64))
    with pytest.raises(ValueError, match="another graph"):
        other.search(q[0], 2, 16, f)
    g.mark_deleted([7])
    with pytest.raises(ValueError, match="written since"):
        g.search(q[0], 2, 16, f)
    with pytest.raises(IndexError):
        g.id_filter(ids=[500])
    with pytest.raises(TypeError):
        g.id_filter()
    assert len(g.id_filter([10_000, 3, 3])) == 1  # unknown labels dropped, duplicates once
    assert len(g.search(q[0], 5, 16, g.id_filter([]))[0]) == 0


def test_a_view_filters_by_label(data):
    x, q, u = data
    g = HnswGraph(DIM, "cosine", capacity=1000)
    g.add(x[:1000], np.arange(1000, 2000, dtype=np.uint64))
    r = g.regions()
    v = HnswGraph.view(r["header"], r["level0"], r["upper"], r["nodes"], owner=g)
    allowed = np.flatnonzero(u[:1000] < 0.05) + 1000
    truth = exact(x[:1000], q, 5, "cosine", u[:1000] < 0.05) + 1000
    found = [v.search(row, 5, 32, allowed)[0].astype(np.int64).tolist() for row in q]
    assert recall(found, truth) == 1.0


def test_vector_index_search_keeps_the_promise(tmp_path, data):
    x, q, u = data
    with Database.open(str(tmp_path / "db")) as db:
        idx = db.create_vector_index("v", dimension=DIM, metric="l2")
        idx.add(np.arange(N) * 3, x)  # ids are not row numbers
        for sel in (0.5, 0.01):
            allowed = u < sel
            ids = np.flatnonzero(allowed) * 3
            truth = exact(x, q, K, "l2", allowed) * 3
            found = [[h.id for h in idx.search(v, k=K, filter=ids)] for v in q]
            assert all(len(f) == min(K, allowed.sum()) for f in found)
            assert recall(found, truth) >= 0.95
            arr, _ = idx.search_arrays(q, k=K, filter=ids, strategy="exact")
            assert recall(arr.tolist(), truth) == 1.0
        with db.transaction() as txn:  # an owned (written) graph in a transaction
            t = txn.vector_index("v")
            t.delete([0, 3, 6])
            hits = t.search(x[1], k=3, filter=[0, 3, 6, 9, 12])
            assert [h.id for h in hits] and {h.id for h in hits} <= {9, 12}
