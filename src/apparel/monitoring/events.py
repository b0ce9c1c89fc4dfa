"""Debounce, cooldown and the drift-event record.

A stream (a model version's overall traffic or one predicted vertical) declares drift after
``debounce`` consecutive alarming windows. The event's cause is what fired most in those windows
(the embedding, the photos' size, brightness or blur). An event starts a cooldown of
``cooldown_windows`` of that stream's windows for that cause only: another vertical, or the same
vertical drifting another way, starts its own event. Each event's key is created with
O_CREAT|O_EXCL before anything is triggered, so two job runs that reach the same event (a lock
that does not hold across machines, a retried CronJob) trigger it once.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

CAUSES = {"embedding": "embedding", "width": "size", "height": "size", "aspect": "size", "brightness": "brightness",
          "blur": "blur"}  # component -> cause: a photo of another size moves width, height and aspect together


def cause_of(windows: list[dict]) -> str:
    """The cause that fired first in most of the windows (ties: the latest window's)."""
    causes = [CAUSES[w["fired"][0]] for w in windows if w.get("fired")] or ["embedding"]
    return max(reversed(causes), key=causes.count)


@dataclass
class StreamState:
    done: int = 0  # count windows: how many scored; time windows: the last bucket scored
    consecutive: int = 0  # alarming windows in a row
    alarming: list[dict] = field(default_factory=list)  # those windows: key, score, threshold, end
    last_alarmed: bool = False  # whether the stream's previous window alarmed
    rows: int = 0  # count windows: requests those windows used (a stream's window size can change)


@dataclass
class MonitorState:
    streams: dict[str, StreamState] = field(default_factory=dict)  # "v<version>/<stream>"
    cooldown: dict[str, int] = field(default_factory=dict)  # "v<version>/<stream>/<cause>" -> windows left

    def stream(self, version: str, stream: str) -> StreamState:
        return self.streams.setdefault(f"v{version}/{stream}", StreamState())

    def observe(self, version: str, stream: str, window: dict, alarm: bool, debounce: int,
                cooldown_windows: int) -> tuple[list[dict], str] | None:
        """Updates debounce and cooldown with one scored window; returns the alarming windows of a
        new event and its cause, or None."""
        state, prefix = self.stream(version, stream), f"v{version}/{stream}/"
        for key in [k for k in self.cooldown if k.startswith(prefix)]:
            self.cooldown[key] -= 1
            if self.cooldown[key] <= 0:
                del self.cooldown[key]
        state.consecutive, state.last_alarmed = (state.consecutive + 1 if alarm else 0), alarm
        state.alarming = [*state.alarming, window][-debounce:] if alarm else []
        if state.consecutive < debounce:
            return None
        cause = cause_of(state.alarming)
        if self.cooldown.get(prefix + cause, 0) > 0:
            return None
        windows, state.consecutive, state.alarming = state.alarming, 0, []
        self.cooldown[prefix + cause] = cooldown_windows
        return windows, cause

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
    windows: list[dict]  # key, start, end, score, fired components and their p-values of each alarming window
    threshold: float
    cause: str = "embedding"  # CAUSES' values
    declared: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    run: dict = field(default_factory=dict)  # what the trigger started (kind, id, where to look) or its error
    drifted: list[str] = field(default_factory=list)  # the verticals the run it triggered retrains
    outcome: dict = field(default_factory=dict)  # what that run ended with (written by the run itself)


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
        """Every event, oldest first, with the outcome of its retraining run once that run wrote it."""
        events = [DriftEvent(**json.loads(p.read_text())) for p in sorted(self.folder.glob("*.json"))]
        for event in events:
            outcome = Path(event.run.get("outcome", "")) if event.run.get("outcome") else None
            if outcome is not None and outcome.is_file():
                event.outcome = json.loads(outcome.read_text())
        return sorted(events, key=lambda e: e.declared)
