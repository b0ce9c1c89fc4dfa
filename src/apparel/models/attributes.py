"""Attribute branches on the unified model's trunk ("Progressive Fashion Attribute Extraction").

An :class:`ApparelNet` is the embedding network plus one small branch per attribute, all fed by the
same trunk feature map, so a single forward pass yields the embedding and every attribute.
Branches are added one at a time; a new branch starts from the previous one's weights wherever the
shapes agree (``ApparelSpec.branch_init``: the paper's rule; or its features only, or nothing). With
``ApparelSpec.local_maps`` each branch also pools the trunk's middle map where its own heatmaps point, so that
each attribute looks at its own part of the garment (a bag's strap, a sleeve's end) as well as the whole. With
``ApparelSpec.branch_adapter`` each branch adds to the last map its own correction computed from the penultimate
one: capacity in the trunk's last stage that only its attribute trains, where the shared stage serves all of them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from apparel.models.embedding import (
    FEATURE_DIMS,
    MIDDLE_CHANNELS,
    PENULTIMATE_CHANNELS,
    EmbeddingNet,
    EmbeddingSpec,
    TrunkMaps,
)
from apparel.models.pooling import HeatmapPooling

LOCAL_WIDTH = 32  # channels pooled under each of a branch's heatmaps


@dataclass
class AttributeSpec:
    name: str
    classes: list[str]
    kind: Literal["categorical", "multilabel"] = "categorical"


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation: reweights channels from their global average."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        self.gate = nn.Sequential(nn.Linear(channels, channels // reduction), nn.ReLU(),
                                  nn.Linear(channels // reduction, channels), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x.mean(dim=(2, 3)))[:, :, None, None]


class StageAdapter(nn.Module):
    """A branch's own slice of the trunk's last stage: penultimate map → 1×1 reduce → 3×3 stride-2 conv → 1×1
    expand to the last map's channels, added to that map. Its last BatchNorm starts at zero, so a new adapter
    leaves the branch's input as the trunk gives it."""

    def __init__(self, in_channels: int, out_channels: int, width: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(in_channels, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels),
        )
        nn.init.zeros_(self.layers[-1].weight)

    def forward(self, penultimate: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        return last + self.layers(penultimate)


class AttributeBranch(nn.Module):
    """1×1 reduce → 3×3 conv → (attention) → pool → classifier: small next to the trunk. With ``local_maps``
    (and ``middle_channels``, the trunk's middle map's) the classifier also reads that map pooled under the
    branch's own heatmaps; with ``penultimate_channels`` a :class:`StageAdapter` corrects the last map first."""

    def __init__(self, in_channels: int, n_classes: int, width: int = 64, attention: bool = False,
                 local_maps: int = 0, middle_channels: int = 0, penultimate_channels: int = 0) -> None:
        super().__init__()
        self.adapter = StageAdapter(penultimate_channels, in_channels, width) if penultimate_channels else None
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            ChannelAttention(width) if attention else nn.Identity(),
        )
        self.local = HeatmapPooling(middle_channels, local_maps, LOCAL_WIDTH) if local_maps else None
        self.classifier = nn.Linear(width + (self.local.out_dim if self.local else 0), n_classes)

    def forward(self, feature_map: torch.Tensor, maps: TrunkMaps | None = None) -> torch.Tensor:
        """Logits from the trunk's last ``feature_map``; ``maps`` (all of the pass's maps) where the branch
        pools the middle one or adapts the last."""
        if self.adapter is not None:
            feature_map = self.adapter(maps.penultimate, feature_map)
        pooled = self.features(feature_map).mean(dim=(2, 3))
        if self.local is not None:
            pooled = torch.cat([pooled, self.local(maps.middle)[0]], dim=1)
        return self.classifier(pooled)

    def init_from(self, previous: AttributeBranch, classifier: bool = True) -> int:
        """Copies every tensor whose shape matches (the classifier's only with ``classifier``); returns how
        many were copied."""
        own = self.state_dict()
        shared = {k: v for k, v in previous.state_dict().items() if k in own and own[k].shape == v.shape
                  and (classifier or not k.startswith("classifier."))}
        self.load_state_dict(shared, strict=False)
        return len(shared)


