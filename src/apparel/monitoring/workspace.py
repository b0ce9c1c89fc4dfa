"""Evidently's own UI over a local Workspace: a project per registered model, one snapshot per scored
window (tagged with model version and vertical, timestamped at the window's end), and a dashboard
declared in code from the streams that have scored windows.

Evidently 0.7.23's UI renders a project's dashboard as one grid of its ``panels`` in order and never
reads ``tabs``, so the dashboard is one ordered page: the drift state first, then each stream's scores.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.metrics import RowCount
from evidently.sdk.models import DashboardModel, DashboardPanelPlot, PanelMetric
from evidently.sdk.panels import counter_panel, line_plot_panel
from evidently.tests import lte
from evidently.ui.workspace import Project, Workspace

from apparel.data.image_stats import STAT_COLUMNS
from apparel.monitoring.detector import WindowScore
from apparel.monitoring.reference import OVERALL
from apparel.monitoring.snapshot_metrics import WindowValue

SCORE_CAP = 5.0  # plotted scores stop at 5x the alarm level so the threshold (1) stays readable on the axis


def project_for(workspace: Workspace, model_name: str) -> Project:
    """The model's project, created on first use."""
    found = workspace.search_project(model_name)
    if found:
        return found[0]
    project = workspace.create_project(model_name)
    project.description = f"Drift of {model_name}: one snapshot per window of the request log."
    project.save()
    return project


def latest_per_stream(latest: dict[str, dict]) -> dict[str, dict]:
    """Each stream that has a scored window, with its newest window's record (``latest.json`` holds
    one per model version and stream), overall first, then the verticals by name."""
    newest: dict[str, dict] = {}
    for record in latest.values():
        held = newest.get(record["stream"])
        if held is None or record["end"] > held["end"]:
            newest[record["stream"]] = record
    return dict(sorted(newest.items(), key=lambda item: (item[0] != OVERALL, item[0])))


def _value(stream: str, name: str, legend: str) -> PanelMetric:
    return PanelMetric(legend=legend, metric="WindowValue", metric_labels={"name": name, "stream": stream})


def state_panel(streams: dict[str, dict]) -> DashboardPanelPlot:
    """The first thing on the page: which streams alarm now, and each one's latest score."""
    alarming = [stream for stream, record in streams.items() if record["alarm"]]
    state = f"Drifting now: {', '.join(alarming)}" if alarming else "No stream drifting now"
    return counter_panel(f"{state} (latest drift score per stream; it alarms above 1)", [
        _value(stream, "drift.score", f"{stream}: {'ALARM' if record['alarm'] else 'ok'}")
        for stream, record in streams.items()], size="full", aggregation="last")


def score_panel(stream: str) -> DashboardPanelPlot:
    return line_plot_panel(f"Drift score: {stream}", [
        _value(stream, "drift.score_shown", f"score (capped at {SCORE_CAP:g})"),
        _value(stream, "drift.threshold", "threshold"),
        _value(stream, "drift.event", "drift event")],
        description="per window, at its end; the drift event line rises on the window that completed an event "
                    "(`apparel monitor events` lists them)", size="half")  # two a row: overall beside a vertical


def show_dashboard(workspace: Workspace, project: Project, latest: dict[str, dict]) -> None:
    """Replaces the project's dashboard with panels for the streams that have scored windows."""
    streams = latest_per_stream(latest)
    panels = [state_panel(streams), *(score_panel(stream) for stream in streams)] if streams else []
    workspace.save_dashboard(project.id, DashboardModel(tabs=[], panels=panels))


def window_values(result: WindowScore, stats: np.ndarray, completed_event: bool) -> dict[str, float]:
    values = {"drift.score": result.score, "drift.score_shown": min(result.score, SCORE_CAP),
              "drift.threshold": result.threshold, "drift.alarm": float(result.alarm),
              "drift.event": SCORE_CAP if completed_event else 0.0}
    values |= {f"component.{name}": value for name, value in result.components.items()}
    return values | {f"mean.{c}": float(stats[:, i].mean()) for i, c in enumerate(STAT_COLUMNS)}


def window_snapshot(result: WindowScore, stats: np.ndarray, model_version: str, window_key: str,
                    end: datetime, completed_event: bool):
    """The snapshot of one scored window, at the window's end: its drift result (with a test at the
    threshold), whether it completed a drift event, component scores, request count and image-statistic
    means."""
    values = window_values(result, stats, completed_event)
    metrics = [WindowValue(name="drift.score", stream=result.stream, tests=[lte(result.threshold)]), RowCount()]
    metrics += [WindowValue(name=name, stream=result.stream) for name in values if name != "drift.score"]
    report = Report(metrics, metadata={"vertical": result.stream, "model_version": model_version,
                                       "window": window_key},
                    tags=[f"model_version={model_version}", f"vertical={result.stream}"])
    frame = pd.DataFrame(stats, columns=list(STAT_COLUMNS))
    current = Dataset.from_pandas(frame, data_definition=DataDefinition(numerical_columns=list(STAT_COLUMNS)),
                                  metadata=values)
    return report.run(current, None, timestamp=end, name=window_key)
