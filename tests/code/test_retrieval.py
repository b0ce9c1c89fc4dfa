import numpy as np
import pytest

from apparel.evaluation.retrieval import map_at_r, per_vertical_retrieval, recall_at_k, retrieval_metrics


def test_recall_and_map_at_r_on_a_known_ranking() -> None:
    # The pytorch-metric-learning MAP@R example: R = 10, hits at ranks 1, 3, 4, 9 (and 10 beyond R? no).
    matches = np.array([[1, 0, 1, 1, 0, 0, 0, 0, 1, 0]], dtype=bool)
    assert map_at_r(matches, np.array([10])) == pytest.approx((1 + 2 / 3 + 3 / 4 + 4 / 9) / 10)
    assert recall_at_k(matches, 1) == 1.0 and recall_at_k(~matches, 1) == 0.0 and recall_at_k(~matches, 2) == 1.0


def test_leave_one_out_metrics_on_points_with_known_neighbours() -> None:
    # Two tight clusters far apart, plus a query whose nearest neighbour is from the other cluster.
    vectors = np.array([[1, 0], [0.99, 0.14], [0.98, 0.2], [0, 1], [0.14, 0.99], [0.9, 0.43]], dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = ["a", "a", "a", "b", "b", "b"]
    metrics = retrieval_metrics(vectors, labels, ks=(1, 5))
    # Query 5 ("b" at 25°) is nearest to the "a" cluster: 5 of 6 queries hit at rank 1.
    assert metrics["recall@1"] == pytest.approx(5 / 6)
    assert metrics["recall@5"] == 1.0
    assert metrics["queries"] == 6
    assert 0 < metrics["map@r"] < 1


def test_perfect_embedding_scores_one_and_singletons_are_not_queries() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(5, 16))
    labels = np.repeat(np.arange(5), 4).astype(str)
    vectors = (centres[np.repeat(np.arange(5), 4)] + 0.01 * rng.normal(size=(20, 16))).astype(np.float32)
    vectors = np.vstack([vectors, rng.normal(size=(1, 16)).astype(np.float32)])
    labels = np.append(labels, "lonely")
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    metrics = retrieval_metrics(vectors, labels)
    assert metrics["recall@1"] == 1.0 and metrics["map@r"] == pytest.approx(1.0) and metrics["queries"] == 20


def test_per_vertical_scores_each_vertical_in_its_own_gallery() -> None:
    vectors = np.eye(4, dtype=np.float32)[[0, 0, 1, 1, 0, 0]]
    labels = ["x", "x", "y", "y", "z", "z"]
    verticals = ["tops", "tops", "tops", "tops", "shoes", "shoes"]
    scores = per_vertical_retrieval(vectors, labels, verticals, ks=(1,))
    assert set(scores) == {"tops", "shoes"} and scores["shoes"]["recall@1"] == 1.0
