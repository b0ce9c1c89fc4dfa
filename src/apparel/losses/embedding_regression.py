"""L2 regression onto a teacher's embedding: the unified model's distillation loss (Song et al.)."""

from __future__ import annotations

import torch
from torch import nn


class EmbeddingRegressionLoss(nn.Module):
    def forward(self, embeddings: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return (embeddings - targets).pow(2).sum(dim=1).mean()
