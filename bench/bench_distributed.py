"""Benchmark of toondb.distributed (ShardedIndex) beside one index of the same vectors.

    python -m pytest bench/bench_distributed.py --benchmark-only -p no:cacheprovider -q

The vectors are bench/vector_data.py's 128-d l2 set (100k; TOONDB_BENCH_N=50000 for a
shorter run), m=16, ef_construction=100, k=10, ef_search=64. Engines: ``toondb`` is one
index (``bulk_build_index``, searched through ``open_index``), the reference of every
ratio; ``local-S`` and ``ray-S`` are ShardedIndex with S = 1, 2, 4 shards on the local
backend (processes) and on a Ray instance this module starts on 127.0.0.1 (skipped
without Ray).

- build: the whole call, vectors per second (ShardedIndex.build: spool, parallel shard
  builds, manifest).
- batch search: ``search_arrays`` of NQ queries (1000), queries per second.
- one-query batches: ``search_arrays`` of one query, calls per second: the fixed cost
  of a fan-out (local pipes, or Ray's task submission and object store) over a search.

The machine has 2 cores: S shards do not run S times faster here; the point is the
cost of sharding (the merge, the pickling, Ray's per-call overhead) and correctness
(recall is printed beside each). The summary gives Ray's overhead per batch and the
per-shard figures docs/distributed.md plans a cluster with.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

import numpy as np
import pytest
from vector_data import EFC, N_BIG, NQ, K, M, data

from toondb.distributed import ShardedIndex
from toondb.vector.bulk import bulk_build_index, open_index

NAME = f"128d-l2-{N_BIG // 1000}k"
EF = 64
SHARDS = (1, 2, 4)
ONE_QUERY_CALLS = 200
BACKENDS = ("local", "ray")

_dir = tempfile.mkdtemp(prefix="toondb-bench-distributed-")
_paths: dict = {}  # engine -> the path of its last build
_open: dict = {}  # engine -> opened index
_res: dict = {}
_round = [0]


def teardown_module(module):
    for idx in _open.values():
        idx.close()
    shutil.rmtree(_dir, ignore_errors=True)
    if _ray_started:
        import ray

        ray.shutdown()


_ray_started: list = []


def _ray():
    """Ray on 127.0.0.1 (as the tests start it), or skip."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    ray = pytest.importorskip("ray")
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 object_store_memory=512 * 1024 * 1024)  # fmt: skip
        _ray_started.append(True)
        assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}
    return ray


def _engine(backend, shards):
    return "toondb" if backend is None else f"{backend}-{shards}"


def _recall(found):
    truth = data(NAME)[2]
    return float(
        np.mean([len(set(f.tolist()) & set(t.tolist())) / K for f, t in zip(found, truth)])
    )


def _build(backend, shards):
    x, _, _, metric = data(NAME)
    _round[0] += 1
    engine = _engine(backend, shards)
    old = _paths.get(engine)
    if old and engine not in _open:
        shutil.rmtree(old, ignore_errors=True)
        if os.path.exists(old + "-lock"):
            os.remove(old + "-lock")
        if os.path.isfile(old):
            os.remove(old)
    path = os.path.join(_dir, f"{engine}-{_round[0]}")
    if backend is None:
        path += ".hnsw"
        bulk_build_index(x, path, m=M, ef_construction=EFC, metric=metric, progress=False)
    else:
        stats = ShardedIndex.build(x, path=path, shards=shards, metric=metric, m=M,
                                   ef_construction=EFC, backend=backend, progress=False)  # fmt: skip
        _res[("shard_stats", engine)] = stats.shard_stats
    _paths[engine] = path
    return path


def _opened(backend, shards):
    engine = _engine(backend, shards)
    if engine not in _open:
        if engine not in _paths:
            _build(backend, shards)
        if backend is None:
            _open[engine] = open_index(_paths[engine])
        else:
            _open[engine] = ShardedIndex.open(_paths[engine], backend=backend, timeout=300)
    return _open[engine]


CASES = [(None, 1)] + [(b, s) for b in BACKENDS for s in SHARDS]
IDS = [_engine(b, s) for b, s in CASES]


