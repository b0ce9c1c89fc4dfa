"""The unified student's loss: the L2 regression onto its teachers' embeddings (Song et al.), plus, when
weighted, the triplet objective on the catalog's labels that the teachers themselves were trained with."""

from __future__ import annotations

import torch
from torch import nn

from apparel.losses.embedding_regression import EmbeddingRegressionLoss
from apparel.losses.triplet import TripletMarginLoss


class DistillationLoss(nn.Module):
    def __init__(self, triplet: TripletMarginLoss | None = None, triplet_weight: float = 0.0) -> None:
        super().__init__()
        self.regression = EmbeddingRegressionLoss()
        self.triplet, self.triplet_weight = triplet, triplet_weight

    def forward(self, embeddings: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor | None = None
                ) -> torch.Tensor:
        loss = self.regression(embeddings, teacher)
        if self.triplet is None or self.triplet_weight == 0 or labels is None:
            return loss
        return loss + self.triplet_weight * self.triplet(embeddings, labels)
