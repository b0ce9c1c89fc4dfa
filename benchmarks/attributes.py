"""Progressive attribute branches vs one model per attribute vs one multi-label model.

All three start from the same unified trunk (specialists distilled, as the product trains it) and
get the same step budget per attribute; labels are dropped at random from the training split only
(0 %, 50 %, 80 %), the test split keeps every label. Sizes and single-image latencies are measured
in the same process; the latency baseline is the embedding-only model.

    python benchmarks/attributes.py [--steps 50] [--image-size 32]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA, summary_over_datasets, write_result  # noqa: E402
from unified import configure, distill, train_group  # noqa: E402

from apparel.config import Config, load_config  # noqa: E402
from apparel.data.dataset import load_images, normalize  # noqa: E402
from apparel.data.manifest import Dataset  # noqa: E402
from apparel.evaluation.attributes import evaluate_attributes  # noqa: E402
from apparel.models.attributes import from_embedding  # noqa: E402
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


def unified_trunk(config: Config, root: Path) -> EmbeddingNet:
    verticals = Dataset.load(root).verticals
    specialists = {v: train_group(config, root, [v], f"specialist-{v}") for v in verticals}
    with tempfile.TemporaryDirectory() as scratch:
        return distill(config, root, specialists, Path(scratch))


def drop_labels(frame, names: list[str], rate: float, seed: int):
    rng = np.random.default_rng(seed)
    frame = frame.copy()
    for name in names:
        frame.loc[rng.random(len(frame)) < rate, name] = None
    return frame


@torch.no_grad()
def latency_ms(run, image: torch.Tensor, repeats: int = 20) -> float:
    """Median time of one single-image request (what a serving call pays)."""
    times = []
    for _ in range(repeats + 3):
        start = time.perf_counter()
        run(image)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times[3:]))


def mean_accuracy(scores: dict) -> float:
    return float(np.mean([s["accuracy"] for s in scores.values()]))


def run_dataset(config: Config, root: Path, names: list[str]) -> dict:
    dataset = Dataset.load(root)
    specs = attribute_specs(dataset, names)
    base = unified_trunk(config, root)
    train, test = dataset.split("train"), dataset.split("test")
    images = load_images(train["image"].tolist(), base.spec.image_size)
    anchor = torch.from_numpy(embed(base, images))
    # The product's default proportions: a fifth of the budget on each branch alone, a tenth on its
    # short joint fine-tune, the rest on the end-to-end fine-tune once every branch is in.
    schedule = AttributeSchedule(branch_steps=ARGS.steps // 5, finetune_steps=ARGS.steps // 10,
                                 final_steps_per_head=ARGS.steps - ARGS.steps // 5 - ARGS.steps // 10, batch_size=32)
    results: dict = {"by_missing_rate": {}}
    for rate in MISSING_RATES:
        targets = encode_targets(drop_labels(train, names, rate, seed=int(rate * 100)), specs)
        start = time.perf_counter()
        progressive = train_progressive(from_embedding(_copy(base)), specs, images, targets, schedule, anchor,
                                        log=lambda line: None)
        per_attribute = train_per_attribute(base, specs, images, targets, schedule)
        multilabel = train_multilabel(base, specs, images, targets, schedule)
        systems = {"progressive": {s.name: progressive for s in specs}, "per_attribute": per_attribute,
                   "multilabel": {s.name: multilabel for s in specs}}
        results["by_missing_rate"][str(rate)] = {
            name: evaluate_attributes(models, test, specs, base.spec.image_size) for name, models in systems.items()}
        print(f"{root.name} missing {rate:.0%}: {time.perf_counter() - start:.0f}s " + " ".join(
            f"{n}={mean_accuracy(results['by_missing_rate'][str(rate)][n]):.3f}" for n in systems), flush=True)
    image = normalize(load_images(test["image"].tolist()[:1], base.spec.image_size))
    results["latency_ms"] = {
        "embedding_only": latency_ms(base.eval(), image),
        "progressive": latency_ms(progressive.eval(), image),
        "per_attribute": latency_ms(lambda x: [m.eval()(x) for m in per_attribute.values()], image),
        "multilabel": latency_ms(lambda x: multilabel.eval().forward_logits(x), image),
    }
    results["params"] = {"progressive": count_parameters(progressive),
                         "per_attribute": sum(count_parameters(m) for m in per_attribute.values()),
                         "multilabel": count_parameters(multilabel), "embedding_only": count_parameters(base)}
    half = results["by_missing_rate"]["0.5"]
    results["summary"] = {
        "progressive_over_per_attribute": round(mean_accuracy(half["progressive"])
                                                / mean_accuracy(half["per_attribute"]), 4),
        "progressive_over_multilabel": round(mean_accuracy(half["progressive"]) / mean_accuracy(half["multilabel"]), 4),
        "size_ratio_over_per_attribute": round(results["params"]["progressive"]
                                               / results["params"]["per_attribute"], 4),
        "one_over_n": round(1 / len(specs), 4),
        "latency_ratio_over_embedding_only": round(results["latency_ms"]["progressive"]
                                                   / results["latency_ms"]["embedding_only"], 4),
        "images_per_s_progressive": round(1000 / results["latency_ms"]["progressive"], 1),
    }
    return results


def _copy(model: EmbeddingNet) -> EmbeddingNet:
    import copy

    return copy.deepcopy(model)


def main() -> None:
    torch.manual_seed(0)
    base = configure(load_config(environ={"APPAREL__MODEL__IMAGE_SIZE": str(ARGS.image_size)}), ARGS.base_steps, 0,
                     "product_id")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        catalog = {"products_per_vertical": 120, "views_per_product": 4}
        labels = generate_stage(base, work / "synthetic", catalog)
        ingest_stage(base, labels.parent, work / "synthetic-ds")
        names = Dataset.load(work / "synthetic-ds").info.attributes
        results["synthetic"] = run_dataset(base, work / "synthetic-ds", names)
        real = SHARED_DATA / "fashion-products"
        if real.is_dir():
            real_data = base.data.model_copy(update={"label": "articleType+baseColour"})
            real_config = base.model_copy(update={"data": real_data})
            ingest_stage(real_config, real, work / "real-ds", "fashion-products")
            results["fashion-products"] = run_dataset(real_config, work / "real-ds",
                                                      ["baseColour", "articleType", "gender", "season", "usage"])
    summary = summary_over_datasets(results)
    write_result("attributes", {"summary": summary, "datasets": results,
                                "settings": {"steps_per_attribute": ARGS.steps, "image_size": ARGS.image_size,
                                             "missing_rates": MISSING_RATES}})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50, help="steps per attribute (branch + fine-tune)")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--base-steps", type=int, default=100, help="steps per vertical for the unified trunk")
    ARGS = parser.parse_args()
    main()
