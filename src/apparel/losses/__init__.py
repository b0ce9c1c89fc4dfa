"""Losses: one per file, each a module returning one scalar tensor."""

from apparel.losses.embedding_regression import EmbeddingRegressionLoss
from apparel.losses.masked import MaskedBinaryCrossEntropy, MaskedCrossEntropy
from apparel.losses.triplet import TripletMarginLoss

__all__ = ["EmbeddingRegressionLoss", "MaskedBinaryCrossEntropy", "MaskedCrossEntropy", "TripletMarginLoss"]
