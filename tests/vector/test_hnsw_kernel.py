"""Tests of the HNSW kernel (toondb/_hnsw.pyx): recall against brute force and
against hnswlib, the three metrics, deletion, filters, views over serialized
regions, corruption handling and input validation."""

import mmap
import struct
import time

import numpy as np
import pytest

from toondb.vector._hnsw import HnswCorruptionError, HnswGraph, _distance, neighbors, simd_level

NONE = np.uint64(2**64 - 1)


# ---------------------------------------------------------------------------
# data and helpers


def gaussian_mixture(n, dim, centers, seed, spread=0.35):
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centers, dim)).astype(np.float32)
    which = rng.integers(0, centers, n)
    return (c[which] + spread * rng.standard_normal((n, dim))).astype(np.float32)


def brute_force(data, queries, k, metric):
    if metric == "l2":
        d = (queries**2).sum(1)[:, None] - 2 * queries @ data.T + (data**2).sum(1)[None, :]
    elif metric == "ip":
        d = 1 - queries @ data.T
    else:
        dn = data / np.linalg.norm(data, axis=1, keepdims=True)
        qn = queries / np.linalg.norm(queries, axis=1, keepdims=True)
        d = 1 - qn @ dn.T
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(d, idx, 1)


def recall(found, truth):
    return float(
        np.mean([len(set(map(int, f)) & set(map(int, t))) / len(t) for f, t in zip(found, truth)])
    )


DIM = 64
N = 20_000


@pytest.fixture(scope="module")
def clustered():
    data = gaussian_mixture(N + 300, DIM, centers=40, seed=7)
    base, queries = data[:N], data[N:]
    truth, _ = brute_force(base, queries, 10, "l2")
    return base, queries, truth


@pytest.fixture(scope="module")
def graph(clustered):
    base, _, _ = clustered
    g = HnswGraph(DIM, "l2", m=16, ef_construction=100, capacity=N, seed=100)
    g.add(base, np.arange(N, dtype=np.uint64), threads=2)
    return g


# ---------------------------------------------------------------------------
# recall


def test_recall_clustered_at_ef64(graph, clustered):
    _, queries, truth = clustered
    labels, dists = graph.search_batch(queries, k=10, ef=64, threads=2)
    assert labels.shape == (len(queries), 10)
    assert recall(labels, truth) >= 0.95
    assert np.all(np.diff(dists, axis=1) >= 0)


def test_recall_within_001_of_hnswlib(clustered):
    hnswlib = pytest.importorskip("hnswlib")
    base, queries, truth = clustered
    # one thread on both sides: same levels (same generator, same seed), so the
    # graphs match up to rounding and recall must agree closely at every ef
    g = HnswGraph(DIM, "l2", m=16, ef_construction=100, capacity=N, seed=100)
    g.add(base, np.arange(N), threads=1)
    h = hnswlib.Index(space="l2", dim=DIM)
    h.init_index(max_elements=N, M=16, ef_construction=100, random_seed=100)
    h.add_items(base, np.arange(N), num_threads=1)
    for ef in (16, 32, 64, 128, 256):
        h.set_ef(ef)
        hl, _ = h.knn_query(queries, k=10, num_threads=1)
        tl, _ = g.search_batch(queries, k=10, ef=ef)
        rt, rh = recall(tl, truth), recall(hl, truth)
        assert abs(rt - rh) <= 0.01, (ef, rt, rh)


def test_single_and_batch_search_agree(graph, clustered):
    _, queries, _ = clustered
    bl, bd = graph.search_batch(queries[:50], k=10, ef=32, threads=2)
    for i, q in enumerate(queries[:50]):
        sl, sd = graph.search(q, k=10, ef=32)
        assert np.array_equal(sl, bl[i])
        assert np.allclose(sd, bd[i])


# ---------------------------------------------------------------------------
# metrics and kernels


