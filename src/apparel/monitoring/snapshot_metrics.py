"""The Evidently metric that carries a scored window's results into its snapshot.

A window is scored once, by calling the Evidently drift method and Evidently's column drift test
directly (``detector``); the snapshot's current dataset carries those numbers in its metadata and
this metric reads them, so the dashboard plots exactly what the trigger acted on. (A ``Report``
with ``EmbeddingsDrift`` would recompute the score and spend seconds on a t-SNE plot, and
``ValueDrift`` renders plotly figures per column: ~0.5 s each, per window and vertical.)
"""

from __future__ import annotations

from evidently.core.metric_types import SingleValueCalculation, SingleValueMetric


class WindowValue(SingleValueMetric):
    """One number of the window's result, by ``name``: ``drift.score`` (largest component in units of
    its alarm level), ``drift.score_shown`` (the same, capped for the plot's axis), ``drift.threshold``,
    ``drift.alarm`` (1/0), ``drift.event`` (the cap on a window that completed a drift event, else 0),
    ``component.<name>`` (raw component scores), ``mean.<statistic>``. ``stream`` (overall or a
    vertical) is a parameter so that the UI, which keys a series by metric parameters and not by
    snapshot metadata, keeps each stream's series apart in one panel."""

    name: str
    stream: str


class WindowValueCalculation(SingleValueCalculation[WindowValue]):
    def calculate(self, context, current_data, reference_data):
        return self.result(float(current_data.metadata[self.metric.name]))

    def display_name(self) -> str:
        return f"window {self.metric.name} ({self.metric.stream})"
