"""toondb.distributed: a vector index sharded over local processes or a Ray cluster.

Against NumPy exact search and one unsharded index over the same vectors: recall,
the exactness of the merge (brute force over the shards' returned candidates),
reopening, workers killed mid-query, a hung shard (typed error within the timeout;
flagged partial results), streamed builds, writes routed to the owning shard, and the
manifest's checks. Each runs with the local backend and with a Ray instance the module
starts on 127.0.0.1 (``ray.init(num_cpus=2)``; one for the module: Ray starts slowly).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import weakref

import numpy as np
import pytest

from toondb.distributed import LocalDirectory, ShardedIndex, resolve_location
from toondb.distributed.merge import merge_top_k
from toondb.distributed.partition import shard_of, split_by_shard, splitmix64
from toondb.errors import (
    ClosedError,
    CorruptionError,
    ReadOnlyError,
    ShardChecksumError,
    ShardedIndexError,
    ShardUnavailableError,
    VectorIndexError,
)
from toondb.vector.bulk import bulk_build_index, open_index

N, DIM, NQ, K, EF, SHARDS = 6000, 24, 200, 10, 12, 4
METRIC = "cosine"
BACKENDS = ["local", pytest.param("ray", marks=pytest.mark.ray)]


def normalized(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def exact_distances(queries, vectors):
    """Cosine distance (1 - cosine similarity), as the kernel computes it, float64."""
    return 1.0 - normalized(queries.astype(np.float64)) @ normalized(vectors.astype(np.float64)).T


def exact_top_k(queries, vectors, k):
    return np.argsort(exact_distances(queries, vectors), axis=1, kind="stable")[:, :k]


def recall(found, truth):
    return float(
        np.mean([len(set(f.tolist()) & set(t.tolist())) / len(t) for f, t in zip(found, truth)])
    )


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    centers = rng.standard_normal((40, DIM)).astype(np.float32)
    x = (centers[rng.integers(0, 40, N)] + 0.6 * rng.standard_normal((N, DIM))).astype(np.float32)
    q = (centers[rng.integers(0, 40, NQ)] + 0.6 * rng.standard_normal((NQ, DIM))).astype(np.float32)
    return x, q, exact_top_k(q, x, K)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("distributed")


@pytest.fixture(scope="module")
def single_recall(data, workdir):
    """recall@K of one index over all the vectors, at EF."""
    x, q, truth = data
    path = str(workdir / "single.hnsw")
    bulk_build_index(x, path, m=16, ef_construction=100, metric=METRIC, progress=False)
    with open_index(path) as idx:
        ids, _ = idx.search_arrays(q, K, EF)
    return recall(ids, truth)


_RAY_INDEXES: list = []  # indexes opened on the Ray backend: closed before Ray shuts down


@pytest.fixture(scope="module")
def ray_cluster():
    """A Ray instance of this machine, bound to 127.0.0.1 only, for the module."""
    # before Ray is imported: no usage reports; the loopback address as the node's
    # (Ray otherwise advertises the machine's network address)
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    ray = pytest.importorskip("ray")
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False  # the same, if Ray was imported before
    if ray.is_initialized():
        ray.shutdown()
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        object_store_memory=200 * 1024 * 1024,
    )
    try:
        addresses = {n["NodeManagerAddress"] for n in ray.nodes()}
        assert addresses == {"127.0.0.1"}, f"Ray is not on loopback only: {addresses}"
        yield ray
    finally:
        for idx in _RAY_INDEXES:
            idx.close()
        ray.shutdown()


@pytest.fixture(scope="module")
def built(data, workdir, request):
    """backend -> the directory of a SHARDS-shard index of the data, built on it."""
    dirs = {}

    def get(backend):
        if backend not in dirs:
            if backend == "ray":
                request.getfixturevalue("ray_cluster")
            x = data[0]
            path = str(workdir / f"idx-{backend}")
            stats = ShardedIndex.build(
                x, path=path, shards=SHARDS, metric=METRIC, backend=backend, progress=False
            )
            assert stats.vectors == N and stats.shards == SHARDS and stats.backend == backend
            dirs[backend] = path
        return dirs[backend]

    return get


@pytest.fixture(scope="module")
def opened(built):
    """backend -> the index opened on that backend (one per module, closed at its end)."""
    handles = {}

    def get(backend):
        if backend not in handles:
            handles[backend] = ShardedIndex.open(built(backend), backend=backend, timeout=60)
            if backend == "ray":
                _RAY_INDEXES.append(handles[backend])
        return handles[backend]

    yield get
    for h in handles.values():
        h.close()


# ---------------------------------------------------------------------------------------
# the pure parts: partition, merge, location
# ---------------------------------------------------------------------------------------


def test_partition_is_splitmix64_and_balanced():
    # SplitMix64 seeded with s outputs finalizer(s + golden gamma) first
    assert int(splitmix64(np.array([0], np.uint64))[0]) == 0xE220A8397B1DCDAF
    ids = np.arange(100_000, dtype=np.uint64)
    counts = np.bincount(shard_of(ids, 8), minlength=8)
    assert counts.min() > 0.97 * 100_000 / 8
    parts = split_by_shard(ids[:1000], 3)
    assert sorted(np.concatenate(parts).tolist()) == list(range(1000))
    for s, rows in enumerate(parts):
        assert (shard_of(ids[rows], 3) == s).all() and (np.diff(rows) > 0).all()


def test_merge_keeps_the_k_best_by_distance_then_id():
    a = (np.array([[5, 1, -1]]), np.array([[0.1, 0.3, np.inf]], np.float32))
    b = (np.array([[7, 2, 9]]), np.array([[0.1, 0.2, 0.3]], np.float32))
    ids, d = merge_top_k([a, b], 4, 1)
    assert ids.tolist() == [[5, 7, 2, 1]]
    assert d[0].tolist() == pytest.approx([0.1, 0.1, 0.2, 0.3])
    ids, d = merge_top_k([a], 5, 1)  # fewer than k: padded
    assert ids.tolist() == [[5, 1, -1, -1, -1]] and np.isinf(d[0, 2:]).all()
    ids, d = merge_top_k([], 2, 3)
    assert (ids == -1).all() and ids.shape == (3, 2)


def test_locations_and_urls(tmp_path):
    loc = resolve_location(tmp_path / "x")
    assert isinstance(loc, LocalDirectory) and loc.url == str(tmp_path / "x")
    assert resolve_location(f"file://{tmp_path}") == LocalDirectory(str(tmp_path))
    assert resolve_location(loc) is loc
    from toondb.distributed.object_location import ObjectStoreLocation

    assert resolve_location("s3://bucket/index/") == ObjectStoreLocation("s3://bucket/index")
    with pytest.raises(ValueError, match="gs:// locations are not supported"):
        resolve_location("gs://bucket/index")


# ---------------------------------------------------------------------------------------
# search: recall, exact merge, reopen
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_recall_matches_one_index(backend, data, opened, single_recall):
    x, q, truth = data
    idx = opened(backend)
    res = idx.search_arrays(q, K, EF)
    ids, dists = res
    assert ids.shape == (NQ, K) and dists.dtype == np.float32 and not res.partial
    sharded = recall(ids, truth)
    print(f"recall@{K} at ef {EF}: {SHARDS} shards {sharded:.4f}, one index {single_recall:.4f}")
    assert sharded >= single_recall - 0.01, (sharded, single_recall)
    # the list form agrees with the arrays
    hits = idx.search(q[3], K, EF)
    assert [h.id for h in hits] == ids[3].tolist()
    assert [h.distance for h in hits] == pytest.approx(dists[3].tolist())


@pytest.mark.parametrize("backend", BACKENDS)
def test_merge_is_exact_over_the_shards_candidates(backend, data, opened):
    """The merged top-k = brute force (NumPy) over the union of what the shards
    returned; each shard returned only ids it owns."""
    x, q, _ = data
    idx = opened(backend)
    per_shard = idx.shard_results(q, K, EF)
    merged_ids, merged_d = idx.search_arrays(q, K, EF)
    for s, (ids, _) in enumerate(per_shard):
        real = ids[ids >= 0]
        assert (shard_of(real.astype(np.uint64), SHARDS) == s).all()
    for r in range(NQ):
        cand = np.unique(np.concatenate([ids[r][ids[r] >= 0] for ids, _ in per_shard]))
        exact = exact_distances(q[r : r + 1], x[cand])[0]
        best = np.sort(exact)[:K]
        got = exact_distances(q[r : r + 1], x[merged_ids[r]])[0]
        assert set(merged_ids[r].tolist()) <= set(cand.tolist())
        np.testing.assert_allclose(np.sort(got), best, atol=2e-5)  # the same k best
        np.testing.assert_allclose(merged_d[r], got, atol=2e-5)  # and their distances


@pytest.mark.parametrize("backend", BACKENDS)
def test_reopen_gives_the_same_answers(backend, data, built, opened):
    q = data[1]
    before = opened(backend).search_arrays(q, K, EF)
    with ShardedIndex.open(built(backend), backend=backend) as again:
        after = again.search_arrays(q, K, EF)
        info = again.info()
    assert (after.ids == before.ids).all()
    np.testing.assert_array_equal(after.distances, before.distances)
    assert info.vectors == N and info.shards == SHARDS and info.metric == METRIC
    assert sum(i.vectors for i in info.shard_info) == N


# ---------------------------------------------------------------------------------------
# failures: a worker killed mid-query, a hung shard
# ---------------------------------------------------------------------------------------


def _kill(backend, idx, shard, ray_cluster=None):
    if backend == "ray":
        ray_cluster.kill(idx.worker(shard), no_restart=False)
    else:
        os.kill(idx.worker(shard).pid, signal.SIGKILL)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_worker_killed_mid_query_is_replaced(backend, data, opened, request):
    ray = request.getfixturevalue("ray_cluster") if backend == "ray" else None
    q = data[1]
    idx = opened(backend)
    expected = idx.search_arrays(q, K, EF)
    pid_before = idx.workers()[1]["pid"]
    idx._inject_stall(1, 20.0)  # shard 1 is inside this query when it is killed
    killer = threading.Timer(0.5, _kill, (backend, idx, 1, ray))
    killer.start()
    t0 = time.monotonic()
    try:
        got = idx.search_arrays(q, K, EF, timeout=30)
    finally:
        killer.join()
    assert time.monotonic() - t0 < 15  # the restarted worker answered, not the stall
    assert not got.partial
    assert (got.ids == expected.ids).all()
    assert idx.workers()[1]["pid"] != pid_before


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_hung_shard_fails_the_search_naming_it(backend, data, opened):
    q = data[1]
    idx = opened(backend)
    per_shard = idx.shard_results(q, K, EF)
    idx._inject_stall(2, 2.5)
    t0 = time.monotonic()
    with pytest.raises(ShardUnavailableError) as e:
        idx.search_arrays(q, K, EF, timeout=0.5)
    assert time.monotonic() - t0 < 1.5
    assert e.value.shard == 2 and e.value.shards == (2,)
    assert "shard 2 (shard-00002.hnsw)" in str(e.value)
    # the shard still hangs: allow_partial returns the others' merge, flagged
    part = idx.search_arrays(q, K, EF, timeout=0.5, allow_partial=True)
    assert part.partial and part.missing_shards == (2,)
    others = [p for s, p in enumerate(per_shard) if s != 2]
    ids, dists = merge_top_k(others, K, NQ)
    assert (part.ids == ids).all() and not (
        shard_of(part.ids[part.ids >= 0].astype(np.uint64), SHARDS) == 2
    ).any()
    hits = idx.search(q[0], K, EF, timeout=0.5, allow_partial=True)
    assert hits.partial and hits.missing_shards == (2,)
    assert [h.id for h in hits] == ids[0].tolist()
    # once it catches up, the late answers are dropped and searches are whole again
    assert len(idx.workers(timeout=20)) == SHARDS
    whole = idx.search_arrays(q, K, EF)
    assert not whole.partial and (whole.ids == merge_top_k(per_shard, K, NQ)[0]).all()


# ---------------------------------------------------------------------------------------
# builds from a stream
# ---------------------------------------------------------------------------------------


def _stream(n, batch, seed, with_ids, alive=None):
    """Batches of random vectors; with alive (a list), a weak reference to each batch
    goes in it, and each batch checks that all but the one before it are gone."""
    rng = np.random.default_rng(seed)
    for start in range(0, n, batch):
        x = rng.standard_normal((min(batch, n - start), DIM)).astype(np.float32)
        if alive is not None:
            held = [i for i, ref in enumerate(alive[:-1]) if ref() is not None]
            assert not held, f"batches {held} are still held while batch {len(alive)} is made"
            alive.append(weakref.ref(x))
        if with_ids:
            yield x, 10**12 + 7 * np.arange(start, start + len(x))
        else:
            yield x
        del x


def _stream_all(n, batch, seed):
    return np.concatenate(list(_stream(n, batch, seed, False)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_build_from_a_generator_of_batches(backend, tmp_path, request):
    """Batches are streamed to the shards: the driver drops each batch before it takes
    the one after next (weak references), and the index answers as one built from the
    whole array would."""
    if backend == "ray":
        request.getfixturevalue("ray_cluster")
    n, batch = 12_000, 500
    alive: list = []
    stats = ShardedIndex.build(
        _stream(n, batch, 3, True, alive), path=tmp_path / "g", shards=3, metric=METRIC,
        backend=backend, progress=False,
    )  # fmt: skip
    assert len(alive) == n // batch
    assert stats.vectors == n and sum(s.vectors for s in stats.shard_stats) == n
    assert not [f for f in os.listdir(tmp_path / "g") if f.endswith(".spool")]
    x = _stream_all(n, batch, 3)
    q = x[:50] + 0.01
    with ShardedIndex.open(tmp_path / "g", backend=backend) as idx:
        ids, _ = idx.search_arrays(q, K, 64)
    truth = 10**12 + 7 * exact_top_k(q, x, K)
    assert recall(ids, truth) > 0.9


def test_build_numbers_plain_batches_and_reports_progress(tmp_path):
    seen = []
    stats = ShardedIndex.build(
        _stream(3000, 700, 5, False), path=tmp_path / "p", shards=2, metric="l2",
        progress=lambda done, total: seen.append((done, total)),
    )  # fmt: skip
    assert stats.vectors == 3000 and seen[-1] == (3000, 3000) and len(seen) == 2
    x = _stream_all(3000, 700, 5)
    with ShardedIndex.open(tmp_path / "p") as idx:
        hit = idx.search(x[1234], 1, 64)
    assert hit[0].id == 1234 and hit[0].distance == pytest.approx(0.0, abs=1e-4)


def test_build_refuses_bad_input_before_writing(tmp_path, data):
    x = data[0][:100]
    with pytest.raises(ValueError, match="shards"):
        ShardedIndex.build(x, path=tmp_path / "a", shards=0)
    with pytest.raises(ValueError, match="metric"):
        ShardedIndex.build(x, path=tmp_path / "a", shards=2, metric="manhattan")
    with pytest.raises(ValueError, match="backend"):
        ShardedIndex.build(x, path=tmp_path / "a", shards=2, backend="spark")
    with pytest.raises(ValueError, match="ids"):
        ShardedIndex.build(x, np.arange(5), path=tmp_path / "a", shards=2)
    assert not (tmp_path / "a").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "something").write_text("x")
    with pytest.raises(ShardedIndexError, match="not empty"):
        ShardedIndex.build(x, path=tmp_path / "full", shards=2)
    with pytest.raises(ValueError, match="duplicate"):
        ShardedIndex.build(x, np.zeros(100, np.int64), path=tmp_path / "dup", shards=2)
    assert not (tmp_path / "dup" / "manifest.json").exists()
    assert not [f for f in os.listdir(tmp_path / "dup") if f.endswith(".spool")]


def test_ray_is_imported_only_for_the_ray_backend(tmp_path):
    code = textwrap.dedent(
        f"""
        import sys, numpy as np
        from toondb.distributed import ShardedIndex
        if __name__ == "__main__":
            x = np.random.default_rng(0).standard_normal((300, 8)).astype(np.float32)
            ShardedIndex.build(x, path={str(tmp_path / "r")!r}, shards=2, progress=False)
            with ShardedIndex.open({str(tmp_path / "r")!r}) as idx:
                assert idx.search(x[5], 1)[0].id == 5
            assert "ray" not in sys.modules, "ray was imported"
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# ---------------------------------------------------------------------------------------
# writes and the manifest
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_writes_route_to_the_owning_shard(backend, tmp_path, built, request):
    if backend == "ray":
        request.getfixturevalue("ray_cluster")
    path = tmp_path / "w"
    shutil.copytree(built(backend), path, ignore=shutil.ignore_patterns("*-lock"))
    new_ids = np.arange(N, N + 40)
    new_x = np.random.default_rng(11).standard_normal((40, DIM)).astype(np.float32)
    with ShardedIndex.open(path, backend=backend) as ro:
        with pytest.raises(ReadOnlyError):
            ro.add(new_ids, new_x)
    with ShardedIndex.open(path, backend=backend, read_only=False) as idx:
        before = [i.vectors for i in idx.info().shard_info]
        assert idx.add(new_ids, new_x) == 40
        after = [i.vectors for i in idx.info().shard_info]
        owners = np.bincount(idx.shard_of(new_ids), minlength=SHARDS)
        assert [a - b for a, b in zip(after, before)] == owners.tolist()
        assert idx.search(new_x[7], 1, 64)[0].id == N + 7
        with pytest.raises(VectorIndexError, match=f"id {N + 3} is already in the index"):
            idx.add([N + 3, N + 100], new_x[:2])
        assert N + 100 not in set(idx.search_arrays(new_x[1], 5, 64).ids.tolist())
        assert idx.info().vectors == N + 40
        assert idx.upsert([N + 3], new_x[0]) == 1
        assert idx.delete(list(new_ids[:10]) + [10**15]) == 10
        assert idx.info().vectors == N + 30
        mf = json.loads((path / "manifest.json").read_text())
        assert all(
            s["sha256"] is None for s in mf["shards"] if s["shard"] in set(owners.nonzero()[0])
        )
    mf = json.loads((path / "manifest.json").read_text())
    assert mf["vectors"] == N + 30 and all(s["sha256"] for s in mf["shards"])
    with ShardedIndex.open(path, backend=backend, verify=True) as again:
        assert again.info().vectors == N + 30
        assert again.search(new_x[20], 1, 64)[0].id == N + 20


