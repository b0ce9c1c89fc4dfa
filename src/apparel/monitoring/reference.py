"""The reference a window is compared with: embeddings, their predicted verticals and image statistics,
which of them form the scoring reference, the optional PCA, and the calibration.

Two kinds: the *catalog* reference, the champion's embeddings of the whole indexed catalog, made when
it becomes champion (saved as one folder, logged as the MLflow artefact ``monitoring/reference`` of
the version's run); and the *live* reference, the version's own first served requests
(:mod:`apparel.monitoring.live`), so that traffic is compared with traffic once there is enough of it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from apparel.config import MonitoringConfig
from apparel.monitoring.calibration import MIN_POOL_FACTOR, Calibration, calibrate_stream
from apparel.monitoring.drift import drift_method, window_scores

OVERALL = "overall"
ARTIFACT_PATH = "monitoring/reference"


@dataclass
class Reference:
    model_version: str
    embeddings: np.ndarray  # N×D float32, projected when PCA is on
    stats: np.ndarray  # N×5 (apparel.data.image_stats.STAT_COLUMNS)
    verticals: np.ndarray  # N predicted verticals (str)
    scoring: np.ndarray  # N bool: True = the scoring reference live windows are compared with
    pca_mean: np.ndarray | None = None
    pca_components: np.ndarray | None = None
    calibration: Calibration | None = None
    kind: str = "catalog"  # or "live"
    until: float = 0.0  # live: time (unix s) of the last request it holds; later windows are scored against it
    products: np.ndarray | None = None  # catalog: each row's product (calibration keeps a product on one side)

    def project(self, embeddings: np.ndarray) -> np.ndarray:
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if self.pca_components is None:
            return embeddings
        return (embeddings - self.pca_mean) @ self.pca_components.T

    def streams(self) -> list[str]:
        return [OVERALL, *sorted(set(self.verticals.tolist()))]

    def rows(self, stream: str, scoring: bool | None = None) -> np.ndarray:
        """Row ids of one stream: all, or only the scoring reference (True) or the rest (False)."""
        chosen = np.ones(len(self.scoring), dtype=bool) if scoring is None else self.scoring == scoring
        if stream != OVERALL:
            chosen &= self.verticals == stream
        return np.flatnonzero(chosen)

    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {"embeddings": self.embeddings, "stats": self.stats, "verticals": self.verticals.astype(str),
                  "scoring": self.scoring}
        if self.pca_components is not None:
            arrays |= {"pca_mean": self.pca_mean, "pca_components": self.pca_components}
        if self.products is not None:
            arrays["products"] = self.products.astype(str)
        np.savez_compressed(folder / "reference.npz", **arrays)
        meta = {"model_version": self.model_version, "kind": self.kind, "until": self.until,
                "calibration": self.calibration.to_dict() if self.calibration else None}
        (folder / "reference.json").write_text(json.dumps(meta, indent=2))
        return folder

    @classmethod
    def load(cls, folder: Path) -> Reference:
        meta = json.loads((folder / "reference.json").read_text())
        with np.load(folder / "reference.npz", allow_pickle=False) as arrays:
            data = {k: arrays[k] for k in arrays.files}
        calibration = Calibration.from_dict(meta["calibration"]) if meta["calibration"] else None
        return cls(meta["model_version"], data["embeddings"], data["stats"], data["verticals"], data["scoring"],
                   data.get("pca_mean"), data.get("pca_components"), calibration, meta.get("kind", "catalog"),
                   meta.get("until", 0.0), data.get("products"))


def split(count: int, config: MonitoringConfig, rng: np.random.Generator) -> np.ndarray:
    """Which rows form the scoring reference every live window is compared with."""
    order = rng.permutation(count)
    scoring = np.zeros(count, dtype=bool)
    scoring[order[:min(int(count * config.reference_share), config.max_reference)]] = True
    return scoring


def build_reference(model_version: str, embeddings: np.ndarray, stats: np.ndarray, verticals: np.ndarray,
                    config: MonitoringConfig, log=print, kind: str = "catalog", until: float = 0.0,
                    products: np.ndarray | None = None) -> Reference:
    """Splits, fits the PCA (when configured) and calibrates every stream at every configured size
    (``products``: each row's product, so that no calibration draw splits a product)."""
    rng = np.random.default_rng(config.seed)
    embeddings = np.asarray(embeddings, dtype=np.float32)
    reference = Reference(model_version, embeddings, np.asarray(stats, dtype=np.float64),
                          np.asarray(verticals).astype(str), split(len(embeddings), config, rng), kind=kind,
                          until=until, products=None if products is None else np.asarray(products).astype(str))
    if config.pca_components:
        fit_pca(reference, config.pca_components)
    reference.calibration = calibrate(reference, config, rng, log)
    return reference


def fit_pca(reference: Reference, components: int) -> None:
    from sklearn.decomposition import PCA

    pca = PCA(n_components=components, random_state=0).fit(reference.embeddings[reference.scoring])
    reference.pca_mean = pca.mean_.astype(np.float32)
    reference.pca_components = pca.components_.astype(np.float32)
    reference.embeddings = reference.project(reference.embeddings)


def calibrate(reference: Reference, config: MonitoringConfig, rng: np.random.Generator, log=print) -> Calibration:
    method = drift_method(config.method)
    thresholds = {}
    streams = reference.streams() if config.per_vertical else [OVERALL]
    for stream in streams:
        def score(window: np.ndarray, ref: np.ndarray) -> dict[str, float]:
            stats = (reference.stats[window], reference.stats[ref]) if config.image_stats else (None, None)
            return window_scores(method, reference.embeddings[window], reference.embeddings[ref], *stats)

        rows = reference.rows(stream)
        by_size = calibrate_stream(score, rows, len(reference.rows(stream, scoring=True)), config.window_sizes,
                                   config.calibration_draws, config.false_alarm_rate, rng, reference.products)
        if by_size:
            thresholds[stream] = by_size
        log(f"calibrated {stream} on {len(rows)} images: window sizes {sorted(by_size) or 'none'}")
    return Calibration(config.method, config.false_alarm_rate, thresholds)


def images_needed(size: int, config: MonitoringConfig) -> int:
    """Reference images a stream needs to calibrate windows of ``size``: a scoring reference of
    ``reference_share`` (at most ``max_reference``) and a pool of two windows beside it."""
    count = size * MIN_POOL_FACTOR
    while count - min(int(count * config.reference_share), config.max_reference) < MIN_POOL_FACTOR * size:
        count += 1
    return count
