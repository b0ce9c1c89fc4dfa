"""The request log: sampled, written off the hot path, read back by time window; never fails a request."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import Image

from apparel.data.image_stats import image_stats
from apparel.requestlog import COLUMNS, RequestLog, read_requests


def record(i: int) -> dict:
    return {"model_version": "3", "endpoint": "embed", "vertical": "tops", "attributes": json.dumps({"colour": "red"}),
            "embedding": np.full(4, i, dtype=np.float32), "width": 30.0, "height": 40.0, "aspect": 0.75,
            "brightness": 0.5, "blur": 10.0}


def test_written_rows_read_back_in_order_and_by_window(tmp_path: Path) -> None:
    log = RequestLog(tmp_path, sample_rate=1.0, rows_per_file=3)
    start = datetime.now(UTC)
    assert all(log.offer(record(i)) for i in range(7))
    log.close()
    frame = read_requests(tmp_path)
    assert list(frame.columns) == list(COLUMNS) and len(frame) == 7 and log.written == 7 and log.files == 3
    assert [float(e[0]) for e in frame["embedding"]] == list(range(7))
    assert frame["embedding"].iloc[0].dtype == np.float32
    assert len(read_requests(tmp_path, since=start + timedelta(hours=1))) == 0
    assert not list(tmp_path.glob("*.tmp"))


def test_sampling_rate_is_respected(tmp_path: Path) -> None:
    log = RequestLog(tmp_path, sample_rate=0.25, seed=1)
    kept = sum(log.offer(record(i)) for i in range(2000))
    log.close()
    assert 400 < kept < 600 and len(read_requests(tmp_path)) == kept
    assert RequestLog(tmp_path / "off", sample_rate=0.0).offer(record(0)) is False


def test_unwritable_folder_drops_and_counts(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    log = RequestLog(blocker / "requests", sample_rate=1.0)
    assert log.offer(record(0)) and log.offer(record(1))
    log.close()
    assert log.dropped == 2 and log.written == 0


def test_image_stats_measure_shape_brightness_and_sharpness() -> None:
    rng = np.random.default_rng(0)
    sharp = Image.fromarray(rng.integers(0, 255, (300, 225, 3), dtype=np.uint8))
    stats = image_stats(sharp)
    assert (stats["width"], stats["height"]) == (225.0, 300.0) and abs(stats["aspect"] - 0.75) < 1e-9
    assert image_stats(Image.new("RGB", (10, 10), (255, 255, 255)))["brightness"] == 1.0
    flat = image_stats(Image.new("RGB", (225, 300), (128, 128, 128)))
    assert flat["blur"] < stats["blur"]


def test_records_built_on_the_writer_thread_and_failures_counted(tmp_path: Path) -> None:
    """What the service queues: a callable (the neighbour search for the vertical) run off the request path."""
    import threading

    log = RequestLog(tmp_path, sample_rate=1.0)
    threads: list[str] = []

    def lazy() -> dict:
        threads.append(threading.current_thread().name)
        return record(5)

    def broken() -> dict:
        raise RuntimeError("index gone")

    assert log.put(lazy) and log.put(broken)
    log.close()
    assert threads == ["request-log"] and log.written == 1 and log.dropped == 1
    assert float(read_requests(tmp_path)["embedding"].iloc[0][0]) == 5.0
