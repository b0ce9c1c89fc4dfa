"""`apparel serve` and `apparel search`: start the service on the champion, query it."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from apparel.config import Config, config_to_json

SERVICE = "apparel.serving.bento:ApparelService"


def preflight(config: Config) -> str:
    """Loads the model and its index once before starting, so a mismatched or missing index is a
    one-line error and exit code 1 rather than a worker restarting forever. Returns what will serve."""
    from apparel.serving.model import load_served_model, resolve

    name, version = resolve(config)
    # A check, not the server: the worker builds the frozen graph it serves; tracing one here is thrown away.
    eager = config.model_copy(update={"serving": config.serving.model_copy(update={"frozen_graph": False})})
    served = load_served_model(eager, name, version)
    served.batcher.close()
    return f"{name} v{version} ({served.index.meta.size} catalog images, index {served.index.meta.factory})"


def bentoml_command(config: Config) -> tuple[list[str], dict[str, str]]:
    from apparel.serving.bento import CONFIG_JSON_ENV

    argv = [sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", config.serving.host,
            "--port", str(config.serving.http_port)]
    env = {**os.environ, CONFIG_JSON_ENV: config_to_json(config), "BENTOML_DO_NOT_TRACK": "True",
           "BENTOML_HOME": str(bentoml_home(config.serving.http_port))}
    return argv, env


def bentoml_home(port: int) -> Path:
    """BentoML's home for the server on ``port``: a folder of its own below the usual home. BentoML empties
    its Prometheus folder (inside its home) whenever a server starts, so two servers on one machine sharing a
    home would wipe each other's metrics; ports are unique among live servers, and this service keeps
    nothing else there (its models come from MLflow)."""
    base = Path(os.environ.get("BENTOML_HOME") or Path.home() / "bentoml")
    return base / f"apparel-{port}"


def serve(config: Config, log=print) -> None:
    """Replaces this process with ``bentoml serve`` (signals reach the server directly)."""
    log(f"serving {preflight(config)}: HTTP http://{config.serving.host}:{config.serving.http_port}, "
        f"gRPC {config.serving.host}:{config.serving.grpc_port}")
    argv, env = bentoml_command(config)
    os.execve(argv[0], argv, env)


def search_http(url: str, image: Path, k: int, vertical: str = "", timeout_s: float = 30.0) -> dict[str, Any]:
    import httpx

    data = {"k": str(k), **({"vertical": vertical} if vertical else {})}
    try:
        with image.open("rb") as handle:
            response = httpx.post(f"{url.rstrip('/')}/search", files={"image": (image.name, handle)}, data=data,
                                  timeout=timeout_s)
    except httpx.TransportError as error:  # refused, unreachable, timed out: the user needs the URL, not errno
        raise ConnectionError(f"no apparel service answers at {url} ({type(error).__name__}): start one with "
                              "`apparel serve`, pass its --url, or search with --in-process") from error
    answer = response.json()
    if response.status_code != 200:
        raise ValueError(f"{url} answered {response.status_code}: {answer.get('error', answer)}")
    return answer


def search_in_process(config: Config, image: Path, k: int, vertical: str = "") -> dict[str, Any]:
    from apparel.serving.core import ServingCore
    from apparel.serving.errors import ServingError

    # One query: tracing a frozen graph would cost more than it saves; nothing here is worth logging.
    quiet = config.model_copy(update={"serving": config.serving.model_copy(update={"request_log_sample_rate": 0.0,
                                                                                   "frozen_graph": False})})
    core = ServingCore(quiet)
    core.start(poll=False)
    try:
        return core.search(image=image.read_bytes(), k=k, vertical=vertical or None)
    except ServingError as error:
        raise ValueError(error.message) from error
    finally:
        core.stop()


def format_matches(answer: dict[str, Any]) -> list[str]:
    lines = [f"{answer['model_name']} v{answer['model_version']}:"]
    for rank, match in enumerate(answer["matches"], 1):
        lines.append(f"{rank:3d}  {match['score']:.4f}  {match['product_id']}  {match['vertical']}  {match['image']}")
    return lines
