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

KS = (1, 5, 10, 20)
Gallery = tuple[np.ndarray, Sequence]  # embeddings, labels


class RetrievalCalculator(AccuracyCalculator):
    """The library's calculator with DeepFashion's Recall@K added as ``recall_at_k``."""

    def __init__(self, ks: Sequence[int] = KS) -> None:
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
                      gallery: Gallery | None = None) -> dict[str, float]:
    """Recall@K for each K, MAP@R and the number of queries scored."""
    query_labels = np.asarray(labels, dtype=str)
    gallery_labels = query_labels if gallery is None else np.asarray(gallery[1], dtype=str)
    codes = np.unique(np.concatenate([query_labels, gallery_labels]), return_inverse=True)[1]
    query_codes, gallery_codes = codes[: len(query_labels)], codes[len(query_labels) :]
    relevant = (query_codes[:, None] == gallery_codes[None, :]).sum(1) - int(gallery is None)
    queries = int((relevant > 0).sum())
    if queries == 0:
        raise ValueError("retrieval needs at least one query label shared by another gallery item")
    calculator = RetrievalCalculator(ks)
    if gallery is None:
        scores = calculator.get_accuracy(embeddings, query_codes)
    else:
        scores = calculator.get_accuracy(embeddings, query_codes, gallery[0], gallery_codes, ref_includes_query=False)
    metrics = {f"recall@{k}": value for k, value in scores["recall_at_k"].items()}
    metrics["map@r"] = float(scores["mean_average_precision_at_r"])
    metrics["queries"] = queries
    return metrics


def per_vertical_retrieval(embeddings: np.ndarray, labels: Sequence, verticals: Sequence, ks: Sequence[int] = KS,
                           gallery: tuple[np.ndarray, Sequence, Sequence] | None = None
                           ) -> dict[str, dict[str, float]]:
    """Metrics within each vertical's own gallery, as a per-vertical index would serve them.
    ``gallery`` (embeddings, labels, verticals) searches another set; by default leave one out."""
    labels, verticals = np.asarray(labels, dtype=str), np.asarray(verticals, dtype=str)
    if gallery is not None:
        gallery = (gallery[0], np.asarray(gallery[1], dtype=str), np.asarray(gallery[2], dtype=str))
    results = {}
    for vertical in sorted(set(verticals)):
        rows = verticals == vertical
        own = None if gallery is None else (gallery[0][gallery[2] == vertical], gallery[1][gallery[2] == vertical])
        try:
            results[str(vertical)] = retrieval_metrics(embeddings[rows], labels[rows], ks, own)
        except ValueError:
            continue  # a vertical with no repeated label cannot be scored
    return results
