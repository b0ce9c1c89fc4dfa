"""The project's retrieval metrics, triplet loss and miners give the same numbers as
pytorch-metric-learning's (``AccuracyCalculator`` on faiss, ``TripletMarginLoss``, the miners) and as a
brute-force numpy oracle, on fixtures with ties, duplicates and singletons.

Written against the hand-written implementations first (commit 9914e67, where it passed), then kept
as the regression test of the switch to the library."""

from collections.abc import Callable

import numpy as np
import pytest
import torch
from pytorch_metric_learning import losses, miners, reducers
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator

from apparel.evaluation.retrieval import retrieval_metrics
from apparel.losses import TripletMarginLoss
from apparel.miners import build_miner


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
def test_retrieval_metrics_equal_the_oracle_and_the_library(seed: int) -> None:
    vectors, labels = clustered(seed)
    ours = retrieval_metrics(vectors, labels, ks=(1, 5, 10))
    expected = oracle(vectors, labels, (1, 5, 10))
    for metric, value in expected.items():
        assert ours[metric] == pytest.approx(value, abs=1e-6), metric
    library = AccuracyCalculator(include=("precision_at_1", "mean_average_precision_at_r"), k="max_bin_count",
                                 device=torch.device("cpu")).get_accuracy(vectors, labels)
    assert ours["recall@1"] == pytest.approx(library["precision_at_1"], abs=1e-6)
    assert ours["map@r"] == pytest.approx(library["mean_average_precision_at_r"], abs=1e-6)
    assert ours["queries"] == len(labels) - 1  # the singleton label is no query


def library_loss(margin: float, miner: miners.BaseMiner) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    loss = losses.TripletMarginLoss(margin=margin, reducer=reducers.MeanReducer(),
                                    distance=LpDistance(normalize_embeddings=False))
    return lambda embeddings, labels: loss(embeddings, labels, miner(embeddings, labels))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batch_hard_triplet_loss_equals_the_library(seed: int) -> None:
    vectors, labels = clustered(seed)
    embeddings, targets = torch.from_numpy(vectors), torch.from_numpy(labels)
    ours = TripletMarginLoss(0.2, build_miner("batch_hard", 0.2))(embeddings, targets)
    theirs = library_loss(0.2, miners.BatchHardMiner(distance=LpDistance(normalize_embeddings=False)))(
        embeddings, targets)
    assert ours.item() == pytest.approx(theirs.item(), abs=1e-5)


def test_semi_hard_triplet_loss_equals_the_library_where_each_pair_has_one_semi_hard_negative() -> None:
    # Points on a line: labels 0,0,0 at 0, 1, 3 and labels 1,1 at 1.5, 4; margin 0.9. The library keeps
    # every semi-hard negative of a pair (d_ap < d_an <= d_ap + margin), FaceNet's miner only the nearest
    # (and the margin's end open): here each pair has at most one, none on the boundary.
    points, labels = torch.tensor([[0.0], [1.0], [3.0], [1.5], [4.0]]), torch.tensor([0, 0, 0, 1, 1])
    ours = TripletMarginLoss(0.9, build_miner("semi_hard", 0.9))(points, labels)
    miner = miners.TripletMarginMiner(margin=0.9, type_of_triplets="semihard",
                                      distance=LpDistance(normalize_embeddings=False))
    theirs = library_loss(0.9, miner)(points, labels)
    assert ours.item() == pytest.approx(theirs.item(), abs=1e-6)
    assert ours.item() == pytest.approx(0.4)  # triplets (0, 1, 3) and (4, 3, 1): 1 - 1.5 + 0.9 = 2.5 - 3 + 0.9
