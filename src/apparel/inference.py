"""The inference runtime every caller shares: images in, embeddings and named attribute scores out.

Image bytes, paths or PIL images are decoded by :func:`apparel.data.decode.open_rgb` (the ingest
rules), resized to the model's input size, and run through one batched forward pass. The registered
pyfunc, evaluation, the index stage and the service all call this, so a photo gets the same vector
wherever it is embedded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from apparel.data.dataset import normalize
from apparel.data.decode import DEFAULT_MAX_PIXELS, ImageSource, open_rgb, to_model_input
from apparel.models.attributes import ApparelNet


@dataclass
class Prediction:
    """``embeddings``: N×D unit vectors; ``probabilities``: attribute → N×C scores (classes in
    :attr:`InferenceRuntime.classes` order)."""

    embeddings: np.ndarray
    probabilities: dict[str, np.ndarray]

    def rows(self, start: int, stop: int) -> Prediction:
        return Prediction(self.embeddings[start:stop], {a: p[start:stop] for a, p in self.probabilities.items()})


def predict_arrays(model: ApparelNet, images: np.ndarray) -> dict[str, np.ndarray]:
    """One forward pass over uint8 N×S×S×3 images: ``embedding`` plus one N×C array per attribute."""
    images = np.asarray(images)
    expected = (model.spec.base.image_size, model.spec.base.image_size, 3)
    if images.ndim != 4 or images.shape[1:] != expected or images.dtype != np.uint8:
        raise ValueError(f"expected uint8 images of shape (N, {expected[0]}, {expected[1]}, 3), "
                         f"got {images.dtype} {images.shape}")
    batch = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    with torch.no_grad():
        outputs = model.eval()(normalize(batch))
    return {name: value.float().numpy() for name, value in outputs.items()}


class InferenceRuntime:
    """An :class:`ApparelNet` with its decoding rules and class names."""

    def __init__(self, model: ApparelNet, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.model, self.max_pixels = model.eval(), max_pixels
        self.image_size = model.spec.base.image_size
        self.embedding_dim = model.spec.base.embedding_dim
        self.classes = {a.name: list(a.classes) for a in model.spec.attributes}

    def prepare(self, source: ImageSource) -> np.ndarray:
        """One image → S×S×3 uint8; raises :class:`apparel.data.decode.ImageError` when unusable."""
        return to_model_input(open_rgb(source, self.max_pixels), self.image_size)

    def forward(self, images: np.ndarray) -> Prediction:
        """One batched pass over prepared images (N×S×S×3 uint8)."""
        outputs = predict_arrays(self.model, images)
        return Prediction(outputs.pop("embedding"), outputs)

    def predict(self, sources: Sequence[ImageSource], batch_size: int = 256) -> Prediction:
        """Decode and embed any number of images, ``batch_size`` per forward pass."""
        parts = [self.forward(np.stack([self.prepare(s) for s in sources[i : i + batch_size]]))
                 for i in range(0, len(sources), batch_size)]
        if not parts:
            raise ValueError("no image to predict")
        return Prediction(np.concatenate([p.embeddings for p in parts]),
                          {a: np.concatenate([p.probabilities[a] for p in parts]) for a in self.classes})

    def top_labels(self, prediction: Prediction, k: int) -> list[dict[str, list[dict[str, float | str]]]]:
        """Per image: attribute → the k most probable labels with their probabilities, best first."""
        results: list[dict[str, list[dict[str, float | str]]]] = [{} for _ in range(len(prediction.embeddings))]
        for attribute, probabilities in prediction.probabilities.items():
            names = self.classes[attribute]
            best = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
            for row, order in enumerate(best):
                results[row][attribute] = [{"label": names[c], "probability": float(probabilities[row, c])}
                                           for c in order]
        return results
