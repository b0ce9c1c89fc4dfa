"""Batch-hard mining (Hermans et al.): each anchor with its farthest positive and nearest negative."""

from __future__ import annotations

import torch

from apparel.miners.base import BaseMiner, Triplets


class BatchHardMiner(BaseMiner):
    def mine(self, distances: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor) -> Triplets:
        valid = positives.any(1) & negatives.any(1)
        hardest_positive = distances.masked_fill(~positives, -1).argmax(1)
        hardest_negative = distances.masked_fill(~negatives, float("inf")).argmin(1)
        anchors = torch.nonzero(valid).flatten()
        return anchors, hardest_positive[anchors], hardest_negative[anchors]