@pytest.mark.damages_files
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_damaged_shard_is_named(backend, tmp_path, built, request):
    if backend == "ray":
        request.getfixturevalue("ray_cluster")
    path = tmp_path / "m"
    shutil.copytree(built(backend), path, ignore=shutil.ignore_patterns("*-lock"))
    with ShardedIndex.open(path, backend=backend, verify=True) as idx:
        assert idx.shards == SHARDS
    shard = path / "shard-00001.hnsw"
    raw = bytearray(shard.read_bytes())
    raw[-100] ^= 0xFF  # a byte of the last page: the size stays
    shard.write_bytes(bytes(raw))
    with pytest.raises(ShardChecksumError) as e:
        ShardedIndex.open(path, backend=backend, verify=True)
    assert e.value.shard == 1 and e.value.file == "shard-00001.hnsw"
    with pytest.raises(CorruptionError, match=r"^shard 1 \(shard-00001.hnsw\): "):
        ShardedIndex.open(path, backend=backend)  # the page checksums see it too


def test_manifest_checks(tmp_path, built):
    path = tmp_path / "m"
    shutil.copytree(built("local"), path, ignore=shutil.ignore_patterns("*-lock"))
    shard = path / "shard-00001.hnsw"
    raw = shard.read_bytes()
    shard.write_bytes(bytes(raw) + b"\0" * 4096)
    with pytest.raises(ShardedIndexError, match="shard 1's file shard-00001.hnsw has"):
        ShardedIndex.open(path)
    shard.unlink()
    with pytest.raises(ShardedIndexError, match="is missing"):
        ShardedIndex.open(path)
    (path / "manifest.json").write_text("{}")
    with pytest.raises(ShardedIndexError, match="not a toondb sharded-index manifest"):
        ShardedIndex.open(path)
    with pytest.raises(ShardedIndexError, match="no manifest.json"):
        ShardedIndex.open(tmp_path)


