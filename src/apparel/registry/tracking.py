"""MLflow set-up for both the embedded default (sqlite file) and a tracking server, and a retry
around writes: sqlite allows one writer at a time, so parallel writers wait their turn."""

from __future__ import annotations

import functools
import getpass
import os
import platform
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import mlflow

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
    except mlflow.exceptions.MlflowException:  # created meanwhile by a parallel writer
        return mlflow.get_experiment_by_name(config.experiment).experiment_id


def retry(function: Callable[..., T], attempts: int = 8, delay: float = 0.25) -> Callable[..., T]:
    """Retries a store call that failed because sqlite was locked by another writer."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs) -> T:
        for attempt in range(attempts):
            try:
                return function(*args, **kwargs)
            except Exception as error:  # noqa: BLE001 - re-raised unless it is a lock
                if "locked" not in str(error).lower() or attempt == attempts - 1:
                    raise
                time.sleep(delay * 2**attempt)
        raise AssertionError("unreachable")

    return wrapper


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
