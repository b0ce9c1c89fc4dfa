"""Losses: one per file, each a module returning one scalar tensor."""

from apparel.losses.distillation import DistillationLoss
from apparel.losses.embedding_regression import EmbeddingRegressionLoss
from apparel.losses.landmarks import MaskedLandmarkLoss
from apparel.losses.masked import MaskedBinaryCrossEntropy, MaskedCrossEntropy
from apparel.losses.triplet import TripletMarginLoss

__all__ = ["DistillationLoss", "EmbeddingRegressionLoss", "MaskedBinaryCrossEntropy", "MaskedCrossEntropy",
           "MaskedLandmarkLoss", "TripletMarginLoss"]
