"""The inference runtime every caller shares: images in, embeddings and named attribute scores out.

Image bytes, paths or PIL images are decoded by :func:`apparel.data.decode.open_rgb` (the ingest
rules), resized to the model's input size, and run through one batched forward pass. The registered
pyfunc, evaluation, the index stage and the service all call this, so a photo gets the same vector
wherever it is embedded.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from apparel.data.dataset import normalize
from apparel.data.decode import DEFAULT_MAX_PIXELS, ImageSource, open_rgb, to_model_input
from apparel.models.attributes import ApparelNet

log = logging.getLogger(__name__)
Network = Callable[[torch.Tensor], dict[str, torch.Tensor]]  # an ApparelNet or its frozen graph


@dataclass
class Prediction:
    """``embeddings``: N×D unit vectors; ``probabilities``: attribute → N×C scores (classes in
    :attr:`InferenceRuntime.classes` order)."""

    embeddings: np.ndarray
    probabilities: dict[str, np.ndarray]

    def rows(self, start: int, stop: int) -> Prediction:
        return Prediction(self.embeddings[start:stop], {a: p[start:stop] for a, p in self.probabilities.items()})


def checked_images(images: np.ndarray, image_size: int) -> np.ndarray:
    images = np.asarray(images)
    expected = (image_size, image_size, 3)
    if images.ndim != 4 or images.shape[1:] != expected or images.dtype != np.uint8:
        raise ValueError(f"expected uint8 images of shape (N, {expected[0]}, {expected[1]}, 3), "
                         f"got {images.dtype} {images.shape}")
    return images


def run_network(network: Network, images: np.ndarray) -> dict[str, np.ndarray]:
    batch = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    with torch.no_grad():
        outputs = network(normalize(batch))
    return {name: value.float().numpy() for name, value in outputs.items()}


def predict_arrays(model: ApparelNet, images: np.ndarray) -> dict[str, np.ndarray]:
    """One forward pass over uint8 N×S×S×3 images: ``embedding`` plus one N×C array per attribute."""
    return run_network(model.eval(), checked_images(images, model.spec.base.image_size))


def frozen_graph(model: ApparelNet, tolerance: float = 1e-4) -> Network:
    """The model traced and frozen (TorchScript; batch norm folded into the convolutions), or the model
    itself when it does not trace to the same outputs (logged).

    Why: an eager forward pass takes the GIL back after every layer, and in a service the request
    threads (parsing, decoding) hold it up to 5 ms at a time, so under load a batched pass waits on
    them dozens of times; the frozen graph runs in one call without the GIL."""
    example = torch.zeros(2, 3, model.spec.base.image_size, model.spec.base.image_size)
    check = torch.rand(3, *example.shape[1:])  # another batch size: the trace must not bake one in
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch 2.9+ marks TorchScript deprecated; it still runs
            graph = torch.jit.freeze(torch.jit.trace(model.eval(), example, strict=False))
            expected, got = model(check), graph(check)
        error = max(float((expected[k] - got[k]).abs().max()) for k in expected)
    except Exception as failure:  # an untraceable model still serves, eagerly
        log.warning("serving the model eagerly: tracing failed (%s)", str(failure).splitlines()[0])
        return model
    if error > tolerance:
        log.warning("serving the model eagerly: the traced graph differs by %.2g", error)
        return model
    return graph


class InferenceRuntime:
    """An :class:`ApparelNet` with its decoding rules and class names. ``frozen``: run passes through
    :func:`frozen_graph` (the service does; outputs equal the eager model's to ~1e-6)."""

    def __init__(self, model: ApparelNet, max_pixels: int = DEFAULT_MAX_PIXELS, frozen: bool = False) -> None:
        self.model, self.max_pixels = model.eval(), max_pixels
        self.network: Network = frozen_graph(self.model) if frozen else self.model
        self.image_size = model.spec.base.image_size
        self.embedding_dim = model.spec.base.embedding_dim
        self.classes = {a.name: list(a.classes) for a in model.spec.attributes}

    def prepare(self, source: ImageSource) -> np.ndarray:
        """One image → S×S×3 uint8; raises :class:`apparel.data.decode.ImageError` when unusable."""
        return to_model_input(open_rgb(source, self.max_pixels), self.image_size)

    def forward(self, images: np.ndarray) -> Prediction:
        """One batched pass over prepared images (N×S×S×3 uint8)."""
        outputs = run_network(self.network, checked_images(images, self.image_size))
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
