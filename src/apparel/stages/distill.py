"""Distillation stage: the unified model regresses the specialists' embeddings (CLI and pipeline alike)."""

from __future__ import annotations

from pathlib import Path

from apparel.config import Config
from apparel.stages.pipeline import with_epochs


def distill_stage(config: Config, dataset_root: Path, teachers: dict[str, Path], out_dir: Path | None = None,
                  epochs: int = 0, generalist: Path | None = None) -> Path:
    """Trains the unified student on ``teachers`` ({vertical: specialist folder}); returns its model folder.
    The student starts from ``generalist`` (the specialists' own starting point) when given.
    ``out_dir`` defaults to ``data.root/distill/<dataset version>`` (on a cluster: the shared volume the
    RayJob mounts; a re-run resumes there). ``epochs`` (0: ``train.distill_epochs``) is the pipeline parameter."""
    from apparel.data.manifest import Dataset
    from apparel.stages.specialists import on_shared_volume
    from apparel.train.distill import distill_unified

    if out_dir is None:
        out_dir = Path(config.data.root).resolve() / "distill" / Dataset.load(dataset_root).info.version
    start = on_shared_volume(config, generalist) if generalist else None
    return distill_unified(with_epochs(config, distill_epochs=epochs), dataset_root, teachers, out_dir, start)
