"""Where a benchmark result came from, recorded when it is written: the commit, the command line, the machine
and the date go into the result's "provenance" object, and the run is logged to MLflow (experiment
`benchmarks`) so results can be found and compared in the same store as the project's training runs."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import mlflow

from apparel.config import RegistryConfig, load_config
from apparel.registry import tracking

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = "benchmarks"
RESULTS_DIR = "benchmarks/results"
# MLflow accepts metric and param names of word characters, '.', '-', ' ' and '/' only (summary keys carry '@').
NAME_UNSAFE = re.compile(r"[^\w.\- /]")
PARAM_VALUE_LIMIT = 500  # the shortest limit MLflow stores have used for a param value


def git(*args: str, repo: Path = ROOT) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True, cwd=repo, timeout=30).stdout


def commit(repo: Path = ROOT) -> str:
    """HEAD, marked '-dirty' when tracked or untracked (non-ignored) files differ from it: the code that ran is
    then not exactly that commit. Result files are outputs, not code: a run that rewrites its result after every
    seed would otherwise mark itself dirty from its second write on."""
    head = git("rev-parse", "HEAD", repo=repo).strip()
    changes = git("status", "--porcelain", "--", ".", f":!{RESULTS_DIR}", repo=repo)
    return f"{head}-dirty" if changes.strip() else head


def memory_gib() -> float:
    return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)


def gpu_name() -> str | None:
    import torch  # imported here: only the scripts that write results pay for it

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def machine() -> str:
    """One line: platform, cores, memory and the GPU (or "no GPU")."""
    return f"{platform.platform()}, {os.cpu_count()} cores, {memory_gib()} GiB, {gpu_name() or 'no GPU'}"


def provenance(argv: list[str] | None = None) -> dict[str, str]:
    return {
        "commit": commit(),
        "command": shlex.join(sys.argv if argv is None else argv),
        "machine": machine(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def safe_name(key: str) -> str:
    return NAME_UNSAFE.sub("_", key)


def flat(tree: dict, prefix: str = "") -> dict[str, object]:
    """Nested settings as `a.b` keys."""
    out: dict[str, object] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out |= flat(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def numeric_metrics(summary: dict) -> dict[str, float]:
    """The summary's numbers (bools and strings are not measurements)."""
    return {safe_name(key): float(value) for key, value in flat(summary).items()
            if isinstance(value, int | float) and not isinstance(value, bool)}


def params(settings: dict) -> dict[str, str]:
    return {safe_name(key): str(value)[:PARAM_VALUE_LIMIT] for key, value in flat(settings).items()}


def log_run(name: str, path: Path, registry: RegistryConfig | None = None) -> str:
    """Logs the written result `path` as a run named `name` in the `benchmarks` experiment of the configured
    tracking store; returns the run id."""
    result = json.loads(path.read_text())
    registry = (registry or load_config().registry).model_copy(update={"experiment": EXPERIMENT})
    # A relative store (the default runs/mlflow.db) is the project's, wherever the script was started from.
    with contextlib.chdir(ROOT), tracking.start_run(registry, run_name=name) as run:
        mlflow.log_params(params(result.get("settings", {})) | params({"provenance": result["provenance"]}))
        mlflow.log_metrics(numeric_metrics(result.get("summary", {})))
        mlflow.log_artifact(str(path))
    return run.info.run_id
