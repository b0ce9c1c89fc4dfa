"""Triplet miners from pytorch-metric-learning, chosen by config name: ``miner(embeddings, labels) -> (a, p, n)``.

Distances are plain Euclidean on what the model outputs (already unit length), as the loss measures them.
"""

from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.miners import BaseMiner, BatchHardMiner, TripletMarginMiner


def build_miner(name: str, margin: float) -> BaseMiner:
    """``batch_hard``: each anchor's farthest positive and nearest negative (Hermans et al.).
    ``semi_hard``: every triplet with d(a, p) < d(a, n) <= d(a, p) + margin (FaceNet's band)."""
    distance = LpDistance(normalize_embeddings=False)
    if name == "batch_hard":
        return BatchHardMiner(distance=distance)
    if name == "semi_hard":
        return TripletMarginMiner(margin=margin, type_of_triplets="semihard", distance=distance)
    raise ValueError(f"unknown miner '{name}' (known: batch_hard, semi_hard)")


__all__ = ["BaseMiner", "build_miner"]