@pytest.mark.parametrize("metric", ["l2", "ip", "cosine"])
def test_metrics_against_brute_force(metric):
    rng = np.random.default_rng(3)
    n, dim = 2000, 37  # an odd dim exercises every kernel tail
    data = rng.standard_normal((n, dim)).astype(np.float32)
    queries = rng.standard_normal((40, dim)).astype(np.float32)
    g = HnswGraph(dim, metric, m=16, ef_construction=100, capacity=n)
    g.add(data, np.arange(n) + 1000)
    truth, tdist = brute_force(data, queries, 10, metric)
    labels, dists = g.search_batch(queries, k=10, ef=400)
    assert recall(labels - 1000, truth) >= 0.99
    # the distances returned are the metric's, for the labels returned
    got = brute_force_pairs(data, queries, labels.astype(np.int64) - 1000, metric)
    assert np.allclose(dists, got, atol=1e-4)
    assert np.allclose(dists[:, 0], tdist[:, 0], atol=1e-4)
    assert g.metric == metric


def brute_force_pairs(data, queries, idx, metric):
    v = data[idx]
    if metric == "l2":
        return ((v - queries[:, None, :]) ** 2).sum(-1)
    if metric == "ip":
        return 1 - (v * queries[:, None, :]).sum(-1)
    vn = v / np.linalg.norm(v, axis=-1, keepdims=True)
    qn = queries / np.linalg.norm(queries, axis=-1, keepdims=True)
    return 1 - (vn * qn[:, None, :]).sum(-1)


@pytest.mark.parametrize("level", [0, 1, 2])
@pytest.mark.parametrize("dim", [1, 7, 8, 31, 32, 33, 100, 128, 768])
def test_distance_kernels(level, dim):
    rng = np.random.default_rng(dim)
    a = rng.standard_normal(dim).astype(np.float32)
    b = rng.standard_normal(dim).astype(np.float32)
    l2 = float(((a.astype(np.float64) - b) ** 2).sum())
    ip = 1 - float(a.astype(np.float64) @ b)
    assert _distance(a, b, "l2", level) == pytest.approx(l2, rel=1e-5, abs=1e-5)
    assert _distance(a, b, "ip", level) == pytest.approx(ip, rel=1e-5, abs=1e-5)


def test_simd_level_is_reported():
    assert simd_level() in ("avx512", "avx2", "generic")


# ---------------------------------------------------------------------------
# deletion and filters


def test_deleted_labels_never_returned(clustered):
    base, queries, _ = clustered
    n = 5000
    g = HnswGraph(DIM, "l2", m=16, ef_construction=100, capacity=n)
    g.add(base[:n], np.arange(n))
    # delete the true nearest neighbours of every query, plus every odd label
    truth, _ = brute_force(base[:n], queries[:100], 10, "l2")
    deleted = set(map(int, truth[:, :5].ravel())) | set(range(1, n, 2))
    g.mark_deleted(np.array(sorted(deleted), dtype=np.uint64))
    g.mark_deleted([1])  # twice: no-op
    assert g.deleted_count == len(deleted)
    assert g.is_deleted(1) and not g.is_deleted(0)
    labels, _ = g.search_batch(queries[:100], k=10, ef=64)
    assert not (set(map(int, labels.ravel())) & deleted)
    assert np.all(labels != NONE)  # still k results
    for q in queries[:20]:
        sl, _ = g.search(q, k=10, ef=16)
        assert len(sl) == 10 and not (set(map(int, sl)) & deleted)
    alive = np.array(sorted(set(range(n)) - deleted))
    t2, _ = brute_force(base[alive], queries[:100], 10, "l2")
    assert recall(labels, alive[t2]) >= 0.9
    with pytest.raises(KeyError):
        g.mark_deleted([n + 5])


