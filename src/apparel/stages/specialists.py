"""Specialist stage: one triplet-loss model per vertical (local Ray, or a KubeRay RayJob on a cluster)."""

from __future__ import annotations

from pathlib import Path

from apparel.config import Config
from apparel.data.manifest import Dataset
from apparel.stages.pipeline import copy_model, val_scores, with_epochs


def train_specialists_stage(config: Config, dataset_root: Path, out_dir: Path,
                            verticals: list[str] | None = None) -> dict[str, Path]:
    from apparel.train.specialists import train_specialists

    known = Dataset.load(dataset_root).verticals
    unknown = sorted(set(verticals or []) - set(known))
    if unknown:
        raise ValueError(f"unknown vertical(s) {unknown} (dataset has: {', '.join(known)})")
    return train_specialists(config, dataset_root, out_dir, verticals or None)


def specialists_in(folder: Path) -> dict[str, Path]:
    """The specialist model folders under ``folder`` (one per vertical, as train-specialists writes)."""
    found = {p.parent.name: p.parent for p in sorted(folder.glob("*/spec.json")) if "+" not in p.parent.name}
    if not found:
        raise FileNotFoundError(f"no specialist models in {folder}: run `apparel train-specialists` first")
    return found


def specialist_stage(config: Config, dataset_root: Path, vertical: str, out: Path, epochs: int = 0
                     ) -> dict[str, float]:
    """One vertical's specialist: local Ray here, a KubeRay RayJob in cluster mode."""
    from apparel.kuberay import run_training
    from apparel.models.embedding import EmbeddingNet
    from apparel.train.embedding_job import make_job

    config = with_epochs(config, epochs)
    dataset = Dataset.load(dataset_root)
    job = make_job(config, f"specialist-{vertical}-{dataset.info.version}", dataset_root, [vertical], "triplet")
    copy_model(run_training(job, config, Path(config.data.root).resolve() / "ray"), out)
    return val_scores(config, dataset, {vertical: EmbeddingNet.load(out)})
