"""Progressive attribute branches vs one model per attribute vs one multi-label model, and channel-wise
attention in the progressive branches on vs off.

All systems start from the same unified trunk, trained once per dataset with the product's recipe
(``train.generalist_share`` of the teachers' steps on a generalist, each specialist fine-tuned from it at
``train.specialist_lr``, the student distilled from them for V×S steps starting from the generalist; runs before
2026-11-28 used specialists from scratch, Song et al.'s recipe) and get the same total number of optimiser
steps, N×S for N attributes and S = ``--steps``; labels are dropped at random from the training split only
(0 %, 50 %, 80 %), the test split keeps every label. Each seed re-draws the dropped labels, the heads'
initialisation and the batches; ratios are means of paired per-seed ratios of mean test accuracy, with 95 % t
intervals over seeds.

Optimiser steps each head sees (b = S/25 branch-alone steps on a frozen trunk, f = S/10 joint fine-tune steps
after each new branch, F = S - b - f end-to-end steps per head once all are in; at S = 50 the product's own
b = 2 and f = 5; batches of 32):
  * progressive, head i of N: b + f×(N - i + 1) + N×F steps (the trunk: N×(f + F));
  * per-attribute: b + f + F = S steps each, on its own copy of the trunk;
  * multi-label: one shared linear head over all attributes, N×S steps, every attribute in every step.
Every branch, progressive and per-attribute, is the product's (``train.attribute_local_maps`` heatmaps pooling
the trunk's layer2 map beside its last one, ``apparel.models.attributes``); the multi-label head reads the
pooled last map, as one shared linear layer.
Every phase of every system draws its batches from the training rows labelled for at least one of the heads it
trains (``apparel.train.attributes.labelled_rows``, the product's rule; ``batches: labelled_rows`` in the
settings): at 80 % missing a branch trained alone sees only rows with its own label.
The summary's ``*_worst`` ratios are the smallest over missing rates and datasets. Sizes and single-image
latencies (timed in alternation) are measured in the same process; the latency baseline is the
embedding-only model. The landmark-pooled local branch of FashionNet is measured as its own ablation in
``benchmarks/landmarks.py`` (synthetic catalog only: the real catalog has no landmark labels).

Each dataset's trunk and finished seeds are kept under runs/benchmarks/attributes/, so an interrupted run
resumes at its next seed, ``--seeds`` can extend a finished run, the datasets can run in separate processes
(``--datasets``) and the result file merges every dataset finished under the same settings.

    python benchmarks/attributes.py [--seeds 5] [--steps 50] [--image-size 32] [--base-steps 100] [--datasets synthetic]
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    ROOT,
    SHARED_DATA,
    load_average,
    mean_interval,
    paired_ratio,
    settings_key,
    write_result,
)
from resume import done_elsewhere, resumed, save_record  # noqa: E402
from unified import configure, distill, train_generalist, train_teachers  # noqa: E402

from apparel.config import Config, load_config  # noqa: E402
from apparel.data.dataset import load_images, normalize  # noqa: E402
from apparel.data.manifest import Dataset  # noqa: E402
from apparel.evaluation.attributes import evaluate_attributes  # noqa: E402
from apparel.models.attributes import ApparelNet, from_embedding  # noqa: E402
from apparel.models.embedding import EmbeddingNet, count_parameters  # noqa: E402
from apparel.stages.data import generate_stage, ingest_stage  # noqa: E402
from apparel.train.attributes import (  # noqa: E402
    AttributeSchedule,
    attribute_specs,
    encode_targets,
    train_multilabel,
    train_per_attribute,
    train_progressive,
)
from apparel.train.loop import embed  # noqa: E402

MISSING_RATES = (0.0, 0.5, 0.8)
PRODUCT = load_config(environ={}).train
LOCAL_MAPS = PRODUCT.attribute_local_maps  # the product's branches, here and per attribute
DATASETS = ("synthetic", "fashion-products")
WORK = ROOT / "runs" / "benchmarks" / "attributes"


def trunk_config(image_size: int, steps: int, product: bool = True) -> Config:
    """What a unified trunk trains under: ``steps`` per vertical at ``image_size``, with the product's recipe (a
    generalist first) or, with ``product`` False, specialists from scratch (Song et al.'s)."""
    share, lr = (PRODUCT.generalist_share, PRODUCT.specialist_lr) if product else (0.0, None)
    return configure(load_config(environ={"APPAREL__MODEL__IMAGE_SIZE": str(image_size)}), steps, 0, "product_id",
                     share, lr)


def unified_trunk(config: Config, root: Path) -> EmbeddingNet:
    """The product's unified model: a generalist, teachers fine-tuned from it, a student distilled from them."""
    verticals = Dataset.load(root).verticals
    with tempfile.TemporaryDirectory() as scratch:
        start = train_generalist(config, root, verticals, Path(scratch))
        return distill(config, root, train_teachers(config, root, verticals, start), Path(scratch), start=start)


def drop_labels(frame, names: list[str], rate: float, seed: int):
    rng = np.random.default_rng(seed)
    frame = frame.copy()
    for name in names:
        frame.loc[rng.random(len(frame)) < rate, name] = None
    return frame


@torch.no_grad()
def latency_ms(runs: dict[str, object], image: torch.Tensor, repeats: int = 20) -> dict[str, float]:
    """Median time of one single-image request (what a serving call pays) per system, the systems timed
    in alternation so that whatever else the machine does falls on all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for repeat in range(repeats + 3):
        for name, run in runs.items():
            start = time.perf_counter()
            run(image)
            if repeat >= 3:
                times[name].append(time.perf_counter() - start)
    return {name: 1000 * float(np.median(t)) for name, t in times.items()}


def mean_accuracy(scores: dict) -> float:
    return float(np.mean([s["accuracy"] for s in scores.values()]))


@dataclass
class Setup:
    """One dataset's inputs to every system: its trunk, training images and their unified embeddings."""

    label: str  # what the trunk was trained to retrieve
    base: EmbeddingNet
    specs: list
    images: torch.Tensor
    anchor: torch.Tensor
    train: pd.DataFrame
    test: pd.DataFrame
    names: list[str]


def prepare(config: Config, root: Path, names: list[str], trunk: Path | None = None) -> Setup:
    """The dataset's inputs; its trunk is trained once, and kept in ``trunk`` (when given) for later runs."""
    dataset = Dataset.load(root)
    if trunk is not None and (trunk / "weights.pt").is_file():
        base = EmbeddingNet.load(trunk)
    else:
        base = unified_trunk(config, root)
        if trunk is not None:
            base.save(trunk)
    train = dataset.split("train")
    images = load_images(train["image"].tolist(), base.spec.image_size)
    return Setup(config.data.label, base, attribute_specs(dataset, names), images,
                 torch.from_numpy(embed(base, images)), train, dataset.split("test"), names)


def schedule(steps: int, seed: int, branch_steps: int | None = None, **options) -> AttributeSchedule:
    """S = ``steps`` per attribute: ``branch_steps`` with each new branch alone (default S/25: at S = 50 the
    product's 2), S/10 fine-tuning after it, the rest end to end; batches of 32."""
    branch = steps // 25 if branch_steps is None else branch_steps
    return AttributeSchedule(branch_steps=branch, finetune_steps=steps // 10,
                             final_steps_per_head=steps - branch - steps // 10, batch_size=32, seed=seed, **options)


def with_branches(trunk: EmbeddingNet, attention: bool = False) -> ApparelNet:
    """No branches yet around ``trunk``; every branch added will be the product's."""
    return from_embedding(trunk, attention=attention, local_maps=LOCAL_MAPS)


def run_seed(setup: Setup, seed: int) -> dict:
    """Every system at every missing rate for one seed: {rate: {system: {attribute: metrics}}}."""
    base, specs, images, anchor, train, test = (setup.base, setup.specs, setup.images, setup.anchor, setup.train,
                                                setup.test)
    plan = schedule(ARGS.steps, seed)
    scores: dict = {}
    for rate in MISSING_RATES:
        targets = encode_targets(drop_labels(train, setup.names, rate, seed=seed * 1000 + int(rate * 100)), specs)
        torch.manual_seed(seed)
        systems = {"progressive": train_progressive(with_branches(copy.deepcopy(base)), specs, images, targets,
                                                    plan, anchor, log=lambda line: None)}
        if ARGS.attention:
            systems["progressive_attention"] = train_progressive(
                with_branches(copy.deepcopy(base), attention=True), specs, images, targets, plan, anchor,
                log=lambda line: None)
        per_attribute = train_per_attribute(base, specs, images, targets, plan, with_branches)
        multilabel = train_multilabel(base, specs, images, targets, plan)
        routed = {name: {s.name: model for s in specs} for name, model in systems.items()}
        routed |= {"per_attribute": per_attribute, "multilabel": {s.name: multilabel for s in specs}}
        scores[str(rate)] = {name: evaluate_attributes(models, test, specs, base.spec.image_size)
                             for name, models in routed.items()}
        print(f"seed {seed} missing {rate:.0%}: " + " ".join(
            f"{n}={mean_accuracy(scores[str(rate)][n]):.3f}" for n in routed), flush=True)
    scores["models"] = {"progressive": systems["progressive"], "per_attribute": per_attribute,
                        "multilabel": multilabel}
    return scores


def catalogs(base: Config, work: Path, wanted: list[str], products: int
             ) -> Iterator[tuple[str, Config, Path, list[str]]]:
    """Each wanted dataset ingested under ``work``: (name, config, dataset folder, attribute names). The
    real catalog's models train on articleType+baseColour, its attributes are five of its columns."""
    if "synthetic" in wanted:
        labels = generate_stage(base, work / "synthetic", {"products_per_vertical": products, "views_per_product": 4})
        ingest_stage(base, labels.parent, work / "synthetic-ds")
        yield "synthetic", base, work / "synthetic-ds", Dataset.load(work / "synthetic-ds").info.attributes
    real = SHARED_DATA / "fashion-products"
    if "fashion-products" in wanted and real.is_dir():
        config = base.model_copy(update={"data": base.data.model_copy(update={"label": "articleType+baseColour"})})
        ingest_stage(config, real, work / "real-ds", "fashion-products")
        yield "fashion-products", config, work / "real-ds", ["baseColour", "articleType", "gender", "season", "usage"]


def sizes(setup: Setup, models: dict) -> dict:
    """Single-image latency and parameters of one seed's systems: the architecture sets them, not the weights."""
    base, per_attribute = setup.base, models["per_attribute"]
    image = normalize(load_images(setup.test["image"].tolist()[:1], base.spec.image_size))
    return {"latency_ms": latency_ms({
        "embedding_only": base.eval(), "progressive": models["progressive"].eval(),
        "per_attribute": lambda x: [m.eval()(x) for m in per_attribute.values()],
        "multilabel": lambda x: models["multilabel"].eval().forward_logits(x)}, image),
        "params": {"progressive": count_parameters(models["progressive"]),
                   "per_attribute": sum(count_parameters(m) for m in per_attribute.values()),
                   "multilabel": count_parameters(models["multilabel"]), "embedding_only": count_parameters(base)}}


def run_dataset(config: Config, root: Path, names: list[str], cache: Path) -> dict:
    """Every seed of one dataset, resumed from ``cache``."""
    done = resumed(cache, Dataset.load(root).info.version)
    setup = prepare(config, root, names, cache.with_suffix(".trunk"))
    done["attributes"] = [spec.name for spec in setup.specs]  # every head trained, scored or not
    for seed in range(len(done["per_seed"]), ARGS.seeds):
        start = time.perf_counter()
        scores = run_seed(setup, seed)
        done["sizes"] = sizes(setup, scores.pop("models"))
        done["per_seed"].append(scores)
        save_record(cache, done)
        print(f"{root.name} seed {seed}: {time.perf_counter() - start:.0f}s (load {load_average()[0]})", flush=True)
    return finished(done)


def finished(done: dict) -> dict:
    """One dataset's result from its cached seeds (the first ``--seeds`` of them)."""
    per_seed = done["per_seed"][:ARGS.seeds]
    results: dict = {"by_missing_rate_per_seed": per_seed, **done["sizes"]}
    results["mean_accuracy"] = {rate: {system: [round(mean_accuracy(s[rate][system]), 4) for s in per_seed]
                                       for system in per_seed[0][rate]} for rate in per_seed[0]}
    ratios = {}
    for rate, systems in results["mean_accuracy"].items():
        for bottom in ("multilabel", "per_attribute"):
            ratios |= paired_ratio(systems["progressive"], systems[bottom], f"{rate}.", f"progressive_over_{bottom}")
        if "progressive_attention" in systems:
            ratios |= paired_ratio(systems["progressive_attention"], systems["progressive"], f"{rate}.",
                                   "attention_over_plain")
    results["ratios_by_missing_rate"] = ratios
    results["summary"] = {
        "size_ratio_over_per_attribute": round(results["params"]["progressive"]
                                               / results["params"]["per_attribute"], 4),
        "one_over_n": round(1 / len(done["attributes"]), 4),
        "latency_ratio_over_embedding_only": round(results["latency_ms"]["progressive"]
                                                   / results["latency_ms"]["embedding_only"], 4),
        "images_per_s_progressive": round(1000 / results["latency_ms"]["progressive"], 1),
    }
    return results


def worst(results: dict[str, dict], name: str) -> dict[str, float | str]:
    """The smallest mean ratio over missing rates and datasets, with its interval and where it is."""
    cases = [(dataset, key.removesuffix(f".{name}"), result["ratios_by_missing_rate"])
             for dataset, result in results.items()
             for key in result["ratios_by_missing_rate"] if key.endswith(f".{name}")]
    dataset, rate, ratios = min(cases, key=lambda c: c[2][f"{c[1]}.{name}"])
    return {f"{name}_worst": ratios[f"{rate}.{name}"], f"{name}_worst_ci_low": ratios[f"{rate}.{name}_ci_low"],
            f"{name}_worst_ci_high": ratios[f"{rate}.{name}_ci_high"], f"{name}_worst_case": f"{dataset} {rate}"}


def pooled(results: dict[str, dict], bottom: str) -> dict[str, float]:
    """progressive / ``bottom`` over every dataset and missing rate at once: per seed, the mean of the six
    cases' ratios, then the mean over seeds with its t interval. The worst case is the minimum of six noisy
    ratios, so it sits below the systems' true ratio even when they are equal; this figure does not."""
    per_case = [np.array(rates["progressive"]) / np.array(rates[bottom])
                for result in results.values() for rates in result["mean_accuracy"].values()]
    return mean_interval(np.mean(per_case, axis=0), f"progressive_over_{bottom}_pooled")


def summary(results: dict[str, dict]) -> dict:
    out = {f"{d}.{k}": v for d, r in results.items() for k, v in r["summary"].items()}
    out |= {f"{d}.{k}": v for d, r in results.items() for k, v in r["ratios_by_missing_rate"].items()}
    out |= worst(results, "progressive_over_multilabel") | worst(results, "progressive_over_per_attribute")
    out |= pooled(results, "multilabel") | pooled(results, "per_attribute")
    attention = [r["ratios_by_missing_rate"][f"{rate}.attention_over_plain"] for r in results.values()
                 for rate in map(str, MISSING_RATES) if f"{rate}.attention_over_plain" in r["ratios_by_missing_rate"]]
    if attention:
        out["attention_over_plain"] = round(float(np.mean(attention)), 4)  # mean over datasets and missing rates
    return out


def main() -> None:
    torch.set_num_threads(ARGS.threads)
    load_at_start = load_average()
    torch.manual_seed(0)
    base = trunk_config(ARGS.image_size, ARGS.base_steps)
    settings = {"steps_per_attribute": ARGS.steps, "image_size": ARGS.image_size, "missing_rates": MISSING_RATES,
                "seeds": ARGS.seeds, "base_steps_per_vertical": ARGS.base_steps, "attention": ARGS.attention,
                "synthetic_products_per_vertical": ARGS.products, "batches": "labelled_rows",
                "branch_alone_steps": schedule(ARGS.steps, seed=0).branch_steps, "local_maps": LOCAL_MAPS,
                "trunk_generalist_share": PRODUCT.generalist_share, "trunk_specialist_lr": PRODUCT.specialist_lr}
    key = settings_key({k: v for k, v in settings.items() if k != "seeds"})
    # One file of finished seeds per dataset, so the datasets can run in separate processes at once
    # (--datasets) and the result always holds every dataset with the seeds asked for under these settings.
    caches = {name: WORK / f"{name}-seeds-{key}.json" for name in DATASETS}
    WORK.mkdir(parents=True, exist_ok=True)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, config, root, names in catalogs(base, Path(tmp), ARGS.datasets, ARGS.products):
            results[name] = run_dataset(config, root, names, caches[name])
    results |= {name: finished(done) for name, done in done_elsewhere(caches, results, ARGS.seeds).items()}
    write_result("attributes", {"summary": summary(results), "datasets": results,
                                "settings": {**settings, "threads": ARGS.threads}}, load_at_start)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50, help="steps per attribute (branch + fine-tune)")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--base-steps", type=int, default=100, help="steps per vertical for the unified trunk")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--products", type=int, default=120, help="synthetic products per vertical")
    parser.add_argument("--no-attention", dest="attention", action="store_false",
                        help="skip the attention-on progressive system")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--datasets", type=lambda s: s.split(","), default=list(DATASETS))
    ARGS = parser.parse_args()
    main()
