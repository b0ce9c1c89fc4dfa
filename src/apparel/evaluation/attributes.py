"""Attribute metrics as in FashionNet: accuracy, macro-F1, top-k recall and AUC, on labelled rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import f1_score, roc_auc_score

from apparel.data.dataset import load_images, normalize
from apparel.losses.masked import MISSING
from apparel.models.attributes import AttributeSpec


def categorical_metrics(probabilities: np.ndarray, targets: np.ndarray, k: int = 3) -> dict[str, float]:
    labelled = targets != MISSING
    p, t = probabilities[labelled], targets[labelled]
    if len(t) == 0:
        return {}
    predicted = p.argmax(1)
    top_k = np.argsort(-p, axis=1)[:, :k]
    present = np.unique(t)
    auc = float("nan")
    if len(present) > 1:
        scores = p[:, present] / p[:, present].sum(1, keepdims=True)
        auc = float(roc_auc_score(t, scores, multi_class="ovr", labels=present) if len(present) > 2
                    else roc_auc_score(t == present[1], scores[:, 1]))
    return {"accuracy": float((predicted == t).mean()),
            "macro_f1": float(f1_score(t, predicted, labels=present, average="macro", zero_division=0)),
            f"recall@{k}": float((top_k == t[:, None]).any(1).mean()), "auc": auc, "n": int(len(t))}


def multilabel_metrics(probabilities: np.ndarray, targets: np.ndarray, k: int = 3) -> dict[str, float]:
    labelled = (targets != MISSING).all(1)
    p, t = probabilities[labelled], targets[labelled]
    if len(t) == 0:
        return {}
    predicted = p >= 0.5
    top_k = np.argsort(-p, axis=1)[:, :k]
    hits = np.take_along_axis(t, top_k, axis=1).sum(1)
    positives = t.sum(1)
    scored = [c for c in range(t.shape[1]) if 0 < t[:, c].sum() < len(t)]
    auc = float(np.mean([roc_auc_score(t[:, c], p[:, c]) for c in scored])) if scored else float("nan")
    return {"accuracy": float((predicted == t).mean()),
            "macro_f1": float(f1_score(t, predicted, average="macro", zero_division=0)),
            f"recall@{k}": float((hits[positives > 0] / np.minimum(positives[positives > 0], k)).mean())
            if (positives > 0).any() else float("nan"),
            "auc": auc, "n": int(len(t))}


@torch.no_grad()
def predict_attributes(model: torch.nn.Module, images: torch.Tensor, batch_size: int = 256) -> dict[str, np.ndarray]:
    """Probabilities per attribute from a model with ``forward_logits`` (any of ours)."""
    model.eval()
    chunks: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(images), batch_size):
        _, logits = model.forward_logits(normalize(images[start : start + batch_size]))
        for name, scores in logits.items():
            chunks.setdefault(name, []).append(scores.float().cpu().numpy())
    return {name: np.concatenate(parts) for name, parts in chunks.items()}


def evaluate_attributes(models: dict[str, torch.nn.Module], frame: pd.DataFrame, specs: list[AttributeSpec],
                        image_size: int) -> dict[str, dict[str, float]]:
    """``models`` maps each attribute to the model that predicts it (one shared, or one each)."""
    from apparel.train.attributes import encode_targets

    images = load_images(frame["image"].tolist(), image_size)
    targets = encode_targets(frame, specs)
    cache: dict[int, dict[str, np.ndarray]] = {}
    results = {}
    for spec in specs:
        model = models[spec.name]
        if id(model) not in cache:
            cache[id(model)] = predict_attributes(model, images)
        logits = torch.from_numpy(cache[id(model)][spec.name])
        if spec.kind == "multilabel":
            scores = multilabel_metrics(logits.sigmoid().numpy(), targets[spec.name].numpy())
        else:
            scores = categorical_metrics(logits.softmax(1).numpy(), targets[spec.name].numpy())
        if scores:
            results[spec.name] = scores
    return results
