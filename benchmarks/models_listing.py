"""`apparel models` against a registry with one version: today's command (the MLflow client only) beside
main's (which imported the registration module, and torch with it), alternated in one process, each
run a fresh interpreter as a user's command is. CPU seconds (user + system of the child) are the
headline: the shared CI-class machine's wall time swings with its load; wall time is reported too."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402

NOW = ["-c", "from apparel.cli import main; main()", "models"]
# main's `models` imported apparel.registry.register (evaluation, torch, matplotlib) before listing.
MAIN = ["-c", "import apparel.registry.register; from apparel.cli import main; main()", "models"]
REPEATS = 5


def timed(args: list[str], cwd: Path) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=cwd, check=True, capture_output=True, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, wall


def registry_with_one_version(root: Path) -> None:
    """A registered model version with gate tags, as `apparel register` leaves it (no training needed)."""
    script = """
import mlflow
from mlflow import MlflowClient
from apparel.config import load_config
from apparel.registry.tracking import configure
config = load_config(environ={})
configure(config.registry)
client = MlflowClient()
client.create_registered_model(config.registry.model_name)
version = client.create_model_version(config.registry.model_name, "file:///tmp/none",
                                      tags={"gate.decision": "champion"})
client.set_registered_model_alias(config.registry.model_name, "champion", version.version)
"""
    subprocess.run([sys.executable, "-c", script], cwd=root, check=True, capture_output=True)


def main() -> None:
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    cpu: dict[str, list[float]] = {"now": [], "main": []}
    wall: dict[str, list[float]] = {"now": [], "main": []}
    with tempfile.TemporaryDirectory() as tmp:
        registry_with_one_version(Path(tmp))
        for _ in range(REPEATS):
            for name, args in (("main", MAIN), ("now", NOW)):
                seconds, elapsed = timed(args, Path(tmp))
                cpu[name].append(seconds)
                wall[name].append(elapsed)
    summary = {f"{kind}_{name}_median_s": round(statistics.median(values[name]), 2)
               for kind, values in (("cpu", cpu), ("wall", wall)) for name in values}
    summary["cpu_ratio_now_over_main"] = round(statistics.median(cpu["now"]) / statistics.median(cpu["main"]), 3)
    summary["wall_ratio_now_over_main"] = round(statistics.median(wall["now"]) / statistics.median(wall["main"]), 3)
    print(summary)
    write_result("models_listing", {"summary": summary, "repeats": REPEATS, "cpu_s": cpu, "wall_s": wall,
                                    "load_average_at_end": os.getloadavg()})


if __name__ == "__main__":
    main()
