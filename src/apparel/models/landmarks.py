"""The landmark-pooled local branch of FashionNet (Liu et al. 2016, DeepFashion), small and differentiable.

FashionNet reads attributes both from the whole garment (global features) and from features pooled around
its landmarks (collar, sleeve ends, hem): a sleeve's length or a neckline is seen where the sleeve or the
collar is instead of being averaged over the image. The paper predicts landmark positions and visibility
in a separate branch and max-pools fixed windows around them. Here each landmark gets a heatmap whose
softmax is used twice: its expectation over the grid is the landmark's (x, y) (soft-argmax, what the
landmark loss trains) and the same weights pool the local features. Both attribute and landmark losses
therefore reach the heatmaps, and nothing in the branch is a hard crop.
"""

from __future__ import annotations

import torch
from torch import nn

from apparel.models.attributes import AttributeBranch, AttributeSpec
from apparel.models.embedding import FEATURE_DIMS, EmbeddingNet

# trunk[:6] ends after layer2 (stride 8): an 8×8 map at 64 px. The last stage (stride 32) leaves 2×2 at
# 64 px and 1×1 at 32 px, too coarse for any location; layer2 still has room to place a collar apart from a
# hem, and its features (receptive field ~100 px) already see the garment's parts.
LOCAL_STAGE = 6
LOCAL_CHANNELS = {"resnet18": 128, "resnet34": 128, "resnet50": 512}


def soft_argmax(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """N×K×H×W logits → (N×K×H×W softmax weights, N×K×2 expected (x, y)), coordinates in [0, 1] of the
    image's width and height with each cell at its centre, so that they compare with pixel / size."""
    n, k, h, w = heatmaps.shape
    weights = heatmaps.flatten(2).softmax(-1).view(n, k, h, w)
    xs = (torch.arange(w, device=heatmaps.device, dtype=weights.dtype) + 0.5) / w
    ys = (torch.arange(h, device=heatmaps.device, dtype=weights.dtype) + 0.5) / h
    x = (weights.sum(2) * xs).sum(-1)
    y = (weights.sum(3) * ys).sum(-1)
    return weights, torch.stack([x, y], dim=-1)


class LandmarkPooling(nn.Module):
    """Feature map → one heatmap per landmark → its soft-argmax location and the local features pooled
    with its softmax weights (one ``width`` vector per landmark, concatenated)."""

    def __init__(self, in_channels: int, n_landmarks: int, width: int = 32) -> None:
        super().__init__()
        self.heatmaps = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                                      nn.ReLU(), nn.Conv2d(width, n_landmarks, 1))
        self.features = nn.Sequential(nn.Conv2d(in_channels, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        self.out_dim = n_landmarks * width

    def forward(self, feature_map: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (N×(K·width) local vector, N×K×2 landmark coordinates)."""
        weights, coordinates = soft_argmax(self.heatmaps(feature_map))
        local = torch.einsum("nkhw,nchw->nkc", weights, self.features(feature_map))
        return local.flatten(1), coordinates


class LandmarkAttributeNet(nn.Module):
    """The unified trunk with one :class:`AttributeBranch` per attribute, as in ApparelNet, and, when
    ``landmarks`` names any, the local branch on an intermediate stage: every attribute's classifier then
    reads its branch's global vector and the landmark-pooled local vector. Without landmarks it computes
    what ApparelNet does, which makes it the ablation's baseline."""

    def __init__(self, base: EmbeddingNet, specs: list[AttributeSpec], landmarks: list[str] | None = None,
                 branch_width: int = 64, local_width: int = 32) -> None:
        super().__init__()
        self.base, self.specs, self.landmarks = base, specs, list(landmarks or [])
        self.branches = nn.ModuleDict({s.name: AttributeBranch(FEATURE_DIMS[base.spec.backbone], len(s.classes),
                                                               branch_width) for s in specs})
        self.pooling = LandmarkPooling(LOCAL_CHANNELS[base.spec.backbone], len(self.landmarks), local_width) \
            if self.landmarks else None
        if self.pooling is not None:
            for spec in specs:  # the classifier reads global and local features side by side
                self.branches[spec.name].classifier = nn.Linear(branch_width + self.pooling.out_dim,
                                                                len(spec.classes))

    def forward_outputs(self, images: torch.Tensor
                        ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor | None]:
        """One trunk pass: (embedding, logits per attribute, N×K×2 landmark coordinates or None)."""
        middle = self.base.trunk[:LOCAL_STAGE](images)
        feature_map = self.base.trunk[LOCAL_STAGE:](middle)
        local, coordinates = self.pooling(middle) if self.pooling is not None else (None, None)
        logits = {}
        for name, branch in self.branches.items():
            pooled = branch.features(feature_map).mean(dim=(2, 3))
            logits[name] = branch.classifier(pooled if local is None else torch.cat([pooled, local], dim=1))
        return self.base.embed_features(feature_map), logits, coordinates

    def forward_logits(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """What the attribute evaluation calls on every model."""
        embedding, logits, _ = self.forward_outputs(images)
        return embedding, logits
