"""What `apparel clean` may delete under runs/: everything a pipeline run can recompute and no longer needs.

Kept always: the newest ``keep_runs`` runs of each pipeline, every run folder that holds the newest output
a step command would pick (dataset, models, specialists: a cached re-run points at older folders), the
newest logs, and the MLflow store (tracking database, artefacts, frozen evaluation set) unless asked.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from apparel.config import Config

RUN_FOLDER = re.compile(r"(?P<pipeline>.+)-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-\d+$")


@dataclass
class Target:
    path: Path
    why: str
    size: int


def size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    raise AssertionError("unreachable")


def _in_use(config: Config) -> set[Path]:
    """Pipeline run folders holding what step commands pick by default."""
    from apparel.workspace import OUTPUTS, newest, newest_specialists

    root = Path(config.pipeline.pipeline_root).resolve()
    found = []
    for kind in OUTPUTS:
        try:
            found.append(newest(config, kind))
        except FileNotFoundError:
            pass
    try:
        found += newest_specialists(config).values()
    except FileNotFoundError:
        pass
    return {root / p.resolve().relative_to(root).parts[0] for p in found if p.resolve().is_relative_to(root)}


def old_pipeline_runs(config: Config, keep_runs: int) -> list[Target]:
    runs: dict[str, list[Path]] = {}
    for folder in Path(config.pipeline.pipeline_root).resolve().glob("*"):
        if folder.is_dir() and (match := RUN_FOLDER.match(folder.name)):
            runs.setdefault(match["pipeline"], []).append(folder)
    in_use = _in_use(config)
    old = [f for folders in runs.values() for f in sorted(folders, key=lambda f: f.name)[:-keep_runs or None]]
    return [Target(f, "older pipeline run", size_of(f)) for f in old if f not in in_use]


def training_state(config: Config) -> list[Target]:
    """Ray runs' checkpoints and distillation work folders: resume state; finished models live in pipeline runs."""
    data = Path(config.data.root).resolve()
    targets = [Target(f, "Ray training checkpoints (resume state)", size_of(f)) for f in sorted(data.glob("ray/*"))]
    targets += [Target(f, "distillation work folder (checkpoints, teacher cache)", size_of(f))
                for f in sorted(data.glob("distill/*"))]
    targets += [Target(f, "downloaded champion (fetched again on demand)", size_of(f))
                for f in sorted(data.glob("champion/*"))]
    return targets


def old_logs(config: Config, keep: int = 5) -> list[Target]:
    logs = sorted(Path(config.pipeline.log_dir).resolve().glob("*.log"), key=lambda f: f.stat().st_mtime)
    return [Target(f, "older pipeline log", size_of(f)) for f in logs[:-keep]]


def mlflow_store(config: Config) -> list[Target]:
    """Registered models and their history: only when asked for explicitly."""
    from apparel.registry.tracking import tracking_uri

    uri = tracking_uri(config.registry)
    paths = [Path(uri.removeprefix("sqlite:///"))] if uri.startswith("sqlite:") else []
    paths += [Path(config.registry.artifact_root).resolve(), Path(config.registry.eval_set).resolve()]
    return [Target(p, "MLflow store (registered models, audit trail)", size_of(p)) for p in paths if p.exists()]


def cleanup_targets(config: Config, keep_runs: int = 1, include_mlflow: bool = False) -> list[Target]:
    targets = old_pipeline_runs(config, keep_runs) + training_state(config) + old_logs(config)
    return targets + (mlflow_store(config) if include_mlflow else [])


def delete(targets: list[Target]) -> None:
    for target in targets:
        if target.path.is_dir():
            shutil.rmtree(target.path)
        else:
            target.path.unlink(missing_ok=True)