def test_filter_returns_only_allowed_and_finds_k(graph, clustered):
    base, queries, _ = clustered
    rng = np.random.default_rng(11)
    allowed = rng.choice(N, size=N // 50, replace=False)  # 2% of the labels
    aset = set(map(int, allowed))
    labels, dists = graph.search_batch(queries[:50], k=10, ef=64, filter=allowed)
    assert np.all(labels != NONE)
    assert set(map(int, labels.ravel())) <= aset
    srt = np.sort(allowed)
    t, _ = brute_force(base[srt], queries[:50], 10, "l2")
    assert recall(labels, srt[t]) >= 0.9
    sl, sd = graph.search(queries[0], k=10, ef=16, filter=list(map(int, allowed)))
    assert len(sl) == 10 and set(map(int, sl)) <= aset


def test_filter_with_fewer_allowed_than_k(graph, clustered):
    _, queries, _ = clustered
    allowed = np.array([5, 17_000, 123], dtype=np.uint64)
    sl, sd = graph.search(queries[0], k=10, ef=16, filter=allowed)
    assert sorted(map(int, sl)) == [5, 123, 17_000]
    bl, bd = graph.search_batch(queries[:3], k=10, ef=16, filter=allowed)
    assert np.all(bl[:, 3:] == NONE) and np.all(np.isinf(bd[:, 3:]))
    assert all(sorted(map(int, row[:3])) == [5, 123, 17_000] for row in bl)
    el, ed = graph.search(queries[0], k=10, filter=np.array([], dtype=np.uint64))
    assert len(el) == 0


# ---------------------------------------------------------------------------
# growth, chunks, threads


def test_growth_over_many_small_chunks(clustered):
    base, queries, _ = clustered
    g = HnswGraph(DIM, "l2", m=8, ef_construction=64, capacity=10, chunk_shift=6)
    for start in range(0, 3000, 700):  # several batches, the graph grows each time
        stop = min(start + 700, 3000)
        g.add(base[start:stop], np.arange(start, stop), threads=2)
    assert g.count == 3000 and g.capacity >= 3000
    assert len(g.level0_regions()) == (3000 + 63) // 64
    truth, _ = brute_force(base[:3000], queries[:50], 10, "l2")
    labels, _ = g.search_batch(queries[:50], k=10, ef=128)
    assert recall(labels, truth) >= 0.95
    assert 2999 in g and 3000 not in g


def test_k_larger_than_count():
    g = HnswGraph(4, "l2", capacity=8)
    g.add(np.eye(4, dtype=np.float32), [10, 11, 12, 13])
    sl, sd = g.search(np.zeros(4, np.float32), k=50)
    assert sorted(map(int, sl)) == [10, 11, 12, 13]
    bl, bd = g.search_batch(np.zeros((2, 4)), k=6)
    assert np.all(bl[:, 4:] == NONE) and np.all(np.isinf(bd[:, 4:]))
    empty = HnswGraph(4)
    assert len(empty.search(np.zeros(4), k=3)[0]) == 0


def test_visited_epoch_wraps():
    # The u16 visited tags of a search context wrap after 65535 searches and the
    # array must be cleared then, or a node tagged by search t of the previous
    # epoch would look visited to search t of the new one. A fresh view has a
    # fresh context: 200 queries in new regions (tags 1..200), then one query
    # repeated (tags 201..65535), then the 200 again (tags 1..200 after the
    # wrap), which must give the same answers as the first time.
    rng = np.random.default_rng(5)
    data = rng.standard_normal((3000, 4)).astype(np.float32)
    g = HnswGraph(4, "l2", m=4, ef_construction=32, capacity=3000)
    g.add(data, np.arange(3000))
    v = HnswGraph.view(*serialized(g))
    qa = data[rng.choice(3000, 200, replace=False)] + 0.01
    q = np.concatenate([qa, np.repeat(qa[:1], 65535 - 200, axis=0), qa])
    labels, dists = v.search_batch(q, k=3, ef=3, threads=1)
    assert np.array_equal(labels[:200], labels[-200:])
    assert np.array_equal(dists[:200], dists[-200:])


def test_parallel_build_is_complete(clustered):
    base, queries, _ = clustered
    n = 8000
    g = HnswGraph(DIM, "cosine", m=16, ef_construction=100, capacity=n)
    g.add(base[:n], np.arange(n), threads=2)
    assert sorted(map(int, g.labels())) == list(range(n))
    truth, _ = brute_force(base[:n], queries, 10, "cosine")
    labels, _ = g.search_batch(queries, k=10, ef=64, threads=2)
    assert recall(labels, truth) >= 0.95


# ---------------------------------------------------------------------------
# serialization and views


def serialized(g):
    r = g.regions()
    return r["header"], [bytes(c) for c in r["level0"]], bytes(r["upper"]), bytes(r["nodes"])


def test_view_over_regions_matches_original(graph, clustered):
    _, queries, _ = clustered
    header, chunks, upper, nodes = serialized(graph)
    assert len(header) == 128
    total = len(header) + sum(map(len, chunks)) + len(upper) + len(nodes)
    assert total == graph.nbytes
    ol, od = graph.search_batch(queries, k=10, ef=64)
    for level0 in (chunks, b"".join(chunks)):  # one buffer per chunk, or one for all
        v = HnswGraph.view(header, level0, upper, nodes)
        assert v.readonly and v.count == graph.count and v.max_level == graph.max_level
        vl, vd = v.search_batch(queries, k=10, ef=64, threads=2)
        assert np.array_equal(vl, ol) and np.array_equal(vd, od)
        sl, sd = v.search(queries[3], k=10, ef=64)
        assert np.array_equal(sl, ol[3])
    assert 5 in v and N not in v and not v.is_deleted(5)


def test_view_over_mmap_and_addresses(tmp_path, clustered):
    base, queries, _ = clustered
    g = HnswGraph(DIM, "ip", m=12, ef_construction=80, capacity=3000, chunk_shift=8)
    g.add(base[:3000], np.arange(3000) * 7)
    g.mark_deleted([0, 7, 14])
    header, chunks, upper, nodes = serialized(g)
    level0 = b"".join(chunks)
    path = tmp_path / "graph.bin"
    # header | level0 | upper | nodes, each at an 8-aligned offset
    parts, offs, pos = [header, level0, upper, nodes], [], 0
    with open(path, "wb") as f:
        for p in parts:
            pad = (-pos) % 8
            f.write(b"\0" * pad)
            pos += pad
            offs.append(pos)
            f.write(p)
            pos += len(p)
    ol, od = g.search_batch(queries[:30], k=10, ef=50)
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        mv = memoryview(mm)
        regs = [mv[o : o + len(p)] for o, p in zip(offs, parts)]
        v = HnswGraph.view(*regs)
        vl, vd = v.search_batch(queries[:30], k=10, ef=50)
        assert np.array_equal(vl, ol) and np.array_equal(vd, od)
        assert v.deleted_count == 3
        assert v.is_deleted(7) and not v.is_deleted(21) and 21 in v and 22 not in v
        del v
        for r in regs:
            r.release()
        mv.release()
        mm.close()
    # raw addresses plus an owner that keeps the memory alive
    arrs = [np.frombuffer(p, dtype=np.uint8).copy() for p in parts]
    v = HnswGraph.view(*[(a.ctypes.data, a.nbytes) for a in arrs], owner=arrs)
    del arrs
    vl, vd = v.search_batch(queries[:30], k=10, ef=50)
    assert np.array_equal(vl, ol) and np.array_equal(vd, od)


def test_view_is_read_only(graph):
    v = HnswGraph.view(*serialized(graph))
    with pytest.raises(ValueError):
        v.add(np.zeros((1, DIM), np.float32), [N + 1])
    with pytest.raises(ValueError):
        v.mark_deleted([0])


def test_exported_regions_block_add():
    g = HnswGraph(4, capacity=4)
    g.add(np.eye(4), [1, 2, 3, 4])
    up = g.upper_region()
    with pytest.raises(BufferError):
        g.add(np.ones((1, 4)), [5])
    up.release()
    g.add(np.ones((1, 4)), [5])
    assert g.count == 5


HEADER_FIELDS = {  # name: (offset, struct format)
    "magic": (0, "<I"),
    "version": (4, "<I"),
    "dim": (8, "<I"),
    "metric": (12, "<I"),
    "m": (16, "<I"),
    "m0": (20, "<I"),
    "ef_construction": (24, "<I"),
    "chunk_shift": (28, "<I"),
    "count": (32, "<Q"),
    "capacity": (40, "<Q"),
    "entry_point": (48, "<I"),
    "max_level": (52, "<i"),
    "record_size": (56, "<I"),
    "level0_bytes": (72, "<Q"),
    "upper_bytes": (80, "<Q"),
    "nodes_bytes": (88, "<Q"),
}


def patch(buf, off, fmt, value):
    b = bytearray(buf)
    struct.pack_into(fmt, b, off, value)
    return bytes(b)


@pytest.mark.parametrize(
    "field,value",
    [
        ("magic", 0x12345678),
        ("version", 99),
        ("dim", 0),
        ("dim", DIM + 1),
        ("metric", 3),
        ("m", 1),
        ("m0", 3),
        ("chunk_shift", 31),
        ("ef_construction", 2**31),
        ("count", N + 1),
        ("count", 2**40),
        ("entry_point", N),
        ("max_level", 300),
        ("max_level", -1),
        ("record_size", 8),
        ("level0_bytes", 1),
        ("upper_bytes", 2**60),
        ("nodes_bytes", 8),
    ],
)
def test_corrupt_header_raises(graph, field, value):
    header, chunks, upper, nodes = serialized(graph)
    off, fmt = HEADER_FIELDS[field]
    with pytest.raises(HnswCorruptionError):
        HnswGraph.view(patch(header, off, fmt, value), chunks, upper, nodes)
    assert issubclass(HnswCorruptionError, ValueError)


def test_short_or_misaligned_regions_raise(graph):
    header, chunks, upper, nodes = serialized(graph)
    with pytest.raises(HnswCorruptionError):
        HnswGraph.view(header[:100], chunks, upper, nodes)
    with pytest.raises(HnswCorruptionError):
        HnswGraph.view(header, chunks[:-1], upper, nodes)
    with pytest.raises(HnswCorruptionError):
        HnswGraph.view(header, chunks[:-1] + [chunks[-1][:-1]], upper, nodes)
    with pytest.raises(HnswCorruptionError):
        HnswGraph.view(header, b"".join(chunks)[:-8], upper, nodes)
    with pytest.raises(HnswCorruptionError):
        HnswGraph.view(header, chunks, upper[:-4], nodes)
    with pytest.raises(HnswCorruptionError):
        HnswGraph.view(header, chunks, upper, nodes[:-8])
    with pytest.raises(HnswCorruptionError):
        HnswGraph.view(header, memoryview(b"\0" + b"".join(chunks))[1:], upper, nodes)


def test_corrupt_node_table_raises(graph):
    header, chunks, upper, nodes = serialized(graph)
    tab = np.frombuffer(nodes, dtype=np.uint64).copy()
    lv = tab >> np.uint64(56)
    i = int(np.nonzero(lv)[0][0])
    bad = tab.copy()
    bad[i] = (lv[i] << np.uint64(56)) | np.uint64(len(upper))  # block past the arena
    with pytest.raises(HnswCorruptionError):
        HnswGraph.view(header, chunks, upper, bad.tobytes())
    bad = tab.copy()
    bad[0] = np.uint64(200) << np.uint64(56)  # above max level
    with pytest.raises(HnswCorruptionError):
        HnswGraph.view(header, chunks, upper, bad.tobytes())


def corrupt_level0(graph, chunks, how):
    rs = graph.record_size
    out = []
    for c in chunks:
        recs = np.frombuffer(c, dtype=np.uint32).copy().reshape(-1, rs // 4)
        if how == "id":
            recs[:, 1] = 0xFFFFFFF0  # first neighbour of every node out of range
        else:
            recs[:, 0] = (recs[:, 0] & ~np.uint32(0xFFFF)) | np.uint32(graph.m0 + 1)
        out.append(recs.tobytes())
    return out


@pytest.mark.parametrize("how", ["id", "count"])
def test_corrupt_neighbours_raise_during_search(graph, clustered, how):
    _, queries, _ = clustered
    header, chunks, upper, nodes = serialized(graph)
    v = HnswGraph.view(header, corrupt_level0(graph, chunks, how), upper, nodes)
    with pytest.raises(HnswCorruptionError):
        v.search(queries[0], k=10, ef=64)
    with pytest.raises(HnswCorruptionError):
        v.search_batch(queries[:10], k=10, ef=64, threads=2)


def test_corrupt_upper_links_raise_during_search(graph, clustered):
    _, queries, _ = clustered
    header, chunks, upper, nodes = serialized(graph)
    u = np.frombuffer(upper, dtype=np.uint32).copy().reshape(-1, 1 + graph.m)
    u[:, 1] = 0xFFFFFFF0
    u[:, 0] = np.maximum(u[:, 0], 1)
    v = HnswGraph.view(header, chunks, u.tobytes(), nodes)
    with pytest.raises(HnswCorruptionError):
        v.search(queries[0], k=10)


# ---------------------------------------------------------------------------
# input validation


def test_constructor_validation():
    with pytest.raises(ValueError, match="metric"):
        HnswGraph(8, "hamming")
    with pytest.raises(ValueError):
        HnswGraph(0)
    with pytest.raises(ValueError):
        HnswGraph(8, m=1)
    with pytest.raises(ValueError):
        HnswGraph(8, ef_construction=0)


def test_add_validation():
    g = HnswGraph(4, capacity=16)
    with pytest.raises(ValueError, match="dimension"):
        g.add(np.zeros((2, 5), np.float32), [1, 2])
    with pytest.raises(ValueError, match="2-D"):
        g.add(np.zeros(4, np.float32), [1])
    with pytest.raises(ValueError, match="NaN"):
        g.add(np.array([[0, np.nan, 0, 0]], np.float32), [1])
    with pytest.raises(ValueError, match="NaN"):
        g.add(np.array([[0, np.inf, 0, 0]]), [1])
    with pytest.raises(TypeError):
        g.add(np.array([["a", "b", "c", "d"]]), [1])
    with pytest.raises(TypeError):
        g.add(np.zeros((1, 4), np.complex64), [1])
    with pytest.raises(ValueError, match="duplicate"):
        g.add(np.zeros((2, 4)), [3, 3])
    with pytest.raises(ValueError, match="labels"):
        g.add(np.zeros((2, 4)), [3])
    with pytest.raises(ValueError):
        g.add(np.zeros((1, 4)), [-1])
    with pytest.raises(TypeError):
        g.add(np.zeros((1, 4)), [1.5])
    with pytest.raises(ValueError, match="threads"):
        g.add(np.zeros((1, 4)), [1], threads=0)
    assert g.count == 0  # nothing was added by a rejected call
    g.add(np.arange(8, dtype=np.float64).reshape(2, 4), [1, 2])  # float64 converted
    g.add(np.ones((1, 4), dtype=np.int32), [3])  # integers converted
    with pytest.raises(ValueError, match="already"):
        g.add(np.zeros((2, 4)), [4, 2])
    assert g.count == 3
    sl, sd = g.search(np.array([0.0, 1, 2, 3]), k=1)  # float64 query
    assert int(sl[0]) == 1 and sd[0] == 0


def test_search_validation(graph):
    q = np.zeros(DIM, np.float32)
    with pytest.raises(ValueError, match="k must"):
        graph.search(q, k=0)
    with pytest.raises(ValueError, match="k must"):
        graph.search_batch(q[None], k=0)
    with pytest.raises(ValueError, match="dimension"):
        graph.search(np.zeros(DIM + 1, np.float32))
    with pytest.raises(ValueError):
        graph.search(np.zeros((1, DIM), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        graph.search(np.full(DIM, np.nan, np.float32))
    with pytest.raises(ValueError, match="NaN"):
        graph.search_batch(np.full((2, DIM), np.inf, np.float32))
    with pytest.raises(TypeError):
        graph.search(np.array(["x"] * DIM))
    with pytest.raises(TypeError):
        graph.search(q, filter=np.array([0.5]))


@pytest.mark.parametrize("cap", ["generic", "avx2"])
def test_portable_kernels_end_to_end(cap):
    # TOONDB_HNSW_SIMD caps the kernel choice at import: the whole graph must
    # work with the portable kernels (what an x86_64 without AVX2 or an
    # aarch64 machine runs) and give the same answers as the default choice.
    import os
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from toondb.vector._hnsw import HnswGraph, simd_level\n"
        "rng = np.random.default_rng(1)\n"
        "x = rng.standard_normal((1500, 40)).astype(np.float32)\n"
        "g = HnswGraph(40, 'cosine', m=8, ef_construction=64)\n"
        "g.add(x, np.arange(1500))\n"
        "l, d = g.search_batch(x[:20] + 0.01, k=5, ef=64)\n"
        "print(simd_level(), l[:, 0].tolist(), sep='|')\n"
    )
    env = dict(os.environ, TOONDB_HNSW_SIMD=cap)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    name, first = out.stdout.strip().split("|")
    assert name == cap or (cap == "avx2" and name == "generic" and simd_level() == "generic")
    assert eval(first) == list(range(20))  # each query's own vector comes first


def test_searches_concurrent_with_adds(clustered):
    # add() takes the write lock (the graph grows and moves memory), searches
    # the read lock: Python threads searching while another adds must always
    # see a consistent graph and never crash
    import threading

    base, queries, _ = clustered
    g = HnswGraph(DIM, "l2", m=8, ef_construction=48, capacity=16, chunk_shift=7)
    g.add(base[:100], np.arange(100))
    errors, stop = [], threading.Event()

    def searcher():
        try:
            while not stop.is_set():
                n = g.count
                sl, _ = g.search(queries[0], k=5, ef=16)
                assert len(sl) == 5 and int(sl.max()) < 4000 and n <= g.count
                bl, _ = g.search_batch(queries[:4], k=5, ef=16, threads=2)
                assert np.all(bl < 4000)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=searcher) for _ in range(2)]
    for t in threads:
        t.start()
    for start in range(100, 4000, 300):
        stop_ = min(start + 300, 4000)
        g.add(base[start:stop_], np.arange(start, stop_), threads=2)
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert g.count == 4000


def test_view_of_an_empty_graph():
    g = HnswGraph(4, "ip")
    v = HnswGraph.view(*serialized(g))
    assert v.count == 0 and v.max_level == -1 and v.entry_point is None and v.metric == "ip"
    assert len(v.search(np.ones(4), k=3)[0]) == 0
    bl, bd = v.search_batch(np.ones((2, 4)), k=3)
    assert np.all(bl == NONE) and np.all(np.isinf(bd))


# ---------------------------------------------------------------------------
# what the stored index needs: owned copies, dirty chunks, re-pointed labels,
# the label table, progress and cancellation, Neighbor results


def test_copy_of_a_view_continues_like_the_original(clustered):
    base, queries, _ = clustered
    g = HnswGraph(DIM, "l2", m=8, ef_construction=48, capacity=10, chunk_shift=6)
    g.add(base[:1000], np.arange(1000))
    g.mark_deleted([3, 4])
    c = HnswGraph.from_regions(*serialized(g), capacity=2000)
    assert not c.readonly and c.count == 1000 and c.capacity >= 2000
    assert c.deleted_count == 2 and c.is_deleted(3) and 999 in c
    assert len(c.dirty_chunks()) == 0 and not c.upper_dirty
    assert c.header_bytes() != b"" and c.nbytes == g.nbytes
    # the copy continues the level generator: the same further adds give the same graph
    g.add(base[1000:1500], np.arange(1000, 1500))
    c.add(base[1000:1500], np.arange(1000, 1500))
    assert serialized(g)[1:] == serialized(c)[1:]
    gl, gd = g.search_batch(queries, k=10, ef=32)
    cl, cd = c.search_batch(queries, k=10, ef=32)
    assert np.array_equal(gl, cl) and np.array_equal(gd, cd)


def test_copy_checks_every_neighbour_list(graph):
    header, chunks, upper, nodes = serialized(graph)
    bad = bytearray(chunks[2])
    bad[4:8] = struct.pack("<I", N + 7)  # a neighbour id past the count, in record 0 of chunk 2
    v = HnswGraph.view(header, chunks[:2] + [bytes(bad)] + chunks[3:], upper, nodes)
    with pytest.raises(HnswCorruptionError, match="neighbour list"):
        v.copy()
    bad = bytearray(chunks[0])
    bad[0:2] = struct.pack("<H", 200)  # a count above m0
    v = HnswGraph.view(header, [bytes(bad)] + chunks[1:], upper, nodes)
    with pytest.raises(HnswCorruptionError):
        v.copy()


def test_dirty_chunks_name_what_changed(clustered):
    base, _, _ = clustered
    g = HnswGraph(DIM, "l2", m=8, ef_construction=48, capacity=10, chunk_shift=6)
    g.add(base[:2000], np.arange(2000))
    assert list(g.dirty_chunks()) == list(range(32)) and g.upper_dirty
    g.clear_dirty()
    assert len(g.dirty_chunks()) == 0 and not g.upper_dirty
    before = [bytes(c) for c in g.level0_regions()]
    g.mark_deleted([5, 700])
    assert list(g.dirty_chunks()) == [0, 10] and not g.upper_dirty
    g.clear_dirty()
    g.add(base[2000:2010], np.arange(2000, 2010))
    after = [bytes(c) for c in g.level0_regions()]
    changed = [i for i in range(len(after)) if i >= len(before) or before[i] != after[i]]
    # every chunk whose bytes changed is flagged (the new records' chunk among them)
    assert set(changed) <= set(g.dirty_chunks().tolist()) and 31 in changed and g.upper_dirty


def test_a_deleted_label_can_be_added_again(clustered):
    base, queries, _ = clustered
    g = HnswGraph(DIM, "l2", m=8, ef_construction=48, capacity=100)
    g.add(base[:100], np.arange(100))
    with pytest.raises(ValueError, match="already in the graph"):
        g.add(base[100:101], [7])
    g.mark_deleted([7])
    g.add(base[100:101], [7])  # the label now names the new record
    assert g.count == 101 and g.deleted_count == 1 and not g.is_deleted(7)
    sl, sd = g.search(base[100], k=1)
    assert int(sl[0]) == 7 and sd[0] == 0
    labels, ids = g.label_table()
    assert list(labels) == list(range(100)) and int(ids[7]) == 100 and len(ids) == 100
    assert np.array_equal(g.vector(100), base[100]) and np.array_equal(g.vector(0), base[0])
    with pytest.raises(IndexError):
        g.vector(101)
    assert np.array_equal(g.vectors([100, 0, 5]), base[[100, 0, 5]])
    assert g.vectors([]).shape == (0, DIM)
    with pytest.raises(IndexError):
        g.vectors([3, 101])
    # never two live records: the old one is never returned
    bl, _ = g.search_batch(np.stack([base[7], base[100]]), k=100, ef=200)
    assert all(list(row).count(7) == 1 for row in bl)


def test_label_table_of_a_view_matches(graph):
    v = HnswGraph.view(*serialized(graph))
    labels, ids = v.label_table()
    assert np.array_equal(labels, np.arange(N, dtype=np.uint64))
    assert all(int(graph.labels()[i]) == int(lab) for lab, i in zip(labels[:50], ids[:50]))


def test_progress_is_reported_and_an_exception_stops_the_build(clustered):
    base, _, _ = clustered
    seen = []
    g = HnswGraph(DIM, "l2", m=16, ef_construction=200, capacity=N)
    g.add(base[:4000], np.arange(4000), threads=2, progress=seen.append)
    assert seen and seen[-1] == 4000 and seen == sorted(seen)

    class Stop(Exception):
        pass

    def stop(done):
        raise Stop

    g = HnswGraph(DIM, "l2", m=16, ef_construction=400, capacity=N)
    t0 = time.perf_counter()
    with pytest.raises(Stop):
        g.add(base, np.arange(N), threads=1, progress=stop)
    assert time.perf_counter() - t0 < 5  # stopped early: the whole build takes longer


def test_neighbor_results():
    g = HnswGraph(4, "l2", capacity=8)
    g.add(np.diag([1, 2, 3, 4]).astype(np.float32), [10, 11, 12, 13])
    res = g.search_neighbors(np.array([1, 0, 0, 0], np.float32), k=2)
    assert [r.id for r in res] == [10, 11] and res[0].distance == 0.0
    i, d = res[1]
    assert (i, d) == (11, 5.0) and res[1] == (11, 5.0) and res[1][0] == 11 and len(res[1]) == 2
    assert repr(res[0]) == "Neighbor(id=10, distance=0.0)"
    import pickle

    assert pickle.loads(pickle.dumps(res[1])) == res[1]
    assert neighbors(np.array([5, 2**64 - 1], np.uint64), np.array([0.5, np.inf], np.float32)) == [
        (5, 0.5)
    ]


def test_nodes_added_after_the_entry_point_was_deleted_are_reachable(clustered):
    # the entry point is never a search result once deleted; a build must still link
    # new nodes to it (as hnswlib does), or they would be unreachable
    base, _, _ = clustered
    g = HnswGraph(DIM, "l2", m=8, ef_construction=32, capacity=4)
    g.add(base[:1], [0])
    g.mark_deleted([0])
    g.add(base[1:2], [1])
    assert [int(x) for x in g.search(base[1], k=1)[0]] == [1]
    # most of a graph deleted, its entry point among them, then new nodes
    g = HnswGraph(DIM, "l2", m=8, ef_construction=32, capacity=3000)
    g.add(base[:2000], np.arange(2000))
    g.mark_deleted(np.arange(2000))
    g.add(base[2000:2500], np.arange(2000, 2500))
    labels, _ = g.search_batch(base[2000:2500], k=1, ef=32)
    assert (labels[:, 0] == np.arange(2000, 2500)).mean() >= 0.99
