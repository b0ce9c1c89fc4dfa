"""The landmark-pooled local branch of FashionNet (Liu et al. 2016, DeepFashion), small and differentiable.

FashionNet reads attributes both from the whole garment (global features) and from features pooled around
its landmarks (collar, sleeve ends, hem): a sleeve's length or a neckline is seen where the sleeve or the
collar is instead of being averaged over the image. The paper predicts landmark positions and visibility
in a separate branch and max-pools fixed windows around them. Here each landmark gets a heatmap
(:class:`apparel.models.pooling.HeatmapPooling` on the trunk's middle map): its soft-argmax is the landmark's
(x, y), what the landmark loss trains, and the same weights pool the local features. Both attribute and
landmark losses therefore reach the heatmaps, and nothing in the branch is a hard crop.
"""

from __future__ import annotations

import torch
from torch import nn

from apparel.models.attributes import AttributeBranch, AttributeSpec
from apparel.models.embedding import FEATURE_DIMS, MIDDLE_CHANNELS, EmbeddingNet
from apparel.models.pooling import HeatmapPooling


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
        self.pooling = HeatmapPooling(MIDDLE_CHANNELS[base.spec.backbone], len(self.landmarks), local_width) \
            if self.landmarks else None
        if self.pooling is not None:
            for spec in specs:  # the classifier reads global and local features side by side
                self.branches[spec.name].classifier = nn.Linear(branch_width + self.pooling.out_dim,
                                                                len(spec.classes))

    def forward_outputs(self, images: torch.Tensor
                        ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor | None]:
        """One trunk pass: (embedding, logits per attribute, N×K×2 landmark coordinates or None)."""
        maps = self.base.feature_maps(images)
        local, coordinates = self.pooling(maps.middle) if self.pooling is not None else (None, None)
        logits = {}
        for name, branch in self.branches.items():
            pooled = branch.features(maps.last).mean(dim=(2, 3))
            logits[name] = branch.classifier(pooled if local is None else torch.cat([pooled, local], dim=1))
        return self.base.embed_features(maps.last), logits, coordinates

    def forward_logits(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """What the attribute evaluation calls on every model."""
        embedding, logits, _ = self.forward_outputs(images)
        return embedding, logits
