"""`apparel run loop`: the closed loop on the trained champion, run as a user would run it.

serve the champion → traffic like its catalog → a new catalog drop in which one vertical's look changes →
that traffic → the drift monitor finds that vertical → the retraining it triggers reads the new drop →
gate → the running server swaps to the new champion under load → traffic of the new look is calm again.

It runs on the user's own registry and config (so it adds a version), with a folder of its own for the
drops, the request log and the monitor (``runs/loop``), and prints one line per step with its time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from apparel.config import Config

CHANGED_VERTICAL = "shoes"  # the vertical whose look changes in the new drop
TRAFFIC_THREADS = 4
SWAP_POLL_S = 5.0


@dataclass
class LoopResult:
    lines: list[str] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)


def loop_config(config: Config, folder: Path, http_port: int, grpc_port: int) -> Config:
    """The user's config, with the loop's own drops, request log and monitor folder, every request logged,
    and the champion alias checked every few seconds."""
    serving = config.serving.model_copy(update={
        "host": "127.0.0.1", "http_port": http_port, "grpc_port": grpc_port, "request_log_dir": folder / "requests",
        "request_log_sample_rate": 1.0, "poll_interval_s": SWAP_POLL_S})
    monitoring = config.monitoring.model_copy(update={
        "folder": folder / "monitoring", "request_log_dir": None, "trigger": "pipeline", "alarm_reports": False})
    data = config.data.model_copy(update={"source": str(folder / "drops"), "adapter": "manifest"})
    return config.model_copy(update={"serving": serving, "monitoring": monitoring, "data": data})


def draw_drop(config: Config, folder: Path, drop: int, new_look: list[str]) -> list[Path]:
    """A catalog drop like the default catalog: drop ``drop``'s products, ``new_look`` verticals changed;
    its photos in the order traffic sends them (verticals mixed, as users' requests are)."""
    import numpy as np

    from apparel.data.synthetic import generate_catalog

    synthetic = config.data.synthetic.model_copy(update={"drop": drop, "new_look": new_look})
    labels = generate_catalog(synthetic, folder)
    photos = sorted((labels.parent / "images").glob("*.jpg"))
    return [photos[i] for i in np.random.default_rng(drop).permutation(len(photos))]


class Traffic:
    """Single-image /embed requests from a few client threads; counts failures and the versions served."""

    def __init__(self, url: str) -> None:
        self.url, self.failed, self.versions = url, 0, set()

    def send(self, images: list[Path]) -> None:
        with httpx.Client(timeout=60) as client, ThreadPoolExecutor(TRAFFIC_THREADS) as pool:
            list(pool.map(lambda image: self._one(client, image), images))

    def _one(self, client: httpx.Client, image: Path) -> None:
        try:
            response = client.post(f"{self.url}/embed", files=[("images", (image.name, image.read_bytes()))])
            response.raise_for_status()
            self.versions.add(str(response.json()["model_version"]))
        except (httpx.HTTPError, KeyError, ValueError):
            self.failed += 1


class BackgroundTraffic:
    """Requests in batches from a thread until stopped: the load a swap must not fail."""

    def __init__(self, url: str, images: list[Path]) -> None:
        import threading

        self.traffic, self.images, self.sent = Traffic(url), images, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loop-traffic", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            start = self.sent % len(self.images)
            self.traffic.send(self.images[start:start + 8])
            self.sent += len(self.images[start:start + 8])

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=120)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 1.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"loop: {what} did not happen within {timeout_s:.0f} s")
        time.sleep(poll_s)


def logged_rows(config: Config) -> int:
    from apparel.requestlog import read_requests

    return len(read_requests(Path(config.serving.request_log_dir)))


def start_server(config_file: Path, config: Config, log_file: Path) -> subprocess.Popen:
    command = [sys.executable, "-c", "from apparel.cli import main; main()", "--config", str(config_file), "serve"]
    with log_file.open("w") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{config.serving.http_port}"

    def ready() -> bool:
        if server.poll() is not None:
            raise RuntimeError(f"loop: the server exited (log {log_file})")
        try:
            return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(ready, 600, "the server becoming ready")
    return server


