"""What people look at in a run: Recall@K curves, specialists vs unified, attribute confusion
matrices, a 2-D projection of the embeddings, and a generated model card."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from sklearn.metrics import confusion_matrix  # noqa: E402

from apparel.data.dataset import load_images, normalize  # noqa: E402
from apparel.evaluation.report import EvaluationReport, served_line  # noqa: E402
from apparel.evaluation.retrieval import KS  # noqa: E402
from apparel.models.attributes import ApparelNet  # noqa: E402


def recall_curves(report: EvaluationReport, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for vertical, scores in report.retrieval.items():
        ax.plot(KS, [scores[f"recall@{k}"] for k in KS], marker="o", label=vertical)
    ax.set(xlabel="K", ylabel="Recall@K", title="Retrieval per vertical", ylim=(0, 1.02))
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def comparison_bars(reports: dict[str, EvaluationReport], path: Path) -> None:
    """Recall@1 per vertical for each system (e.g. specialists vs unified)."""
    verticals = sorted({v for r in reports.values() for v in r.retrieval})
    width = 0.8 / max(1, len(reports))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for i, (name, report) in enumerate(reports.items()):
        ax.bar(np.arange(len(verticals)) + i * width, [report.recall_at_1().get(v, 0) for v in verticals], width,
               label=name)
    ax.set_xticks(np.arange(len(verticals)) + width * (len(reports) - 1) / 2, verticals)
    ax.set(ylabel="Recall@1", title="Specialists vs unified", ylim=(0, 1.02))
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def confusion_matrices(model: ApparelNet, frame: pd.DataFrame, path: Path) -> None:
    specs = [s for s in model.spec.attributes
             if s.kind == "categorical" and s.name in frame.columns and frame[s.name].notna().any()]
    if not specs:
        return
    images = normalize(load_images(frame["image"].tolist(), model.spec.base.image_size))
    with torch.no_grad():
        outputs = model.eval()(images)
    fig, axes = plt.subplots(1, len(specs), figsize=(3.2 * len(specs), 3.2), squeeze=False)
    for ax, spec in zip(axes[0], specs, strict=True):
        known = frame[spec.name].notna().to_numpy()
        truth = [spec.classes.index(v) for v in frame[spec.name][known]]
        predicted = outputs[spec.name][torch.from_numpy(known)].argmax(1).numpy()
        matrix = confusion_matrix(truth, predicted, labels=range(len(spec.classes)), normalize="true")
        ax.imshow(np.nan_to_num(matrix), cmap="Blues", vmin=0, vmax=1)
        ax.set_title(spec.name, fontsize=9)
        ax.set_xticks(range(len(spec.classes)), spec.classes, rotation=90, fontsize=6)
        ax.set_yticks(range(len(spec.classes)), spec.classes, fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def projection(embeddings: np.ndarray, verticals: pd.Series, path: Path) -> None:
    """PCA to 2-D, coloured by vertical."""
    centred = embeddings - embeddings.mean(0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    points = centred @ components[:2].T
    fig, ax = plt.subplots(figsize=(4.5, 4))
    for vertical in sorted(verticals.unique()):
        rows = (verticals == vertical).to_numpy()
        ax.scatter(points[rows, 0], points[rows, 1], s=6, label=vertical, alpha=0.7)
    ax.set(title="Embeddings (PCA)", xticks=[], yticks=[])
    ax.legend(fontsize=7, markerscale=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def model_card(name: str, version: str, report: EvaluationReport, dataset: dict, decision: str, params: dict) -> str:
    rows = "\n".join(f"| {v} | {s['recall@1']:.3f} | {s['recall@5']:.3f} | {s['recall@10']:.3f} | {s['map@r']:.3f} |"
                     for v, s in sorted(report.retrieval.items()))
    attributes = "\n".join(f"| {a} | {s['accuracy']:.3f} | {s['macro_f1']:.3f} | {s.get('auc', float('nan')):.3f} |"
                           for a, s in sorted(report.attributes.items()))
    return f"""# Model card: {name} v{version}

**Gate decision:** {decision}

## Model
One unified embedding network ({params.get('backbone')}, {params.get('embedding_dim')}-d, {params.get('image_size')} px
input) distilled from one triplet-loss specialist per vertical, with progressive attribute branches on its trunk.
Input: RGB uint8 images; output: a unit-length embedding and per-attribute probabilities in one pass.

## Data
Dataset version `{dataset.get('version')}` from `{dataset.get('source')}` ({dataset.get('adapter')} adapter),
{dataset.get('images')} images. Evaluated on the frozen set `{report.eval_set}`.

## Retrieval (per vertical, leave-one-out within the vertical)
| vertical | Recall@1 | Recall@5 | Recall@10 | MAP@R |
|---|---|---|---|---|
{rows}

## Search as served (test queries against the whole catalog index, own image left out)
{served_line(report.served) if report.served else "not measured for this version"}

## Attributes
| attribute | accuracy | macro-F1 | AUC |
|---|---|---|---|
{attributes}

## Known limits
- Scores hold for the catalog it was evaluated on; a new vertical needs a specialist and a new distillation.
- Attributes with few labels (missing labels are masked, not guessed) are the least reliable.
- Images are squashed to a square input; very elongated products lose detail.
"""
