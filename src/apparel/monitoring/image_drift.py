"""Image-statistics drift: Evidently's column drift test on width, height, aspect, brightness and blur.

A photo pipeline that squashes images to square barely moves the embeddings after the model's own
resize, but moves the aspect ratio at once; blur and exposure changes show here too.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from evidently.legacy.calculations.stattests import get_stattest
from evidently.legacy.core import ColumnType

COLUMN_STATTEST = "ks"  # Evidently's default test for a numerical column with <= 1000 reference rows
_SMALLEST_P = 1e-300


def column_score(current: np.ndarray, reference: np.ndarray) -> float:
    """Evidently's column drift test on one image statistic, as -log10(p): higher = more drift."""
    reference_column, current_column = pd.Series(reference), pd.Series(current)
    test = get_stattest(reference_column, current_column, ColumnType.Numerical, COLUMN_STATTEST)
    result = test(reference_column, current_column, ColumnType.Numerical, 0.05)
    return float(-np.log10(max(float(result.drift_score), _SMALLEST_P)))
