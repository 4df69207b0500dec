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


# ---------------------------------------------------------------------------------------
# "real-looking" sentence embeddings: the SQL k-NN benchmark's rows

N_SQL = int(os.environ.get("TOONDB_BENCH_SQL_N", 30_000))
DIM_SQL = 384
N_CATEGORIES = 1000  # the metadata column: category = uniform 0..999, independent of the vector


@functools.cache
def embeddings(n: int = N_SQL, dim: int = DIM_SQL, nq: int = 200, seed: int = 7):
    """(vectors (n, dim), queries (nq, dim), categories (n,) int64): unit vectors shaped
    like a sentence encoder's (all-MiniLM-L6-v2 is 384-d): a few hundred topics of
    Zipf-distributed sizes in a 48-d latent space with a decaying spectrum, mapped to
    dim, a shared offset (real embeddings are anisotropic: every pair has a positive
    cosine) and isotropic noise. Queries come from the same distribution, not from the
    rows. The mean cosine of two rows is about 0.1. Nearest neighbours are meaningful (a topic's members) yet not trivially
    separated, so HNSW's recall at a given ef is like on real text embeddings."""
    rng = np.random.default_rng(seed)
    latent, topics = 48, 300
    spectrum = 1.0 / np.sqrt(np.arange(1, latent + 1))
    basis = rng.standard_normal((latent, dim)) * spectrum[:, None]
    centers = rng.standard_normal((topics, latent)) * 1.2
    weights = 1.0 / np.arange(1, topics + 1) ** 0.8
    weights /= weights.sum()
    offset = rng.standard_normal(dim) * 1.2

    def draw(m: int) -> np.ndarray:
        topic = rng.choice(topics, size=m, p=weights)
        z = centers[topic] + rng.standard_normal((m, latent))
        x = z @ basis + offset + rng.standard_normal((m, dim)) * 0.25
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    x, q = draw(n), draw(nq)
    cats = rng.integers(0, N_CATEGORIES, size=n)
    return x, q, cats


def exact_knn(x: np.ndarray, q: np.ndarray, k: int, metric: str, allowed=None) -> np.ndarray:
    """The k nearest rows of x (row numbers) for each query, by brute force in float64,
    among `allowed` (a boolean mask) when given; rows padded with -1."""
    xs = x.astype(np.float64)
    qs = q.astype(np.float64)
    if metric == "cosine":
        xs = xs / np.linalg.norm(xs, axis=1, keepdims=True)
        qs = qs / np.linalg.norm(qs, axis=1, keepdims=True)
    if metric == "l2":
        d = (xs**2).sum(1)[None, :] - 2 * qs @ xs.T
    else:
        d = -(qs @ xs.T)
    if allowed is not None:
        d[:, ~allowed] = np.inf
    kk = min(k, d.shape[1])
    idx = np.argsort(d, axis=1, kind="stable")[:, :kk]
    out = np.full((len(q), k), -1, np.int64)
    fin = np.take_along_axis(d, idx, 1) < np.inf
    out[:, :kk] = np.where(fin, idx, -1)
    return out
