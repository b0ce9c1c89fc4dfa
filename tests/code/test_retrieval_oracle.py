"""The project's retrieval metrics (DeepFashion's Recall@K, added to pytorch-metric-learning's calculator, and
MAP@R) give the numbers of a brute-force numpy oracle, on fixtures with ties, duplicates and singletons."""

import numpy as np
import pytest

from apparel.evaluation.retrieval import retrieval_metrics


def clustered(seed: int, classes: int = 6, per_class: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Noisy clusters plus a byte-identical duplicate pair and a singleton label."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), per_class)
    vectors = rng.normal(size=(classes, 8))[labels] + 0.9 * rng.normal(size=(len(labels), 8))
    vectors = np.vstack([vectors, vectors[:1], rng.normal(size=(1, 8))])
    labels = np.append(labels, [labels[0], classes])
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32), labels


def oracle(vectors: np.ndarray, labels: np.ndarray, ks: tuple[int, ...]) -> dict[str, float]:
    """Recall@K (≥ 1 relevant item in the top K, DeepFashion) and MAP@R by sorting all distances."""
    distances = ((vectors[:, None] - vectors[None]) ** 2).sum(-1)
    np.fill_diagonal(distances, np.inf)
    order = np.argsort(distances, axis=1, kind="stable")[:, :-1]
    matches = labels[order] == labels[:, None]
    relevant = matches.sum(1)
    queries = relevant > 0
    matches, relevant = matches[queries], relevant[queries]
    scores = {f"recall@{k}": float(matches[:, :k].any(1).mean()) for k in ks}
    ranks = np.arange(1, matches.shape[1] + 1)
    hits = matches & (ranks[None] <= relevant[:, None])
    scores["map@r"] = float(((np.cumsum(hits, 1) / ranks * hits).sum(1) / relevant).mean())
    return scores


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_retrieval_metrics_equal_the_oracle(seed: int) -> None:
    vectors, labels = clustered(seed)
    ours = retrieval_metrics(vectors, labels, ks=(1, 5, 10))
    expected = oracle(vectors, labels, (1, 5, 10))
    for metric, value in expected.items():
        assert ours[metric] == pytest.approx(value, abs=1e-6), metric
    assert ours["queries"] == len(labels) - 1  # the singleton label is no query