class Loop:
    def __init__(self, config: Config, folder: Path, log: Callable[[str], None]) -> None:
        self.folder, self.log, self.result = folder, log, LoopResult()
        self.server: subprocess.Popen | None = None
        self.load: BackgroundTraffic | None = None
        self.config = loop_config(config, folder, free_port(), free_port())
        self.url = f"http://127.0.0.1:{self.config.serving.http_port}"
        self.started = time.monotonic()

    def step(self, line: str, began: float) -> None:
        self.result.lines.append(f"[{time.monotonic() - began:6.1f} s] {line}")
        self.log(self.result.lines[-1])

    def monitor(self) -> list:
        """One drift job run over everything logged so far (``traffic`` has waited for the log to hold it)."""
        from apparel.monitoring.runner import run_monitor

        return run_monitor(self.config, log=lambda line: None)

    def traffic(self, images: list[Path]) -> Traffic:
        traffic = Traffic(self.url)
        expected = logged_rows(self.config) + len(images)
        traffic.send(images)
        wait_for(lambda: logged_rows(self.config) >= expected - traffic.failed, 60, "the request log filling")
        return traffic

    def serve_and_watch(self, config_file: Path, champion: str) -> None:
        began = time.monotonic()
        drop = draw_drop(self.config, self.folder / "drops" / "01", 1, [])
        self.server = start_server(config_file, self.config, self.folder / "server.log")
        self.step(f"serving v{champion} at {self.url}; drop 01 drawn: {len(drop)} new products' photos", began)
        began = time.monotonic()
        traffic = self.traffic(drop[::2])
        summary = self.monitor()
        self.result.figures["pre_shift_alarm_rate"] = summary.alarms / max(summary.windows, 1)
        self.step(f"{len(drop[::2])} requests like the catalog ({traffic.failed} failed): {summary.windows} windows "
                  f"scored, {summary.alarms} alarming, {len(summary.events)} drift events", began)

    def shift(self) -> list:
        began = time.monotonic()
        drop = draw_drop(self.config, self.folder / "drops" / "02", 2, [CHANGED_VERTICAL])
        traffic = self.traffic(drop)
        summary = self.monitor()
        named = sorted({e.vertical for e in summary.events} - {"overall"})
        self.result.figures["drifted_vertical_found"] = float(named == [CHANGED_VERTICAL])
        events = "; ".join(f"{e.vertical}: {e.cause}" for e in summary.events) or "none"
        self.step(f"drop 02 ({CHANGED_VERTICAL} in a new look): {len(drop)} requests ({traffic.failed} failed), "
                  f"{summary.alarms}/{summary.windows} windows alarming; drift events: {events}", began)
        return summary.events

    def retrain(self, events: list) -> dict:
        """Waits for the retraining the events started while traffic goes on, as it would in production."""
        began = time.monotonic()
        if not events or "outcome" not in events[0].run:
            started = events[0].run if events else "no drift event"
            raise RuntimeError(f"loop: the drift found started no local retraining ({started})")
        outcome, log_file = Path(events[0].run["outcome"]), events[0].run["log"]
        self.step(f"retraining {', '.join(events[0].drifted)} on the newest drop (log {log_file})", began)
        self.load = BackgroundTraffic(self.url, sorted((self.folder / "drops" / "02" / "images").glob("*.jpg")))
        # (every photo of the drop, in turn: the server's answers during the swap are what is counted)
        wait_for(outcome.is_file, 3600, "the retraining run", poll_s=5)
        result = json.loads(outcome.read_text())
        self.result.figures["retraining_seconds"] = time.monotonic() - began
        self.step(f"retraining: {outcome_line(result)}", began)
        return result

    def swap(self, version: str) -> None:
        """The traffic that ran through the retraining goes on until the server answers with ``version``."""
        began = time.monotonic()
        try:
            wait_for(lambda: version in self.load.traffic.versions, 300, f"the server's swap to v{version}")
        finally:
            self.load.stop()
        self.result.figures["swap_failed_requests"] = float(self.load.traffic.failed)
        self.step(f"the running server swapped to v{version} under load: {self.load.sent} requests since the "
                  f"retraining started, {self.load.traffic.failed} failed", began)

    def after(self, version: str) -> None:
        began = time.monotonic()
        drop = draw_drop(self.config, self.folder / "drops" / "03", 3, [CHANGED_VERTICAL])
        traffic = self.traffic(drop)
        summary = self.monitor()
        scored = [json.loads(line) for line in (Path(self.config.monitoring.folder) / "windows.jsonl").open()]
        alarms = [row["alarm"] for row in scored if row["key"].startswith(f"v{version}/")]
        self.result.figures["post_swap_alarm_rate"] = sum(alarms) / max(len(alarms), 1)
        self.step(f"drop 03, the new look again, against v{version}: {len(drop)} requests ({traffic.failed} failed), "
                  f"{sum(alarms)}/{len(alarms)} of its windows alarming, {len(summary.events)} drift events", began)


def outcome_line(result: dict) -> str:
    """'registered v2 -> champion', or the outcome and why, cut to fit a line."""
    if result["outcome"] == "registered":
        why = result["summary"].partition("(gate: ")[2].rstrip(")")
        line = f"registered v{result['version']} -> {result['decision']}" + (f" (gate: {why})" if why else "")
    else:
        line = f"{result['outcome']}: {result['summary']}"
    return line if len(line) <= 100 else line[:99] + "…"


def champion_version(config: Config) -> str:
    from mlflow import MlflowClient

    from apparel.registry import aliases
    from apparel.registry.tracking import configure

    configure(config.registry)
    version = aliases.holder(MlflowClient(), config.registry.model_name, aliases.CHAMPION)
    if version is None:
        raise ValueError(f"{config.registry.model_name} has no champion yet: run `apparel run` first")
    return version


def run_loop(config: Config, log: Callable[[str], None] = print) -> LoopResult:
    """The whole loop; its story (one line per step) and figures, also written to ``runs/loop/loop.json``."""
    import shutil

    champion = champion_version(config)
    folder = Path(config.data.root).resolve().parent / "loop"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    loop = Loop(config, folder, log)
    config_file = folder / "config.yaml"
    config_file.write_text(yaml.safe_dump(loop.config.model_dump(mode="json")))
    try:
        loop.serve_and_watch(config_file, champion)
        outcome = loop.retrain(loop.shift())
        if outcome.get("decision") == "champion":
            loop.swap(outcome["version"])
            loop.after(outcome["version"])
        else:
            loop.step("no new champion: the server keeps serving v" + champion, time.monotonic())
    finally:
        if loop.load is not None:
            loop.load.stop()
        if loop.server is not None:
            loop.server.terminate()
            loop.server.wait(timeout=60)
    loop.result.figures["loop_seconds"] = time.monotonic() - loop.started
    loop.result.lines.append(f"loop done in {loop.result.figures['loop_seconds']:.0f} s; the dashboard: "
                             f"apparel --config {config_file} monitor ui  (http://127.0.0.1:"
                             f"{config.monitoring.ui_port})")
    log(loop.result.lines[-1])
    (folder / "loop.json").write_text(json.dumps({"figures": loop.result.figures, "story": loop.result.lines},
                                                 indent=1))
    return loop.result
