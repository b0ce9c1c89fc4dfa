"""How many verticals one triplet model should hold (Song et al.'s sweet spot), on fashion-products and the
synthetic catalog.

For each group size g = 1..V the verticals (in alphabetical order) are cut into contiguous groups of g (the
last may be smaller) and each group gets one triplet model, trained from scratch for |group|×S steps (one P×K
batch of 8×4 images per step, AdamW, cosine schedule over 4 epochs: ``unified.configure``). Every vertical's
share of the budget is S at every size and every size costs V×S steps in all: size 1 is Song et al.'s
specialists from scratch, size V the all-in-one model. Each vertical is scored with its group's model on the
test split, in its own gallery, leave one out, on the label the models train on (fashion-products:
articleType+baseColour, also articleType; synthetic: product_id); verticals whose test gallery holds a single
class are left out and listed. fashion-products' models are also scored on the unified benchmark's unseen
catalog (``unseen.`` keys: the images of fashion-products-224 whose product ids are not in fashion-products,
near-duplicates of its images left out; ``unified.unseen_images``), about 13 times its test split.

Summary, per dataset and label: pooled Recall@1 (all queries of the scored verticals together) of every size,
and every size over the all-in-one (size V) and over the specialists (size 1) as means of paired per-seed
ratios with 95 % t intervals. The best size is the one with the highest mean over these same seeds: it is
picked on the test split, so its ratio is an upper estimate; the curve, not the pick, is the finding.

Results: ``sweet_spot.json`` (and ``.png``) at the product's input size (``model.image_size``, 48 px),
``sweet_spot_32px.json`` at the 32 px where the unified recipes were compared (``--image-size 32``).

Seeds are kept under runs/benchmarks/unified/ as they finish (a file per dataset and seed), so an interrupted run
resumes and datasets and ranges of seeds can train in separate processes at once (``--datasets``,
``--first-seed``).

    python benchmarks/sweet_spot.py [--seeds 3] [--first-seed 0] [--steps 50] [--image-size 48]
                                    [--datasets fashion-products,synthetic] [--threads 1]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from common import RESULTS, load_average, paired_ratio, settings_key, write_result
from resume import finished_seeds, save_seed, seed_done
from unified import (
    PRODUCT,
    UNSEEN_TESTS,
    WORK,
    configure,
    degenerate_verticals,
    pooled_recall_at_1,
    prepare,
    train_group,
)

from apparel.config import Config, load_config
from apparel.data.manifest import Dataset
from apparel.evaluation.embeddings import evaluate_models
from apparel.train.specialists import contiguous_groups

SYNTHETIC_PRODUCTS = 120  # per vertical, as in unified.py: the same ingested catalog


def run_seed(config: Config, root: Path, labels: list[str]) -> dict:
    """{label: {group size: {vertical: scores}}} for one seed, on the test split and (``unseen`` + label) on
    the unseen catalog where the dataset has one."""
    dataset = Dataset.load(root)
    verticals, test, unseen = dataset.verticals, dataset.split("test"), UNSEEN_TESTS.get(root.name)
    scores: dict = {label: {} for label in labels} | ({f"unseen {label}": {} for label in labels} if unseen is not None
                                                       else {})
    for size in range(1, len(verticals) + 1):
        models = {}
        for group in contiguous_groups(verticals, size):
            model = train_group(config, root, group, f"group-{'+'.join(group)}")
            models |= {vertical: model for vertical in group}
        for label in labels:
            scores[label][str(size)] = evaluate_models(models, test, label)
            if unseen is not None:
                scores[f"unseen {label}"][str(size)] = evaluate_models(models, unseen, label)
    return scores


def label_summary(per_seed: list[dict], label: str, left_out: list[str], prefix: str) -> dict:
    sizes = sorted(per_seed[0][label], key=int)
    pooled = {size: [pooled_recall_at_1(seed[label][size], left_out) for seed in per_seed] for size in sizes}
    summary: dict = {f"{prefix}pooled_recall@1.size_{size}": round(float(np.mean(v)), 4) for size, v in pooled.items()}
    for size in sizes:  # a size over itself (1 over the specialists, V over the all-in-one) is left out
        if size != sizes[-1]:
            summary |= paired_ratio(pooled[size], pooled[sizes[-1]], prefix, f"size_{size}_over_all_in_one")
        if size != sizes[0]:
            summary |= paired_ratio(pooled[size], pooled[sizes[0]], prefix, f"size_{size}_over_specialists")
    best = max(sizes, key=lambda size: np.mean(pooled[size]))
    summary[f"{prefix}best_size"] = int(best)
    summary |= paired_ratio(pooled[best], pooled[sizes[-1]], prefix, "best_over_all_in_one")
    return summary


def dataset_result(name: str, root: Path, per_seed: list[dict], labels: list[str], prefixes: list[str]) -> dict:
    test = Dataset.load(root).split("test")
    left_out = {label: degenerate_verticals(test, label) for label in labels}
    summary: dict = {}
    for label, prefix in zip(labels, prefixes, strict=True):
        summary |= label_summary(per_seed, label, left_out[label], prefix)
    unseen, unseen_left_out = UNSEEN_TESTS.get(root.name), None
    if unseen is not None and all(f"unseen {labels[0]}" in seed for seed in per_seed):
        unseen_left_out = {label: degenerate_verticals(unseen, label) for label in labels}
        for label, prefix in zip(labels, prefixes, strict=True):
            summary |= label_summary(per_seed, f"unseen {label}", unseen_left_out[label], f"unseen.{prefix}")
    first = labels[0]
    curve = {size: {vertical: round(float(np.mean([seed[first][size][vertical]["recall@1"] for seed in per_seed])), 4)
                    for vertical in per_seed[0][first][size]} for size in per_seed[0][first]}
    return {"summary": summary, "labels": labels, "degenerate_verticals": left_out, "seeds": len(per_seed),
            "unseen_degenerate_verticals": unseen_left_out,
            "unseen_test_images": None if unseen is None else int(len(unseen)), "test_images": int(len(test)),
            "verticals": Dataset.load(root).verticals, "recall@1_per_vertical": curve, "dataset": name,
            "per_seed_pooled_recall@1": [{size: round(pooled_recall_at_1(scores, left_out[labels[0]]), 4)
                                          for size, scores in seed[labels[0]].items()} for seed in per_seed]}


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(f"{name} ({result['labels'][0]}, {result['seeds']} seeds)", result["summary"], prefix)
              for name, result in results.items()
              for prefix in (["synthetic."] if name == "synthetic" else ["", "unseen."])
              if f"{prefix}best_size" in result["summary"]]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.4), squeeze=False)
    for ax, (title, s, prefix) in zip(axes[0], panels, strict=True):
        sizes = sorted(int(k.rsplit("_", 1)[1]) for k in s if k.startswith(f"{prefix}pooled_recall@1.size_"))
        ratio, low, high = ([s.get(f"{prefix}size_{g}_over_all_in_one{end}", 1.0) for g in sizes]
                            for end in ("", "_ci_low", "_ci_high"))
        ax.errorbar(sizes, ratio, yerr=[np.subtract(ratio, low), np.subtract(high, ratio)], marker="o", capsize=3)
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.set_xticks(sizes)
        ax.set_xlabel("verticals per triplet model")
        ax.set_ylabel("pooled Recall@1 / all-in-one")
        ax.set_title(("its models on the unseen catalog\n" if prefix == "unseen." else "") + title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def settings() -> dict:
    return {"steps_per_vertical": ARGS.steps, "image_size": ARGS.image_size, "batch": "8x4", "backbone": "resnet18",
            "grouping": "contiguous, alphabetical", "synthetic_products_per_vertical": SYNTHETIC_PRODUCTS,
            "torch_threads": ARGS.threads}


def write(found: dict, caches: dict[str, Path], load_at_start: list[float]) -> None:
    """The result file from every dataset's finished seeds (those of a run in another process too)."""
    done = {name: finished_seeds(path) for name, path in caches.items()}
    results = {name: dataset_result(name, root, done[name], labels, prefixes)
               for name, (root, _, labels, prefixes) in found.items() if done[name]}
    if not results:
        return
    name = "sweet_spot" if ARGS.image_size == PRODUCT.model.image_size else f"sweet_spot_{ARGS.image_size}px"
    plot(results, RESULTS / f"{name}.png")
    summary = {key: value for result in results.values() for key, value in result["summary"].items()}
    write_result(name, {"summary": summary, "datasets": results, "settings": settings(),
                        "pooling": "Recall@1 pooled over all queries of the scored verticals; ratios are means of "
                                   "paired per-seed ratios, 95 % t intervals over seeds"},
                 load_at_start, quiet=True)


