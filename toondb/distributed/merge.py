"""The merge of the shards' answers into one top-k: exact over what the shards returned.

Each shard answers a query with its k best candidates (ids, distances), nearest first,
padded with id -1 and distance +inf. The merge keeps the k best of the union of those
lists, ordered by distance and, between equal distances, by id (so the answer does
not depend on the order in which shards replied).

Exactness. Let C_s be the candidates shard s's search examined and R_s its k best of
C_s (what it returns). For any k-subset T of the union of the C_s that is best by
(distance, id), every element of T that lies in C_s is among the k best of C_s, so it
is in R_s. Hence the k best of the union of the R_s is the k best of the union of the
C_s: the merged answer has the same ids and distances as one search whose candidates
were all the shards' candidates together. (Ties at the k-th distance are broken by id
here; a shard keeps whichever of its own tied candidates its kernel kept.) Distances
are the shards' own float32 values, never recomputed, so they are comparable: every
shard computes them with the same kernel and metric (the manifest's).

With one shard the merge returns that shard's answer unchanged (it is already
ordered, and padding sorts last).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["merge_top_k"]


def merge_top_k(
    parts: Sequence[tuple[np.ndarray, np.ndarray]], k: int, rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """The k best (by distance, then id) of each row over parts, a sequence of
    (ids (rows, k_s) int64, distances (rows, k_s) float32). Returns (ids (rows, k)
    int64, distances (rows, k) float32) padded with -1 / inf where the parts held
    fewer than k results. No parts (every shard missing) gives all padding."""
    if not parts:
        return np.full((rows, k), -1, np.int64), np.full((rows, k), np.inf, np.float32)
    if len(parts) == 1:
        ids, dists = parts[0]
        return _fit(ids, dists, k)
    ids = np.concatenate([p[0] for p in parts], axis=1)
    dists = np.concatenate([p[1] for p in parts], axis=1)
    # a pad (-1, inf) must sort after every real result, whatever its id: key on inf
    order = np.lexsort((ids.view(np.uint64), dists), axis=-1)[:, :k]
    out_ids = np.take_along_axis(ids, order, axis=1)
    out_d = np.take_along_axis(dists, order, axis=1)
    return _fit(out_ids, out_d, k)


def _fit(ids: np.ndarray, dists: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """ids/dists widened with padding to k columns (a shard may hold fewer than k)."""
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    dists = np.ascontiguousarray(dists, dtype=np.float32)
    have = ids.shape[1]
    if have >= k:
        return np.array(ids[:, :k]), np.array(dists[:, :k])  # copies: a Ray answer is read-only
    rows = ids.shape[0]
    pad_i = np.full((rows, k - have), -1, np.int64)
    pad_d = np.full((rows, k - have), np.inf, np.float32)
    return np.hstack([ids, pad_i]), np.hstack([dists, pad_d])
