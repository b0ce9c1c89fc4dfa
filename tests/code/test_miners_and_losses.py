import pytest
import torch
from torch.nn import functional as F

from apparel.losses import DistillationLoss, EmbeddingRegressionLoss, TripletMarginLoss
from apparel.miners import build_miner

# Points on a line: labels 0,0,0 at 0, 1, 3 and labels 1,1 at 1.5, 4.
POINTS = torch.tensor([[0.0], [1.0], [3.0], [1.5], [4.0]])
LABELS = torch.tensor([0, 0, 0, 1, 1])


def test_batch_hard_takes_farthest_positive_and_nearest_negative() -> None:
    anchors, positives, negatives = build_miner("batch_hard", 0.5)(POINTS, LABELS)
    assert anchors.tolist() == [0, 1, 2, 3, 4]
    assert positives.tolist() == [2, 2, 0, 4, 3]
    assert negatives.tolist() == [3, 3, 4, 1, 2]


def test_semi_hard_keeps_negatives_inside_the_margin_only() -> None:
    anchors, positives, negatives = build_miner("semi_hard", 0.9)(POINTS, LABELS)
    triplets = set(zip(anchors.tolist(), positives.tolist(), negatives.tolist(), strict=True))
    # anchor 0, positive 1 (d=1): negative 3 at 1.5 lies in (1, 1.9] → semi-hard.
    assert (0, 1, 3) in triplets
    # anchor 0, positive 2 (d=3): negative 4 at distance 4 lies beyond 3 + 0.9.
    assert not any(a == 0 and p == 2 for a, p, _ in triplets)
    for a, p, n in triplets:
        d_ap, d_an = abs(POINTS[a] - POINTS[p]).item(), abs(POINTS[a] - POINTS[n]).item()
        assert d_ap < d_an <= d_ap + 0.9 and LABELS[a] == LABELS[p] != LABELS[n]


def test_triplet_loss_matches_hand_computation() -> None:
    loss = TripletMarginLoss(margin=0.5, miner=build_miner("batch_hard", 0.5))(POINTS, LABELS)
    # hinge(d_ap - d_an + m) per anchor:
    # 0:(3-1.5+.5)=2, 1:(2-.5+.5)=2, 2:(3-1+.5)=2.5, 3:(2.5-.5+.5)=2.5, 4:(2.5-1+.5)=2
    assert torch.isclose(loss, torch.tensor(11.0 / 5))


def test_semi_hard_triplet_loss_averages_every_mined_triplet() -> None:
    # margin 0.9: the semi-hard triplets are (0, 1, 3) and (4, 3, 1), hinges 1 - 1.5 + 0.9 and 2.5 - 3 + 0.9.
    loss = TripletMarginLoss(0.9, build_miner("semi_hard", 0.9))(POINTS, LABELS)
    assert loss.item() == pytest.approx((0.4 + 0.4) / 2)


def test_triplet_loss_is_zero_when_classes_are_apart_and_gradients_flow() -> None:
    apart = torch.tensor([[0.0], [0.1], [5.0], [5.1]], requires_grad=True)
    loss = TripletMarginLoss(0.2, build_miner("batch_hard", 0.2))(apart, torch.tensor([0, 0, 1, 1]))
    assert loss.item() == 0.0
    close = torch.randn(8, 4, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    loss = TripletMarginLoss(10.0, build_miner("batch_hard", 10.0))(F.normalize(close, dim=1), labels)
    loss.backward()
    assert loss.item() > 0 and close.grad.abs().sum() > 0


def test_no_valid_triplet_gives_zero_connected_loss() -> None:
    embeddings = torch.randn(3, 4, requires_grad=True)
    loss = TripletMarginLoss(0.2, build_miner("semi_hard", 0.2))(embeddings, torch.tensor([0, 1, 2]))
    loss.backward()
    assert loss.item() == 0.0 and embeddings.grad is not None


def test_regression_loss_is_mean_squared_distance() -> None:
    student = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    teacher = torch.tensor([[0.0, 0.0], [0.0, 3.0]])
    assert EmbeddingRegressionLoss()(student, teacher).item() == (1.0 + 4.0) / 2


def test_distillation_loss_is_the_regression_plus_the_weighted_triplet_loss() -> None:
    triplet = TripletMarginLoss(margin=0.5, miner=build_miner("batch_hard", 0.5))
    teacher = POINTS + 1.0
    regression = EmbeddingRegressionLoss()(POINTS, teacher)
    assert DistillationLoss()(POINTS, teacher).item() == regression.item()  # Song et al.: L2 alone
    assert DistillationLoss(triplet, 0.0)(POINTS, teacher, LABELS).item() == regression.item()
    mixed = DistillationLoss(triplet, 0.5)(POINTS, teacher, LABELS)
    assert torch.isclose(mixed, regression + 0.5 * torch.tensor(11.0 / 5))  # the hand-computed triplet loss above
