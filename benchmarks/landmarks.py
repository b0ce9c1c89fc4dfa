"""FashionNet's landmark-pooled local branch as an ablation of the attribute heads: global features alone vs
global plus features pooled around predicted landmarks (``apparel.models.landmarks``).

Synthetic catalog only: it is the only catalog here with landmark labels (the drawing knows where collar,
sleeve ends, hem, toe, heel, bag corners and strap top are); fashion-products has none. Both systems start
from the same unified trunk (``attributes.unified_trunk`` at generalist share 0: specialists from scratch
distilled into one student, trained once and cached) and differ only in the local branch and its loss
(``apparel.train.landmarks``).

Step budget, N attributes (7 on the synthetic catalog), S = ``--steps``, batches of 32, AdamW (heads 2e-3,
trunk 2e-4), the embedding held near the trunk's by the product's L2 anchor:
  * global: N×S end-to-end steps of every head jointly (masked attribute losses, random flips);
  * landmark: the same N×S steps on the same batches and flips, plus the local branch and the masked L1
    landmark loss (weight 1); its heads differ only in also reading the local vector;
  * local_unsupervised: the landmark system's network and steps without the landmark loss, the control
    that tells the landmarks' supervision from the branch's extra capacity and attention-like pooling.
The trunk: ``--base-steps`` P×K steps per vertical for each specialist and as many again, per vertical,
for the distilled student. Each seed re-draws the heads' initialisation (equal in both systems), the
batches and the flips; ``landmark_over_global`` (and ``local_unsupervised_over_global``,
``landmark_over_local_unsupervised``) is the mean of paired per-seed ratios of mean test accuracy over the
attributes, with a 95 % t interval over seeds. Parameters and single-image latency (global, landmark and
the embedding alone, timed in alternation; the control has the landmark system's network) are measured in
the same process. The mean test localisation error (fraction of the image side) of both local models
shows whether their heatmaps found the landmarks.

Each finished seed is kept under runs/benchmarks/landmarks/, so an interrupted run resumes.

    python benchmarks/landmarks.py [--seeds 3] [--steps 30] [--image-size 64] [--base-steps 60]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from attributes import latency_ms, mean_accuracy, trunk_config, unified_trunk  # noqa: E402
from common import ROOT, load_average, paired_ratio, settings_key, write_result  # noqa: E402

from apparel.config import Config  # noqa: E402
from apparel.data.dataset import load_images, normalize  # noqa: E402
from apparel.data.manifest import Dataset  # noqa: E402
from apparel.evaluation.attributes import evaluate_attributes  # noqa: E402
from apparel.evaluation.landmarks import landmark_error  # noqa: E402
from apparel.models.embedding import EmbeddingNet, count_parameters  # noqa: E402
from apparel.models.landmarks import LandmarkAttributeNet  # noqa: E402
from apparel.stages.data import generate_stage, ingest_stage  # noqa: E402
from apparel.train.attributes import attribute_specs, encode_targets  # noqa: E402
from apparel.train.landmarks import encode_landmarks, landmark_names, train_landmark_ablation  # noqa: E402
from apparel.train.loop import embed  # noqa: E402

WORK = ROOT / "runs" / "benchmarks" / "landmarks"
SYSTEMS = ("global", "landmark", "local_unsupervised")


def synthetic_dataset(config: Config) -> Path:
    root = WORK / f"synthetic-{ARGS.products}-ds"
    if not (root / "dataset.json").is_file():
        labels = generate_stage(config, WORK / f"synthetic-{ARGS.products}",
                                {"products_per_vertical": ARGS.products, "views_per_product": 4})
        ingest_stage(config, labels.parent, root)
    return root


def cached_trunk(config: Config, root: Path) -> EmbeddingNet:
    """The unified trunk, trained once per trunk setting (both systems and every seed start from it)."""
    key = settings_key({"base_steps": ARGS.base_steps, "image_size": ARGS.image_size, "products": ARGS.products})
    folder = WORK / f"trunk-{key}"
    if not (folder / "weights.pt").is_file():
        unified_trunk(config, root).save(folder)
    return EmbeddingNet.load(folder)


def run_seed(base: EmbeddingNet, root: Path, seed: int) -> dict:
    """Every system for one seed: per-attribute test metrics, and each local model's test landmark error."""
    dataset = Dataset.load(root)
    specs = attribute_specs(dataset, dataset.info.attributes)
    train, test = dataset.split("train"), dataset.split("test")
    names = landmark_names(dataset.manifest)
    images = load_images(train["image"].tolist(), base.spec.image_size)
    models = train_landmark_ablation(base, specs, images, encode_targets(train, specs), encode_landmarks(train, names),
                                     names, len(specs) * ARGS.steps, seed,
                                     anchor=torch.from_numpy(embed(base, images)))
    scores = {name: evaluate_attributes({s.name: model for s in specs}, test, specs, base.spec.image_size)
              for name, model in models.items()}
    test_images = load_images(test["image"].tolist(), base.spec.image_size)
    errors = {name: landmark_error(model, test_images, encode_landmarks(test, names))
              for name, model in models.items() if model.pooling is not None}
    return {"scores": scores, "landmark_error": {name: round(error, 4) for name, error in errors.items()}}


