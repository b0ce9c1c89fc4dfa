"""Scores one window against the reference with the calibrated decision."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from apparel.config import MonitoringConfig
from apparel.monitoring.drift import drift_method, window_scores
from apparel.monitoring.reference import Reference


@dataclass
class WindowScore:
    stream: str
    size: int
    score: float  # the largest component in null units
    threshold: float
    alarm: bool
    components: dict[str, float] = field(default_factory=dict)  # raw scores: embedding, each image statistic


class Detector:
    def __init__(self, reference: Reference, config: MonitoringConfig) -> None:
        if reference.calibration is None:
            raise ValueError(f"reference of v{reference.model_version} has no calibration")
        self.reference, self.config = reference, config
        self.method = drift_method(reference.calibration.method)

    def score(self, stream: str, embeddings: np.ndarray, stats: np.ndarray | None) -> WindowScore | None:
        """None when the stream has no threshold for a window this small (too few reference images)."""
        threshold = self.reference.calibration.for_window(stream, len(embeddings))
        if threshold is None:
            return None
        rows = self.reference.rows(stream, scoring=True)
        use_stats = self.config.image_stats and stats is not None
        components = window_scores(self.method, self.reference.project(embeddings), self.reference.embeddings[rows],
                                   stats if use_stats else None, self.reference.stats[rows] if use_stats else None)
        components = {k: v for k, v in components.items() if k in threshold.center}
        value = threshold.score(components)
        return WindowScore(stream, len(embeddings), value, threshold.threshold, value > threshold.threshold,
                           components)