def _info(benchmark, backend, shards, ops, unit):
    benchmark.extra_info.update(engine=_engine(backend, shards), ops=ops, unit=unit)


@pytest.mark.parametrize("backend,shards", CASES, ids=IDS)
def test_build(benchmark, backend, shards):
    if backend == "ray":
        _ray()
    benchmark.group = f"build {NAME}"
    n = data(NAME)[0].shape[0]
    benchmark.pedantic(_build, args=(backend, shards), rounds=2, iterations=1)
    _info(benchmark, backend, shards, n, "vec/s")
    _res[("build", _engine(backend, shards))] = n / benchmark.stats.stats.min


@pytest.mark.parametrize("backend,shards", CASES, ids=IDS)
def test_search_batch(benchmark, backend, shards):
    if backend == "ray":
        _ray()
    benchmark.group = f"batch search {NQ} queries ef={EF} {NAME}"
    q = data(NAME)[1]
    idx = _opened(backend, shards)
    found = benchmark.pedantic(
        lambda: idx.search_arrays(q, K, EF)[0], rounds=5, warmup_rounds=1, iterations=1
    )
    _info(benchmark, backend, shards, len(q), "q/s")
    engine = _engine(backend, shards)
    _res[("bqps", engine)] = len(q) / benchmark.stats.stats.min
    _res[("recall", engine)] = _recall(found)


@pytest.mark.parametrize("backend,shards", CASES, ids=IDS)
def test_one_query_batches(benchmark, backend, shards):
    if backend == "ray":
        _ray()
    benchmark.group = f"one-query batches ef={EF} {NAME}"
    q = data(NAME)[1][:ONE_QUERY_CALLS]
    idx = _opened(backend, shards)

    def run():
        for row in q:
            idx.search_arrays(row[None, :], K, EF)

    benchmark.pedantic(run, rounds=3, warmup_rounds=1, iterations=1)
    _info(benchmark, backend, shards, len(q), "calls/s")
    _res[("latency", _engine(backend, shards))] = benchmark.stats.stats.min / len(q)


def test_zz_summary(benchmark):
    benchmark.pedantic(time.perf_counter, rounds=1, iterations=1)
    lines = [f"\ntoondb.distributed on {NAME} (m={M}, ef_construction={EFC}, k={K}, ef={EF})"]
    lines.append(
        f"{'engine':10}{'build vec/s':>14}{'batch q/s':>12}{'recall@10':>11}"
        f"{'1-query ms':>12}{'bytes/vec':>11}{'peak RSS/shard MB':>19}"
    )
    n = data(NAME)[0].shape[0]
    for backend, shards in CASES:
        e = _engine(backend, shards)
        stats = _res.get(("shard_stats", e))
        size = (
            sum(s.bytes for s in stats) / n
            if stats
            else (
                os.path.getsize(_paths[e]) / n if e in _paths and os.path.isfile(_paths[e]) else 0
            )
        )
        rss = max(s.peak_rss_bytes for s in stats) / 1e6 if stats else 0.0
        lines.append(
            f"{e:10}{_res.get(('build', e), 0):14,.0f}{_res.get(('bqps', e), 0):12,.0f}"
            f"{_res.get(('recall', e), 0):11.4f}{_res.get(('latency', e), 0) * 1e3:12.3f}"
            f"{size:11.0f}{rss:19.1f}"
        )
    for s in SHARDS:
        loc, ray = _res.get(("latency", f"local-{s}")), _res.get(("latency", f"ray-{s}"))
        if loc and ray:
            lines.append(
                f"Ray's overhead per query batch, {s} shard(s): {(ray - loc) * 1e3:.2f} ms "
                f"(ray {ray * 1e3:.2f} ms, local {loc * 1e3:.2f} ms per one-query call)"
            )
    one = _res.get(("latency", "toondb"))
    loc1 = _res.get(("latency", "local-1"))
    if one and loc1:
        lines.append(f"local backend's overhead per call, 1 shard: {(loc1 - one) * 1e3:.2f} ms")
    benchmark.extra_info["summary"] = lines
