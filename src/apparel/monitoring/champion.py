"""The reference of a version that has just become champion: its embeddings of the frozen evaluation
set, their predicted verticals (the catalog index's majority vote, as the service predicts them) and
image statistics, calibrated and logged as ``monitoring/reference`` of the version's MLflow run.
The index stage calls :func:`reference_for_champion` right after it builds the champion's index."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from apparel.config import Config
from apparel.data.decode import open_rgb
from apparel.data.image_stats import STAT_COLUMNS, image_stats
from apparel.monitoring.reference import Reference, build_reference
from apparel.monitoring.references import local_copy, log_reference


def frame_stats(paths: list[str], max_pixels: int) -> np.ndarray:
    """Image statistics of each file as the service decodes it, before the model's resize (what the
    request log records)."""
    rows = []
    for path in paths:
        stats = image_stats(open_rgb(path, max_pixels))
        rows.append([stats[c] for c in STAT_COLUMNS])
    return np.asarray(rows, dtype=np.float64)


def reference_for_champion(config: Config, model_dir: Path, catalog_index, version: str, run_id: str,
                           log=print) -> Reference:
    """Computes, calibrates, logs (MLflow) and keeps a local copy of ``version``'s reference."""
    from apparel.inference import InferenceRuntime
    from apparel.models.attributes import ApparelNet
    from apparel.registry.register import stored_eval_set

    frame = stored_eval_set(config)
    if frame is None:
        raise ValueError(f"{config.registry.model_name} has no frozen evaluation set yet: register a version first")
    runtime = InferenceRuntime(ApparelNet.load(model_dir), config.data.max_image_pixels)  # as the service embeds
    embeddings = runtime.predict(frame["image"].tolist()).embeddings
    verticals = np.asarray(catalog_index.predict_vertical(embeddings))
    stats = frame_stats(frame["image"].tolist(), config.data.max_image_pixels)
    reference = build_reference(version, embeddings, stats, verticals,
                                config.monitoring, log=lambda line: log(f"drift reference: {line}"))
    log_reference(config, reference, run_id)
    reference.save(local_copy(config, version))
    log(f"drift reference: v{version}, {len(frame)} images of the frozen evaluation set, logged with run {run_id} "
        "(artefacts monitoring/reference)")
    return reference
