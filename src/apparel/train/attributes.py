"""Progressive attribute training and its two baselines, all with losses masked on missing labels.

Progressive: add a branch (initialised from the previous one), train it alone, briefly fine-tune every
branch so far (and the base unless frozen); once every branch is in, fine-tune all of them end to end
for most of the budget (the paper's last step: the heads learn jointly, as a multi-label model's
would, but each through its own branch). When the base is not frozen, an L2 term
keeps the embedding near the unified model's, so retrieval holds while attributes improve.
Every phase draws its batches from the rows labelled for at least one of the heads it trains: a row
with none of their labels adds nothing to a masked loss, and catalogs label vertical-specific attributes
(a bag's strap, a shoe's heel) on a small share of their rows.
Baselines under the same trunk initialisation and step budget: one model per attribute, and one
multi-label model whose single shared head predicts every attribute.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import torch
from torch import nn

from apparel.config import TrainConfig
from apparel.data.dataset import normalize
from apparel.data.manifest import MULTILABEL_SEPARATOR, Dataset
from apparel.losses.embedding_regression import EmbeddingRegressionLoss
from apparel.losses.masked import MISSING, MaskedBinaryCrossEntropy, MaskedCrossEntropy
from apparel.models.attributes import ApparelNet, AttributeSpec, from_embedding
from apparel.models.embedding import FEATURE_DIMS, EmbeddingNet
from apparel.train.loop import augment


@dataclass
class AttributeSchedule:
    # New branch alone, on a frozen trunk: few steps, so that the trunk trains for most of the budget
    # (benchmarks/results/attributes_trunk_steps.json).
    branch_steps: int = 2
    finetune_steps: int = 5  # all branches so far (+ base unless frozen), after each new branch
    final_steps_per_head: int = 53  # once all branches are in: this many steps per head, end to end
    batch_size: int = 64
    lr: float = 2e-3
    base_lr: float = 2e-4
    embedding_weight: float = 1.0  # L2 pull of the embedding towards the unified model's
    freeze_base: bool = False
    # Joint phases: an equal share of each batch from each head's labelled rows, so a head labelled on few
    # rows (a vertical-specific attribute with labels missing) still sees a fixed number of them per step.
    balanced_heads: bool = False
    # One AdamW for the whole progressive schedule (each new branch joins it as a parameter group) instead of a
    # fresh one per phase, whose restarted moments jolt the trunk at every phase. Measured level
    # (benchmarks/results/attributes_dynamics.json): off.
    one_optimizer: bool = False
    # Which branch a new one starts from: the latest ("latest", the paper's rule), or the latest of those whose
    # attribute labels at least half as many of the new attribute's rows as the best-overlapping one
    # ("overlap"), lest a branch trained on another vertical's rows (a shoe's heel) pass on units silent on
    # this one's (a bag's strap). Measured level (benchmarks/results/attributes_branch_parent.json).
    branch_parent: Literal["latest", "overlap"] = "latest"
    # Joint phases: a branch steps once its head has met this many labels since its last step (on the
    # label-weighted mean of its gradients over the batches between), not on every batch. At 80 % missing a
    # one-vertical head finds two or three labels per batch, and AdamW moves its branch a full step on each,
    # however few. Measured worse on the synthetic catalog at 80 % missing
    # (benchmarks/results/attributes_head_floor.json), so 0: a branch steps on every batch.
    head_min_rows: int = 0
    seed: int = 0
    # One stream for the whole schedule: every phase (branch, fine-tune, final) draws new batches.
    rng: np.random.Generator = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def next_batch(self, rows: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        """The next batch: ``batch_size`` of ``rows`` (row indices), drawn without replacement; given one
        tensor of rows per head, an equal share from each."""
        if isinstance(rows, list):
            shares = np.array_split(np.arange(self.batch_size), len(rows))
            return torch.cat([self._draw(pool, len(share)) for pool, share in zip(rows, shares, strict=True)])
        return self._draw(rows, self.batch_size)

    def _draw(self, rows: torch.Tensor, size: int) -> torch.Tensor:
        return rows[torch.from_numpy(self.rng.choice(len(rows), min(size, len(rows)), replace=False))]


def schedule_from(train: TrainConfig, freeze_base: bool | None = None) -> AttributeSchedule:
    return AttributeSchedule(branch_steps=train.attribute_branch_steps, finetune_steps=train.attribute_finetune_steps,
                             final_steps_per_head=train.attribute_final_steps,
                             batch_size=train.batch_p * train.batch_k, lr=train.attribute_lr,
                             base_lr=train.attribute_base_lr, embedding_weight=train.attribute_embedding_weight,
                             seed=train.seed,
                             freeze_base=train.freeze_base if freeze_base is None else freeze_base)


def attribute_specs(dataset: Dataset, names: Iterable[str]) -> list[AttributeSpec]:
    specs = []
    for name in names:
        if name not in dataset.info.attributes:
            raise ValueError(f"unknown attribute '{name}' (dataset has: {', '.join(dataset.info.attributes)})")
        classes = dataset.attribute_values(name)
        if len(classes) < 2:
            raise ValueError(f"attribute '{name}' has fewer than two classes")
        kind = "multilabel" if name in dataset.info.multilabel else "categorical"
        specs.append(AttributeSpec(name, classes, kind))
    return specs


def encode_targets(frame: pd.DataFrame, specs: list[AttributeSpec]) -> dict[str, torch.Tensor]:
    """Categorical: class index or -1; multi-label: 0/1 rows, all -1 where unlabelled."""
    targets = {}
    for spec in specs:
        values = frame[spec.name]
        index = {c: i for i, c in enumerate(spec.classes)}
        if spec.kind == "categorical":
            targets[spec.name] = torch.tensor([index.get(v, MISSING) if v is not None else MISSING for v in values])
            continue
        rows = torch.full((len(frame), len(spec.classes)), MISSING, dtype=torch.long)
        for i, value in enumerate(values):
            if value is not None:
                rows[i] = 0
                rows[i, [index[c] for c in value.split(MULTILABEL_SEPARATOR) if c in index]] = 1
        targets[spec.name] = rows
    return targets


def labelled(target: torch.Tensor) -> torch.Tensor:
    """Which rows of one head's ``target`` (categorical, or multi-label rows) carry a label."""
    return (target if target.dim() == 1 else target[:, 0]) != MISSING


