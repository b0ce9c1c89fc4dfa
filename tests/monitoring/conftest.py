"""Small synthetic references and request logs: unit-length embeddings around a few vertical centres,
catalogue-like image statistics (3:4 portrait photos), and shifts of either."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from apparel.config import Config, MonitoringConfig
from apparel.monitoring.reference import build_reference
from apparel.monitoring.references import local_copy
from apparel.requestlog import RequestLog, read_requests

DIM = 16
VERTICALS = ("shoes", "tops")  # sorted: searched with searchsorted


def embeddings(rng: np.random.Generator, verticals: np.ndarray, shift: float = 0.0) -> np.ndarray:
    centres = np.random.default_rng(7).normal(size=(len(VERTICALS), DIM))
    index = np.searchsorted(np.array(VERTICALS), verticals) if len(verticals) else np.array([], int)
    points = centres[index] + rng.normal(size=(len(verticals), DIM)) + shift
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def stats(rng: np.random.Generator, count: int, square: bool = False) -> np.ndarray:
    width = np.full(count, 224.0 if square else 225.0)
    height = np.full(count, 224.0 if square else 300.0)
    return np.c_[width, height, width / height, rng.uniform(0.4, 0.8, count), rng.gamma(4.0, 150.0, count)]


def sample(rng: np.random.Generator, count: int, shift: float = 0.0, square: bool = False,
           verticals: tuple[str, ...] = VERTICALS):
    chosen = rng.choice(np.array(verticals), count)
    return embeddings(rng, chosen, shift), stats(rng, count, square), chosen


def monitoring_settings(folder: Path, **overrides) -> MonitoringConfig:
    values = {"folder": folder, "request_log_dir": folder / "requests", "calibration_draws": 60,
              "window_sizes": [50, 100], "window_size": 100, "max_reference": 400, "false_alarm_rate": 0.02,
              "debounce": 2, "cooldown_windows": 5, "alarm_reports": False,
              **overrides}
    return MonitoringConfig(**values)


@pytest.fixture(scope="session")
def reference_data():
    return sample(np.random.default_rng(0), 1000)


@pytest.fixture(scope="session")
def calibrated(reference_data, tmp_path_factory):
    """One calibrated reference for the session (calibration is the slow part)."""
    folder = tmp_path_factory.mktemp("monitoring")
    settings = monitoring_settings(folder)
    return build_reference("1", *reference_data, settings, log=lambda line: None), settings


def write_requests(folder: Path, rows: int, seed: int, shift: float = 0.0, square: bool = False,
                   version: str = "1", verticals: tuple[str, ...] = VERTICALS) -> None:
    """Logs ``rows`` requests (predicted as one of ``verticals``) through the serving branch's
    RequestLog, as the service does."""
    rng = np.random.default_rng(seed)
    vectors, image_stats, predicted = sample(rng, rows, shift, square, verticals)
    log = RequestLog(folder, sample_rate=1.0, rows_per_file=10_000, flush_interval_s=60)
    before = len(read_requests(folder))
    for vector, row, vertical in zip(vectors, image_stats, predicted, strict=True):
        log.offer({"model_version": version, "endpoint": "embed", "vertical": str(vertical), "attributes": "{}",
                   "embedding": vector, **dict(zip(("width", "height", "aspect", "brightness", "blur"), row,
                                                   strict=True))})
    log.close()
    deadline = time.monotonic() + 10
    while len(read_requests(folder)) < before + rows and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.fixture
def monitored(tmp_path, calibrated) -> Config:
    """A config whose monitoring folder holds v1's calibrated reference (as if v1 became champion)."""
    reference, _ = calibrated
    config = Config(monitoring=monitoring_settings(tmp_path))
    reference.save(local_copy(config, "1"))
    return config


def now_after_all() -> datetime:
    return datetime.now(UTC) + timedelta(days=1)
