"""Specialists vs unified vs all-in-one (Song et al.), plus the vertical-grouping sweet spot.

Everything runs in this one process with the training loop the product uses (``fit``, without the
Ray launcher, whose start-up would dominate runs this small). Every grouping gets the same total
budget: ``steps`` P×K batches per vertical, so a group of g verticals trains g×steps batches, and
the unified student distils for V×steps batches. Retrieval is scored per vertical on the test split.

    python benchmarks/unified.py [--seeds 3] [--steps 100] [--image-size 32]
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
from common import RESULTS, SHARED_DATA, summary_over_datasets, write_result  # noqa: E402

from apparel.config import Config, load_config  # noqa: E402
from apparel.data.dataset import load_images  # noqa: E402
from apparel.data.manifest import Dataset  # noqa: E402
from apparel.evaluation.embeddings import evaluate_models  # noqa: E402
from apparel.models.embedding import EmbeddingNet, count_parameters  # noqa: E402
from apparel.stages.data import generate_stage, ingest_stage  # noqa: E402
from apparel.train.distill import teacher_embeddings  # noqa: E402
from apparel.train.embedding_job import fit_in_process, job_frame, make_job  # noqa: E402
from apparel.train.loop import embed  # noqa: E402
from apparel.train.specialists import contiguous_groups  # noqa: E402

METRICS = ("recall@1", "recall@5", "recall@10", "map@r")


def configure(base: Config, steps: int, seed: int, label: str) -> Config:
    train = base.train.model_copy(update={"epochs": 4, "steps_per_epoch": steps // 4, "seed": seed,
                                          "batch_p": 8, "batch_k": 4})
    return base.model_copy(update={"train": train, "data": base.data.model_copy(update={"label": label})})


def scaled(config: Config, factor: int) -> Config:
    train = config.train.model_copy(update={"steps_per_epoch": config.train.steps_per_epoch * factor})
    return config.model_copy(update={"train": train})


def train_group(config: Config, root: Path, group: list[str], name: str) -> EmbeddingNet:
    return fit_in_process(make_job(scaled(config, len(group)), name, root, group, "triplet"))


def distill(config: Config, root: Path, specialists: dict[str, EmbeddingNet], scratch: Path, factor: int = 1
            ) -> EmbeddingNet:
    """The unified student, distilled for `factor` times the steps of one model over all verticals."""
    folders = {}
    for vertical, model in specialists.items():
        model.save(scratch / vertical)
        folders[vertical] = scratch / vertical
    job = make_job(scaled(config, len(specialists) * factor), "unified", root, sorted(specialists), "regress",
                   scratch / "teachers.pt")
    torch.save({"train": teacher_embeddings(job_frame(job, "train"), folders)}, scratch / "teachers.pt")
    return fit_in_process(job)


def routed_embed(models: dict[str, EmbeddingNet], images: torch.Tensor, verticals: np.ndarray) -> float:
    """Seconds to embed a mixed batch, each image through the model that serves its vertical."""
    start = time.perf_counter()
    for vertical, model in models.items():
        rows = np.flatnonzero(verticals == vertical)
        if len(rows):
            embed(model, images[rows])
    return time.perf_counter() - start


def latency_ms(systems: dict[str, dict[str, EmbeddingNet]], images: torch.Tensor, verticals: np.ndarray,
               repeats: int = 7) -> dict[str, float]:
    """Median per-image milliseconds of each system, timed in alternation so that whatever else
    the machine is doing falls on all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in systems}
    for _ in range(repeats):
        for name, models in systems.items():
            times[name].append(routed_embed(models, images, verticals))
    return {name: 1000 * float(np.median(t)) / len(images) for name, t in times.items()}


def run_seed(config: Config, root: Path, eval_labels: list[str], sweet_spot: bool) -> dict:
    dataset = Dataset.load(root)
    verticals = dataset.verticals
    test = dataset.split("test")
    specialists = {v: train_group(config, root, [v], f"specialist-{v}") for v in verticals}
    all_in_one = train_group(config, root, verticals, "all-in-one")
    with tempfile.TemporaryDirectory() as scratch:
        unified = distill(config, root, specialists, Path(scratch), ARGS.distill_factor)
    systems = {"specialists": specialists, "unified": {v: unified for v in verticals},
               "all_in_one": {v: all_in_one for v in verticals}}
    result: dict = {"scores": {label: {name: evaluate_models(models, test, label) for name, models in systems.items()}
                               for label in eval_labels}}
    images = load_images(test["image"].tolist(), config.model.image_size)
    result["latency_ms"] = latency_ms({"specialists": specialists, "unified": systems["unified"]}, images,
                                      test["vertical"].to_numpy())
    result["params"] = {"specialists": sum(count_parameters(m) for m in specialists.values()),
                        "unified": count_parameters(unified)}
    if sweet_spot:
        curve = {}
        for size in range(1, len(verticals) + 1):
            if size == 1:
                models = specialists
            elif size == len(verticals):
                models = systems["all_in_one"]
            else:
                models = {}
                for group in contiguous_groups(verticals, size):
                    model = train_group(config, root, group, f"group-{'+'.join(group)}")
                    models.update({v: model for v in group})
            scores = evaluate_models(models, test, eval_labels[0])
            curve[size] = {v: s["recall@1"] for v, s in scores.items()}
        result["sweet_spot"] = curve
    return result


