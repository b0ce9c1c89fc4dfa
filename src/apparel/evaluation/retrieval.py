"""Retrieval metrics as in DeepFashion and pytorch-metric-learning: Recall@K and MAP@R.

Every image is a query against all other images of the same set (leave one out). Recall@K is the
fraction of queries with at least one relevant item among the K nearest; MAP@R (Musgrave et al.)
scores the first R neighbours, R being how many relevant items the query has.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from apparel.index import build_index, search

KS = (1, 5, 10, 20)


def leave_one_out_neighbours(embeddings: np.ndarray, k: int, use_gpu: bool | None = None) -> np.ndarray:
    """Ids of each row's k nearest other rows (itself removed)."""
    k = min(k, len(embeddings) - 1)
    _, ids = search(build_index(embeddings, use_gpu), embeddings, k + 1)
    own = ids == np.arange(len(ids))[:, None]
    # A query is usually its own first hit; where ties hide it, drop the last hit instead.
    own[~own.any(1), -1] = True
    return ids[~own].reshape(len(ids), k)


def recall_at_k(matches: np.ndarray, k: int) -> float:
    return float(matches[:, :k].any(1).mean())


def map_at_r(matches: np.ndarray, relevant: np.ndarray) -> float:
    ranks = np.arange(1, matches.shape[1] + 1)
    within_r = ranks[None, :] <= relevant[:, None]
    hits = matches & within_r
    precision = np.cumsum(hits, axis=1) / ranks
    return float(((precision * hits).sum(1) / relevant).mean())


def retrieval_metrics(embeddings: np.ndarray, labels: Sequence, ks: Sequence[int] = KS,
                      use_gpu: bool | None = None) -> dict[str, float]:
    """Recall@K for each K and MAP@R; queries with no other relevant item are left out."""
    codes = np.unique(np.asarray(labels, dtype=str), return_inverse=True)[1]
    relevant = np.bincount(codes)[codes] - 1
    queries = relevant > 0
    if queries.sum() == 0 or len(codes) < 2:
        raise ValueError("retrieval needs at least one label shared by two items")
    neighbours = leave_one_out_neighbours(embeddings, max(max(ks), int(relevant.max())), use_gpu)
    matches = (codes[neighbours] == codes[:, None])[queries]
    metrics = {f"recall@{k}": recall_at_k(matches, k) for k in ks}
    metrics["map@r"] = map_at_r(matches, relevant[queries])
    metrics["queries"] = int(queries.sum())
    return metrics


def per_vertical_retrieval(embeddings: np.ndarray, labels: Sequence, verticals: Sequence,
                           ks: Sequence[int] = KS) -> dict[str, dict[str, float]]:
    """Metrics within each vertical's own gallery, as a per-vertical index would serve them."""
    labels, verticals = np.asarray(labels, dtype=str), np.asarray(verticals, dtype=str)
    results = {}
    for vertical in sorted(set(verticals)):
        rows = verticals == vertical
        try:
            results[str(vertical)] = retrieval_metrics(embeddings[rows], labels[rows], ks)
        except ValueError:
            continue  # a vertical with no repeated label cannot be scored
    return results
