"""The drift dashboard is Evidently's own UI over the monitoring workspace, served by
`apparel monitor ui`; headless Chromium renders the project page with the drift panel's values."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from apparel.monitoring.runner import run_monitor
from tests.monitoring.conftest import now_after_all, write_requests
from tests.monitoring.test_metrics import free_port

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=20000", "--window-size=1400,1700"]


def chromium(url: str, profile: Path, *args: str) -> str:
    done = subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args, url], capture_output=True,
                          text=True, timeout=180)
    return done.stdout


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent (make chromium installs it)")
def test_project_page_shows_the_drift_panels_with_their_latest_values(monitored, tmp_path):
    write_requests(tmp_path / "requests", 400, seed=31, shift=0.6)
    monitored.monitoring.trigger, monitored.monitoring.trigger_command = "command", ["true"]
    run_monitor(monitored, now=now_after_all(), log=lambda line: None)
    latest = json.loads((tmp_path / "latest.json").read_text())["v1/overall"]
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"monitoring": monitored.monitoring.model_dump(mode="json")}))
    port, gauges = free_port(), free_port()
    server = subprocess.Popen([str(Path(sys.executable).parent / "apparel"), "--config", str(config), "monitor", "ui",
                               "--port", str(port), "--metrics-port", str(gauges)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        projects = wait_for(f"{base}/api/projects")
        [project] = [p for p in projects if p["name"] == monitored.registry.model_name]
        assert "apparel_drift_score" in httpx.get(f"http://127.0.0.1:{gauges}/metrics", timeout=10).text
        page = chromium(f"{base}/projects/{project['id']}", tmp_path / "profile", "--dump-dom")
        text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))
        for title in ("Drift score: overall", "Drift score: tops", "Requests per window: overall",
                      "Image statistics drift"):
            assert title in text, title
        shown = re.search(r"Latest drift score: overall ([0-9.]+) score", text)
        assert shown and abs(float(shown.group(1)) - latest["score"]) <= 0.01 * abs(latest["score"]) + 0.01
        chromium(f"{base}/projects/{project['id']}", tmp_path / "profile", f"--screenshot={tmp_path / 'page.png'}")
        assert (tmp_path / "page.png").stat().st_size > 20_000
        if target := os.environ.get("APPAREL_DASHBOARD_SCREENSHOT"):  # how docs/ got its picture
            shutil.copy(tmp_path / "page.png", target)
    finally:
        server.terminate()
        server.wait(timeout=30)


def wait_for(url: str, seconds: float = 300):
    deadline = time.monotonic() + seconds
    while True:
        try:
            return httpx.get(url, timeout=5).raise_for_status().json()
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
