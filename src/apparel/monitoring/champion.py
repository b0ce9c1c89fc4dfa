"""The catalog reference of a version that has just become champion: its embeddings of the whole
catalog it indexed (the gallery the service searches), their predicted verticals (the index's majority
vote, as the service predicts them) and image statistics, calibrated and logged as
``monitoring/reference`` of the version's MLflow run. The frozen evaluation set is too small for this:
248 images on the main job's catalog calibrate no vertical at any useful window size. The index stage
calls :func:`reference_for_champion` right after it builds the champion's index."""

from __future__ import annotations

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


def reference_for_champion(config: Config, catalog_index, version: str, run_id: str, log=print) -> Reference:
    """Computes, calibrates, logs (MLflow) and keeps a local copy of ``version``'s catalog reference."""
    embeddings = catalog_index.vectors()
    verticals = np.asarray(catalog_index.predict_vertical(embeddings))
    images = catalog_index.rows["image"].tolist()
    stats = frame_stats(images, config.data.max_image_pixels)
    reference = build_reference(version, embeddings, stats, verticals, config.monitoring,
                                log=lambda line: log(f"drift reference: {line}"),
                                products=catalog_index.rows["product_id"].to_numpy())
    log_reference(config, reference, run_id)
    reference.save(local_copy(config, version))
    log(f"drift reference: v{version}, the {len(images)} images of its indexed catalog, logged with run {run_id} "
        "(artefacts monitoring/reference)")
    return reference