def labelled_rows(targets: dict[str, torch.Tensor], specs: list[AttributeSpec]) -> torch.Tensor:
    """Indices of the rows with a label for at least one of ``specs``."""
    known = torch.zeros(len(next(iter(targets.values()))), dtype=torch.bool)
    for spec in specs:
        known |= labelled(targets[spec.name])
    return known.nonzero().squeeze(1)


def loss_for(spec: AttributeSpec) -> nn.Module:
    return MaskedBinaryCrossEntropy() if spec.kind == "multilabel" else MaskedCrossEntropy()


class SharedHeadNet(nn.Module):
    """The multi-label baseline: one linear head over pooled trunk features for all attributes."""

    def __init__(self, base: EmbeddingNet, specs: list[AttributeSpec]) -> None:
        super().__init__()
        self.base, self.specs = base, specs
        self.head = nn.Linear(FEATURE_DIMS[base.spec.backbone], sum(len(s.classes) for s in specs))

    def forward_logits(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        feature_map = self.base.feature_map(images)
        return self.base.embed_features(feature_map), self.by_attribute(self.head(feature_map.mean(dim=(2, 3))))

    def by_attribute(self, logits: torch.Tensor) -> dict[str, torch.Tensor]:
        """The shared head's N×C logits, split into each attribute's columns."""
        sizes = [len(s.classes) for s in self.specs]
        return dict(zip([s.name for s in self.specs], logits.split(sizes, 1), strict=True))


def heads_optimizer(model: nn.Module, schedule: AttributeSchedule, trainable: nn.Module, train_base: bool
                    ) -> torch.optim.AdamW:
    """AdamW over ``trainable``'s head parameters at ``schedule.lr`` and, with ``train_base``, the trunk
    (``model.base``) at the lower ``schedule.base_lr``."""
    base_ids = {id(p) for p in model.base.parameters()}
    groups = [{"params": [p for p in trainable.parameters() if id(p) not in base_ids], "lr": schedule.lr}]
    if train_base:
        groups.append({"params": list(model.base.parameters()), "lr": schedule.base_lr})
    return torch.optim.AdamW(groups, weight_decay=1e-4)


def train_heads(model: nn.Module, specs: list[AttributeSpec], images: torch.Tensor, targets: dict[str, torch.Tensor],
                steps: int, schedule: AttributeSchedule, train_base: bool, anchor: torch.Tensor | None = None,
                only: nn.Module | None = None, optimizer: torch.optim.Optimizer | None = None) -> float:
    """``steps`` masked multi-head steps. ``only`` restricts training to one module (a new branch);
    ``anchor`` (N×D unified embeddings) adds the embedding-preservation term. A given ``optimizer`` (one shared
    by every phase) steps only what this phase trains: the other parameters' gradients are dropped."""
    trainable = only or model
    steps_base = train_base and only is None
    idle = []
    if optimizer is None:
        optimizer = heads_optimizer(model, schedule, trainable, steps_base)
    else:  # it holds every parameter: the ones this phase does not train lose their gradients before each step
        updated = {id(p) for p in trainable.parameters()} - (set() if steps_base
                                                              else {id(p) for p in model.base.parameters()})
        idle = [p for p in model.parameters() if id(p) not in updated]
    losses = {s.name: loss_for(s) for s in specs}
    anchor_loss = EmbeddingRegressionLoss()
    # Only what trains may update BatchNorm statistics: a frozen base or an untouched branch
    # must give the same outputs afterwards.
    model.eval()
    trainable.train()
    if not train_base:
        model.base.eval()
    device = next(model.parameters()).device  # the stage put the model on its pod's GPU (or the CPU)
    rows = labelled_rows(targets, specs)
    if not len(rows):
        model.eval()
        return float("nan")  # no row labels any of these heads: nothing to learn from
    if schedule.balanced_heads and len(specs) > 1:
        rows = [pool for pool in (labelled_rows(targets, [spec]) for spec in specs) if len(pool)]
    pending = BranchGradients(model, specs, schedule.head_min_rows)
    total = 0.0
    for _ in range(steps):
        batch = schedule.next_batch(rows)
        embedding, logits = model.forward_logits(normalize(augment(images[batch].to(device))))
        loss = sum(losses[s.name](logits[s.name], targets[s.name][batch].to(device)) for s in specs)
        if anchor is not None and train_base:
            loss = loss + schedule.embedding_weight * anchor_loss(embedding, anchor[batch].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if pending.params:
            pending.hold({s.name: int(labelled(targets[s.name][batch]).sum()) for s in specs})
        for parameter in idle:
            parameter.grad = None  # AdamW skips a parameter without a gradient: no step, no decay
        optimizer.step()
        total += loss.item()
    model.eval()
    return total / max(1, steps)


class BranchGradients:
    """``AttributeSchedule.head_min_rows``: holds back each branch's gradient until its head has met ``min_rows``
    labels, then hands the optimizer their label-weighted mean. The masked losses average over a batch's labelled
    rows, so a batch's gradient times its label count is its sum. Off (nothing held) with ``min_rows`` 0, one head,
    or a model without branches."""

    def __init__(self, model: nn.Module, specs: list[AttributeSpec], min_rows: int) -> None:
        branches = getattr(model, "branches", {})
        on = min_rows > 0 and len(specs) > 1
        self.params = {s.name: list(branches[s.name].parameters()) for s in specs if on and s.name in branches}
        self.min_rows = min_rows
        self.sums: dict[str, list[torch.Tensor | None]] = {name: [None] * len(p) for name, p in self.params.items()}
        self.counts = dict.fromkeys(self.params, 0)

    def hold(self, labels: dict[str, int]) -> None:
        """After ``backward``: add each branch's gradient to its sum; release the mean where the head has met
        ``min_rows`` labels, else leave the gradient None (AdamW skips the branch this step)."""
        for name, params in self.params.items():
            self.counts[name] += labels[name]
            for i, parameter in enumerate(params):
                if parameter.grad is not None:
                    grad = parameter.grad * labels[name]
                    self.sums[name][i] = grad if self.sums[name][i] is None else self.sums[name][i] + grad
                parameter.grad = None
            if self.counts[name] >= self.min_rows:
                for parameter, summed in zip(params, self.sums[name], strict=True):
                    parameter.grad = None if summed is None else summed / self.counts[name]
                self.sums[name], self.counts[name] = [None] * len(params), 0


def _freeze(module: nn.Module, frozen: bool) -> None:
    for parameter in module.parameters():
        parameter.requires_grad_(not frozen)


def parent_branch(model: ApparelNet, spec: AttributeSpec, targets: dict[str, torch.Tensor]) -> str | None:
    """The ``overlap`` rule (see :class:`AttributeSchedule`): the latest branch whose attribute labels at least
    half as many of ``spec``'s labelled rows as the best-overlapping branch's does; None without branches."""
    rows = set(labelled_rows(targets, [spec]).tolist())
    shared = {a.name: len(rows & set(labelled_rows(targets, [a]).tolist())) for a in model.spec.attributes
              if a.name in targets}
    if not shared:
        return None
    most = max(shared.values())
    return [name for name, count in shared.items() if 2 * count >= most][-1]


def joined(optimizer: torch.optim.Optimizer | None, model: ApparelNet, branch: nn.Module,
           schedule: AttributeSchedule) -> torch.optim.Optimizer:
    """The schedule's one optimizer with ``branch`` added; created on the first branch, over the trunk (unless
    frozen) and every branch the model already has."""
    if optimizer is None:
        return heads_optimizer(model, schedule, model, not schedule.freeze_base)
    optimizer.add_param_group({"params": list(branch.parameters()), "lr": schedule.lr})
    return optimizer


def train_progressive(model: ApparelNet, specs: list[AttributeSpec], images: torch.Tensor,
                      targets: dict[str, torch.Tensor], schedule: AttributeSchedule,
                      anchor: torch.Tensor | None = None, log=print,
                      on_branch: Callable[[ApparelNet], None] | None = None, tune_existing: bool = True
                      ) -> ApparelNet:
    """Adds the branches one at a time: new branch alone, then a short end-to-end fine-tune of every
    branch so far; when all are in, the long end-to-end fine-tune. With ``tune_existing`` off (what
    add-attribute needs to keep existing outputs) only the new branches ever train. ``on_branch``
    runs after each branch (the stage saves a resumable model)."""
    _freeze(model.base, schedule.freeze_base)
    only_new = not tune_existing and schedule.freeze_base
    optimizer = None
    for spec in specs:
        parent = parent_branch(model, spec, targets) if schedule.branch_parent == "overlap" else None
        branch = model.add_branch(spec, parent)
        if schedule.one_optimizer:
            optimizer = joined(optimizer, model, branch, schedule)
        so_far = [a for a in model.spec.attributes if a.name in targets] if tune_existing else [spec]
        alone = train_heads(model, [spec], images, targets, schedule.branch_steps, schedule, False, only=branch,
                            optimizer=optimizer)
        tuned = train_heads(model, so_far, images, targets, schedule.finetune_steps, schedule,
                            not schedule.freeze_base, anchor, only=branch if only_new else None, optimizer=optimizer)
        log(f"[attributes] +{spec.name}: branch loss {alone:.3f}, fine-tune loss {tuned:.3f} ({len(so_far)} heads)")
        if on_branch:
            on_branch(model)
    heads = [a for a in model.spec.attributes if a.name in targets] if tune_existing else specs
    if heads and schedule.final_steps_per_head:
        only = nn.ModuleList(model.branches[s.name] for s in specs) if only_new else None
        tuned = train_heads(model, heads, images, targets, schedule.final_steps_per_head * len(heads), schedule,
                            not schedule.freeze_base, anchor, only=only, optimizer=optimizer)
        log(f"[attributes] end-to-end fine-tune of {len(heads)} heads: loss {tuned:.3f}")
    _freeze(model.base, False)
    return model


def steps_per_attribute(schedule: AttributeSchedule) -> int:
    """The progressive schedule's total budget divided by the number of attributes."""
    return schedule.branch_steps + schedule.finetune_steps + schedule.final_steps_per_head


def steps_seen_by_head(schedule: AttributeSchedule, n_heads: int) -> list[int]:
    """Optimiser steps in which each head's loss counts under :func:`train_progressive`, in the order the heads
    are added: head i of N trains alone, in the fine-tune after its own branch and after every later one, and in
    every step of the final end-to-end phase. (How many of those steps hold a label of its own depends on the
    labels missing.)"""
    return [schedule.branch_steps + schedule.finetune_steps * (n_heads - i) + n_heads * schedule.final_steps_per_head
            for i in range(n_heads)]


def train_per_attribute(base: EmbeddingNet, specs: list[AttributeSpec], images: torch.Tensor,
                        targets: dict[str, torch.Tensor], schedule: AttributeSchedule,
                        new_model: Callable[[EmbeddingNet], ApparelNet] = from_embedding) -> dict[str, ApparelNet]:
    """Baseline: a separate model (``new_model`` around its own copy of the trunk, + one branch) per
    attribute, the same steps per attribute as the progressive schedule."""
    models = {}
    for spec in specs:
        model = new_model(copy.deepcopy(base))
        model.add_branch(spec)
        train_heads(model, [spec], images, targets, steps_per_attribute(schedule), schedule, True)
        models[spec.name] = model
    return models


def train_multilabel(base: EmbeddingNet, specs: list[AttributeSpec], images: torch.Tensor,
                     targets: dict[str, torch.Tensor], schedule: AttributeSchedule,
                     anchor: torch.Tensor | None = None) -> SharedHeadNet:
    """Baseline: one model, one shared head for every attribute, same total steps; ``anchor`` as in
    :func:`train_heads`."""
    model = SharedHeadNet(copy.deepcopy(base), specs)
    train_heads(model, specs, images, targets, len(specs) * steps_per_attribute(schedule), schedule, True, anchor)
    return model

