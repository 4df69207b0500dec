"""The datasets of the vector benchmarks (bench_vector.py, bench_hnsw_kernel.py),
shared so both measure the same vectors: random normal, as the product guide's
example, 10k x 768 cosine and 100k x 128 l2 (TOONDB_BENCH_N=50000 for a shorter
run), with exact nearest neighbours computed by brute force for recall."""

from __future__ import annotations

import functools
import os

import numpy as np

N_BIG = int(os.environ.get("TOONDB_BENCH_N", 100_000))
NQ = int(os.environ.get("TOONDB_BENCH_NQ", 1000))
DATASETS = {
    "768d-cos-10k": (10_000, 768, "cosine"),
    f"128d-l2-{N_BIG // 1000}k": (N_BIG, 128, "l2"),
}
EFS = (16, 32, 64, 128, 256)
M, EFC, K = 16, 100, 10


@functools.cache
def data(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(vectors, queries, the k true neighbours of each query, metric)."""
    n, dim, metric = DATASETS[name]
    rng = np.random.default_rng(42)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    q = rng.standard_normal((NQ, dim)).astype(np.float32)
    if metric == "cosine":
        xn = x / np.linalg.norm(x, axis=1, keepdims=True)
        qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    else:
        xn, qn = x, q
    truth = np.empty((NQ, K), dtype=np.int64)
    sq = (xn**2).sum(1)
    for s in range(0, NQ, 100):
        d = sq[None, :] - 2 * qn[s : s + 100] @ xn.T  # the same order as l2 / 1 - cos
        truth[s : s + 100] = np.argpartition(d, K, axis=1)[:, :K]
    return x, q, truth, metric
