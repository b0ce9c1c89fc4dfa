"""Full Evidently HTML reports, only for windows that alarm (or every ``report_every`` windows):
``EmbeddingsDrift`` with the configured method (and its t-SNE plot) plus ``ValueDrift`` per image
statistic, current window against the scoring reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.metrics import EmbeddingsDrift, ValueDrift

from apparel.data.image_stats import STAT_COLUMNS
from apparel.monitoring.drift import drift_method


def _dataset(embeddings: np.ndarray, stats: np.ndarray) -> Dataset:
    columns = [f"e{i}" for i in range(embeddings.shape[1])]
    frame = pd.concat([pd.DataFrame(embeddings, columns=columns), pd.DataFrame(stats, columns=list(STAT_COLUMNS))],
                      axis=1)
    definition = DataDefinition(numerical_columns=columns + list(STAT_COLUMNS), embeddings={"embedding": columns})
    return Dataset.from_pandas(frame, data_definition=definition)


def window_report(method: str, embeddings: np.ndarray, stats: np.ndarray, reference_embeddings: np.ndarray,
                  reference_stats: np.ndarray, title: str, path: Path) -> Path:
    metrics = [EmbeddingsDrift(embeddings_name="embedding", drift_method=drift_method(method))]
    metrics += [ValueDrift(column=column) for column in STAT_COLUMNS]
    snapshot = Report(metrics).run(_dataset(embeddings, stats), _dataset(reference_embeddings, reference_stats),
                                   name=title)
    path.parent.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(path))
    return path
