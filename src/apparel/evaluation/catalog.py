"""Score any model on any ingested catalog: queries from one catalog, the gallery from another (or the
same one, leave one out), matched by a label column or ``+``-joined columns. Nothing depends on how a
benchmark or a training run split its data: ``split="all"`` takes every image of a catalog."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from apparel.data.dataset import load_images
from apparel.data.manifest import Dataset, label_values
from apparel.evaluation.attributes import evaluate_attributes
from apparel.evaluation.retrieval import per_vertical_retrieval, query_weighted
from apparel.models.attributes import ApparelNet
from apparel.models.embedding import EmbeddingNet
from apparel.train.loop import embed

SPLITS = ("all", "train", "val", "test")


@dataclass(frozen=True)
class CatalogSlice:
    """The images of one ingested catalog that take part: every split (``all``) or one."""

    root: Path
    split: str = "all"

    def frame(self) -> pd.DataFrame:
        if self.split not in SPLITS:
            raise ValueError(f"unknown split '{self.split}' (known: {', '.join(SPLITS)})")
        dataset = Dataset.load(self.root)
        return dataset.manifest.reset_index(drop=True) if self.split == "all" else dataset.split(self.split)

    def describe(self) -> dict[str, str]:
        return {"catalog": str(Path(self.root).resolve()), "split": self.split}


def load_model(reference: str) -> ApparelNet | EmbeddingNet:
    """A model folder (an ApparelNet's or an EmbeddingNet's ``spec.json`` + ``weights.pt``), or any MLflow
    model URI (``models:/name@champion``, ``models:/name/3``, ``runs:/<id>/model``) of the registered pyfunc;
    the caller points MLflow at the right store first."""
    if ":/" in reference:
        from apparel.registry.pyfunc import load_registered

        return load_registered(reference)
    folder = Path(reference)
    if not (folder / "spec.json").is_file():
        raise FileNotFoundError(f"no model at {folder} (spec.json missing) and not a models:/ or runs:/ URI")
    if "apparel" in json.loads((folder / "spec.json").read_text()):
        return ApparelNet.load(folder)
    return EmbeddingNet.load(folder)


def _embedder(model: ApparelNet | EmbeddingNet) -> EmbeddingNet:
    return model.base if isinstance(model, ApparelNet) else model


def _labelled(frame: pd.DataFrame, label: str) -> tuple[pd.DataFrame, np.ndarray]:
    labels = label_values(frame, label)
    keep = pd.notna(labels)
    return frame[keep].reset_index(drop=True), labels[keep]


@dataclass
class CatalogScores:
    model: str
    label: str
    queries: dict[str, str]
    gallery: dict[str, str]
    leave_one_out: bool
    retrieval: dict[str, dict[str, float]]  # vertical → Recall@K, MAP@R, queries
    pooled: dict[str, float]  # every vertical's queries together (query-weighted means)
    attributes: dict[str, dict[str, float]]  # attribute → accuracy, F1, recall@3, AUC on the queries

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")


def evaluate_on_catalog(model: ApparelNet | EmbeddingNet, queries: CatalogSlice, gallery: CatalogSlice | None,
                        label: str, name: str = "") -> CatalogScores:
    """Recall@K and MAP@R per vertical (each vertical searched in its own part of the gallery), and the
    accuracy of every attribute the model predicts that the query catalog labels. Queries inside the
    gallery (the same catalog and split, or a split of the whole catalog) never find themselves: leave one out."""
    gallery = gallery or queries
    embedder = _embedder(model)
    size = embedder.spec.image_size
    query_frame, query_labels = _labelled(queries.frame(), label)
    if query_frame.empty:
        raise ValueError(f"no query image has the label '{label}'")
    query_vectors = embed(embedder, load_images(query_frame["image"].tolist(), size))
    gallery_frame, gallery_labels = _labelled(gallery.frame(), label)
    overlap = gallery_frame["image"].isin(set(query_frame["image"]))
    leave_one_out = bool(overlap.any())
    if leave_one_out and not set(query_frame["image"]) <= set(gallery_frame["image"]):
        raise ValueError("the queries overlap the gallery only in part: take queries from inside the gallery "
                         "(leave one out) or from outside it")
    searched = None
    if not overlap.all():
        others = gallery_frame[~overlap]
        searched = (embed(embedder, load_images(others["image"].tolist(), size)), gallery_labels[~overlap.to_numpy()],
                    others["vertical"])
    retrieval = per_vertical_retrieval(query_vectors, query_labels, query_frame["vertical"], gallery=searched,
                                       queries_in_gallery=leave_one_out)
    attributes = {}
    if isinstance(model, ApparelNet):
        specs = [s for s in model.spec.attributes if s.name in query_frame.columns]
        with torch.no_grad():
            attributes = evaluate_attributes({s.name: model for s in specs}, query_frame, specs, size)
    return CatalogScores(model=name, label=label, queries=queries.describe(), gallery=gallery.describe(),
                         leave_one_out=leave_one_out, retrieval=retrieval, pooled=query_weighted(retrieval),
                         attributes=attributes)