def main() -> None:
    torch.set_num_threads(ARGS.threads)
    load_at_start = load_average()
    base = load_config(environ={"APPAREL__MODEL__IMAGE_SIZE": str(ARGS.image_size)})
    # the unified benchmark's datasets, made when missing and never ingested again here: a unified run may be
    # training on them
    found = prepare(base, [], SYNTHETIC_PRODUCTS, [])
    key = settings_key({k: v for k, v in settings().items() if k != "torch_threads"})
    caches = {name: WORK / f"sweet-spot-{name}-{key}" for name in found}  # a file per seed: runs may overlap
    for seed in range(ARGS.first_seed, ARGS.seeds):
        for name, (root, config, labels, _) in found.items():
            if name not in ARGS.datasets:
                continue
            if seed_done(caches[name], seed, f"unseen {labels[0]}" if root.name in UNSEEN_TESTS else None):
                continue
            start = time.perf_counter()
            seeded = configure(config, ARGS.steps, seed, config.data.label)
            save_seed(caches[name], seed, run_seed(seeded, root, labels))
            print(f"{name} seed {seed}: {time.perf_counter() - start:.0f}s (load {load_average()[0]})", flush=True)
            write(found, caches, load_at_start)
    write(found, caches, load_at_start)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0,
                        help="train seeds from this one up to --seeds (another process may train the others)")
    parser.add_argument("--steps", type=int, default=50, help="P×K batches per vertical (each size: V×S in all)")
    parser.add_argument("--image-size", type=int, default=PRODUCT.model.image_size)
    parser.add_argument("--datasets", type=lambda s: s.split(","), default=["fashion-products", "synthetic"],
                        help="which datasets to train in this invocation (finished seeds of others are kept)")
    parser.add_argument("--threads", type=int, default=1)
    ARGS = parser.parse_args()
    main()
