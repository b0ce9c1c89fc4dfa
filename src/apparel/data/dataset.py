"""Images as tensors, and the P×K batch sampler triplet training needs."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from apparel.data.decode import DEFAULT_MAX_PIXELS, open_rgb, to_model_input


def load_image(path: str, size: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """One image as a size×size×3 uint8 array, decoded by :func:`apparel.data.decode.open_rgb`."""
    return to_model_input(open_rgb(path, max_pixels), size)


def load_images(paths: Sequence[str], size: int, threads: int = 4) -> torch.Tensor:
    """All images decoded once into an N×3×size×size uint8 tensor (small catalogs fit in memory)."""
    with ThreadPoolExecutor(threads) as pool:
        arrays = list(pool.map(lambda p: load_image(p, size), paths))
    if not arrays:
        return torch.empty(0, 3, size, size, dtype=torch.uint8)
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 N×3×H×W → float, ImageNet-normalised (what torchvision backbones expect)."""
    return (images.float() / 255 - MEAN.to(images.device)) / STD.to(images.device)


class TensorImages(Dataset):
    """Yields (image, index): labels stay in arrays the caller indexes, so any target works."""

    def __init__(self, images: torch.Tensor, flip: bool = False) -> None:
        self.images, self.flip = images, flip

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.images[index]
        if self.flip and torch.rand(()) < 0.5:
            image = image.flip(-1)
        return image, index


class PKSampler(Sampler[list[int]]):
    """Batches of P labels × K samples each; labels with one sample cannot give a positive."""

    def __init__(self, labels: Sequence[int], p: int, k: int, seed: int = 0, batches: int | None = None) -> None:
        labels = np.asarray(labels)
        groups: dict[int, list[int]] = {}
        for index, label in enumerate(labels):
            groups.setdefault(int(label), []).append(index)
        self.groups = [np.array(g) for g in groups.values() if len(g) >= 2]
        if len(self.groups) < 2:
            raise ValueError("P×K sampling needs at least two labels with two or more samples each")
        self.p, self.k = min(p, len(self.groups)), k
        self.batches = batches or max(1, len(labels) // (self.p * self.k))
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.batches

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        for _ in range(self.batches):
            chosen = rng.choice(len(self.groups), self.p, replace=False)
            batch = []
            for g in chosen:
                group = self.groups[g]
                batch.extend(rng.choice(group, self.k, replace=len(group) < self.k).tolist())
            yield batch
