"""Plain training loop pieces (torchvision references style): one epoch, embedding, evaluation."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch
from torch import nn

from apparel.data.dataset import normalize


def use_threads(threads: int) -> None:
    """``train.torch_threads``: 0 keeps torch's default (one per core)."""
    if threads > 0:
        torch.set_num_threads(threads)


def augment(images: torch.Tensor) -> torch.Tensor:
    """Random horizontal flips: garments are left-right symmetric, so labels hold."""
    flip = torch.rand(len(images), device=images.device) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


def train_one_epoch(model: nn.Module, batches: Iterable[list[int]], images: torch.Tensor,
                    targets: torch.Tensor | tuple[torch.Tensor, ...], loss_fn: Callable[..., torch.Tensor],
                    optimizer: torch.optim.Optimizer, device: torch.device, flip: bool = True) -> float:
    """One pass over the batches; returns the mean loss. ``targets``: one tensor, or several that the loss
    takes in order (a teacher's embeddings and labels), each row aligned with ``images``. ``flip``: random
    mirror images (the targets must not depend on the flip)."""
    targets = targets if isinstance(targets, tuple) else (targets,)
    model.train()
    losses = []
    for batch in batches:
        inputs = images[batch].to(device)
        inputs = normalize(augment(inputs) if flip else inputs)
        loss = loss_fn(model(inputs), *(t[batch].to(device) for t in targets))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return float(np.mean(losses)) if losses else float("nan")


@torch.no_grad()
def embed(model: nn.Module, images: torch.Tensor, batch_size: int = 256, device: torch.device | None = None
          ) -> np.ndarray:
    """Embeddings of uint8 images, in order, as float32 numpy."""
    model.eval()
    device = device or next(model.parameters()).device
    chunks = [model(normalize(images[i : i + batch_size].to(device))).float().cpu()
              for i in range(0, len(images), batch_size)]
    return torch.cat(chunks).numpy() if chunks else np.zeros((0, 0), dtype=np.float32)


def shuffled_batches(n: int, batch_size: int, seed: int) -> list[list[int]]:
    """A permutation cut into batches (the regression objective needs no P×K structure)."""
    order = np.random.default_rng(seed).permutation(n)
    return [order[i : i + batch_size].tolist() for i in range(0, n, batch_size)]
