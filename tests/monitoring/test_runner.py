"""`apparel monitor run` on a real request log: windows, snapshots, events, exactly one trigger
under repeated and concurrent job runs, and none without drift."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from apparel.config import Config
from apparel.monitoring.reference import Reference
from apparel.monitoring.runner import run_monitor
from apparel.monitoring.windows import new_windows
from apparel.requestlog import read_requests
from tests.monitoring.conftest import monitoring_settings, now_after_all, write_requests

RECORDER = ("import json, sys; event = json.load(sys.stdin); "
            "open(sys.argv[1], 'a').write(event['key'] + '\\n'); print('retrain-' + event['key'])")


def config_file(config, tmp_path: Path, **monitoring) -> Path:
    """The config as a YAML file with the trigger recording each call, for `apparel --config`."""
    settings = {**config.monitoring.model_dump(mode="json"), "trigger": "command",
                "trigger_command": [sys.executable, "-c", RECORDER, str(tmp_path / "triggered.txt")], **monitoring}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"monitoring": settings}))
    return path


def apparel(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([str(Path(sys.executable).parent / "apparel"), *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def triggered(tmp_path: Path) -> list[str]:
    path = tmp_path / "triggered.txt"
    return path.read_text().split() if path.is_file() else []


def test_shifted_traffic_triggers_retraining_once_despite_repeats_and_concurrent_runs(monitored, tmp_path):
    write_requests(tmp_path / "requests", 500, seed=21, shift=0.6)
    config = config_file(monitored, tmp_path, cooldown_windows=20)
    runs = [apparel("--config", str(config), "monitor", "run", cwd=tmp_path) for _ in range(2)]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    assert all(run.returncode == 0 for run in runs), outputs
    assert len(triggered(tmp_path)) == 1, outputs
    assert sum("drift event v1/" in output for output in outputs) == 1  # the other run found no new window
    write_requests(tmp_path / "requests", 300, seed=22, shift=0.6)  # drift goes on: more alarming windows
    again = apparel("--config", str(config), "monitor", "run", cwd=tmp_path)
    assert again.wait(timeout=300) == 0 and len(triggered(tmp_path)) == 1
    events = apparel("--config", str(config), "monitor", "events", cwd=tmp_path).communicate(timeout=60)[0]
    assert "overall" in events and "retrain-" in events and "> " in events, events


def test_unshifted_traffic_triggers_nothing(monitored, tmp_path):
    write_requests(tmp_path / "requests", 500, seed=23)
    monitored.monitoring.trigger, monitored.monitoring.trigger_command = "command", ["false"]
    summary = run_monitor(monitored, now=now_after_all(), log=lambda line: None)
    assert summary.windows >= 5 and summary.events == [] and not (tmp_path / "events").exists()
    scored = [json.loads(line) for line in (tmp_path / "windows.jsonl").read_text().splitlines()]
    assert {row["stream"] for row in scored} == {"overall", "shoes", "tops"}


def test_photos_squashed_to_square_alarm_through_image_statistics(monitored, tmp_path):
    write_requests(tmp_path / "requests", 300, seed=24, square=True)
    monitored.monitoring.trigger, monitored.monitoring.trigger_command = "command", ["true"]
    monitored.monitoring.alarm_reports = True
    summary = run_monitor(monitored, now=now_after_all(), log=lambda line: None)
    assert summary.alarms == summary.windows > 0 and len(summary.events) == 1
    reports = sorted((tmp_path / "reports").glob("*.html"))  # a full report where each stream starts alarming
    assert [r.name for r in reports] == ["v1_overall_0.html", "v1_shoes_0.html", "v1_tops_0.html"]
    assert "Drift in embeddings" in reports[0].read_text()


def test_every_scored_window_is_a_snapshot_tagged_with_version_and_vertical(monitored, tmp_path):
    from evidently.ui.workspace import Workspace

    write_requests(tmp_path / "requests", 200, seed=25)
    summary = run_monitor(monitored, now=now_after_all(), log=lambda line: None)
    workspace = Workspace(str(tmp_path / "workspace"))
    project = workspace.search_project(monitored.registry.model_name)[0]
    snapshots = [workspace.get_run(project.id, s) for s in workspace.list_runs(project.id)]
    assert len(snapshots) == summary.windows
    assert {s.metadata["vertical"] for s in snapshots} <= {"overall", "shoes", "tops"}
    assert all("model_version=1" in s.tags for s in snapshots)
    assert run_monitor(monitored, now=now_after_all(), log=lambda line: None).windows == 0  # nothing new


def test_requests_of_a_version_without_reference_are_skipped_with_a_reason(monitored, tmp_path):
    write_requests(tmp_path / "requests", 100, seed=26, version="7")
    monitored.registry.tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    summary = run_monitor(monitored, now=now_after_all(), log=lambda line: None)
    assert summary.windows == 0 and "v7: no reference" in summary.skipped[0]


def test_time_windows_cut_the_log_by_minutes(monitored, tmp_path):
    write_requests(tmp_path / "requests", 120, seed=27)
    frame = read_requests(tmp_path / "requests")
    monitored.monitoring.window_minutes = 60 * 24
    windows = new_windows(frame, {"1": {"overall": 0}}, {}, monitored.monitoring, now_after_all())
    assert sum(len(w.rows) for w in windows) == 120 and all(w.end - w.start == windows[0].end - windows[0].start
                                                              for w in windows)
    assert new_windows(frame, {"1": {"overall": 0}}, {}, monitored.monitoring, frame["time"].min()) == []  # not ended


def small_catalog_reference(config, rows: int, square: bool = False) -> None:
    """v1's catalog reference made of ``rows`` images (too few for some streams at the window size)."""
    from apparel.monitoring.reference import build_reference
    from apparel.monitoring.references import local_copy
    from tests.monitoring.conftest import sample

    reference = build_reference("1", *sample(np.random.default_rng(40), rows, square=square), config.monitoring,
                                log=lambda line: None)
    reference.save(local_copy(config, "1"))


