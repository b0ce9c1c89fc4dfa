"""The request log: a sampled share of served requests, written off the hot path to Parquet files the
drift monitor reads by time window.

One row per served image, columns :data:`COLUMNS`. Files are ``requests-<UTC time>-<pid>-<n>.parquet``
in one folder, written under a temporary name and renamed, so a reader never sees half a file.
Logging never blocks or fails a request: :meth:`RequestLog.offer` drops the record (and counts it)
when the queue is full or the disk refuses the write.
"""

from __future__ import annotations

import contextlib
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from apparel.data.image_stats import STAT_COLUMNS

COLUMNS = ("time", "model_version", "endpoint", "vertical", "attributes", "embedding", *STAT_COLUMNS)
"""``time`` (UTC timestamp), ``model_version`` (str), ``endpoint`` (str), ``vertical`` (the predicted
vertical, str), ``attributes`` (JSON object: attribute → top label), ``embedding`` (list of float32),
then the image statistics of :func:`apparel.data.image_stats.image_stats`."""


class RequestLog:
    """Samples records at ``sample_rate`` and writes them from a background thread, one file per
    ``rows_per_file`` records or per ``flush_interval_s`` seconds, whichever comes first."""

    def __init__(self, folder: Path, sample_rate: float, rows_per_file: int = 1000, flush_interval_s: float = 10.0,
                 queue_size: int = 10_000, seed: int | None = None) -> None:
        self.folder, self.sample_rate = Path(folder), sample_rate
        self.rows_per_file, self.flush_interval_s = rows_per_file, flush_interval_s
        self.written = self.dropped = self.files = 0
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(queue_size)
        self._random = random.Random(seed)
        self._thread = threading.Thread(target=self._run, name="request-log", daemon=True)
        self._thread.start()

    def offer(self, record: Mapping[str, Any]) -> bool:
        """Queues ``record`` if it is sampled; never blocks. Returns whether it was queued."""
        return self.sample() and self.put(record)

    def sample(self) -> bool:
        """Whether the next request is one of the sampled share (so callers build records only for those)."""
        return self.sample_rate > 0 and self._random.random() < self.sample_rate

    def put(self, record: Mapping[str, Any] | Callable[[], Mapping[str, Any]]) -> bool:
        """Queues an already sampled record; never blocks. A callable is called on the writer thread, so
        costly fields (a neighbour search) stay off the request path; if it raises, the record is dropped."""
        try:
            self._queue.put_nowait({"time": datetime.now(UTC), "_make": record} if callable(record)
                                   else {"time": datetime.now(UTC), **record})
            return True
        except queue.Full:
            self.dropped += 1
            return False

    def close(self, timeout_s: float = 10.0) -> None:
        """Writes what is queued and stops the thread."""
        self._queue.put(None)
        self._thread.join(timeout_s)

    def _run(self) -> None:
        pending: list[dict[str, Any]] = []
        last_write = time.monotonic()
        while True:
            try:
                item = self._queue.get(timeout=min(1.0, self.flush_interval_s))
            except queue.Empty:
                item = {}
            if item is None:
                if pending:
                    self._write(pending)
                return
            if item:
                item = self._complete(item)
            if item:
                pending.append(item)
            if pending and (len(pending) >= self.rows_per_file
                            or time.monotonic() - last_write >= self.flush_interval_s):
                self._write(pending)
                pending, last_write = [], time.monotonic()

    def _complete(self, item: dict[str, Any]) -> dict[str, Any] | None:
        if "_make" not in item:
            return item
        try:
            return {"time": item["time"], **item["_make"]()}
        except Exception:  # a failing sample must not stop the writer; it is counted instead
            self.dropped += 1
            return None

    def _write(self, records: list[dict[str, Any]]) -> None:
        frame = pd.DataFrame.from_records(records)
        frame["embedding"] = [np.asarray(e, dtype=np.float32).tolist() for e in frame["embedding"]]
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        target = self.folder / f"requests-{stamp}-{os.getpid()}-{self.files:06d}.parquet"
        temporary = target.with_suffix(".tmp")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            frame.to_parquet(temporary, index=False)
            temporary.rename(target)
        except OSError:  # disk full, folder gone: the requests were served; only the samples are lost
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
            self.dropped += len(records)
            return
        self.written += len(records)
        self.files += 1


def read_requests(folder: Path, since: datetime | None = None, until: datetime | None = None) -> pd.DataFrame:
    """Every logged row with ``since <= time < until`` (UTC), oldest first; ``embedding`` as float32 arrays."""
    files = sorted(Path(folder).glob("requests-*.parquet"))
    if not files:
        return pd.DataFrame(columns=list(COLUMNS))
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    if since is not None:
        frame = frame[frame["time"] >= pd.Timestamp(since)]
    if until is not None:
        frame = frame[frame["time"] < pd.Timestamp(until)]
    frame = frame.sort_values("time", kind="stable").reset_index(drop=True)
    frame["embedding"] = [np.asarray(e, dtype=np.float32) for e in frame["embedding"]]
    return frame
