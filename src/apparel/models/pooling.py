"""Heatmap pooling: features pooled where learned heatmaps point, FashionNet's local pooling made differentiable.

Each heatmap's softmax over the grid is used twice: its expectation is a location (soft-argmax, which a landmark
loss can train) and the same weights pool the features, so no hard crop stops a gradient. Without a landmark
loss the heatmaps are attention: each learns where its pooled features are most useful.
"""

from __future__ import annotations

import torch
from torch import nn


def soft_argmax(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """N×K×H×W logits → (N×K×H×W softmax weights, N×K×2 expected (x, y)), coordinates in [0, 1] of the
    image's width and height with each cell at its centre, so that they compare with pixel / size."""
    n, k, h, w = heatmaps.shape
    weights = heatmaps.flatten(2).softmax(-1).view(n, k, h, w)
    xs = (torch.arange(w, device=heatmaps.device, dtype=weights.dtype) + 0.5) / w
    ys = (torch.arange(h, device=heatmaps.device, dtype=weights.dtype) + 0.5) / h
    x = (weights.sum(2) * xs).sum(-1)
    y = (weights.sum(3) * ys).sum(-1)
    return weights, torch.stack([x, y], dim=-1)


class HeatmapPooling(nn.Module):
    """Feature map → K heatmaps → each one's soft-argmax location and the features pooled with its softmax
    weights (one ``width`` vector per heatmap, concatenated)."""

    def __init__(self, in_channels: int, n_maps: int, width: int = 32) -> None:
        super().__init__()
        self.heatmaps = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                                      nn.ReLU(), nn.Conv2d(width, n_maps, 1))
        self.features = nn.Sequential(nn.Conv2d(in_channels, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        self.out_dim = n_maps * width

    def forward(self, feature_map: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (N×(K·width) pooled vector, N×K×2 heatmap locations)."""
        weights, coordinates = soft_argmax(self.heatmaps(feature_map))
        pooled = torch.einsum("nkhw,nchw->nkc", weights, self.features(feature_map))
        return pooled.flatten(1), coordinates
