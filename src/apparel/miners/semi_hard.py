"""Semi-hard mining (FaceNet): for every anchor-positive pair, the nearest negative that is
farther than the positive but inside the margin; pairs without one are skipped."""

from __future__ import annotations

import torch

from apparel.miners.base import BaseMiner, Triplets


class SemiHardMiner(BaseMiner):
    def __init__(self, margin: float) -> None:
        self.margin = margin

    def mine(self, distances: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor) -> Triplets:
        anchors, positive = torch.nonzero(positives, as_tuple=True)
        d_ap = distances[anchors, positive][:, None]
        d_an = distances[anchors]
        semi_hard = negatives[anchors] & (d_an > d_ap) & (d_an < d_ap + self.margin)
        negative = d_an.masked_fill(~semi_hard, float("inf")).argmin(1)
        found = semi_hard.any(1)
        return anchors[found], positive[found], negative[found]
