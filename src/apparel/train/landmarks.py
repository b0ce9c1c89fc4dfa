"""Attribute heads with and without the landmark-pooled local branch, trained alike from one trunk.

Both variants train every head jointly and end to end (the progressive schedule's last and longest phase)
for the same optimiser steps on the same batches and flips, with the masked attribute losses of
:mod:`apparel.train.attributes` and the same embedding anchor; the local variant adds the masked landmark
loss. Whatever differs between the two is the local branch and its supervision.
"""

from __future__ import annotations

import copy
import json

import pandas as pd
import torch
from PIL import Image

from apparel.data.dataset import normalize
from apparel.losses.embedding_regression import EmbeddingRegressionLoss
from apparel.losses.landmarks import MaskedLandmarkLoss
from apparel.models.attributes import AttributeSpec
from apparel.models.embedding import EmbeddingNet
from apparel.models.landmarks import LandmarkAttributeNet
from apparel.train.attributes import AttributeSchedule, heads_optimizer, loss_for


def landmark_names(frame: pd.DataFrame) -> list[str]:
    """The union of landmark names over the rows (each vertical names its own), sorted."""
    return sorted({name for value in frame["landmarks"].dropna() for name in json.loads(value)})


def encode_landmarks(frame: pd.DataFrame, names: list[str]) -> torch.Tensor:
    """N×K×2 coordinates as fractions of the stored image's width and height (the model sees it resized to
    a square, so fractions carry over); NaN where a landmark is absent or was posed out of the picture,
    where no soft-argmax over the image could reach it."""
    coordinates = torch.full((len(frame), len(names), 2), float("nan"))
    index = {name: i for i, name in enumerate(names)}
    for row, (path, value) in enumerate(zip(frame["image"], frame["landmarks"], strict=True)):
        if value is None:
            continue
        with Image.open(path) as image:
            size = torch.tensor(image.size, dtype=torch.float32)
        for name, point in json.loads(value).items():
            fraction = torch.tensor(point, dtype=torch.float32) / size
            if name in index and ((fraction >= 0) & (fraction <= 1)).all():
                coordinates[row, index[name]] = fraction
    return coordinates


def mirror_order(names: list[str]) -> list[int]:
    """The landmark order after a horizontal flip: a left sleeve end becomes the right one."""
    swapped = [n.replace("_left", "_tmp").replace("_right", "_left").replace("_tmp", "_right") for n in names]
    return [names.index(n) if n in names else i for i, n in enumerate(swapped)]


def flip_landmarks(coordinates: torch.Tensor, mirror: list[int], flip: torch.Tensor) -> torch.Tensor:
    """The landmarks of the rows where ``flip`` is set as they are in the mirrored image: x → 1 - x and
    left ↔ right; absent ones stay NaN."""
    mirrored = coordinates[:, mirror].clone()
    mirrored[..., 0] = 1 - mirrored[..., 0]
    return torch.where(flip[:, None, None], mirrored, coordinates)


def train_jointly(model: LandmarkAttributeNet, images: torch.Tensor, targets: dict[str, torch.Tensor],
                  coordinates: torch.Tensor, steps: int, schedule: AttributeSchedule,
                  anchor: torch.Tensor | None = None, landmark_weight: float = 1.0) -> dict[str, list[float]]:
    """``steps`` end-to-end steps of every head (and the local branch, if the model has one; ``coordinates``
    are then N×K×2 in the order of ``model.landmarks``); returns each step's attribute and landmark loss.
    Batches come from ``schedule.rng`` and flips from a generator seeded with ``schedule.seed``, so two
    models trained from equal schedules see the same images."""
    optimizer = heads_optimizer(model, schedule, model, train_base=True)
    attribute_losses = {s.name: loss_for(s) for s in model.specs}
    landmark_loss, anchor_loss = MaskedLandmarkLoss(), EmbeddingRegressionLoss()
    mirror = mirror_order(model.landmarks)
    flips = torch.Generator().manual_seed(schedule.seed)
    device = next(model.parameters()).device
    history: dict[str, list[float]] = {"attributes": [], "landmarks": []}
    model.train()
    for _ in range(steps):
        batch = schedule.next_batch(torch.arange(len(images)))
        flip = torch.rand(len(batch), generator=flips) < 0.5
        inputs = torch.where(flip[:, None, None, None], images[batch].flip(-1), images[batch])
        embedding, logits, predicted = model.forward_outputs(normalize(inputs.to(device)))
        attributes = sum(attribute_losses[s.name](logits[s.name], targets[s.name][batch].to(device))
                         for s in model.specs)
        landmarks = landmark_loss(predicted, flip_landmarks(coordinates[batch], mirror, flip).to(device)) \
            if predicted is not None else torch.zeros(())
        loss = attributes + landmark_weight * landmarks
        if anchor is not None:
            loss = loss + schedule.embedding_weight * anchor_loss(embedding, anchor[batch].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        history["attributes"].append(float(attributes.detach()))
        history["landmarks"].append(float(landmarks.detach()))
    model.eval()
    return history


def train_landmark_ablation(base: EmbeddingNet, specs: list[AttributeSpec], images: torch.Tensor,
                            targets: dict[str, torch.Tensor], coordinates: torch.Tensor, names: list[str],
                            steps: int, seed: int, batch_size: int = 32, anchor: torch.Tensor | None = None
                            ) -> dict[str, LandmarkAttributeNet]:
    """``global``: heads on the final map alone; ``landmark``: the same plus the local branch and the landmark
    loss; ``local_unsupervised``: the local branch without the landmark loss (its heatmaps learn from the
    attribute losses alone), which tells the landmarks' supervision from the branch's extra capacity. Each
    starts from its own copy of ``base`` with equal attribute-branch initialisation (the branches are built
    first under the same seed) and gets ``steps`` steps of an equal schedule."""
    models = {}
    for name, landmarks, weight in (("global", None, 0.0), ("landmark", names, 1.0),
                                    ("local_unsupervised", names, 0.0)):
        torch.manual_seed(seed)
        model = LandmarkAttributeNet(copy.deepcopy(base), specs, landmarks)
        train_jointly(model, images, targets, coordinates, steps, AttributeSchedule(batch_size=batch_size, seed=seed),
                      anchor, landmark_weight=weight)
        models[name] = model
    return models
