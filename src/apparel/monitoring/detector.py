"""Scores one window against the reference with the calibrated decision."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from apparel.config import MonitoringConfig
from apparel.data.image_stats import STAT_COLUMNS
from apparel.monitoring.drift import drift_method, window_scores
from apparel.monitoring.reference import Reference

THRESHOLD = 1.0  # every score is in units of its calibrated alarm level


@dataclass
class WindowScore:
    stream: str
    size: int
    score: float  # the largest component in units of its alarm level: alarms above 1
    threshold: float
    alarm: bool
    components: dict[str, float] = field(default_factory=dict)  # raw scores: embedding, each image statistic
    p_values: dict[str, float] = field(default_factory=dict)  # each component's p-value
    fired: list[str] = field(default_factory=list)  # the components above their alarm level, largest first


class Detector:
    def __init__(self, reference: Reference, config: MonitoringConfig) -> None:
        if reference.calibration is None:
            raise ValueError(f"reference of v{reference.model_version} has no calibration")
        self.reference, self.config = reference, config
        self.method = drift_method(reference.calibration.method)

    def window_size(self, stream: str) -> int | None:
        """The size this stream's count windows are cut at: the largest calibrated size up to
        ``monitoring.window_size``; None when the stream has none."""
        sizes = [s for s in self.reference.calibration.thresholds.get(stream, {}) if s <= self.config.window_size]
        return max(sizes) if sizes else None

    def score(self, stream: str, embeddings: np.ndarray, stats: np.ndarray | None) -> WindowScore | None:
        """None when the stream has no threshold for a window this small (too few reference images).
        A window larger than the calibrated size is scored on an even sample of that size, so it is
        judged against the null of windows of its own size."""
        threshold = self.reference.calibration.for_window(stream, len(embeddings))
        if threshold is None:
            return None
        keep = np.linspace(0, len(embeddings) - 1, threshold.size).round().astype(int)
        embeddings, stats = embeddings[keep], (stats[keep] if stats is not None else None)
        rows = self.reference.rows(stream, scoring=True)
        use_stats = self.config.image_stats and stats is not None
        components = window_scores(self.method, self.reference.project(embeddings), self.reference.embeddings[rows],
                                   stats if use_stats else None, self.reference.stats[rows] if use_stats else None)
        components = {k: v for k, v in components.items() if k in threshold.center}
        scaled = threshold.scaled(components)
        value = max(scaled.values())
        p_values = {k: p_value(threshold, k, v) for k, v in components.items()}
        fired = sorted((k for k, v in scaled.items() if v > THRESHOLD), key=lambda k: -scaled[k])
        return WindowScore(stream, threshold.size, value, THRESHOLD, value > THRESHOLD, components, p_values, fired)


def p_value(threshold, component: str, raw: float) -> float:
    """An image statistic's own test p-value (its raw score is -log10 p); the embedding score's share
    of null draws at least as large."""
    if component in STAT_COLUMNS:
        return float(10 ** -raw)
    return threshold.null_p_value(component, raw)
