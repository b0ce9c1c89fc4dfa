"""Retrieval metrics as in DeepFashion, computed by pytorch-metric-learning's ``AccuracyCalculator``
(exact k-NN on faiss).

Recall@K is the fraction of queries with at least one relevant item among the K nearest (DeepFashion's
definition, not the library's precision@k); MAP@R (Musgrave et al.) scores the first R neighbours, R
being how many relevant items the gallery holds for the query. Without a separate gallery every item is
a query against all the others (leave one out). Queries whose label has no other item in the gallery
are left out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator, try_getting_not_lone_labels

from apparel.extras import import_faiss

KS = (1, 5, 10, 20)
Gallery = tuple[np.ndarray, Sequence]  # embeddings, labels


class RetrievalCalculator(AccuracyCalculator):
    """The library's calculator with DeepFashion's Recall@K added as ``recall_at_k``."""

    def __init__(self, ks: Sequence[int] = KS) -> None:
        import_faiss()  # the library's k-NN is faiss, which it imports silently and needs only mid-evaluation
        self.ks = tuple(ks)
        super().__init__(include=("recall_at_k", "mean_average_precision_at_r"), k="max_bin_count")

    def requires_knn(self) -> list[str]:
        return [*super().requires_knn(), "recall_at_k"]

    def determine_k(self, bin_counts: torch.Tensor, num_reference_embeddings: int, ref_includes_query: bool) -> int:
        k = max(super().determine_k(bin_counts, num_reference_embeddings, ref_includes_query), max(self.ks))
        return min(k, num_reference_embeddings - int(ref_includes_query))

    def calculate_recall_at_k(self, knn_labels: torch.Tensor, query_labels: torch.Tensor,
                              not_lone_query_mask: torch.Tensor, **kwargs) -> dict[int, float]:
        knn_labels, query_labels = try_getting_not_lone_labels(knn_labels, query_labels, not_lone_query_mask)
        hits = knn_labels == query_labels[:, None]
        return {k: float(hits[:, :k].any(1).double().mean()) for k in self.ks}


def retrieval_metrics(embeddings: np.ndarray, labels: Sequence, ks: Sequence[int] = KS,
                      gallery: Gallery | None = None, gallery_starts_with_queries: bool = False) -> dict[str, float]:
    """Recall@K for each K, MAP@R and the number of queries scored. Without ``gallery`` each query searches
    the other queries; ``gallery_starts_with_queries``: its first rows are the queries (never found)."""
    query_labels = np.asarray(labels, dtype=str)
    gallery_labels = query_labels if gallery is None else np.asarray(gallery[1], dtype=str)
    includes_queries = gallery is None or gallery_starts_with_queries
    codes = np.unique(np.concatenate([query_labels, gallery_labels]), return_inverse=True)[1]
    query_codes, gallery_codes = codes[: len(query_labels)], codes[len(query_labels) :]
    relevant = (query_codes[:, None] == gallery_codes[None, :]).sum(1) - int(includes_queries)
    queries = int((relevant > 0).sum())
    if queries == 0:
        raise ValueError("retrieval needs at least one query label shared by another gallery item")
    reference = embeddings if gallery is None else gallery[0]
    scores = RetrievalCalculator(ks).get_accuracy(embeddings, query_codes, reference, gallery_codes,
                                                  ref_includes_query=includes_queries)
    metrics = {f"recall@{k}": value for k, value in scores["recall_at_k"].items()}
    metrics["map@r"] = float(scores["mean_average_precision_at_r"])
    metrics["queries"] = queries
    return metrics


def per_vertical_retrieval(embeddings: np.ndarray, labels: Sequence, verticals: Sequence, ks: Sequence[int] = KS,
                           gallery: tuple[np.ndarray, Sequence, Sequence] | None = None,
                           queries_in_gallery: bool = False) -> dict[str, dict[str, float]]:
    """Metrics within each vertical's own gallery, as a per-vertical index would serve them. By default each
    query searches the other queries (leave one out); ``gallery`` (embeddings, labels, verticals) holds other
    images to search, instead of the queries or, with ``queries_in_gallery``, besides them."""
    labels, verticals = np.asarray(labels, dtype=str), np.asarray(verticals, dtype=str)
    results = {}
    for vertical in sorted(set(verticals)):
        rows = verticals == vertical
        own, starts_with_queries = None, False
        if gallery is not None:
            kept = np.asarray(gallery[2], dtype=str) == vertical
            own = (gallery[0][kept], np.asarray(gallery[1], dtype=str)[kept])
            if queries_in_gallery:
                own = (np.concatenate([embeddings[rows], own[0]]), np.concatenate([labels[rows], own[1]]))
                starts_with_queries = True
        try:
            results[str(vertical)] = retrieval_metrics(embeddings[rows], labels[rows], ks, own, starts_with_queries)
        except ValueError:
            continue  # a vertical with no repeated label cannot be scored
    return results


def query_weighted(results: dict[str, dict[str, float]]) -> dict[str, float]:
    """Each metric over every vertical's queries together (verticals weighted by their queries), so a
    3-query vertical weighs what its queries weigh, not as much as a 150-query one."""
    if not results:
        return {}
    weights = np.array([scores["queries"] for scores in results.values()], dtype=float)
    metrics = [m for m in next(iter(results.values())) if m != "queries"]
    pooled = {m: float(np.average([scores[m] for scores in results.values()], weights=weights)) for m in metrics}
    return {**pooled, "queries": int(weights.sum())}
