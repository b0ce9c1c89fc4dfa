"""Window drift scores: Evidently's embedding-drift method called directly, and Evidently's column
drift test on the image statistics.

Each score is "higher = more drift". Scores are raw; :mod:`apparel.monitoring.calibration` turns
them into one decision at a chosen false-alarm rate. A full Evidently ``Report`` is not used here:
it spends seconds on a t-SNE plot per call, which only alarming windows get (see ``reports``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from evidently.metrics.embeddings import (
    DistanceDriftMethod,
    MMDDriftMethod,
    ModelDriftMethod,
    RatioDriftMethod,
)

from apparel.data.image_stats import STAT_COLUMNS
from apparel.monitoring.image_drift import column_score

EMBEDDING = "embedding"


def drift_method(name: str):
    """The Evidently method object for ``monitoring.method``; its own threshold is not used (ours is calibrated)."""
    methods = {"mmd": MMDDriftMethod, "model": ModelDriftMethod, "ratio": RatioDriftMethod,
               "distance": DistanceDriftMethod}
    if name not in methods:
        raise ValueError(f"unknown drift method '{name}' (known: {', '.join(methods)})")
    return methods[name]()


def embedding_score(method, current: np.ndarray, reference: np.ndarray) -> float:
    """The method's score of ``current`` against ``reference`` (rows are embeddings)."""
    # float64: sklearn's float32 distance path upcasts in chunks and is several times slower
    score, _detected, _name = method(pd.DataFrame(current, dtype=np.float64), pd.DataFrame(reference, dtype=np.float64))
    return float(score)


def window_scores(method, current_embeddings: np.ndarray, reference_embeddings: np.ndarray,
                  current_stats: np.ndarray | None = None, reference_stats: np.ndarray | None = None
                  ) -> dict[str, float]:
    """Every component's raw score: ``embedding`` and, when stats are given, one per image statistic."""
    scores = {EMBEDDING: embedding_score(method, current_embeddings, reference_embeddings)}
    if current_stats is not None and reference_stats is not None:
        for column, name in enumerate(STAT_COLUMNS):
            scores[name] = column_score(current_stats[:, column], reference_stats[:, column])
    return scores
