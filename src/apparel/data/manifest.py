"""The one manifest schema every catalog is ingested into.

A manifest row is one image: ``image`` (absolute path), ``product_id``, ``vertical``, ``split``,
``sha256``, optional ``landmarks`` (JSON of name → [x, y] pixels) and one nullable column per
attribute. Multi-label attributes hold their positive labels joined by ``|``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

REQUIRED = ("image", "product_id", "vertical")
MULTILABEL_SEPARATOR = "|"


@dataclass
class DatasetInfo:
    """What ``dataset.json`` beside the manifest says of it."""

    version: str
    fingerprint: str
    source: str
    adapter: str
    attributes: list[str]
    multilabel: list[str] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    quarantined: int = 0

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True))

    @classmethod
    def load(cls, path: Path) -> DatasetInfo:
        return cls(**json.loads(path.read_text()))


@dataclass
class Dataset:
    """An ingested data set: its manifest and what is known of it."""

    root: Path
    manifest: pd.DataFrame
    info: DatasetInfo

    @classmethod
    def load(cls, root: Path | str) -> Dataset:
        root = Path(root)
        if not (root / "manifest.csv").is_file():
            raise FileNotFoundError(f"no ingested dataset at {root} (manifest.csv missing): run `apparel ingest`")
        info = DatasetInfo.load(root / "dataset.json")
        manifest = pd.read_csv(root / "manifest.csv", dtype=str, keep_default_na=False).replace({"": None})
        return cls(root, manifest, info)

    def split(self, name: str) -> pd.DataFrame:
        return self.manifest[self.manifest["split"] == name].reset_index(drop=True)

    @property
    def verticals(self) -> list[str]:
        return sorted(self.manifest["vertical"].unique())

    def attribute_values(self, name: str) -> list[str]:
        """The sorted label vocabulary of one attribute over the whole manifest."""
        values = self.manifest[name].dropna()
        if name in self.info.multilabel:
            values = values.str.split(MULTILABEL_SEPARATOR).explode()
        return sorted(set(values) - {""})


def label_values(frame: pd.DataFrame, label: str) -> np.ndarray:
    """One string per row for a label spec: a column, or columns joined by '+'; missing stays None."""
    columns = label.split("+")
    unknown = [c for c in columns if c not in frame.columns]
    if unknown:
        raise ValueError(f"unknown label column(s) {unknown}")
    parts = frame[columns]
    joined = parts.astype(str).agg("+".join, axis=1)
    return np.where(parts.isna().any(axis=1), None, joined).astype(object)
