"""Landmark localisation error: shows whether the local branch found the landmarks it pools around."""

from __future__ import annotations

import torch

from apparel.data.dataset import normalize
from apparel.models.landmarks import LandmarkAttributeNet


@torch.no_grad()
def landmark_error(model: LandmarkAttributeNet, images: torch.Tensor, coordinates: torch.Tensor,
                   batch_size: int = 256) -> float:
    """Mean Euclidean distance, in fractions of the image side, between predicted and present landmarks
    (``coordinates``: N×K×2, NaN where absent) of uint8 ``images``."""
    model.eval()
    distances = []
    for start in range(0, len(images), batch_size):
        _, _, predicted = model.forward_outputs(normalize(images[start : start + batch_size]))
        truth = coordinates[start : start + batch_size]
        present = ~truth.isnan().any(dim=-1)
        distances.append((predicted.cpu()[present] - truth[present]).norm(dim=-1))
    return float(torch.cat(distances).mean())
