"""The drift dashboard is Evidently's own UI over the monitoring workspace, served by
`apparel monitor ui`: checked through the Workspace's API after the real runner scored a log whose
`tops` vertical drifts (and `shoes` has no requests), and rendered in headless Chromium."""

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest
import yaml
from evidently.sdk.models import PanelMetric
from evidently.ui.workspace import Workspace
from PIL import Image

from apparel.config import Config
from apparel.monitoring.events import EventStore
from apparel.monitoring.runner import run_monitor
from tests.monitoring.conftest import now_after_all, write_requests
from tests.monitoring.test_metrics import free_port

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=20000", "--window-size=1400,1000", "--hide-scrollbars"]


@pytest.fixture
def drifting_tops(monitored: Config, tmp_path: Path) -> Config:
    """The runner has scored 200 steady `tops` requests, then 400 shifted ones, no `shoes` requests:
    a window's worth a second, as the UI's time axis has one tick per distinct second."""
    for seed, shift in enumerate([0.0] * 2 + [0.6] * 4, start=31):
        write_requests(tmp_path / "requests", 100, seed=seed, shift=shift, verticals=("tops",))
        time.sleep(1.1)
    monitored.monitoring.trigger, monitored.monitoring.trigger_command = "command", ["true"]
    run_monitor(monitored, now=now_after_all(), log=lambda line: None)
    return monitored


def plotted(workspace: Workspace, project_id, value: PanelMetric) -> dict[datetime, float]:
    """The points a panel's series shows: each snapshot's result of that metric, by snapshot time."""
    points = {}
    for snapshot_id in workspace.list_runs(project_id):
        snapshot = workspace.get_run(project_id, snapshot_id)
        for result in snapshot.metric_results.values():
            params = result.metric_value_location.metric.params
            if params["type"] == value.metric and params.items() >= value.metric_labels.items():
                points[snapshot.timestamp] = result.value
    return points


def test_dashboard_plots_each_scored_stream_against_its_threshold_with_its_events(drifting_tops, tmp_path):
    workspace = Workspace(str(tmp_path / "workspace"))
    [project] = workspace.search_project(drifting_tops.registry.model_name)
    panels = workspace.get_dashboard(project.id).panels
    state, *scores = panels
    assert state.plot_params["plot_type"] == "counter" and state.title.startswith("Drifting now: overall, tops")
    assert [p.title for p in scores] == ["Drift score: overall", "Drift score: tops"]  # shoes: no windows, no panel
    ends = {datetime.fromisoformat(w["end"]) for w in map(json.loads, (tmp_path / "windows.jsonl").open())}
    for panel in panels:
        for value in panel.values:
            points = plotted(workspace, project.id, value)
            assert points, (panel.title, value.legend)
            assert set(points) <= ends, "a snapshot is timestamped at its window's end"
            assert max(points.values()) < 1e3, (panel.title, value.legend)
    [event] = [e for e in EventStore(tmp_path / "events").list() if e.vertical == "tops"]
    series = {v.legend: plotted(workspace, project.id, v) for v in scores[1].values}
    assert set(series["threshold"].values()) == {1.0}
    assert [t for t, v in series["drift event"].items() if v > 0] == [datetime.fromisoformat(event.windows[-1]["end"])]
    assert max(series["score (capped at 5)"].values()) == 5.0  # the shifted windows score ~30: capped for the axis


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent (make chromium installs it)")
def test_ui_serves_the_dashboard_and_chromium_renders_it(drifting_tops, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"monitoring": drifting_tops.monitoring.model_dump(mode="json")}))
    port, gauges = free_port(), free_port()
    server = subprocess.Popen([str(Path(sys.executable).parent / "apparel"), "--config", str(config), "monitor", "ui",
                               "--port", str(port), "--metrics-port", str(gauges)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        [project] = [p for p in wait_for(f"{base}/api/projects") if p["name"] == drifting_tops.registry.model_name]
        dashboard = httpx.get(f"{base}/api/v2/dashboards/{project['id']}", timeout=10).raise_for_status().json()
        assert [p["title"] for p in dashboard["panels"]][1:] == ["Drift score: overall", "Drift score: tops"]
        screenshot = tmp_path / "dashboard.png"
        subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={screenshot}",
                        f"{base}/projects/{project['id']}"], capture_output=True, timeout=180, check=True)
        colours = Image.open(screenshot).convert("RGB").getcolors(maxcolors=1 << 20)
        assert len(colours) > 200, "a blank or unrendered page has few colours"
        if target := os.environ.get("APPAREL_DASHBOARD_SCREENSHOT"):  # how docs/ got its picture
            shutil.copy(screenshot, target)
    finally:
        server.terminate()
        server.wait(timeout=30)


def wait_for(url: str, seconds: float = 300):
    deadline = time.monotonic() + seconds
    while True:
        try:
            return httpx.get(url, timeout=5).raise_for_status().json()
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
