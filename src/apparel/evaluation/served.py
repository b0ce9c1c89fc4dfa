"""Retrieval as the service serves it: queries searched against the whole indexed catalog.

The per-split figures (:mod:`apparel.evaluation.retrieval`) search a query's own split: a few hundred
images. The service searches every catalog image, so a query meets every distractor of the catalog.
Here each query goes through the search the service runs (``CatalogIndex.search``, passed in as
``search`` so evaluation needs no index or registry code), its own image is left out of its hits, and
Recall@K (at least one relevant item among the first K) and MAP@R (Musgrave et al.; R = the relevant
items the catalog holds for the query, itself excluded) are scored. Queries with R = 0 are left out,
as the per-split metrics leave out lone labels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

SERVED_KS = (1, 5, 10)
Search = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]  # (similarities, positions), best first


def served_retrieval(search: Search, queries: np.ndarray, query_images: Sequence[str], query_labels: Sequence,
                     gallery_images: Sequence[str], gallery_labels: Sequence, ks: Sequence[int] = SERVED_KS
                     ) -> dict[str, float]:
    """Recall@K for each K, MAP@R, the number of queries scored and the gallery size. ``*_images`` identify
    each image (its sha256: the same photo under another path is still the query's own image), ``*_labels``
    what counts as a match; ``gallery_*[i]`` describe the row at position i of the searched index."""
    gallery_images, gallery_labels = np.asarray(gallery_images, dtype=str), np.asarray(gallery_labels, dtype=str)
    query_images, query_labels = np.asarray(query_images, dtype=str), np.asarray(query_labels, dtype=str)
    is_self = query_images[:, None] == gallery_images[None, :]
    relevant_counts = ((query_labels[:, None] == gallery_labels[None, :]) & ~is_self).sum(1)
    scored = relevant_counts > 0
    if not scored.any():
        raise ValueError("served retrieval needs at least one query whose label another catalog image shares")
    # Deep enough for MAP@R's R hits and the largest K once the query's own image is dropped.
    depth = min(len(gallery_labels), int(max(max(ks), relevant_counts.max())) + int(is_self.sum(1).max()))
    _, positions = search(np.asarray(queries)[scored], depth)
    hits = [_relevance(row, image, label, gallery_images, gallery_labels)
            for row, image, label in zip(positions, query_images[scored], query_labels[scored], strict=True)]
    metrics = {f"recall@{k}": float(np.mean([h[:k].any() for h in hits])) for k in ks}
    metrics["map@r"] = float(np.mean([_average_precision_at_r(h, r) for h, r in
                                      zip(hits, relevant_counts[scored], strict=True)]))
    return {**metrics, "queries": int(scored.sum()), "gallery": len(gallery_labels)}


def _relevance(positions: np.ndarray, image: str, label: str, gallery_images: np.ndarray,
               gallery_labels: np.ndarray) -> np.ndarray:
    """Whether each hit, best first, is relevant; the query's own image and empty slots (-1) are dropped."""
    found = positions[positions >= 0]
    found = found[gallery_images[found] != image]
    return gallery_labels[found] == label


def _average_precision_at_r(relevant: np.ndarray, r: int) -> float:
    """MAP@R of one query: precision at each relevant rank among the first R, summed, over R."""
    first = relevant[:r]
    precision = np.cumsum(first) / np.arange(1, len(first) + 1)
    return float((precision * first).sum() / r)
