"""Specialist stage: one triplet-loss model per vertical (local Ray, or a KubeRay RayJob on a cluster).

The CLI (all verticals) and the pipeline's ParallelFor step (one vertical) run this same function.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from apparel.config import Config
from apparel.data.manifest import Dataset
from apparel.stages.pipeline import with_epochs


def specialists_stage(config: Config, dataset_root: Path, out_dir: Path, verticals: list[str] | None = None,
                      epochs: int = 0) -> dict[str, Path]:
    """One specialist per vertical, trained side by side: {vertical: model folder under ``out_dir``}.
    Ray runs live under ``data.root/ray``: a killed run resumes, a changed config starts afresh."""
    from apparel.train.embedding_job import make_job

    dataset = Dataset.load(dataset_root)
    unknown = sorted(set(verticals or []) - set(dataset.verticals))
    if unknown:
        raise ValueError(f"unknown vertical(s) {unknown} (dataset has: {', '.join(dataset.verticals)})")
    chosen = verticals or dataset.verticals
    config = with_epochs(config, epochs)
    jobs = [make_job(config, f"specialist-{v}-{dataset.info.version}", dataset_root, [v], "triplet") for v in chosen]
    trained = _run(config, jobs, Path(config.data.root).resolve() / "ray")
    placed = {}
    for vertical, model_dir in zip(chosen, trained, strict=True):
        placed[vertical] = out_dir / vertical
        shutil.rmtree(placed[vertical], ignore_errors=True)
        shutil.copytree(model_dir, placed[vertical])
    return placed


def _run(config: Config, jobs: list, storage: Path) -> list[Path]:
    """Side by side on local Ray; one RayJob after another on a cluster (the pipeline's ParallelFor
    already runs one step per vertical)."""
    if config.mode == "cluster":
        from apparel.kuberay import run_training

        return [run_training(job, config, storage) for job in jobs]
    from apparel.train.embedding_job import run_concurrently

    return run_concurrently(jobs, config, storage)


def specialists_in(folder: Path) -> dict[str, Path]:
    """The specialist model folders under ``folder`` (one per vertical, as train-specialists writes)."""
    found = {p.parent.name: p.parent for p in sorted(folder.glob("*/spec.json")) if "+" not in p.parent.name}
    if not found:
        raise FileNotFoundError(f"no specialist models in {folder}: run `apparel train-specialists` first")
    return found
