"""Where a training step without Ray (attribute branches, fine-tuning) runs: the GPU its pod requested."""

from __future__ import annotations

import torch


def training_device(use_gpu: bool | str) -> torch.device:
    """``true``: CUDA or a clear error (a pod that requested a GPU must get one); ``auto``: CUDA when
    visible; ``false``: CPU."""
    visible = torch.cuda.is_available()
    if use_gpu is True and not visible:
        raise RuntimeError("train.use_gpu is true but no CUDA device is visible to this process "
                           "(set train.use_gpu to auto or false to train on the CPU)")
    return torch.device("cuda" if use_gpu is not False and visible else "cpu")
