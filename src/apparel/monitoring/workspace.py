"""Evidently's own UI over a local Workspace: a project per registered model, one snapshot per scored
window (tagged with model version and vertical), dashboard panels declared in code."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.metrics import RowCount
from evidently.sdk.models import PanelMetric
from evidently.sdk.panels import counter_panel, line_plot_panel, text_panel
from evidently.tests import lte
from evidently.ui.workspace import Project, Workspace

from apparel.data.image_stats import STAT_COLUMNS
from apparel.monitoring.detector import WindowScore
from apparel.monitoring.snapshot_metrics import WindowValue

DRIFT_TAB, TRAFFIC_TAB, IMAGES_TAB = "Drift", "Requests", "Image statistics"


def project_for(workspace: Workspace, model_name: str) -> Project:
    """The model's project, created on first use."""
    found = workspace.search_project(model_name)
    if found:
        return found[0]
    project = workspace.create_project(model_name)
    project.description = f"Drift of {model_name}: one snapshot per window of the request log."
    project.save()
    return project


def _series(stream: str, names: dict[str, str]) -> list[PanelMetric]:
    return [PanelMetric(legend=legend, metric="WindowValue", metric_labels={"name": name},
                        metadata={"vertical": stream}) for name, legend in names.items()]


def ensure_panels(project: Project, streams: list[str]) -> None:
    """Adds the panels of streams the dashboard does not show yet (idempotent)."""
    titles = {panel.title for panel in project.dashboard.model().panels}
    if not titles:
        project.dashboard.add_panel(text_panel(
            "Drift score per vertical against its threshold: a window alarms above the line; drift events "
            "(debounced) are listed by `apparel monitor events`"), tab=DRIFT_TAB)
    for stream in streams:
        if f"Drift score: {stream}" in titles:
            continue
        project.dashboard.add_panel(line_plot_panel(f"Drift score: {stream}", _series(
            stream, {"drift.score": "score", "drift.threshold": "threshold"}), size="half"), tab=DRIFT_TAB)
        project.dashboard.add_panel(counter_panel(f"Latest drift score: {stream}", _series(
            stream, {"drift.score": "score"}), size="half", aggregation="last"), tab=DRIFT_TAB)
        project.dashboard.add_panel(line_plot_panel(f"Requests per window: {stream}", [
            PanelMetric(legend="requests", metric="RowCount", metadata={"vertical": stream})], size="half"),
            tab=TRAFFIC_TAB)
        project.dashboard.add_panel(line_plot_panel(
            f"Image statistics drift, -log10 p of Evidently's column test: {stream}",
            _series(stream, {f"component.{c}": c for c in STAT_COLUMNS}), size="half"), tab=IMAGES_TAB)
        project.dashboard.add_panel(line_plot_panel(
            f"Image statistics, window mean: {stream}",
            _series(stream, {f"mean.{c}": c for c in ("aspect", "brightness")}), size="half"), tab=IMAGES_TAB)


def window_values(result: WindowScore, stats: np.ndarray) -> dict[str, float]:
    values = {"drift.score": result.score, "drift.threshold": result.threshold, "drift.alarm": float(result.alarm)}
    values |= {f"component.{name}": value for name, value in result.components.items()}
    return values | {f"mean.{c}": float(stats[:, i].mean()) for i, c in enumerate(STAT_COLUMNS)}


def window_snapshot(result: WindowScore, stats: np.ndarray, model_version: str, window_key: str,
                    timestamp: datetime):
    """The snapshot of one scored window: its drift result (with a test at the threshold), component
    scores, request count and image-statistic means."""
    values = window_values(result, stats)
    metrics = [WindowValue(name="drift.score", tests=[lte(result.threshold)]), RowCount()]
    metrics += [WindowValue(name=name) for name in values if name != "drift.score"]
    report = Report(metrics, metadata={"vertical": result.stream, "model_version": model_version,
                                       "window": window_key},
                    tags=[f"model_version={model_version}", f"vertical={result.stream}"])
    frame = pd.DataFrame(stats, columns=list(STAT_COLUMNS))
    current = Dataset.from_pandas(frame, data_definition=DataDefinition(numerical_columns=list(STAT_COLUMNS)),
                                  metadata=values)
    return report.run(current, None, timestamp=timestamp, name=window_key)
