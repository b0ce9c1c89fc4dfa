"""Triplet models per group of verticals, trained side by side (the all-in-one baseline, the sweet-spot
study); the pipeline's specialists are ``apparel.stages.specialists``."""

from __future__ import annotations

import shutil
from pathlib import Path

from apparel.config import Config, TrainConfig
from apparel.data.manifest import Dataset
from apparel.train.embedding_job import make_job, run_concurrently


def group_name(group: list[str]) -> str:
    return "+".join(group)


def train_groups(config: Config, dataset_root: Path, groups: list[list[str]], out_dir: Path, prefix: str
                 ) -> dict[str, Path]:
    """One triplet model per group of verticals; returns {group name: model folder under out_dir}."""
    version = Dataset.load(dataset_root).info.version
    jobs = [make_job(config, f"{prefix}-{group_name(g)}-{version}", dataset_root, g, "triplet") for g in groups]
    models = run_concurrently(jobs, config, out_dir / "ray")
    placed = {}
    for group, model in zip(groups, models, strict=True):
        target = out_dir / group_name(group)
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(model, target)
        placed[group_name(group)] = target
    return placed


def train_all_in_one(config: Config, dataset_root: Path, out_dir: Path) -> Path:
    """The baseline: one triplet model over every vertical at once."""
    verticals = Dataset.load(dataset_root).verticals
    return train_groups(config, dataset_root, [verticals], out_dir, "all-in-one")[group_name(verticals)]


def contiguous_groups(verticals: list[str], size: int) -> list[list[str]]:
    """Verticals cut into groups of ``size`` (the last may be smaller), for the sweet-spot study and the
    grouped teachers of ``benchmarks/unified.py``."""
    return [verticals[i : i + size] for i in range(0, len(verticals), size)]


def _steps(config: Config, steps_per_epoch: float, **overrides: object) -> Config:
    train: TrainConfig = config.train.model_copy(update={"steps_per_epoch": max(1, round(steps_per_epoch)),
                                                         **overrides})
    return config.model_copy(update={"train": train})


def generalist_budget(config: Config, verticals: int) -> Config:
    """The generalist's share of the specialists' triplet steps: ``generalist_share`` of all V of them."""
    return _steps(config, config.train.generalist_share * verticals * config.train.steps_per_epoch)


def specialist_budget(config: Config, verticals: int = 1) -> Config:
    """What is left to a specialist of ``verticals`` verticals after the generalist's share (all of it when the
    share is 0), at ``specialist_lr`` when it fine-tunes from the generalist."""
    train = config.train
    lr = train.specialist_lr if train.generalist_share > 0 and train.specialist_lr else train.lr
    return _steps(config, (1 - train.generalist_share) * verticals * train.steps_per_epoch, lr=lr)
