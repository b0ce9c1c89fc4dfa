"""A miner picks (anchor, positive, negative) index triplets from one batch of embeddings."""

from __future__ import annotations

import torch

Triplets = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class BaseMiner:
    def __call__(self, embeddings: torch.Tensor, labels: torch.Tensor) -> Triplets:
        with torch.no_grad():
            distances = torch.cdist(embeddings, embeddings)
        same = labels[:, None] == labels[None, :]
        eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
        return self.mine(distances, same & ~eye, ~same)

    def mine(self, distances: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor) -> Triplets:
        raise NotImplementedError
