"""Windows of the request log: by count or by time, per model version, overall and per predicted
vertical. A stream's count windows are cut at its own size (the largest its reference calibrates, up to
``window_size``). A window's id is fixed by the log and the stream's progress alone, so every job run
(and two at once) cuts the same windows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from apparel.config import MonitoringConfig
from apparel.data.image_stats import STAT_COLUMNS
from apparel.monitoring.reference import OVERALL


@dataclass
class Window:
    model_version: str
    stream: str  # "overall" or a predicted vertical
    index: int  # count windows: ordinal; time windows: minutes-bucket number since the epoch
    start: pd.Timestamp
    end: pd.Timestamp
    rows: pd.DataFrame

    @property
    def key(self) -> str:
        return f"v{self.model_version}/{self.stream}/{self.index}"

    @property
    def embeddings(self) -> np.ndarray:
        return np.stack(self.rows["embedding"].to_numpy()).astype(np.float32)

    @property
    def stats(self) -> np.ndarray:
        return self.rows[list(STAT_COLUMNS)].to_numpy(dtype=np.float64)


def stream_rows(frame: pd.DataFrame, stream: str) -> pd.DataFrame:
    return frame if stream == OVERALL else frame[frame["vertical"] == stream]


def count_windows(rows: pd.DataFrame, version: str, stream: str, size: int, done: int, used: int) -> list[Window]:
    """Complete windows of ``size`` rows after the first ``used`` rows, numbered after ``done`` windows."""
    windows = []
    for offset in range((len(rows) - used) // size):
        part = rows.iloc[used + offset * size:used + (offset + 1) * size]
        windows.append(Window(version, stream, done + offset, part["time"].iloc[0], part["time"].iloc[-1], part))
    return windows


def time_windows(rows: pd.DataFrame, version: str, stream: str, minutes: float, done: int,
                 now: datetime) -> list[Window]:
    """Windows of ``minutes`` that have ended before ``now``, numbered after ``done``."""
    width = pd.Timedelta(minutes=minutes)
    buckets = ((rows["time"] - pd.Timestamp(0, tz="UTC")) // width).astype(int)
    windows = []
    for index, part in rows.groupby(buckets, sort=True):
        start = pd.Timestamp(0, tz="UTC") + index * width
        if index > done and start + width <= pd.Timestamp(now):
            windows.append(Window(version, stream, int(index), start, start + width, part))
    return windows


def new_windows(frame: pd.DataFrame, streams: dict[str, dict[str, int]], done: dict[str, tuple[int, int]],
                config: MonitoringConfig, now: datetime) -> list[Window]:
    """Every window not scored yet, oldest first (overall before verticals at the same end).
    ``streams`` maps a model version to its streams and their window sizes; ``done`` maps
    ``v<version>/<stream>`` to (windows scored, rows they used); time windows: (last bucket scored, 0)."""
    found = []
    for version, sizes in streams.items():
        rows = frame[frame["model_version"].astype(str) == version]
        for stream, size in sizes.items():
            part, key = stream_rows(rows, stream), f"v{version}/{stream}"
            if config.window_minutes > 0:
                found += time_windows(part, version, stream, config.window_minutes, done.get(key, (-1, 0))[0], now)
            else:
                found += count_windows(part, version, stream, size, *done.get(key, (0, 0)))
    return sorted(found, key=lambda w: (w.end, w.stream != OVERALL, w.stream))
