"""Thresholds from reference-vs-reference draws, at a chosen false-alarm rate.

Evidently's own bootstrap resamples only the reference and over-alarms on small windows. Here each
draw splits the reference into two disjoint parts, one the size of the live scoring reference and one
the size of a window, and scores them exactly as a live window is scored. Each component (embedding
score, each image statistic) is scaled so that 0 is its null median and 1 its own (1 - rate)
quantile; the largest scaled component is divided by the (1 - rate) quantile of that maximum over the
draws, so a window's score alarms above 1: one decision, one false-alarm rate.

A scale has a floor. A statistic that never varies in the reference (every catalog image the same
size) has a null spread of zero; without a floor, five odd-sized images in a window would score 1e10.
An image statistic's score is -log10 of its test's p-value, so its floor is -log10(rate): one unit is
a p-value as small as the false-alarm rate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

MIN_POOL_FACTOR = 2  # a pool smaller than 2 windows gives near-identical draws: too narrow a null
EMBEDDING_SCALE_FLOOR = 1e-4  # below any real null spread of Evidently's embedding scores (MMD², AUC, share)


def scale_floor(component: str, rate: float) -> float:
    """The smallest null scale a component may have (see the module's docstring)."""
    return EMBEDDING_SCALE_FLOOR if component == "embedding" else float(-np.log10(rate))


@dataclass
class Threshold:
    """The calibrated decision for one stream (overall or a vertical) at one window size."""

    size: int
    threshold: float  # the (1 - rate) quantile of the largest scaled component over the null draws
    center: dict[str, float]
    scale: dict[str, float]
    draws: int
    null: dict[str, list[float]] = field(default_factory=dict)  # each component's null draws, sorted

    def scaled(self, components: dict[str, float]) -> dict[str, float]:
        """Each component in units of the alarm level: above 1, that component alone alarms."""
        return {k: (components[k] - self.center[k]) / self.scale[k] / self.threshold for k in self.center}

    def score(self, components: dict[str, float]) -> float:
        """The window's score: the largest scaled component; it alarms above 1."""
        return max(self.scaled(components).values())

    def null_p_value(self, component: str, raw: float) -> float:
        """Share of the null draws scoring at least ``raw`` (with the window itself counted)."""
        draws = np.asarray(self.null.get(component, []))
        return float((1 + np.sum(draws >= raw)) / (1 + len(draws)))


@dataclass
class Calibration:
    method: str
    false_alarm_rate: float
    thresholds: dict[str, dict[int, Threshold]]  # stream -> window size -> threshold

    def for_window(self, stream: str, size: int) -> Threshold | None:
        """The threshold of the largest calibrated size <= ``size`` (smaller windows have wider nulls,
        so this errs towards fewer false alarms); None when the stream or size is not calibrated."""
        sizes = [s for s in self.thresholds.get(stream, {}) if s <= size]
        return self.thresholds[stream][max(sizes)] if sizes else None

    def to_dict(self) -> dict:
        return {"method": self.method, "false_alarm_rate": self.false_alarm_rate,
                "thresholds": {stream: {str(size): asdict(t) for size, t in by_size.items()}
                               for stream, by_size in self.thresholds.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> Calibration:
        thresholds = {stream: {int(size): Threshold(**t) for size, t in by_size.items()}
                      for stream, by_size in data["thresholds"].items()}
        return cls(data["method"], data["false_alarm_rate"], thresholds)


def fit_threshold(null_scores: list[dict[str, float]], size: int, rate: float) -> Threshold:
    """Scales each component by its null draws (with its floor) and sets the threshold at the (1 - rate)
    quantile of the largest scaled component."""
    names = list(null_scores[0])
    table = np.array([[draw[k] for k in names] for draw in null_scores])
    center = np.median(table, axis=0)
    floors = np.array([scale_floor(k, rate) for k in names])
    scale = np.maximum(np.quantile(table, 1 - rate, axis=0) - center, floors)
    combined = ((table - center) / scale).max(axis=1)
    # a floor can leave every draw below one unit: the threshold never drops below a component's own level
    threshold = max(float(np.quantile(combined, 1 - rate)), 1.0)
    return Threshold(size, threshold, dict(zip(names, center.tolist(), strict=True)),
                     dict(zip(names, scale.tolist(), strict=True)), len(null_scores),
                     {k: sorted(table[:, i].tolist()) for i, k in enumerate(names)})


def draw(rows: np.ndarray, groups: np.ndarray | None, reference_size: int, size: int,
         rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One null draw: (window rows, reference rows), disjoint. With ``groups`` (each row's product), no
    product has rows on both sides: live traffic shows the service new products, and views of one product
    split across both sides would make the null narrower than new products are (false alarms on day one)."""
    order = rng.permutation(rows)
    if groups is None:
        return order[reference_size:reference_size + size], order[:reference_size]
    products = rng.permutation(np.unique(groups[order]))
    order = order[np.argsort(_ranks(products, groups[order]), kind="stable")]  # whole products, shuffled
    reference = order[:reference_size]
    rest = order[reference_size:]
    rest = rest[~np.isin(groups[rest], groups[reference])]
    return rest[:size], reference


def _ranks(products: np.ndarray, row_groups: np.ndarray) -> np.ndarray:
    """Each row's product's position in the drawn order of ``products``."""
    position = {product: rank for rank, product in enumerate(products.tolist())}
    return np.fromiter((position[g] for g in row_groups.tolist()), dtype=np.int64, count=len(row_groups))


def calibrate_stream(score: Callable[[np.ndarray, np.ndarray], dict[str, float]], rows: np.ndarray,
                     reference_size: int, sizes: list[int], draws: int, rate: float, rng: np.random.Generator,
                     groups: np.ndarray | None = None) -> dict[int, Threshold]:
    """``score(window_rows, reference_rows)`` scores one draw. Each draw splits the stream's reference
    rows afresh into a reference of ``reference_size`` (the live scoring reference's size) and a
    disjoint window (by product, when ``groups`` names each row's), so the null covers the reference's
    own sampling too: drawing windows from one fixed pool against one fixed reference under-states the
    spread and over-alarms on new data."""
    thresholds = {}
    for size in sizes:
        if len(rows) - reference_size < MIN_POOL_FACTOR * size:
            continue
        nulls = []
        for _ in range(draws):
            window, reference = draw(rows, groups, reference_size, size, rng)
            if len(window) < size:
                break  # products so large that no window of this size fits beside the reference
            nulls.append(score(window, reference))
        if len(nulls) == draws:
            thresholds[size] = fit_threshold(nulls, size, rate)
    return thresholds