def test_search_arguments_and_closed_index(data, opened):
    idx = opened("local")
    with pytest.raises(VectorIndexError, match="dimension"):
        idx.search(np.zeros(DIM + 1, np.float32))
    with pytest.raises(ValueError):
        idx.search(data[1][0], k=0)
    with pytest.raises(ValueError, match="timeout"):
        idx.search(data[1][0], timeout=0)
    one = idx.search_arrays(data[1][0], 5, 32)
    assert one.ids.shape == (5,) and one.distances.shape == (5,)
    assert "4 shards" in repr(idx)


def test_closed_index_raises(tmp_path):
    x = np.random.default_rng(2).standard_normal((200, 8)).astype(np.float32)
    ShardedIndex.build(x, path=tmp_path / "c", shards=2, progress=False)
    idx = ShardedIndex.open(tmp_path / "c")
    idx.close()
    idx.close()
    with pytest.raises(ClosedError):
        idx.search(x[0])


# ---------------------------------------------------------------------------------------
# slow: a larger stream, each shard's memory bounded by its share
# ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_large_stream_keeps_each_process_to_its_share(tmp_path):
    n, dim, batch, shards = 400_000, 64, 10_000, 4
    rng = np.random.default_rng(9)
    alive: list = []

    def stream():
        for _ in range(n // batch):
            x = rng.standard_normal((batch, dim)).astype(np.float32)
            assert not [r for r in alive[:-1] if r() is not None]
            alive.append(weakref.ref(x))
            yield x
            del x

    stats = ShardedIndex.build(stream(), path=tmp_path / "big", shards=shards, metric="l2",
                               progress=False)  # fmt: skip
    # a worker's memory beyond an idle one's (a tiny build's peak) follows its own shard
    # (its graph, plus the file-backed pages of its mapped spool and of the file it
    # writes: ~2.7x the shard file), not the whole index
    tiny = ShardedIndex.build(np.ones((10, dim), np.float32), path=tmp_path / "tiny", shards=1)
    base = tiny.shard_stats[0].peak_rss_bytes
    for s in stats.shard_stats:
        grown = s.peak_rss_bytes - base
        assert grown < 3 * s.bytes and grown < stats.index_bytes, (s.shard, grown, s.bytes)
    with ShardedIndex.open(tmp_path / "big") as idx:
        assert idx.info().vectors == n


# ---------------------------------------------------------------------------------------
# an index in an object store (s3://, moto's server on 127.0.0.1)
# ---------------------------------------------------------------------------------------


def test_index_in_an_object_store(data, workdir, s3, tmp_path, monkeypatch):
    """Built under an s3:// URL, the index answers as the same build in a directory; a
    node caches each shard once; a write on one node is published so that another
    node (its own cache) sees it, and a node's stale cached copy is replaced."""
    x, q, _ = data
    url = s3.url.replace("/replica", "/vectors")
    node_a, node_b = tmp_path / "cache-a", tmp_path / "cache-b"
    monkeypatch.setenv("TOONDB_CACHE_DIR", str(node_a))
    ShardedIndex.build(x, path=url, shards=2, metric=METRIC, progress=False)
    ShardedIndex.build(x, path=str(workdir / "same-as-s3"), shards=2, metric=METRIC, progress=False)
    with ShardedIndex.open(workdir / "same-as-s3") as local:
        want_ids, want_d = local.search_arrays(q, K, EF)
    with ShardedIndex.open(url, verify=True) as idx:
        ids, d = idx.search_arrays(q, K, EF)
        assert idx.info().vectors == N
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_allclose(d, want_d, rtol=1e-6)
    cached = {p: p.stat().st_mtime_ns for p in node_a.rglob("shard-*.hnsw")}
    assert len(cached) == 2
    with ShardedIndex.open(url) as idx:  # the second open reads the cached copies
        idx.search_arrays(q[:5], K, EF)
    assert {p: p.stat().st_mtime_ns for p in node_a.rglob("shard-*.hnsw")} == cached
    with pytest.raises(ShardedIndexError, match="not empty"):
        ShardedIndex.build(x, path=url, shards=2, metric=METRIC, progress=False)

    monkeypatch.setenv("TOONDB_CACHE_DIR", str(node_b))  # another node writes
    extra = np.stack([x[0] * -1.0, x[1] * -1.0]).astype(np.float32)
    with ShardedIndex.open(url, read_only=False) as idx:
        assert idx.add(np.array([10**9, 10**9 + 1]), extra) == 2

    monkeypatch.setenv("TOONDB_CACHE_DIR", str(node_a))  # node A's cache is stale now
    with ShardedIndex.open(url, verify=True) as idx:
        assert idx.info().vectors == N + 2
        got, _ = idx.search_arrays(extra, 1, EF)
    assert got[:, 0].tolist() == [10**9, 10**9 + 1]
