import numpy as np
import pytest

from apparel.evaluation.retrieval import per_vertical_retrieval, retrieval_metrics


def test_recall_and_map_at_r_on_a_known_ranking() -> None:
    # One query on a line; gallery ranked a, b, a, a, b, b, b, b, a, b (R = 4 relevant "a"):
    # hits at ranks 1, 3, 4 within R, so MAP@R = (1 + 2/3 + 3/4) / 4; the miss at rank 1 for "b".
    gallery = np.arange(1, 11, dtype=np.float32)[:, None]
    gallery_labels = list("abaabbbbab")
    query = np.zeros((2, 1), dtype=np.float32)
    query[1, 0] = 1.9  # nearest 2 (b) then 1 (a) and 3 (a)
    metrics = retrieval_metrics(query[:1], ["a"], ks=(1, 2), gallery=(gallery, gallery_labels))
    assert metrics["recall@1"] == 1.0 and metrics["queries"] == 1
    assert metrics["map@r"] == pytest.approx((1 + 2 / 3 + 3 / 4) / 4)
    missed = retrieval_metrics(query[1:], ["a"], ks=(1, 2), gallery=(gallery, gallery_labels))
    assert missed["recall@1"] == 0.0 and missed["recall@2"] == 1.0


def test_queries_whose_label_the_gallery_lacks_are_left_out() -> None:
    gallery = np.eye(3, dtype=np.float32)
    metrics = retrieval_metrics(np.eye(3, dtype=np.float32)[:2], ["x", "nowhere"], ks=(1,),
                                gallery=(gallery, ["x", "y", "z"]))
    assert metrics["queries"] == 1 and metrics["recall@1"] == 1.0
    with pytest.raises(ValueError, match="shared"):
        retrieval_metrics(gallery, ["p", "q", "r"])


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