@dataclass
class ApparelSpec:
    base: EmbeddingSpec
    attributes: list[AttributeSpec] = field(default_factory=list)
    branch_width: int = 64
    attention: bool = False
    # What a new branch copies from the latest one: everything whose shape agrees ("previous", the paper's
    # rule), only the feature layers ("features": the classifier of another attribute's classes is no start
    # for this one's), or nothing ("none").
    branch_init: Literal["previous", "features", "none"] = "previous"
    # Heatmaps each branch pools the trunk's middle map under (0: none, the branch reads the last map only;
    # models saved before the option load as 0).
    local_maps: int = 0
    # A StageAdapter per branch: the branch's own correction of the trunk's last map (models saved before the
    # option load without one).
    branch_adapter: bool = False


class ApparelNet(nn.Module):
    def __init__(self, spec: ApparelSpec, base: EmbeddingNet | None = None) -> None:
        super().__init__()
        self.spec = spec
        self.base = base or EmbeddingNet(spec.base)
        self.branches = nn.ModuleDict()
        for attribute in spec.attributes:
            self.branches[attribute.name] = self._new_branch(attribute)

    def _new_branch(self, attribute: AttributeSpec) -> AttributeBranch:
        backbone = self.spec.base.backbone
        return AttributeBranch(FEATURE_DIMS[backbone], len(attribute.classes), self.spec.branch_width,
                               self.spec.attention, self.spec.local_maps, MIDDLE_CHANNELS[backbone],
                               PENULTIMATE_CHANNELS[backbone] if self.spec.branch_adapter else 0)

    def add_branch(self, attribute: AttributeSpec, parent: str | None = None) -> AttributeBranch:
        """Adds one branch, initialised from ``parent``'s branch (default: the latest one) as
        ``spec.branch_init`` says."""
        if attribute.name in self.branches:
            raise ValueError(f"attribute '{attribute.name}' already has a branch")
        branch = self._new_branch(attribute)
        if len(self.branches) and self.spec.branch_init != "none":
            source = self.branches[parent] if parent else list(self.branches.values())[-1]
            branch.init_from(source, classifier=self.spec.branch_init == "previous")
        self.branches[attribute.name] = branch.to(next(self.base.parameters()).device)
        self.spec.attributes.append(attribute)
        return branch

    def forward_logits(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if not (self.spec.local_maps or self.spec.branch_adapter):
            feature_map = self.base.feature_map(images)
            return self.base.embed_features(feature_map), {n: b(feature_map) for n, b in self.branches.items()}
        maps = self.base.feature_maps(images)
        return self.base.embed_features(maps.last), {n: b(maps.last, maps) for n, b in self.branches.items()}

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """One pass: ``embedding`` plus each attribute's probabilities (softmax or sigmoid)."""
        embedding, logits = self.forward_logits(images)
        outputs = {"embedding": embedding}
        for attribute in self.spec.attributes:
            scores = logits[attribute.name]
            outputs[attribute.name] = scores.sigmoid() if attribute.kind == "multilabel" else scores.softmax(1)
        return outputs

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "spec.json").write_text(json.dumps({"apparel": asdict(self.spec)}))
        torch.save(self.state_dict(), directory / "weights.pt")

    @classmethod
    def load(cls, directory: Path) -> ApparelNet:
        raw = json.loads((Path(directory) / "spec.json").read_text())["apparel"]
        base = EmbeddingSpec(**{**raw.pop("base"), "weights": "none"})
        spec = ApparelSpec(base=base, attributes=[AttributeSpec(**a) for a in raw.pop("attributes")], **raw)
        model = cls(spec)
        model.load_state_dict(torch.load(Path(directory) / "weights.pt", map_location="cpu", weights_only=True))
        return model.eval()


def from_embedding(base: EmbeddingNet, branch_width: int = 64, attention: bool = False, local_maps: int = 0,
                   branch_adapter: bool = False) -> ApparelNet:
    """An ApparelNet with no branches yet around a trained embedding model."""
    spec = ApparelSpec(base=base.spec, branch_width=branch_width, attention=attention, local_maps=local_maps,
                       branch_adapter=branch_adapter)
    return ApparelNet(spec, base=base)