def summarise(per_seed: list[dict], label: str) -> dict:
    """Mean ± std over seeds of each metric, per system and vertical."""
    table: dict = {}
    for system in per_seed[0]["scores"][label]:
        for vertical in per_seed[0]["scores"][label][system]:
            for metric in METRICS:
                values = [s["scores"][label][system][vertical][metric] for s in per_seed]
                table.setdefault(system, {}).setdefault(vertical, {})[metric] = {
                    "mean": round(float(np.mean(values)), 4), "std": round(float(np.std(values)), 4)}
    return table


def ratio(per_seed: list[dict], label: str, top: str, bottom: str) -> float:
    """Mean over seeds and verticals of Recall@1(top) / Recall@1(bottom)."""
    ratios = [s["scores"][label][top][v]["recall@1"] / max(s["scores"][label][bottom][v]["recall@1"], 1e-9)
              for s in per_seed for v in s["scores"][label][top]]
    return round(float(np.mean(ratios)), 4)


def benchmark(name: str, root: Path, config: Config, seeds: int, eval_labels: list[str], sweet_spot: bool) -> dict:
    per_seed = []
    for seed in range(seeds):
        start = time.perf_counter()
        per_seed.append(run_seed(configure(config, ARGS.steps, seed, config.data.label), root, eval_labels,
                                 sweet_spot and seed == 0))
        print(f"{name} seed {seed}: {time.perf_counter() - start:.0f}s", flush=True)
    label = eval_labels[0]
    latency = [s["latency_ms"]["unified"] / s["latency_ms"]["specialists"] for s in per_seed]
    return {
        "summary": {
            "unified_over_specialists": ratio(per_seed, label, "unified", "specialists"),
            "unified_over_all_in_one": ratio(per_seed, label, "unified", "all_in_one"),
            "params_ratio_unified_over_specialists": round(per_seed[0]["params"]["unified"]
                                                          / per_seed[0]["params"]["specialists"], 4),
            "latency_ratio_unified_over_specialists": round(float(np.mean(latency)), 4),
        },
        "tables": {lbl: summarise(per_seed, lbl) for lbl in eval_labels},
        "sweet_spot_recall@1": per_seed[0].get("sweet_spot"),
        "seeds": seeds,
        "verticals": Dataset.load(root).verticals,
        "test_images": int(len(Dataset.load(root).split("test"))),
    }


def plot_sweet_spot(curve: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(curve, key=int)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for vertical in curve[sizes[0]]:
        ax.plot([int(s) for s in sizes], [curve[s][vertical] for s in sizes], marker="o", alpha=0.5, label=vertical)
    ax.plot([int(s) for s in sizes], [np.mean(list(curve[s].values())) for s in sizes], "k-", lw=2.5, label="mean")
    ax.set_xlabel("verticals per triplet model")
    ax.set_ylabel("Recall@1 (test)")
    ax.set_title("Grouping verticals into one triplet model")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    base = load_config(environ={"APPAREL__MODEL__IMAGE_SIZE": str(ARGS.image_size)})
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        catalog = {"products_per_vertical": ARGS.products, "views_per_product": 4}
        labels = generate_stage(base, work / "synthetic", catalog)
        ingest_stage(base, labels.parent, work / "synthetic-ds")
        results["synthetic"] = benchmark("synthetic", work / "synthetic-ds", base, ARGS.seeds, ["product_id"], True)
        real = SHARED_DATA / "fashion-products"
        if real.is_dir():
            real_data = base.data.model_copy(update={"label": "articleType+baseColour"})
            real_config = base.model_copy(update={"data": real_data})
            ingest_stage(real_config, real, work / "real-ds", "fashion-products")
            results["fashion-products"] = benchmark("fashion-products", work / "real-ds", real_config, ARGS.seeds,
                                                    ["articleType", "articleType+baseColour"], False)
    plot_sweet_spot(results["synthetic"]["sweet_spot_recall@1"], RESULTS / "sweet_spot.png")
    summary = summary_over_datasets(results)
    write_result("unified", {"summary": summary, "datasets": results,
                             "settings": {"steps_per_vertical": ARGS.steps, "image_size": ARGS.image_size,
                                          "products_per_vertical": ARGS.products, "batch": "8x4",
                                          "distill_factor": ARGS.distill_factor,
                                          "backbone": base.model.backbone}})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100, help="P×K batches per vertical")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--distill-factor", type=int, default=2,
                        help="the student distils for this many times the steps of one all-in-one model")
    parser.add_argument("--products", type=int, default=120, help="synthetic products per vertical")
    ARGS = parser.parse_args()
    main()