def test_a_stream_its_reference_cannot_calibrate_says_why_and_what_setting_changes_it(tmp_path):
    """Regression (issue 39): verticals were never scored, and the log blamed the window, not the reference."""
    config = Config(monitoring=monitoring_settings(tmp_path, reference_requests=0))
    small_catalog_reference(config, 300)
    write_requests(tmp_path / "requests", 200, seed=41)
    summary = run_monitor(config, now=now_after_all(), log=lambda line: None)
    assert summary.windows == 4  # overall in windows of 50: the size its 300 images calibrate
    assert summary.notes[0] == ("v1/overall: windows of 50, not 100: its catalog reference holds 300 images, "
                                "windows of 100 need 399; set monitoring.reference_requests for a live reference, "
                                "or lower monitoring.window_size")
    assert [note.split(":")[:2] for note in summary.notes[1:]] == [["v1/shoes", " not scored"],
                                                                   ["v1/tops", " not scored"]]


def test_the_live_reference_replaces_the_catalog_once_enough_requests_were_served(tmp_path):
    """Cold start: the catalog's photos are square, users' are not. Against the catalog every window
    alarms on the photos' size; once the first requests are the reference, the same traffic is calm."""
    config = Config(monitoring=monitoring_settings(tmp_path, reference_requests=250, trigger="command",
                                                   trigger_command=["true"]))
    small_catalog_reference(config, 1000, square=True)
    write_requests(tmp_path / "requests", 500, seed=42)
    cold = run_monitor(config, now=now_after_all(), log=lambda line: None)
    assert cold.windows > 0 and cold.alarms == cold.windows
    assert {event.cause for event in cold.events} == {"size"}
    live = Reference.load(tmp_path / "references" / "v1-live")
    assert live.kind == "live" and len(live.embeddings) == 500 and set(live.calibration.thresholds) == {
        "overall", "shoes", "tops"}
    write_requests(tmp_path / "requests", 400, seed=43)
    warm = run_monitor(config, now=now_after_all(), log=lambda line: None)
    assert warm.windows >= 4 and warm.alarms <= 1 and warm.events == [], warm
    scored = [json.loads(line) for line in (tmp_path / "windows.jsonl").read_text().splitlines()]
    assert all(row["stream"] in ("overall", "shoes", "tops") for row in scored)
