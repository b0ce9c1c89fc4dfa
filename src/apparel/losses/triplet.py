"""Triplet margin loss over mined triplets: max(0, d(a, p) - d(a, n) + margin), averaged."""

from __future__ import annotations

import torch
from torch import nn

from apparel.miners.base import BaseMiner


class TripletMarginLoss(nn.Module):
    def __init__(self, margin: float, miner: BaseMiner) -> None:
        super().__init__()
        self.margin, self.miner = margin, miner

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        anchors, positives, negatives = self.miner(embeddings, labels)
        if len(anchors) == 0:  # nothing to learn from this batch; keep the graph connected for DDP
            return embeddings.sum() * 0
        d_ap = (embeddings[anchors] - embeddings[positives]).norm(dim=1)
        d_an = (embeddings[anchors] - embeddings[negatives]).norm(dim=1)
        return torch.relu(d_ap - d_an + self.margin).mean()
