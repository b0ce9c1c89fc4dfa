"""Distillation stage: the unified model regresses the specialists' embeddings."""

from __future__ import annotations

from pathlib import Path

from apparel.config import Config
from apparel.data.manifest import Dataset
from apparel.stages.pipeline import copy_model, val_scores, with_epochs
from apparel.stages.specialists import specialists_in


def distill_stage(config: Config, dataset_root: Path, specialists_dir: Path, out_dir: Path) -> Path:
    from apparel.train.distill import distill_unified

    return distill_unified(config, dataset_root, specialists_in(specialists_dir), out_dir)


def distill_from(config: Config, dataset_root: Path, teachers: dict[str, Path], out: Path, epochs: int = 0
                 ) -> dict[str, float]:
    from apparel.models.embedding import EmbeddingNet
    from apparel.train.distill import distill_unified

    config = with_epochs(config, distill_epochs=epochs)
    dataset = Dataset.load(dataset_root)
    work = Path(config.data.root).resolve() / "distill" / dataset.info.version
    copy_model(distill_unified(config, dataset_root, teachers, work), out)
    unified = EmbeddingNet.load(out)
    return val_scores(config, dataset, {v: unified for v in teachers})
