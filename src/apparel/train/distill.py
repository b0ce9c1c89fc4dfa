"""The unified model (Song et al.): a student regressing (L2) each image's own specialist embedding.

Teacher embeddings are computed once and cached beside the student, keyed by the dataset version
and the specialists' weights, so a resumed or repeated distillation never recomputes them.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import torch

from apparel.config import Config
from apparel.data.dataset import load_images
from apparel.data.manifest import Dataset
from apparel.models.embedding import EmbeddingNet
from apparel.train.embedding_job import job_frame, make_job
from apparel.train.loop import embed


def _teachers_key(dataset_root: Path, specialists: dict[str, Path]) -> str:
    digest = hashlib.sha256(Dataset.load(dataset_root).info.version.encode())
    for vertical in sorted(specialists):
        digest.update(vertical.encode() + (specialists[vertical] / "weights.pt").read_bytes())
    return digest.hexdigest()[:16]


def teacher_embeddings(frame, specialists: dict[str, Path], flipped: bool = False) -> torch.Tensor:
    """Each row embedded by the specialist of its own vertical (``flipped``: its mirror image)."""
    targets: torch.Tensor | None = None
    for vertical, model_dir in specialists.items():
        rows = np.flatnonzero((frame["vertical"] == vertical).to_numpy())
        if len(rows) == 0:
            continue
        teacher = EmbeddingNet.load(model_dir)
        images = load_images(frame["image"].iloc[rows].tolist(), teacher.spec.image_size)
        vectors = torch.from_numpy(embed(teacher, images.flip(-1) if flipped else images))
        if targets is None:
            targets = torch.zeros(len(frame), vectors.shape[1])
        targets[rows] = vectors
    if targets is None:
        raise ValueError("no training image belongs to a vertical with a specialist")
    return targets


def teacher_targets(frame, specialists: dict[str, Path], flipped_views: bool) -> dict[str, torch.Tensor]:
    """What a regression job reads: ``train`` (and ``train_flipped``, the mirror images' targets)."""
    targets = {"train": teacher_embeddings(frame, specialists)}
    if flipped_views:
        targets["train_flipped"] = teacher_embeddings(frame, specialists, flipped=True)
    return targets


def distill_unified(config: Config, dataset_root: Path, specialists: dict[str, Path], out_dir: Path,
                    start: Path | None = None) -> Path:
    """Trains the unified student on Ray Train (a RayJob in cluster mode), from ``start`` (a model folder)
    or from scratch; returns its model folder."""
    from apparel.kuberay import run_training

    out_dir.mkdir(parents=True, exist_ok=True)
    key = _teachers_key(dataset_root, specialists) + ("-flipped" if config.train.distill_flipped_views else "")
    cache = out_dir / f"teachers-{key}.pt"
    distill_config = config.model_copy(update={"train": config.train.model_copy(
        update={"epochs": config.train.distill_epochs})})
    job = make_job(distill_config, f"unified-{key}", dataset_root, sorted(specialists), "regress", cache, start)
    if not cache.is_file():
        torch.save(teacher_targets(job_frame(job, "train"), specialists, config.train.distill_flipped_views), cache)
    model = run_training(job, distill_config, out_dir / "ray")
    target = out_dir / "model"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(model, target)
    return target
