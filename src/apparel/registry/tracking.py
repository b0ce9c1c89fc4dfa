"""MLflow set-up for both the embedded default (sqlite file) and a tracking server, and the retry
every store call goes through: sqlite allows one writer at a time, so parallel writers wait their turn."""

from __future__ import annotations

import getpass
import os
import platform
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import mlflow
import tenacity

from apparel.config import RegistryConfig

T = TypeVar("T")


def tracking_uri(config: RegistryConfig) -> str:
    """sqlite paths are made absolute so every process (Ray workers, kfp steps) sees one file."""
    uri = config.tracking_uri
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        path = Path(uri.removeprefix("sqlite:///")).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        uri = f"sqlite:///{path}"
    return uri


def configure(config: RegistryConfig) -> str:
    """Points MLflow at the store and makes sure the experiment exists; returns its id."""
    mlflow.set_tracking_uri(tracking_uri(config))
    mlflow.set_registry_uri(tracking_uri(config))
    experiment = retry(mlflow.get_experiment_by_name)(config.experiment)
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if tracking_uri(config).startswith("sqlite"):
        root = Path(config.artifact_root).resolve()
        root.mkdir(parents=True, exist_ok=True)
        location = root.as_uri()
    try:
        return retry(mlflow.create_experiment)(config.experiment, artifact_location=location)
    except mlflow.exceptions.MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        return retry(mlflow.get_experiment_by_name)(config.experiment).experiment_id  # a parallel writer made it


def start_run(config: RegistryConfig, run_name: str):
    """A run in the configured experiment (experiment look-up and run start both retried on lock)."""
    return retry(mlflow.start_run)(experiment_id=configure(config), run_name=run_name)


def is_lock(error: BaseException) -> bool:
    """sqlite's "database is locked" (directly or relayed by a tracking server backed by sqlite)."""
    return "locked" in str(error).lower()


LOCK_RETRY = tenacity.retry(retry=tenacity.retry_if_exception(is_lock), stop=tenacity.stop_after_attempt(8),
                            wait=tenacity.wait_exponential(multiplier=0.25, max=8), reraise=True)


def retry(function: Callable[..., T]) -> Callable[..., T]:
    """``function`` retried while the store is locked by another writer; any other error is raised at once."""
    return LOCK_RETRY(function)


def actor() -> str:
    """Who is acting, for the audit trail."""
    return os.environ.get("APPAREL_USER") or getpass.getuser()


def code_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).parent, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def environment() -> dict[str, str]:
    import torch

    return {"env.python": platform.python_version(), "env.torch": torch.__version__,
            "env.mlflow": mlflow.__version__, "env.platform": platform.platform()}
