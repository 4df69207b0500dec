"""Benchmark of the PUBLIC vector API (toondb.vector.bulk, VectorIndex) side by side with
hnswlib, with the same parameters and threads.

    python -m pytest bench/bench_vector.py --benchmark-only -p no:cacheprovider -q

Datasets (random normal, as the product guide's example): 10k x 768 cosine and
100k x 128 l2 (TOONDB_BENCH_N=50000 for a shorter run); m=16, ef_construction=100,
k=10 on both sides.

- build: ``bulk_build_index(x, path, threads=t)`` -- the whole call: checks, build,
  writing the page file and its fsync -- against hnswlib's ``add_items`` alone (the
  strict ratio) and ``add_items`` + ``save_index`` (the like-for-like one).
- search: an index opened with ``toondb.vector.bulk.open_index`` (mapped, searched in place);
  single queries through ``index.search(q, k, ef)`` (a list of Neighbor) against
  ``knn_query(q)`` one at a time, at ef 16..256, one thread; batches through
  ``index.search_arrays(Q, k, 64, threads=t)`` against ``knn_query(Q, num_threads=t)``;
  recall@10 against exact brute force.
- size: the .hnsw file against hnswlib's ``save_index`` file.

The machine is shared and noisy: hnswlib runs in the setup hook of each toondb round,
so both alternate under the same load; each side's best round is compared. The table
(ratios, with the targets) is printed by the last test.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

import numpy as np
import pytest

hnswlib = pytest.importorskip("hnswlib")
from vector_data import DATASETS, EFC, EFS, NQ, K, M, data  # noqa: E402

from toondb.vector._hnsw import simd_level  # noqa: E402
from toondb.vector.bulk import bulk_build_index, open_index  # noqa: E402

THREADS = (1, 2)

_dir = tempfile.mkdtemp(prefix="toondb-bench-vector-")
_files: dict = {}  # (name, threads) -> .hnsw path of the last build
_hnsw: dict = {}  # (name, threads) -> hnswlib index
_open: dict = {}
_res: dict = {}
_round = [0]


def teardown_module(module):
    for idx in _open.values():
        idx.close()
    shutil.rmtree(_dir, ignore_errors=True)


def recall(found, truth):
    return float(
        np.mean([len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth)]) / K
    )


def build_toondb(name, threads):
    x, _, _, metric = data(name)
    _round[0] += 1
    path = os.path.join(_dir, f"{name}-{threads}-{_round[0]}.hnsw")
    old = _files.get((name, threads))
    if old and (name, threads) not in _open:
        for f in (old, old + "-lock"):
            if os.path.exists(f):
                os.remove(f)
    bulk_build_index(
        x, path, m=M, ef_construction=EFC, metric=metric, threads=threads, progress=False
    )
    _files[(name, threads)] = path
    return path


def build_hnswlib(name, threads, save=False):
    x, _, _, metric = data(name)
    n, dim = x.shape
    t0 = time.perf_counter()
    h = hnswlib.Index(space=metric, dim=dim)
    h.init_index(max_elements=n, M=M, ef_construction=EFC, random_seed=100)
    h.set_num_threads(threads)
    h.add_items(x, np.arange(n), num_threads=threads)
    built = time.perf_counter() - t0
    path = os.path.join(_dir, f"hnswlib-{name}-{threads}.bin")
    h.save_index(path)
    saved = time.perf_counter() - t0
    return h, built, saved, os.path.getsize(path)


class Alternate:
    """pytest-benchmark times toondb; hnswlib runs in the (untimed) setup hook before
    each round and is timed here, so the two alternate round by round."""

    def __init__(self, fn, *args):
        self.fn, self.args, self.times, self.result = fn, args, [], None

    def __call__(self):
        t = time.perf_counter()
        self.result = self.fn(*self.args)
        self.times.append(time.perf_counter() - t)


class AlternateBuild:
    def __init__(self, name, threads):
        self.name, self.threads = name, threads
        self.built, self.saved, self.result, self.size = [], [], None, None

    def __call__(self):
        h, built, saved, size = build_hnswlib(self.name, self.threads)
        self.built.append(built)
        self.saved.append(saved)
        self.result, self.size = h, size


def opened(name):
    """The one-thread build, opened (mapped) once."""
    if name not in _open:
        if (name, 1) not in _files:
            build_toondb(name, 1)
        _open[name] = open_index(_files[(name, 1)])
    return _open[name]


def hnsw(name):
    if (name, 1) not in _hnsw:
        _hnsw[(name, 1)] = build_hnswlib(name, 1)[0]
    return _hnsw[(name, 1)]


# ---------------------------------------------------------------------------------------
# build


@pytest.mark.parametrize("name,threads", [(name, t) for name in DATASETS for t in THREADS])
def test_build(benchmark, name, threads):
    x, q, truth, _ = data(name)
    rounds = 3 if DATASETS[name][0] <= 20_000 else 2
    other = AlternateBuild(name, threads)
    path = benchmark.pedantic(build_toondb, args=(name, threads), setup=other, rounds=rounds)
    n = DATASETS[name][0]
    _res[("build", name, threads, "toondb")] = n / benchmark.stats.stats.min
    _res[("build", name, threads, "hnswlib")] = n / min(other.built)
    _res[("build+save", name, threads, "hnswlib")] = n / min(other.saved)
    _hnsw[(name, threads)] = other.result
    _res[("size", name, "toondb")] = os.path.getsize(path)
    _res[("size", name, "hnswlib")] = other.size
    benchmark.extra_info["hnswlib_vec_per_s"] = n / min(other.built)
    benchmark.extra_info["ratios"] = {  # for the gate (toondb.benchgate)
        "build rate vs hnswlib": (n / benchmark.stats.stats.min) / (n / min(other.built)),
        "file size vs hnswlib": os.path.getsize(path) / other.size,
    }
    with open_index(path) as idx:
        other.result.set_ef(64)
        _res[("build_recall", name, threads, "toondb")] = recall(
            idx.search_arrays(q, K, 64)[0], truth
        )
        _res[("build_recall", name, threads, "hnswlib")] = recall(
            other.result.knn_query(q, k=K, num_threads=1)[0], truth
        )


# ---------------------------------------------------------------------------------------
# single queries, one thread, on the one-thread builds


def search_toondb(idx, q, ef):
    search = idx.search
    return [search(v, K, ef) for v in q]


def search_hnswlib(h, q, ef):
    h.set_ef(ef)
    h.set_num_threads(1)
    knn = h.knn_query
    return [knn(v, k=K)[0][0] for v in q]


@pytest.mark.parametrize("name,ef", [(name, ef) for name in DATASETS for ef in EFS])
def test_search_single(benchmark, name, ef):
    _, q, truth, _ = data(name)
    idx, h = opened(name), hnsw(name)
    other = Alternate(search_hnswlib, h, q, ef)
    found = benchmark.pedantic(
        search_toondb, args=(idx, q, ef), setup=other, rounds=5, warmup_rounds=1
    )
    _res[("qps", name, ef, "toondb")] = len(q) / benchmark.stats.stats.min
    _res[("qps", name, ef, "hnswlib")] = len(q) / min(other.times)
    _res[("recall", name, ef, "toondb")] = recall(
        np.array([[n.id for n in r] for r in found]), truth
    )
    _res[("recall", name, ef, "hnswlib")] = recall(np.array(other.result), truth)
    benchmark.extra_info["hnswlib_qps"] = _res[("qps", name, ef, "hnswlib")]
    benchmark.extra_info["ratios"] = {  # for the gate (toondb.benchgate)
        "qps vs hnswlib": _res[("qps", name, ef, "toondb")] / _res[("qps", name, ef, "hnswlib")],
        "recall@10 minus hnswlib's": _res[("recall", name, ef, "toondb")]
        - _res[("recall", name, ef, "hnswlib")],
    }


# ---------------------------------------------------------------------------------------
# batches, ef=64


def batch_toondb(idx, q, threads):
    return idx.search_arrays(q, K, 64, threads=threads)[0]


def batch_hnswlib(h, q, threads):
    h.set_ef(64)
    return h.knn_query(q, k=K, num_threads=threads)[0]


@pytest.mark.parametrize("name,threads", [(name, t) for name in DATASETS for t in THREADS])
def test_search_batch(benchmark, name, threads):
    _, q, truth, _ = data(name)
    idx, h = opened(name), hnsw(name)
    other = Alternate(batch_hnswlib, h, q, threads)
    found = benchmark.pedantic(
        batch_toondb, args=(idx, q, threads), setup=other, rounds=7, warmup_rounds=1
    )
    _res[("bqps", name, threads, "toondb")] = len(q) / benchmark.stats.stats.min
    _res[("bqps", name, threads, "hnswlib")] = len(q) / min(other.times)
    _res[("brecall", name, threads, "toondb")] = recall(found, truth)
    _res[("brecall", name, threads, "hnswlib")] = recall(other.result, truth)
    benchmark.extra_info["hnswlib_qps"] = _res[("bqps", name, threads, "hnswlib")]


def test_open(benchmark):
    """Opening an index (map its values, check its node table): per open, after the
    first open in the process verified the checksums."""
    name = next(iter(DATASETS))
    path = _files.get((name, 1)) or build_toondb(name, 1)

    def reopen():
        open_index(path).close()

    benchmark.pedantic(reopen, rounds=20, warmup_rounds=1)
    _res[("open", name)] = benchmark.stats.stats.min


# ---------------------------------------------------------------------------------------
# the table


def _line(label, a, b, fmt, ratio, target=""):
    return f"{label:34}{fmt.format(a):>12}{fmt.format(b):>12}{ratio:>9}  {target}"


def test_zz_report(benchmark, capsys):
    benchmark(time.perf_counter)
    lines = [
        f"\ntoondb public vector API vs hnswlib (toondb kernels: {simd_level()}; m={M}, "
        f"ef_construction={EFC}, k={K}, {NQ} queries; best round of each side)"
    ]
    for name in DATASETS:
        n, dim, metric = DATASETS[name]
        lines.append(f"\n== {name}: {n} x {dim} {metric}")
        lines.append(f"{'':34}{'toondb':>12}{'hnswlib':>12}{'ratio':>9}  target")
        for t in THREADS:
            a, b = _res.get(("build", name, t, "toondb")), _res.get(("build", name, t, "hnswlib"))
            c = _res.get(("build+save", name, t, "hnswlib"))
            if a and b:
                lines.append(
                    _line(
                        f"build vec/s, {t} thr (add_items)",
                        a,
                        b,
                        "{:.0f}",
                        f"{a / b:.2f}",
                        ">= 1.00",
                    )
                )
                lines.append(_line("  vs add_items + save_index", a, c, "{:.0f}", f"{a / c:.2f}"))
            a = _res.get(("build_recall", name, t, "toondb"))
            b = _res.get(("build_recall", name, t, "hnswlib"))
            if a is not None and b is not None:
                lines.append(
                    _line("  recall@10 ef=64 of that build", a, b, "{:.4f}", f"{a - b:+.4f}")
                )
        for ef in EFS:
            a, b = _res.get(("qps", name, ef, "toondb")), _res.get(("qps", name, ef, "hnswlib"))
            ra, rb = (
                _res.get(("recall", name, ef, "toondb")),
                _res.get(("recall", name, ef, "hnswlib")),
            )
            if a and b:
                lines.append(
                    _line(f"ef={ef} single-query QPS", a, b, "{:.0f}", f"{a / b:.2f}", ">= 0.80")
                )
                lines.append(
                    _line("  recall@10", ra, rb, "{:.4f}", f"{ra - rb:+.4f}", "within 0.01")
                )
        for t in THREADS:
            a, b = _res.get(("bqps", name, t, "toondb")), _res.get(("bqps", name, t, "hnswlib"))
            if a and b:
                lines.append(_line(f"batch QPS ef=64, {t} thr", a, b, "{:.0f}", f"{a / b:.2f}"))
        a, b = _res.get(("size", name, "toondb")), _res.get(("size", name, "hnswlib"))
        if a and b:
            lines.append(_line("file bytes", a, b, "{:d}", f"{a / b:.3f}", "<= 1.30"))
        if ("open", name) in _res:
            lines.append(f"{'open_index (ms)':34}{_res[('open', name)] * 1e3:12.2f}")
    with capsys.disabled():
        print("\n".join(lines))
