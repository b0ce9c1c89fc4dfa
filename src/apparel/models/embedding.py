"""The embedding network: a torchvision backbone, a projection head, an L2-normalised output."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import torch
import torchvision
from torch import nn
from torch.nn import functional as F

FEATURE_DIMS = {"resnet18": 512, "resnet34": 512, "resnet50": 2048}
# trunk[:6] ends after layer2 (stride 8): 4×4 at 32 px, 6×6 at 48, 8×8 at 64, where the last stage (stride 32)
# leaves 1×1 or 2×2, too coarse for any location. layer2 still places a collar apart from a hem, and its
# features (receptive field ~100 px) already see the garment's parts.
MIDDLE_STAGE = 6
MIDDLE_CHANNELS = {"resnet18": 128, "resnet34": 128, "resnet50": 512}
LAST_STAGE = 7  # trunk[7] is layer4; trunk[6] (layer3) gives the penultimate map a branch adapter reads
PENULTIMATE_CHANNELS = {"resnet18": 256, "resnet34": 256, "resnet50": 1024}


class TrunkMaps(NamedTuple):
    """The trunk's maps from one pass: the middle stage's (layer2), the penultimate (layer3) and the last."""

    middle: torch.Tensor
    penultimate: torch.Tensor
    last: torch.Tensor


@dataclass
class EmbeddingSpec:
    """Everything needed to rebuild the network; saved next to its weights."""

    backbone: str = "resnet18"
    embedding_dim: int = 64
    image_size: int = 64
    weights: str = "none"


def build_trunk(backbone: str, weights: str = "none") -> nn.Sequential:
    """A torchvision ResNet up to its last conv stage (no pooling, no classifier).

    ``weights`` is 'none' or a local state-dict path: nothing is ever downloaded.
    """
    if backbone not in FEATURE_DIMS:
        raise ValueError(f"unknown backbone '{backbone}' (known: {', '.join(FEATURE_DIMS)})")
    net = getattr(torchvision.models, backbone)(weights=None)
    if weights != "none":
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"backbone weights not found: {path} (use 'none' or a local file)")
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict({k: v for k, v in state.items() if not k.startswith("fc.")}, strict=False)
    return nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4)


class EmbeddingNet(nn.Module):
    """Image → unit-length embedding. ``feature_map`` exposes the trunk for attribute branches."""

    def __init__(self, spec: EmbeddingSpec) -> None:
        super().__init__()
        self.spec = spec
        self.trunk = build_trunk(spec.backbone, spec.weights)
        self.head = nn.Linear(FEATURE_DIMS[spec.backbone], spec.embedding_dim)

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        return self.trunk(images)

    def feature_maps(self, images: torch.Tensor) -> TrunkMaps:
        """The middle, penultimate and last maps from one trunk pass, for branches that read more than the last."""
        middle = self.trunk[:MIDDLE_STAGE](images)
        penultimate = self.trunk[MIDDLE_STAGE:LAST_STAGE](middle)
        return TrunkMaps(middle, penultimate, self.trunk[LAST_STAGE:](penultimate))

    def embed_features(self, feature_map: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(feature_map.mean(dim=(2, 3))), dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.embed_features(self.feature_map(images))

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "spec.json").write_text(json.dumps(asdict(self.spec)))
        torch.save(self.state_dict(), directory / "weights.pt")

    @classmethod
    def load(cls, directory: Path) -> EmbeddingNet:
        spec = EmbeddingSpec(**json.loads((Path(directory) / "spec.json").read_text()))
        spec.weights = "none"  # the saved state dict already holds them
        model = cls(spec)
        model.load_state_dict(torch.load(Path(directory) / "weights.pt", map_location="cpu", weights_only=True))
        return model.eval()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
