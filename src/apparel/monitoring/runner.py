"""`apparel monitor run`: score every new window of the request log, keep debounce and cooldown,
trigger retraining once per drift event, record snapshots, reports, events and the latest results.

One job run at a time holds ``run.lock`` (flock); a second waits, then finds no new window. The
event key (``events``) makes the trigger exactly-once even where that lock does not reach.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from apparel.config import Config
from apparel.monitoring.detector import Detector, WindowScore
from apparel.monitoring.events import DriftEvent, EventStore, MonitorState, write_atomically
from apparel.monitoring.reference import OVERALL
from apparel.monitoring.references import load_reference
from apparel.monitoring.trigger import trigger
from apparel.monitoring.windows import Window, new_windows
from apparel.requestlog import read_requests

REPORT_REFERENCE_ROWS = 500  # the report's t-SNE plot grows with its rows: a random part of the scoring reference


@dataclass
class RunSummary:
    windows: int = 0
    alarms: int = 0
    skipped: list[str] = field(default_factory=list)
    events: list[DriftEvent] = field(default_factory=list)


def request_log_dir(config: Config) -> Path:
    """Where serving writes the request log, unless monitoring names another folder."""
    return Path(config.monitoring.request_log_dir or config.serving.request_log_dir)


@contextlib.contextmanager
def exclusive(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_monitor(config: Config, now: datetime | None = None, client=None, log=print) -> RunSummary:
    folder = Path(config.monitoring.folder)
    with exclusive(folder / "run.lock"):
        return Monitor(config, folder, client, log).run(now or datetime.now(UTC))


class Monitor:
    def __init__(self, config: Config, folder: Path, client, log) -> None:
        self.config, self.settings, self.folder, self.client, self.log = config, config.monitoring, folder, client, log
        self.state = MonitorState.load(folder / "state.json")
        self.events = EventStore(folder / "events")
        self.summary = RunSummary()
        self.latest = json.loads((folder / "latest.json").read_text()) if (folder / "latest.json").is_file() else {}

    def run(self, now: datetime) -> RunSummary:
        frame = read_requests(request_log_dir(self.config))
        detectors = self._detectors(sorted(frame["model_version"].astype(str).unique()) if len(frame) else [])
        streams = {v: d.reference.streams() if self.settings.per_vertical else [OVERALL] for v, d in detectors.items()}
        done = {key: state.done for key, state in self.state.streams.items()}
        windows = new_windows(frame, streams, done, self.settings, now)
        dashboard = self._dashboard(sorted({s for names in streams.values() for s in names})) if windows else None
        for window in windows:
            self._score(window, detectors[window.model_version], dashboard)
        write_atomically(self.folder / "latest.json", json.dumps(self.latest, indent=1))
        self.state.save(self.folder / "state.json")
        return self.summary

    def _detectors(self, versions: list[str]) -> dict[str, Detector]:
        detectors = {}
        for version in versions:
            reference = load_reference(self.config, version)
            if reference is None or reference.calibration is None:
                self.summary.skipped.append(f"v{version}: no reference (it never became champion since "
                                            "monitoring was set up); its requests are not scored")
                continue
            detectors[version] = Detector(reference, self.settings)
        return detectors

    def _dashboard(self, streams: list[str]):
        from evidently.ui.workspace import Workspace

        from apparel.monitoring.workspace import ensure_panels, project_for

        workspace = Workspace(str(self.folder / "workspace"))
        project = project_for(workspace, self.config.registry.model_name)
        ensure_panels(project, streams)
        return workspace, project

    def _score(self, window: Window, detector: Detector, dashboard) -> None:
        state = self.state.stream(window.model_version, window.stream)
        state.done = window.index if self.settings.window_minutes > 0 else window.index + 1
        result = detector.score(window.stream, window.embeddings, window.stats)
        if result is None:
            self.summary.skipped.append(f"{window.key}: {len(window.rows)} requests, no threshold for a window "
                                        "this small in this vertical")
            return
        self.summary.windows += 1
        self.summary.alarms += result.alarm
        record = {"key": window.key, "score": round(result.score, 4), "threshold": round(result.threshold, 4),
                  "end": window.end.isoformat()}
        onset = result.alarm and not state.last_alarmed
        self._record(window, result, dashboard, detector, onset)
        fired = self.state.observe(window.model_version, window.stream, record, result.alarm, self.settings.debounce,
                                   self.settings.cooldown_windows)
        if fired:
            self._event(window, result, fired)

    def _record(self, window: Window, result: WindowScore, dashboard, detector: Detector, onset: bool) -> None:
        self.latest[f"v{window.model_version}/{window.stream}"] = {
            "model_version": window.model_version, "stream": window.stream, "score": result.score,
            "threshold": result.threshold, "alarm": int(result.alarm), "end": window.end.timestamp()}
        with (self.folder / "windows.jsonl").open("a") as out:
            out.write(json.dumps({"key": window.key, "start": window.start.isoformat(), "end": window.end.isoformat(),
                                  **asdict(result)}) + "\n")
        workspace, project = dashboard
        from apparel.monitoring.workspace import window_snapshot

        workspace.add_run(project.id, window_snapshot(result, window.stats, window.model_version, window.key,
                                                      window.end.to_pydatetime()))
        cadence = self.settings.report_every and window.index % self.settings.report_every == 0
        if (onset and self.settings.alarm_reports) or cadence:
            self._report(window, detector)

    def _report(self, window: Window, detector: Detector) -> None:
        from apparel.monitoring.reports import window_report

        reference = detector.reference
        rows = np.random.default_rng(0).permutation(reference.rows(window.stream, scoring=True))[:REPORT_REFERENCE_ROWS]
        path = self.folder / "reports" / f"{window.key.replace('/', '_')}.html"
        window_report(self.settings.method, reference.project(window.embeddings), window.stats,
                      reference.embeddings[rows], reference.stats[rows], window.key, path)

    def _event(self, window: Window, result: WindowScore, windows: list[dict]) -> None:
        event = DriftEvent(window.key, window.model_version, window.stream, windows, result.threshold)
        if not self.events.claim(event):
            self.log(f"drift event {event.key}: already triggered by another job run")
            return
        try:
            event.run = trigger(self.config, event, self.client)
        except Exception as error:  # noqa: BLE001 - recorded with the event; the key stays, so it is not retried
            event.run = {"error": f"{type(error).__name__}: {error}"}
        self.events.record(event)
        self.summary.events.append(event)
        self.state.save(self.folder / "state.json")
