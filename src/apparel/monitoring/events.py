"""Debounce, cooldown and the drift-event record.

A stream (a model version's overall traffic or one predicted vertical) declares drift after
``debounce`` consecutive alarming windows. An event starts a cooldown of ``cooldown_windows``
overall windows of that model version, during which no stream starts another event: one shift
seen in every vertical is one event and one retraining run. Each event's key is created with
O_CREAT|O_EXCL before anything is triggered, so two job runs that reach the same event (a lock
that does not hold across machines, a retried CronJob) trigger it once.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from apparel.monitoring.reference import OVERALL


@dataclass
class StreamState:
    done: int = 0  # count windows: how many scored; time windows: the last bucket scored
    consecutive: int = 0  # alarming windows in a row
    alarming: list[dict] = field(default_factory=list)  # those windows: key, score, threshold, end
    last_alarmed: bool = False  # whether the stream's previous window alarmed


@dataclass
class MonitorState:
    streams: dict[str, StreamState] = field(default_factory=dict)  # "v<version>/<stream>"
    cooldown: dict[str, int] = field(default_factory=dict)  # model version -> overall windows left

    def stream(self, version: str, stream: str) -> StreamState:
        return self.streams.setdefault(f"v{version}/{stream}", StreamState())

    def observe(self, version: str, stream: str, window: dict, alarm: bool, debounce: int,
                cooldown_windows: int) -> list[dict] | None:
        """Updates debounce and cooldown with one scored window; returns the alarming windows of a
        new event, or None."""
        state = self.stream(version, stream)
        if stream == OVERALL and self.cooldown.get(version, 0) > 0:
            self.cooldown[version] -= 1
        state.consecutive, state.last_alarmed = (state.consecutive + 1 if alarm else 0), alarm
        state.alarming = [*state.alarming, window][-debounce:] if alarm else []
        if state.consecutive < debounce or self.cooldown.get(version, 0) > 0:
            return None
        windows, state.consecutive, state.alarming = state.alarming, 0, []
        self.cooldown[version] = cooldown_windows
        return windows

    def to_json(self) -> str:
        return json.dumps({"streams": {k: asdict(v) for k, v in self.streams.items()}, "cooldown": self.cooldown},
                          indent=1)

    @classmethod
    def load(cls, path: Path) -> MonitorState:
        if not path.is_file():
            return cls()
        data = json.loads(path.read_text())
        return cls({k: StreamState(**v) for k, v in data["streams"].items()}, data["cooldown"])

    def save(self, path: Path) -> None:
        write_atomically(path, self.to_json())


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    temporary.replace(path)


@dataclass
class DriftEvent:
    key: str
    model_version: str
    vertical: str
    windows: list[dict]  # key, score, threshold, end of each alarming window
    threshold: float
    declared: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    run: dict = field(default_factory=dict)  # what the trigger started (kind, id, where to look) or its error


class EventStore:
    """One JSON file per event in ``folder``; the file is the event's key."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, key: str) -> Path:
        return self.folder / f"{key.replace('/', '_')}.json"

    def claim(self, event: DriftEvent) -> bool:
        """Creates the event's key atomically; False when another run already holds it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            handle = os.open(self.path(event.key), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(handle, "w") as out:
            out.write(json.dumps({**asdict(event), "run": {"state": "triggering"}}))
        return True

    def record(self, event: DriftEvent) -> None:
        write_atomically(self.path(event.key), json.dumps(asdict(event), indent=1))

    def list(self) -> list[DriftEvent]:
        events = [DriftEvent(**json.loads(p.read_text())) for p in sorted(self.folder.glob("*.json"))]
        return sorted(events, key=lambda e: e.declared)
