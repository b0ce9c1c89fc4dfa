"""Recipes for the attribute heads, side by side: the embedding anchor, and a linear probe beside each branch.

1. The anchor. The product's progressive schedule adds an L2 pull of the embedding towards the unified
   model's while the attributes fine-tune the trunk (``train.attribute_embedding_weight``, default 1.0), so
   that one forward pass still serves search. ``benchmarks/attributes.py`` gives that pull to the progressive
   system only: its baselines change their trunks freely, and neither serves search afterwards. Systems:
   ``progressive`` (anchored, the product's default), ``progressive_free`` (pull weight 0), ``multilabel``
   (free, as in attributes.py), ``multilabel_anchored`` (the same pull on its trunk).
2. The probe. At the benchmark's 32 px the trunk's last feature map is 1×1, so a branch (1×1 reduce to 64
   channels, 3×3 conv, pool, classifier) is a small MLP behind a 64-channel bottleneck, while the multi-label
   model reads all 512 pooled channels with one linear layer. ``progressive_probe`` and
   ``per_attribute_probe`` add to each branch's logits a linear probe of the pooled trunk features.
3. Balanced heads. In a joint phase a batch is drawn from the rows labelled for any head, so at 80 % missing
   a vertical-specific head (labelled on a fifth of the rows before the drop) finds two or three labels in a
   batch of 32, while its per-attribute model sees 32. ``progressive_balanced`` and ``multilabel_balanced``
   draw an equal share of each batch from each head's labelled rows (``AttributeSchedule.balanced_heads``);
   run them with ``--systems progressive,progressive_balanced,multilabel,multilabel_balanced,per_attribute
   --result attributes_balanced``.
4. Branch initialisation. Each new progressive branch starts from the latest one wherever shapes agree (the
   paper's rule), which on the synthetic catalog hands the bag's strap branch the shoe's heel branch, classifier
   included (both have three classes). ``progressive_features`` copies the feature layers only, and
   ``progressive_fresh`` nothing (``ApparelSpec.branch_init``); run them with ``--systems progressive,
   progressive_features,progressive_fresh,multilabel,per_attribute --result attributes_branch_init``.
5. Trunk steps. A progressive system spends b = S/5 of each head's S steps training its new branch alone on a
   frozen trunk, so its trunk takes N×(S - b) steps against the multi-label model's N×S.
   ``multilabel_trunk_steps`` is the multi-label model held to N×(S - b) steps; ``progressive_short_alone``
   trains each new branch alone for S/25 steps and gives the rest to the end-to-end phase (same total N×S);
   run them with ``--systems progressive,progressive_short_alone,multilabel,multilabel_trunk_steps,per_attribute
   --result attributes_trunk_steps``.
6. What separates progressive from multi-label. ``progressive_one_optimizer`` keeps one AdamW for the whole
   schedule, each new branch joining it (``AttributeSchedule.one_optimizer``), instead of a fresh one per phase;
   ``progressive_linear`` swaps each branch for a linear classifier of the pooled trunk features (the multi-label
   head, split per attribute) under the progressive schedule; ``joint_branches`` has every branch from the first
   step, trained jointly for N×S steps (the branches without the progressive schedule); ``progressive_wide`` has
   branches of width 256 instead of 64. Run them with ``--systems progressive,progressive_one_optimizer,
   progressive_linear,joint_branches,progressive_wide,multilabel --missing-rates 0.5,0.8 --result
   attributes_dynamics``.
7. Branch parent. Item 6 found the progressive branches trailing most on the synthetic catalog's bag strap, whose
   branch starts from the shoe's heel branch: a branch trained on another vertical's rows may have units that
   never fire on this one's. ``progressive_overlap`` starts each new branch from the latest one whose attribute
   labels at least half as many of its rows as the best-overlapping one (``AttributeSchedule.branch_parent =
   "overlap"``), against ``progressive_short_alone`` (the same schedule, the latest branch) and ``multilabel``;
   run them with ``--systems progressive_short_alone,progressive_overlap,multilabel --missing-rates 0.5,0.8
   --result attributes_branch_parent``.
8. The null. ``multilabel_reseeded`` is the multi-label model again under another seed (its own initialisation
   and batches, the same label drops): its ratio to ``multilabel`` is what this benchmark reports when two
   systems are the same, so it shows how far below 1 a worst case over cells falls by chance. Run it with
   ``--systems multilabel,multilabel_reseeded --missing-rates 0.0,0.5,0.8 --result attributes_null``.
9. Resolution. These recipes run at 32 px, where the trunk's last map is 1×1; the product trains at 48 px (2×2).
   Run ``--image-size 48 --systems progressive_short_alone,multilabel --missing-rates 0.5,0.0,0.8 --result
   attributes_resolution``.
10. Local branches. FashionNet's local branch, trained without its landmark labels, lifted attribute accuracy by
   reading layer2 (benchmarks/results/landmarks.json), and a shared linear head cannot look at a different place
   per attribute. ``progressive_local`` gives every progressive branch its own heatmap pooling of layer2 (4×4 at
   32 px; 2 heatmaps, 32 channels each) beside its pooled last-stage features; ``multilabel_local`` is the control,
   the multi-label model with one shared pooling of as many heatmaps (8) beside its pooled features. Run
   ``--systems progressive_short_alone,progressive_local,multilabel,multilabel_local --missing-rates 0.5,0.0,0.8
   --result attributes_local``. ``attributes_local.json`` came from this script's own copy of
   the branch, before ``ApparelSpec.local_maps`` took it into the library: the same layers, initialised in
   another order.
11. Balanced heads on the product's systems. ``attributes.json`` (product trunk, local branches) finds
   progressive behind one model per attribute only at 80 % missing on the synthetic catalog, on its three heads of
   one vertical each. ``progressive_local_balanced`` is the product's progressive system (``progressive_local``:
   local branches, S/25 alone) with balanced joint batches, ``per_attribute_local`` attributes.py's per-attribute
   models (local branches too); with ``--trunk product`` every system starts from the product's unified trunk,
   as in attributes.py. Run ``--trunk product --systems progressive_local,progressive_local_balanced,
   per_attribute_local --result attributes_balanced_product``.
12. A floor of labels per branch step. Balanced batches did not lift the one-vertical heads at synthetic 80 %, so
   the number of labels a head sees is not what it lacks; how its branch steps may be. There a head finds two or
   three labels in a joint batch, and AdamW, which normalises each parameter's step, moves its branch as far on
   those as on 32; a progressive head takes over 300 such steps where its own model takes 50 of 32 labels.
   ``progressive_local_floor16`` and ``progressive_local_floor32`` are the product's progressive system whose
   branches step only once their head has met 16 or 32 labels since their last step, on the label-weighted mean
   of the gradients between (``AttributeSchedule.head_min_rows``; the trunk steps on every batch). Run
   ``--trunk product --systems progressive_local,progressive_local_floor16,progressive_local_floor32,
   per_attribute_local --result attributes_head_floor``.
13. Where the one-vertical heads' deficit lives. One model per attribute fine-tunes its own trunk for its one head;
   progressive shares one trunk among all. ``per_attribute_local_frozen`` is the per-attribute models with the
   trunk frozen (each branch alone on the unified trunk, the same steps): if its heel and strap score like
   ``per_attribute_local``'s, a trunk of their own is not what those heads gain. Diagnostic, no default rides on
   it; run ``--trunk product --systems progressive_local,per_attribute_local,per_attribute_local_frozen
   --datasets synthetic --result attributes_frozen_trunk``.
14. A trunk stage of each head's own. Item 13 found heel short of trunk adaptation in the shared system: frozen, the
   unified trunk gives it less than its own model's trunk does. ``progressive_local_adapter`` is the product's
   progressive system whose branches each add to the last map a correction of their own from the penultimate one
   (``ApparelSpec.branch_adapter``: 1×1 reduce, 3×3 stride-2 conv, 1×1 expand, zero at the start; about 90 k
   parameters a head at resnet18), trained by that head's loss alone; ``per_attribute_local_adapter`` gives the
   per-attribute models the same branches, as attributes.py would if it became the default. Rule, fixed before
   the run: the adapter becomes the product's default only if progressive_local_adapter / progressive_local has a
   mean over the four cells (two catalogs, 0 and 80 % missing) of at least 1 with no cell below 0.98, and the worst
   cell of progressive_local_adapter / per_attribute_local_adapter is at least progressive_local /
   per_attribute_local's. Run ``--trunk product --systems progressive_local,progressive_local_adapter,
   per_attribute_local,per_attribute_local_adapter --result attributes_branch_adapter``.
   It failed the rule (mean of the four cells 0.995; worst cell against per_attribute_local_adapter 0.978, against
   1.011 without adapters), so ``branch_adapter`` stays off.
``per_attribute`` is one free model per attribute, as in attributes.py.

The ``progressive`` systems here train each new branch alone for b = S/5 steps, the product's default when
these experiments ran; item 5 led it to S/25 (``benchmarks/attributes.py`` now uses that).
Per seed and missing rate, every system trains in one process on the same trunk and label drops, from
``torch.manual_seed(seed)`` and its own ``AttributeSchedule(seed=seed)``: systems under one seed draw the
same batches and flips. Budgets are attributes.py's (S = ``--steps`` per attribute, N×S optimiser steps per
system, batches of 32 from the rows labelled for the heads trained, trunk 100 steps per vertical, 32 px).
Scores: mean test attribute accuracy, and Recall@1 of the trunk's embedding for the systems that keep one,
next to the unified trunk's own (by the trunk's training label: product on the synthetic catalog,
articleType+baseColour on the real one; per vertical, pooled over queries). Ratios are means of paired
per-seed ratios with 95 % t intervals. Each finished seed is kept under runs/benchmarks/<result>/ (a file per
dataset, the trunk beside it), so an interrupted run resumes at its next seed, more seeds extend a finished run,
and the datasets can run in two processes at once (``--datasets``).

    python benchmarks/attributes_recipes.py [--seeds 3] [--datasets synthetic,fashion-products] [--threads 1]
        [--systems a,b,...] [--result attributes_recipes]
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from attributes import (  # noqa: E402
    Setup,
    catalogs,
    drop_labels,
    mean_accuracy,
    prepare,
    schedule,
    trunk_config,
)
from common import ROOT, load_average, paired_ratio, settings_key, write_result  # noqa: E402
from resume import done_elsewhere, resumed, save_record  # noqa: E402

from apparel.config import Config  # noqa: E402
from apparel.data.manifest import Dataset  # noqa: E402
from apparel.evaluation.attributes import evaluate_attributes  # noqa: E402
from apparel.evaluation.embeddings import evaluate_models  # noqa: E402
from apparel.evaluation.retrieval import query_weighted  # noqa: E402
from apparel.models.attributes import (  # noqa: E402
    LOCAL_WIDTH,
    ApparelNet,
    ApparelSpec,
    AttributeBranch,
    AttributeSpec,
)
from apparel.models.embedding import FEATURE_DIMS, MIDDLE_CHANNELS, EmbeddingNet  # noqa: E402
from apparel.models.pooling import HeatmapPooling  # noqa: E402
from apparel.train.attributes import (  # noqa: E402
    SharedHeadNet,
    encode_targets,
    steps_per_attribute,
    train_heads,
    train_multilabel,
    train_per_attribute,
    train_progressive,
)

MISSING_RATES = (0.0, 0.8)
SYSTEMS = ("progressive", "progressive_free", "progressive_probe", "multilabel", "multilabel_anchored",
           "per_attribute", "per_attribute_probe")  # the default run; --systems may also name the *_balanced ones
# Ratios reported (top / bottom), where both systems ran.
PAIRS = (("progressive", "multilabel"), ("progressive", "per_attribute"), ("progressive", "multilabel_anchored"),
         ("progressive_free", "multilabel"), ("progressive_free", "per_attribute"), ("progressive", "progressive_free"),
         ("progressive_probe", "progressive"), ("progressive_probe", "multilabel"),
         ("progressive_probe", "per_attribute_probe"), ("progressive_probe", "per_attribute"),
         ("progressive_balanced", "progressive"), ("multilabel_balanced", "multilabel"),
         ("progressive_balanced", "multilabel_balanced"), ("progressive_balanced", "per_attribute"),
         ("progressive_features", "progressive"), ("progressive_features", "multilabel"),
         ("progressive_features", "per_attribute"), ("progressive_fresh", "progressive"),
         ("progressive_fresh", "multilabel"), ("progressive_fresh", "per_attribute"),
         ("multilabel_trunk_steps", "multilabel"), ("progressive", "multilabel_trunk_steps"),
         ("progressive_short_alone", "progressive"), ("progressive_short_alone", "multilabel"),
         ("progressive_short_alone", "per_attribute"), ("progressive_one_optimizer", "progressive"),
         ("progressive_one_optimizer", "multilabel"), ("progressive_linear", "progressive"),
         ("progressive_linear", "multilabel"), ("joint_branches", "progressive"), ("joint_branches", "multilabel"),
         ("progressive_wide", "progressive"), ("progressive_wide", "multilabel"),
         ("progressive_overlap", "progressive_short_alone"), ("progressive_overlap", "multilabel"),
         ("multilabel_reseeded", "multilabel"), ("progressive_local", "multilabel"),
         ("progressive_local", "progressive_short_alone"), ("multilabel_local", "multilabel"),
         ("progressive_local", "multilabel_local"), ("progressive_local_balanced", "progressive_local"),
         ("progressive_local", "per_attribute_local"), ("progressive_local_balanced", "per_attribute_local"),
         ("progressive_local_floor16", "progressive_local"), ("progressive_local_floor32", "progressive_local"),
         ("progressive_local_floor16", "per_attribute_local"), ("progressive_local_floor32", "per_attribute_local"),
         ("per_attribute_local_frozen", "per_attribute_local"), ("progressive_local", "per_attribute_local_frozen"),
         ("progressive_local_adapter", "progressive_local"), ("per_attribute_local_adapter", "per_attribute_local"),
         ("progressive_local_adapter", "per_attribute_local_adapter"),
         ("progressive_local_adapter", "per_attribute_local"))
ADAPTED = ("progressive_local_adapter", "per_attribute_local_adapter")  # ApparelSpec.branch_adapter on
FLOORS = {"progressive_local_floor16": 16, "progressive_local_floor32": 32}  # labels per branch step
ANCHORED = ("progressive", "progressive_probe", "progressive_balanced", "progressive_features", "progressive_fresh",
            "progressive_short_alone", "multilabel_anchored", "progressive_one_optimizer", "progressive_linear",
            "joint_branches", "progressive_wide", "progressive_overlap", "progressive_local",
            "progressive_local_balanced", "progressive_local_adapter", *FLOORS)  # weight 1.0, else 0


LOCAL_MAPS = 2  # heatmaps per local branch (``ApparelSpec.local_maps``)


class ProbedBranch(AttributeBranch):
    """A branch whose logits add a linear probe of the pooled trunk features."""

    def __init__(self, in_channels: int, n_classes: int, width: int = 64, attention: bool = False) -> None:
        super().__init__(in_channels, n_classes, width, attention)
        self.probe = nn.Linear(in_channels, n_classes)

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        return super().forward(feature_map) + self.probe(feature_map.mean(dim=(2, 3)))


class ProbedNet(ApparelNet):
    def _new_branch(self, attribute: AttributeSpec) -> AttributeBranch:
        return ProbedBranch(FEATURE_DIMS[self.spec.base.backbone], len(attribute.classes), self.spec.branch_width,
                            self.spec.attention)


class SharedLocalHeadNet(SharedHeadNet):
    """The multi-label model with one shared local pooling (as many maps as a branch's, times the attributes,
    capped at the landmark model's 8) beside its pooled trunk features: the control for the local branches."""

    def __init__(self, base: EmbeddingNet, specs: list[AttributeSpec]) -> None:
        super().__init__(base, specs)
        self.local = HeatmapPooling(MIDDLE_CHANNELS[base.spec.backbone], min(8, LOCAL_MAPS * len(specs)), LOCAL_WIDTH)
        self.head = nn.Linear(FEATURE_DIMS[base.spec.backbone] + self.local.out_dim, self.head.out_features)

    def forward_logits(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        maps = self.base.feature_maps(images)
        local, _ = self.local(maps.middle)
        logits = self.head(torch.cat([maps.last.mean(dim=(2, 3)), local], dim=1))
        return self.base.embed_features(maps.last), self.by_attribute(logits)


class LinearBranch(AttributeBranch):
    """A linear classifier of the pooled trunk features: the multi-label head's share for one attribute."""

    def __init__(self, in_channels: int, n_classes: int, width: int = 64, attention: bool = False) -> None:
        super().__init__(in_channels, n_classes, width, attention)
        self.features = nn.Identity()
        self.classifier = nn.Linear(in_channels, n_classes)


class LinearNet(ApparelNet):
    def _new_branch(self, attribute: AttributeSpec) -> AttributeBranch:
        return LinearBranch(FEATURE_DIMS[self.spec.base.backbone], len(attribute.classes))


def with_branches(trunk: EmbeddingNet, probe: bool = False, branch_init: str = "previous", linear: bool = False,
                  width: int = 64, local: bool = False, adapter: bool = False) -> ApparelNet:
    """An ApparelNet with no branches yet around ``trunk``, its branches probed, linear, local (and adapted) or
    plain."""
    spec = ApparelSpec(base=trunk.spec, branch_init=branch_init, branch_width=width,
                       local_maps=LOCAL_MAPS if local else 0, branch_adapter=adapter)
    return (ProbedNet if probe else LinearNet if linear else ApparelNet)(spec, base=trunk)


def train_system(name: str, base: EmbeddingNet, specs, images, targets, anchor, seed: int):
    probe, balanced = name.endswith("probe"), name.endswith("balanced")
    weight = 1.0 if name in ANCHORED else 0.0
    # b = S/5, the default when most of these experiments ran; progressive_short_alone, progressive_overlap and
    # the local-branch systems take attributes.py's (S/25), the product's default
    local = name in ("progressive_local", "progressive_local_balanced", "per_attribute_local",
                     "per_attribute_local_frozen", *FLOORS, *ADAPTED)
    adapter = name in ADAPTED
    short = local or name in ("progressive_short_alone", "progressive_overlap")
    if name == "multilabel_reseeded":
        seed += 1000
        torch.manual_seed(seed)
    anchor = anchor if weight else None
    plan = schedule(ARGS.steps, seed, None if short else ARGS.steps // 5, embedding_weight=weight,
                    balanced_heads=balanced, one_optimizer=name == "progressive_one_optimizer",
                    branch_parent="overlap" if name == "progressive_overlap" else "latest",
                    head_min_rows=FLOORS.get(name, 0))
    if name == "multilabel_trunk_steps":  # N×(f + F) steps: the progressive trunk's, without its branch-alone ones
        plan = replace(plan, branch_steps=0)
    if name == "per_attribute_local_frozen":  # each branch alone on the shared, unchanged unified trunk
        models = {}
        for spec in specs:
            models[spec.name] = with_branches(copy.deepcopy(base), local=True)
            models[spec.name].add_branch(spec)
            train_heads(models[spec.name], [spec], images, targets, steps_per_attribute(plan), plan, False)
        return models
    if name.startswith("per_attribute"):
        return train_per_attribute(base, specs, images, targets, plan, partial(with_branches, probe=probe,
                                                                              local=local, adapter=adapter))
    if name == "multilabel_local":
        model = SharedLocalHeadNet(copy.deepcopy(base), specs)
        train_heads(model, specs, images, targets, len(specs) * steps_per_attribute(plan), plan, True, anchor)
        return model
    if name.startswith("multilabel"):
        return train_multilabel(base, specs, images, targets, plan, anchor)
    if name == "joint_branches":
        model = with_branches(copy.deepcopy(base), branch_init="none")
        for spec in specs:
            model.add_branch(spec)
        train_heads(model, specs, images, targets, len(specs) * steps_per_attribute(plan), plan, True, anchor)
        return model
    branch_init = {"progressive_features": "features", "progressive_fresh": "none"}.get(name, "previous")
    model = with_branches(copy.deepcopy(base), probe, branch_init, linear=name == "progressive_linear",
                          width=256 if name == "progressive_wide" else 64, local=local, adapter=adapter)
    return train_progressive(model, specs, images, targets, plan, anchor, log=lambda line: None)


def recall_at_1(trunk: EmbeddingNet, setup: Setup) -> float:
    """Recall@1 by the trunk's training label, each vertical in its own gallery, pooled over queries."""
    scores = evaluate_models({v: trunk for v in setup.test["vertical"].unique()}, setup.test, setup.label)
    return round(query_weighted(scores)["recall@1"], 4)


def run_seed(setup: Setup, seed: int) -> dict:
    base, specs, images, anchor, test = setup.base, setup.specs, setup.images, setup.anchor, setup.test
    out: dict = {}
    for rate in ARGS.missing_rates:
        targets = encode_targets(drop_labels(setup.train, setup.names, rate, seed=seed * 1000 + int(rate * 100)), specs)
        accuracy, recall, heads = {}, {}, {}
        for name in ARGS.systems:
            torch.manual_seed(seed)
            model = train_system(name, base, specs, images, targets, anchor, seed)
            routed = model if isinstance(model, dict) else {s.name: model for s in specs}
            scores = evaluate_attributes(routed, test, specs, base.spec.image_size)
            accuracy[name] = round(mean_accuracy(scores), 4)
            heads[name] = {head: round(metrics["accuracy"], 4) for head, metrics in scores.items()}
            if not isinstance(model, dict):
                recall[name] = recall_at_1(model.base, setup)
        out[str(rate)] = {"accuracy": accuracy, "recall@1": recall, "heads": heads}
        print(f"seed {seed} missing {rate:.0%}: " + " ".join(f"{n}={a:.3f}" for n, a in accuracy.items())
              + " | R@1 " + " ".join(f"{n}={r:.3f}" for n, r in recall.items()), flush=True)
    return out


def run_dataset(config: Config, root: Path, names: list[str], cache: Path) -> dict:
    """Every seed of one dataset; each finished seed goes to ``cache`` (``resume.resumed``)."""
    done = resumed(cache, Dataset.load(root).info.version)
    setup = prepare(config, root, names, cache.with_suffix(".trunk"))
    if "unified_recall@1" not in done:  # the trunk's, kept beside the cache with it
        done["unified_recall@1"] = recall_at_1(setup.base, setup)
    for seed in range(len(done["per_seed"]), ARGS.seeds):
        start = time.perf_counter()
        done["per_seed"].append(run_seed(setup, seed))
        save_record(cache, done)
        print(f"{root.name} seed {seed}: {time.perf_counter() - start:.0f}s (load {load_average()[0]})", flush=True)
    return finished(done)


def finished(done: dict) -> dict:
    """One dataset's result from its cached seeds (the first ``--seeds`` of them)."""
    per_seed = done["per_seed"][:ARGS.seeds]
    ratios: dict = {}
    for rate in map(str, ARGS.missing_rates):
        accuracy = {name: [s[rate]["accuracy"][name] for s in per_seed] for name in per_seed[0][rate]["accuracy"]}
        for top, bottom in PAIRS:
            if top in accuracy and bottom in accuracy:
                ratios |= paired_ratio(accuracy[top], accuracy[bottom], f"{rate}.", f"{top}_over_{bottom}")
        recall = {name: [s[rate]["recall@1"][name] for s in per_seed] for name in per_seed[0][rate]["recall@1"]}
        for name, values in recall.items():
            ratios[f"{rate}.recall@1_{name}"] = round(float(np.mean(values)), 4)
    return {"per_seed": per_seed, "unified_recall@1": done["unified_recall@1"], "ratios": ratios}


def main() -> None:
    torch.set_num_threads(ARGS.threads)
    load_at_start = load_average()
    torch.manual_seed(0)
    base = trunk_config(ARGS.image_size, 100, product=ARGS.trunk == "product")
    settings = {"steps_per_attribute": ARGS.steps, "missing_rates": tuple(ARGS.missing_rates), "seeds": ARGS.seeds,
                "batches": "labelled_rows", "systems": tuple(ARGS.systems)}
    if ARGS.image_size != 32:  # the key of the runs before the option existed, all at 32 px, stays as it was
        settings["image_size"] = ARGS.image_size
    if ARGS.trunk != "scratch":  # likewise
        settings["trunk"] = ARGS.trunk
    key = settings_key({k: v for k, v in settings.items() if k != "seeds"})
    work = ROOT / "runs" / "benchmarks" / ARGS.result
    # a file of finished seeds per dataset: a run resumes, more seeds extend it, datasets may run in two processes
    caches = {name: work / f"{name}-seeds-{key}.json" for name in ("synthetic", "fashion-products")}
    work.mkdir(parents=True, exist_ok=True)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, config, root, names in catalogs(base, Path(tmp), ARGS.datasets, 120):
            results[name] = run_dataset(config, root, names, caches[name])
    results |= {name: finished(done) for name, done in done_elsewhere(caches, results, ARGS.seeds).items()}
    summary = {f"{d}.{k}": v for d, r in results.items() for k, v in r["ratios"].items()}
    summary |= {f"{d}.unified_recall@1": r["unified_recall@1"] for d, r in results.items()}
    write_result(ARGS.result, {"summary": summary, "datasets": results,
                               "settings": {**settings, "threads": ARGS.threads}}, load_at_start)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50, help="steps per attribute")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--trunk", choices=("scratch", "product"), default="scratch",
                        help="the unified trunk: specialists from scratch, or the product's (generalist first)")
    parser.add_argument("--systems", type=lambda s: s.split(","), default=list(SYSTEMS))
    parser.add_argument("--result", default="attributes_recipes", help="result file (and cache folder) name")
    parser.add_argument("--datasets", type=lambda s: s.split(","), default=["synthetic", "fashion-products"])
    parser.add_argument("--missing-rates", type=lambda s: [float(r) for r in s.split(",")], default=list(MISSING_RATES))
    ARGS = parser.parse_args()
    main()
