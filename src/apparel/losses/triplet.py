"""Triplet margin loss over mined triplets, max(0, d(a, p) - d(a, n) + margin), averaged over every
mined triplet (pytorch-metric-learning's loss with a mean reducer, so easy triplets count too)."""

from __future__ import annotations

import torch
from pytorch_metric_learning import losses, reducers
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.miners import BaseMiner
from torch import nn


class TripletMarginLoss(nn.Module):
    def __init__(self, margin: float, miner: BaseMiner) -> None:
        super().__init__()
        self.miner = miner
        self.loss = losses.TripletMarginLoss(margin=margin, reducer=reducers.MeanReducer(),
                                             distance=LpDistance(normalize_embeddings=False))

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.loss(embeddings, labels, self.miner(embeddings, labels))
