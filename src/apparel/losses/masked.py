"""Attribute losses that skip missing labels: every image is used for the attributes it has."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

MISSING = -1


class MaskedCrossEntropy(nn.Module):
    """Softmax cross-entropy over rows whose label is not ``MISSING`` (-1)."""

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        labelled = targets != MISSING
        if not labelled.any():
            return logits.sum() * 0
        return F.cross_entropy(logits[labelled], targets[labelled])


class MaskedBinaryCrossEntropy(nn.Module):
    """Sigmoid cross-entropy for multi-label targets (N×C of 0/1); rows of -1 are missing."""

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        labelled = (targets != MISSING).all(dim=1)
        if not labelled.any():
            return logits.sum() * 0
        return F.binary_cross_entropy_with_logits(logits[labelled], targets[labelled].float())
