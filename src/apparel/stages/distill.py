"""Distillation stage: the unified model regresses the specialists' embeddings (CLI and pipeline alike)."""

from __future__ import annotations

from pathlib import Path

from apparel.config import Config
from apparel.stages.pipeline import with_epochs


def distill_stage(config: Config, dataset_root: Path, teachers: dict[str, Path], out_dir: Path, epochs: int = 0
                  ) -> Path:
    """Trains the unified student on ``teachers`` ({vertical: specialist folder}); returns its model folder.
    ``epochs`` (0: the configured ``train.distill_epochs``) is the pipeline parameter."""
    from apparel.train.distill import distill_unified

    return distill_unified(with_epochs(config, distill_epochs=epochs), dataset_root, teachers, out_dir)
