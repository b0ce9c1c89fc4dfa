"""The loop end to end: a real served champion (`apparel serve`) logs its requests; `apparel monitor
run` scores them against the champion's calibrated reference; unshifted traffic triggers nothing,
shifted traffic triggers retraining exactly once, despite repeated alarming windows and two job
runs at the same time. (The trigger is a recording command here; the kfp paths it would start are
tested in tests/monitoring/test_trigger.py.)"""

import io
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from PIL import Image, ImageFilter

from apparel.index import fetch_catalog_index
from apparel.monitoring.champion import reference_for_champion
from tests.serving.serving_helpers import make_store, start_server

RECORDER = ("import json, sys; event = json.load(sys.stdin); "
            "open(sys.argv[1], 'a').write(event['key'] + '\\n'); print('retrain-' + event['key'])")


def shifted(path: str) -> bytes:
    """Another photo pipeline: stretched to 2:1 landscape, blurred, warmer."""
    with Image.open(path) as image:
        image = image.convert("RGB").resize((80, 40)).filter(ImageFilter.GaussianBlur(1.5))
    red, green, blue = image.split()
    image = Image.merge("RGB", (red.point(lambda v: min(255, v + 40)), green, blue.point(lambda v: v // 2)))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def original(path: str) -> bytes:
    return Path(path).read_bytes()


def serve(server, images: list[bytes]) -> None:
    with httpx.Client(timeout=120) as client:
        for start in range(0, len(images), 4):
            batch = [("images", (f"{i}.jpg", data)) for i, data in enumerate(images[start:start + 4])]
            assert client.post(f"{server.http}/embed", files=batch).status_code == 200


def monitor_runs(config_file: Path, count: int) -> list[str]:
    command = [sys.executable, "-c", "from apparel.cli import main; main()", "--config", str(config_file),
               "monitor", "run"]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for _ in range(count)]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    assert all(run.returncode == 0 for run in runs), outputs
    return outputs


@pytest.mark.slow
def test_served_traffic_drift_triggers_retraining_exactly_once(tmp_path):
    triggered = tmp_path / "triggered.txt"
    monitoring = {"folder": str(tmp_path / "monitoring"), "window_size": 40, "window_sizes": [40],
                  "max_reference": 80, "calibration_draws": 80, "per_vertical": False, "debounce": 2,
                  "cooldown_windows": 50, "alarm_reports": False, "trigger": "command",
                  "trigger_command": [sys.executable, "-c", RECORDER, str(triggered)]}
    store = make_store(tmp_path, products_per_vertical=30, monitoring=monitoring, poll_interval_s=5.0)
    config, dataset, config_file = store.config, store.dataset, tmp_path / "config.yaml"
    version = store.register(seed=0)
    # the index stage computes the reference from the catalog it indexed, as here
    run_id = MlflowClient().get_model_version(config.registry.model_name, version).tags["run_id"]
    reference_for_champion(config, fetch_catalog_index(config, version), version, run_id, log=lambda line: None)
    (tmp_path / "monitoring" / "references").rename(tmp_path / "monitoring" / "local-copy")  # read it from MLflow
    server = start_server(store)
    try:
        images = dataset.manifest["image"].tolist()
        rng = np.random.default_rng(0)
        serve(server, [original(images[i]) for i in rng.choice(len(images), 120, replace=False)])
        assert wait_for_rows(tmp_path / "requests", 120)
        first = monitor_runs(config_file, 1)
        assert "scored 3 new windows" in first[0] and not triggered.exists(), first

        serve(server, [shifted(images[i]) for i in rng.choice(len(images), 160, replace=False)])
        assert wait_for_rows(tmp_path / "requests", 280)
        outputs = monitor_runs(config_file, 2)  # two CronJob runs at once
        # windows 3 and 4 are the first shifted ones: debounce 2 declares drift at 4, or at 3 when the last
        # unshifted window happened to alarm (a lone false alarm that the debounce alone did not act on)
        keys = triggered.read_text().split()
        assert len(keys) == 1 and keys[0] in ("v1/overall/3", "v1/overall/4"), (first, outputs)
        serve(server, [shifted(images[i]) for i in rng.choice(len(images), 120, replace=False)])
        assert wait_for_rows(tmp_path / "requests", 400)
        outputs = monitor_runs(config_file, 2)  # more alarming windows: still the same event
        assert len(triggered.read_text().split()) == 1, outputs
    finally:
        server.stop()
    events = subprocess.run([sys.executable, "-c", "from apparel.cli import main; main()", "--config",
                             str(config_file), "monitor", "events"], capture_output=True, text=True, check=True)
    assert keys[0] in events.stdout and f"retrain-{keys[0]}" in events.stdout


def wait_for_rows(folder: Path, rows: int, seconds: float = 60) -> bool:
    import time

    from apparel.requestlog import read_requests

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if len(read_requests(folder)) >= rows:
            return True
        time.sleep(0.5)
    return len(pd.DataFrame(read_requests(folder))) >= rows
