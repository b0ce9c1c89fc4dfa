"""Specialist stage: one triplet-loss model per vertical (local Ray, or a KubeRay RayJob on a cluster),
each fine-tuned at ``train.specialist_lr`` from one generalist trained first on every vertical for
``train.generalist_share`` of the specialists' steps (the default, 0.8: benchmarks/results/unified_32px.json against
unified_from_scratch_32px.json), or from scratch with a share of 0.

The CLI (all verticals) and the pipeline's ParallelFor step (one vertical) run this same function.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from apparel.config import Config
from apparel.data.manifest import Dataset
from apparel.stages.pipeline import with_epochs

GENERALIST = "_generalist"  # its folder beside the specialists (no vertical starts with "_")


def generalist_stage(config: Config, dataset_root: Path, out_dir: Path, epochs: int = 0) -> Path | None:
    """The model every specialist starts from: triplets over every vertical for ``generalist_share`` of the
    specialists' steps. Returns its folder ``out_dir/_generalist``, or None when the share is 0."""
    from apparel.train.embedding_job import make_job
    from apparel.train.specialists import generalist_budget

    if config.train.generalist_share == 0:
        return None
    dataset = Dataset.load(dataset_root)
    config = generalist_budget(with_epochs(config, epochs), len(dataset.verticals))
    job = make_job(config, f"generalist-{dataset.info.version}", dataset_root, dataset.verticals, "triplet")
    trained = _run(config, [job], Path(config.data.root).resolve() / "ray")[0]
    target = out_dir / GENERALIST
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(trained, target)
    return target


def on_shared_volume(config: Config, model_dir: Path) -> Path:
    """A copy of ``model_dir`` under ``data.root/start/`` (named by its weights), which RayJob pods mount:
    a pipeline artefact lives in the step's own pod."""
    digest = hashlib.sha256((model_dir / "weights.pt").read_bytes()).hexdigest()[:16]
    target = Path(config.data.root).resolve() / "start" / digest
    if not (target / "weights.pt").is_file():
        shutil.copytree(model_dir, target, dirs_exist_ok=True)
    return target


def specialists_stage(config: Config, dataset_root: Path, out_dir: Path, verticals: list[str] | None = None,
                      epochs: int = 0, generalist: Path | None = None) -> dict[str, Path]:
    """One specialist per vertical, trained side by side: {vertical: model folder under ``out_dir``}.
    ``generalist`` (required while ``generalist_share`` > 0) is where each starts.
    Ray runs live under ``data.root/ray``: a killed run resumes, a changed config starts afresh."""
    from apparel.train.embedding_job import make_job
    from apparel.train.specialists import specialist_budget

    dataset = Dataset.load(dataset_root)
    unknown = sorted(set(verticals or []) - set(dataset.verticals))
    if unknown:
        raise ValueError(f"unknown vertical(s) {unknown} (dataset has: {', '.join(dataset.verticals)})")
    if config.train.generalist_share > 0 and generalist is None:
        raise ValueError("train.generalist_share > 0: specialists start from a generalist (generalist_stage); "
                         "pass one, or set the share to 0")
    chosen = verticals or dataset.verticals
    config = specialist_budget(with_epochs(config, epochs))
    start = on_shared_volume(config, generalist) if config.train.generalist_share > 0 else None
    jobs = [make_job(config, f"specialist-{v}-{dataset.info.version}", dataset_root, [v], "triplet", init_path=start)
            for v in chosen]
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
    found = {p.parent.name: p.parent for p in sorted(folder.glob("*/spec.json"))
             if "+" not in p.parent.name and p.parent.name != GENERALIST}
    if not found:
        raise FileNotFoundError(f"no specialist models in {folder}: run `apparel train-specialists` first")
    return found