def sizes_and_latency(base: EmbeddingNet, root: Path) -> dict:
    """Parameters and single-image latency need no training: both systems are built fresh here."""
    dataset = Dataset.load(root)
    specs, names = attribute_specs(dataset, dataset.info.attributes), landmark_names(dataset.manifest)
    models = {"global": LandmarkAttributeNet(base, specs).eval(),
              "landmark": LandmarkAttributeNet(base, specs, names).eval()}
    image = normalize(load_images(dataset.split("test")["image"].tolist()[:1], base.spec.image_size))
    latency = latency_ms({"embedding_only": base.eval(), "global": models["global"].forward_logits,
                          "landmark": models["landmark"].forward_logits}, image)
    return {"params": {name: count_parameters(model) for name, model in models.items()}
            | {"embedding_only": count_parameters(base)},
            "latency_ms": {name: round(ms, 3) for name, ms in latency.items()},
            "landmarks": names}


def summarise(per_seed: list[dict], measured: dict) -> dict:
    accuracy = {name: [mean_accuracy(seed["scores"][name]) for seed in per_seed] for name in SYSTEMS}
    summary = paired_ratio(accuracy["landmark"], accuracy["global"], name="landmark_over_global")
    summary |= paired_ratio(accuracy["local_unsupervised"], accuracy["global"], name="local_unsupervised_over_global")
    summary |= paired_ratio(accuracy["landmark"], accuracy["local_unsupervised"],
                            name="landmark_over_local_unsupervised")
    summary |= {f"mean_accuracy_{name}": round(float(np.mean(values)), 4) for name, values in accuracy.items()}
    summary |= {
        "params_ratio_landmark_over_global": round(measured["params"]["landmark"] / measured["params"]["global"], 4),
        "latency_ratio_landmark_over_global": round(measured["latency_ms"]["landmark"]
                                                    / measured["latency_ms"]["global"], 4),
        **{f"landmark_error_test_{name}": round(float(np.mean([seed["landmark_error"][name] for seed in per_seed])), 4)
           for name in per_seed[0]["landmark_error"]},
    }
    by_attribute = {a: {name: round(float(np.mean([seed["scores"][name][a]["accuracy"] for seed in per_seed])), 4)
                        for name in SYSTEMS} for a in per_seed[0]["scores"]["global"]}
    return {"summary": summary, "mean_accuracy_per_seed": {n: [round(a, 4) for a in v] for n, v in accuracy.items()},
            "accuracy_by_attribute": by_attribute}


def main() -> None:
    torch.set_num_threads(ARGS.threads)
    load_at_start = load_average()
    config = trunk_config(ARGS.image_size, ARGS.base_steps, product=False)
    settings = {"steps_per_attribute": ARGS.steps, "image_size": ARGS.image_size, "seeds": ARGS.seeds,
                "base_steps_per_vertical": ARGS.base_steps, "synthetic_products_per_vertical": ARGS.products,
                "batch_size": 32, "landmark_weight": 1.0, "local_stage": "layer2"}
    WORK.mkdir(parents=True, exist_ok=True)
    root = synthetic_dataset(config)
    base = cached_trunk(config, root)
    per_seed = []
    for seed in range(ARGS.seeds):
        cache = WORK / f"seed{seed}-{settings_key({k: v for k, v in settings.items() if k != 'seeds'})}.json"
        if not cache.is_file():
            start = time.perf_counter()
            cache.write_text(json.dumps(run_seed(base, root, seed)))
            print(f"seed {seed}: {time.perf_counter() - start:.0f}s (load {load_average()[0]})", flush=True)
        per_seed.append(json.loads(cache.read_text()))
        print(f"seed {seed}: " + " ".join(f"{n}={mean_accuracy(per_seed[-1]['scores'][n]):.4f}" for n in SYSTEMS)
              + f" landmark error {per_seed[-1]['landmark_error']}", flush=True)
    measured = sizes_and_latency(base, root)
    write_result("landmarks", {**summarise(per_seed, measured), **measured, "per_seed": per_seed,
                               "settings": {**settings, "threads": ARGS.threads}}, load_at_start)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="steps per attribute S (N×S per system)")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--base-steps", type=int, default=60, help="steps per vertical for the unified trunk")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--products", type=int, default=120, help="synthetic products per vertical")
    parser.add_argument("--threads", type=int, default=1)
    ARGS = parser.parse_args()
    main()
