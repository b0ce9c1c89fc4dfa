"""`apparel monitor run`: score every new window of the request log, keep debounce and cooldown,
trigger retraining once for the drift events a run declares (naming the verticals that drifted),
record snapshots, reports, events and the latest results, and make the live reference when due.

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
from apparel.monitoring.live import build_live, load_live, requests_needed
from apparel.monitoring.reference import OVERALL, images_needed
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
    notes: list[str] = field(default_factory=list)  # streams scored at a smaller size, or not at all: why
    events: list[DriftEvent] = field(default_factory=list)


@dataclass
class VersionDetectors:
    """A version's detectors: its catalog reference's, and its live reference's once made."""

    catalog: Detector
    live: Detector | None = None

    def for_stream(self, stream: str) -> Detector:
        live = self.live
        return live if live is not None and stream in live.reference.calibration.thresholds else self.catalog


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
        streams = {v: self._window_sizes(v, d) for v, d in detectors.items()}
        done = {key: (state.done, state.rows) for key, state in self.state.streams.items()}
        windows = new_windows(frame, streams, done, self.settings, now)
        dashboard = self._workspace() if windows else None
        declared = []
        for window in windows:
            declared += self._score(window, detectors[window.model_version].for_stream(window.stream), dashboard)
        if declared:
            self._trigger(declared, detectors[declared[0].model_version].catalog)
        write_atomically(self.folder / "latest.json", json.dumps(self.latest, indent=1))
        if dashboard is not None:
            from apparel.monitoring.workspace import show_dashboard

            show_dashboard(*dashboard, self.latest)
        self.state.save(self.folder / "state.json")
        for version, found in detectors.items():
            if found.live is None:
                self._make_live(version, found, frame)
        return self.summary

    def _detectors(self, versions: list[str]) -> dict[str, VersionDetectors]:
        detectors = {}
        for version in versions:
            reference = load_reference(self.config, version)
            if reference is None or reference.calibration is None:
                self.summary.skipped.append(f"v{version}: no reference (it never became champion since "
                                            "monitoring was set up); its requests are not scored")
                continue
            live = load_live(self.config, version)
            detectors[version] = VersionDetectors(Detector(reference, self.settings),
                                                  Detector(live, self.settings) if live else None)
        return detectors

    def _window_sizes(self, version: str, detectors: VersionDetectors) -> dict[str, int]:
        """Each stream's count-window size (time windows ignore it); a note for each stream that cannot
        be scored at ``window_size``, saying why and what changes it."""
        names = detectors.catalog.reference.streams() if self.settings.per_vertical else [OVERALL]
        sizes = {}
        for stream in names:
            detector = detectors.for_stream(stream)
            size = detector.window_size(stream)
            if size != self.settings.window_size and self.settings.window_minutes == 0:
                self.summary.notes.append(self._size_note(version, stream, detector, size))
            if size is not None or self.settings.window_minutes > 0:
                sizes[stream] = size or 0
        return sizes

    def _size_note(self, version: str, stream: str, detector: Detector, size: int | None) -> str:
        reference, wanted = detector.reference, self.settings.window_size
        held = len(reference.rows(stream))
        scored = f"windows of {size}, not {wanted}" if size else "not scored"
        if reference.kind == "live":
            remedy = "raise monitoring.reference_requests"
        elif self.settings.reference_requests:
            remedy = (f"the live reference follows after {requests_needed(self.config, reference)} served requests "
                      "(monitoring.reference_requests)")
        else:
            remedy = "set monitoring.reference_requests for a live reference, or lower monitoring.window_size"
        return (f"v{version}/{stream}: {scored}: its {reference.kind} reference holds {held} images, windows of "
                f"{wanted} need {images_needed(wanted, self.settings)}; {remedy}")

    def _make_live(self, version: str, detectors: VersionDetectors, frame) -> None:
        served = frame[frame["model_version"].astype(str) == version]
        live = build_live(self.config, detectors.catalog.reference, served, log=self.log)
        if live is not None:
            detectors.live = Detector(live, self.settings)

    def _workspace(self):
        from evidently.ui.workspace import Workspace

        from apparel.monitoring.workspace import project_for

        workspace = Workspace(str(self.folder / "workspace"))
        return workspace, project_for(workspace, self.config.registry.model_name)

    def _score(self, window: Window, detector: Detector, dashboard) -> list[DriftEvent]:
        """Scores one window; the drift event it completes, if any."""
        state = self.state.stream(window.model_version, window.stream)
        if self.settings.window_minutes > 0:
            state.done = window.index
        else:
            state.done, state.rows = window.index + 1, state.rows + len(window.rows)
        result = detector.score(window.stream, window.embeddings, window.stats)
        if result is None:
            self.summary.skipped.append(f"{window.key}: {len(window.rows)} requests, fewer than the smallest window "
                                        f"its {detector.reference.kind} reference calibrates")
            return []
        self.summary.windows += 1
        self.summary.alarms += result.alarm
        record = {"key": window.key, "start": window.start.isoformat(), "end": window.end.isoformat(),
                  "score": round(result.score, 4), "fired": result.fired,
                  "p_values": {k: float(f"{result.p_values[k]:.3g}") for k in result.fired}}
        onset = result.alarm and not state.last_alarmed
        fired = self.state.observe(window.model_version, window.stream, record, result.alarm, self.settings.debounce,
                                   self.settings.cooldown_windows)
        self._record(window, result, dashboard, detector, onset, completed_event=fired is not None)
        if not fired:
            return []
        windows, cause = fired
        return [DriftEvent(window.key, window.model_version, window.stream, windows, result.threshold, cause)]

    def _record(self, window: Window, result: WindowScore, dashboard, detector: Detector, onset: bool,
                completed_event: bool) -> None:
        self.latest[f"v{window.model_version}/{window.stream}"] = {
            "model_version": window.model_version, "stream": window.stream, "score": result.score,
            "threshold": result.threshold, "alarm": int(result.alarm), "end": window.end.timestamp()}
        with (self.folder / "windows.jsonl").open("a") as out:
            out.write(json.dumps({"key": window.key, "start": window.start.isoformat(), "end": window.end.isoformat(),
                                  **asdict(result)}) + "\n")
        workspace, project = dashboard
        from apparel.monitoring.workspace import window_snapshot

        workspace.add_run(project.id, window_snapshot(result, window.stats, window.model_version, window.key,
                                                      window.end.to_pydatetime(), completed_event))
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

    def _trigger(self, declared: list[DriftEvent], catalog: Detector) -> None:
        """One retraining for every event this run declared, naming the verticals that drifted."""
        claimed = []
        for event in declared:
            if self.events.claim(event):
                claimed.append(event)
            else:
                self.log(f"drift event {event.key}: already triggered by another job run")
        if not claimed:
            return
        drifted = drifted_verticals(claimed, catalog.reference.streams()[1:])
        for event in claimed:
            event.drifted = drifted
        try:
            run = trigger(self.config, claimed[0], self.client)
        except Exception as error:  # noqa: BLE001 - recorded with the events; their keys stay, so not retried
            run = {"error": f"{type(error).__name__}: {error}"}
        for event in claimed:
            event.run = run
            self.events.record(event)
        self.summary.events += claimed
        self.state.save(self.folder / "state.json")


def drifted_verticals(events: list[DriftEvent], verticals: list[str]) -> list[str]:
    """The verticals the events name; all of them when only the overall stream drifted or when most
    verticals did (a targeted retraining then saves little)."""
    named = sorted({e.vertical for e in events if e.vertical != OVERALL})
    return named if named and len(named) <= len(verticals) // 2 else list(verticals)
