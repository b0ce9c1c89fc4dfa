"""Retrieval scores of trained embedding models on a split, per vertical."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from apparel.data.dataset import load_images
from apparel.data.manifest import label_values
from apparel.evaluation.retrieval import per_vertical_retrieval
from apparel.models.embedding import EmbeddingNet
from apparel.train.loop import embed


def embed_frame(model: EmbeddingNet, frame: pd.DataFrame) -> np.ndarray:
    return embed(model, load_images(frame["image"].tolist(), model.spec.image_size))


def evaluate_models(models: Mapping[str, EmbeddingNet], frame: pd.DataFrame, label: str
                    ) -> dict[str, dict[str, float]]:
    """``models`` maps each vertical to the model that serves it (a specialist, a group model, or
    the unified model for all); each vertical is scored in its own gallery."""
    frame = frame[pd.notna(label_values(frame, label))].reset_index(drop=True)
    results: dict[str, dict[str, float]] = {}
    for vertical, model in models.items():
        rows = frame[frame["vertical"] == vertical].reset_index(drop=True)
        if len(rows) < 2:
            continue
        scores = per_vertical_retrieval(embed_frame(model, rows), label_values(rows, label), rows["vertical"])
        results.update(scores)
    return results


def mean_metric(results: Mapping[str, Mapping[str, float]], metric: str = "recall@1") -> float:
    return float(np.mean([scores[metric] for scores in results.values()]))
