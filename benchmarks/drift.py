"""Drift detection: the project's calibrated detector vs Evidently's defaults vs an MMD permutation test.

Reference: a champion-like model (the project's triplet training, all verticals but one, on
fashion-products) and its embeddings of fashion-products, split into the reference (calibration) and
held-back images never used for calibration. Windows of 50, 100 and 200 images:

- no shift: held-back reference images;
- real shift: fashion-products-224 (another image pipeline, squashed to 224×224, another product mix);
- synthetic shifts of the held-back images: Gaussian blur, colour cast, JPEG quality 20;
- unseen vertical: 30 % of each window from a vertical the model and the reference never saw (watches).

The same windows go to three detectors: the project's (Evidently's MMD method + Evidently's column
drift on the image statistics, calibrated to 1 % false alarms on reference-vs-reference draws),
Evidently's default (``EmbeddingsDrift`` with no method: the domain classifier with its bootstrap,
as reference < 1000 rows), and an MMD permutation test at p 0.05 (embeddings; same kernel width rule).
Rates carry Wilson 95 % intervals over windows; seconds per window are the project detector's.

    python benchmarks/drift.py   ->  benchmarks/results/drift.json
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from evidently.metrics.embeddings import ModelDriftMethod
from PIL import Image, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA, write_result  # noqa: E402

from apparel.config import Config, MonitoringConfig, load_config  # noqa: E402
from apparel.data.image_stats import STAT_COLUMNS, image_stats  # noqa: E402
from apparel.data.manifest import Dataset  # noqa: E402
from apparel.index import build_catalog_index  # noqa: E402
from apparel.monitoring.detector import Detector  # noqa: E402
from apparel.monitoring.reference import OVERALL, build_reference  # noqa: E402
from apparel.stages.data import ingest_stage  # noqa: E402
from apparel.train.embedding_job import fit_in_process, make_job  # noqa: E402
from apparel.train.loop import embed  # noqa: E402

UNSEEN = "watches"
SIZES = (50, 100, 200)


def load_pil(path: str) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


def blur(image: Image.Image) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(2.0))


def colour_cast(image: Image.Image) -> Image.Image:
    red, green, blue = image.split()
    return Image.merge("RGB", (red.point(lambda v: min(255, int(v * 1.15) + 12)), green,
                               blue.point(lambda v: int(v * 0.8))))


def jpeg_q20(image: Image.Image) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=20)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def features(model, images: list[Image.Image], size: int) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings, image statistics) as the service computes them: stats before the model's resize."""
    stats = np.array([[image_stats(i)[c] for c in STAT_COLUMNS] for i in images])
    arrays = np.stack([np.asarray(i.resize((size, size), Image.Resampling.BILINEAR)) for i in images])
    with torch.no_grad():
        vectors = embed(model, torch.from_numpy(arrays).permute(0, 3, 1, 2).contiguous())
    return vectors, stats


def train_champion(config: Config, dataset: Path, verticals: list[str]):
    train = config.train.model_copy(update={"epochs": 4, "steps_per_epoch": ARGS.steps // 4, "batch_p": 8,
                                            "batch_k": 4, "seed": 0})
    config = config.model_copy(update={"train": train})
    return fit_in_process(make_job(config, "champion", dataset, verticals, "triplet"))


def wilson(hits: int, total: int) -> list[float]:
    if total == 0:
        return [0.0, 1.0]
    p, z = hits / total, 1.96
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * np.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


def mmd_permutation_p(window: np.ndarray, reference: np.ndarray, permutations: int, rng) -> float:
    """p-value of the unbiased MMD² (RBF, median-distance width as Evidently) under label permutation."""
    pooled = np.vstack([reference, window]).astype(np.float64)
    squared = (pooled ** 2).sum(1)
    distances = np.maximum(squared[:, None] + squared[None, :] - 2 * pooled @ pooled.T, 0)
    kernel = np.exp(-distances / np.median(distances[:len(reference), len(reference):]))
    np.fill_diagonal(kernel, 0.0)
    m, n = len(reference), len(window)
    labels = np.zeros((len(pooled), permutations + 1))
    labels[m:, 0] = 1
    for column in range(1, permutations + 1):
        labels[rng.permutation(len(pooled))[:n], column] = 1
    ones, zeros = labels, 1 - labels
    within_y = np.einsum("ip,ij,jp->p", ones, kernel, ones) / (n * (n - 1))
    within_x = np.einsum("ip,ij,jp->p", zeros, kernel, zeros) / (m * (m - 1))
    between = np.einsum("ip,ij,jp->p", zeros, kernel, ones) / (m * n)
    statistic = within_x + within_y - 2 * between
    return float((1 + (statistic[1:] >= statistic[0]).sum()) / (permutations + 1))


def score_windows(scenario: dict, size: int, count: int, detector: Detector, reference: np.ndarray, rng) -> dict:
    # EmbeddingsDriftMetric's default when no method is given: model(bootstrap=reference rows < 1000)
    evidently_default = ModelDriftMethod(bootstrap=len(reference) < 1000)
    ours, default, permutation, seconds = [], [], [], []
    for _ in range(count):
        rows = scenario["draw"](size, rng)
        vectors, stats = scenario["embeddings"][rows], scenario["stats"][rows]
        start = time.perf_counter()
        ours.append(detector.score(OVERALL, vectors, stats).alarm)
        seconds.append(time.perf_counter() - start)
        default.append(bool(evidently_default(pd.DataFrame(vectors, dtype=np.float64),
                                              pd.DataFrame(reference, dtype=np.float64))[1]))
        permutation.append(mmd_permutation_p(vectors, reference, ARGS.permutations, rng) < 0.05)
    return {name: {"rate": round(float(np.mean(values)), 4), "ci95": wilson(int(np.sum(values)), count),
                   "windows": count}
            for name, values in {"project": ours, "evidently_default": default,
                                 "mmd_permutation_p05": permutation}.items()} | {
        "seconds_per_window": round(float(np.mean(seconds)), 4)}


def main() -> None:
    torch.set_num_threads(2)
    load_before = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    started = time.perf_counter()
    rng = np.random.default_rng(0)
    base = load_config(environ={"APPAREL__MODEL__IMAGE_SIZE": str(ARGS.image_size),
                                "APPAREL__DATA__LABEL": "articleType"})
    with tempfile.TemporaryDirectory() as tmp:
        dataset_root = Path(tmp) / "fashion-products"
        ingest_stage(base, SHARED_DATA / "fashion-products", dataset_root, "fashion-products")
        manifest = Dataset.load(dataset_root).manifest
        seen = sorted(set(manifest["vertical"]) - {UNSEEN})
        model = train_champion(base, dataset_root, seen)
    print(f"champion-like model trained ({ARGS.steps} steps, verticals {', '.join(seen)})", flush=True)
    size = ARGS.image_size
    known = manifest[manifest["vertical"] != UNSEEN].sample(frac=1.0, random_state=0).reset_index(drop=True)
    held_back, reference_rows = known.iloc[:ARGS.held_back], known.iloc[ARGS.held_back:]
    unseen = manifest[manifest["vertical"] == UNSEEN]
    images = {"reference": [load_pil(p) for p in reference_rows["image"]],
              "held_back": [load_pil(p) for p in held_back["image"]],
              "unseen": [load_pil(p) for p in unseen["image"]]}
    shifted = pd.read_csv(SHARED_DATA / "fashion-products-224" / "labels.csv", dtype=str)
    shifted = shifted[shifted["subCategory"].isin(base.data.vertical_map)].sample(ARGS.real_shift, random_state=0)
    images["real_shift"] = [load_pil(str(SHARED_DATA / "fashion-products-224" / f)) for f in shifted["filename"]]
    images["blur"] = [blur(i) for i in images["held_back"]]
    images["colour_cast"] = [colour_cast(i) for i in images["held_back"]]
    images["jpeg_q20"] = [jpeg_q20(i) for i in images["held_back"]]
    data = {name: features(model, pictures, size) for name, pictures in images.items()}
    print(f"embedded {sum(len(v) for v in images.values())} images", flush=True)

    ref_vectors, ref_stats = data["reference"]
    catalog = build_catalog_index(ref_vectors, reference_rows[["product_id", "vertical", "image"]], "bench", "1",
                                  base.index)
    settings = MonitoringConfig(window_sizes=list(SIZES), calibration_draws=ARGS.draws, per_vertical=False)
    calibration_start = time.perf_counter()
    reference = build_reference("1", ref_vectors, ref_stats, np.asarray(catalog.predict_vertical(ref_vectors)),
                                settings)
    calibration_seconds = time.perf_counter() - calibration_start
    detector = Detector(reference, settings)
    scoring_reference = reference.embeddings[reference.rows(OVERALL, scoring=True)]

    def uniform(name: str):
        vectors, stats = data[name]
        return {"embeddings": vectors, "stats": stats,
                "draw": lambda n, r: r.choice(len(vectors), n, replace=False)}

    held_vectors, held_stats = data["held_back"]
    unseen_vectors, unseen_stats = data["unseen"]
    mixed = {"embeddings": np.vstack([held_vectors, unseen_vectors]), "stats": np.vstack([held_stats, unseen_stats]),
             "draw": lambda n, r: np.concatenate([
                 r.choice(len(held_vectors), n - int(0.3 * n), replace=False),
                 len(held_vectors) + r.choice(len(unseen_vectors), int(0.3 * n), replace=False)])}
    scenarios = {"no_shift": uniform("held_back"), "real_shift": uniform("real_shift"), "blur": uniform("blur"),
                 "colour_cast": uniform("colour_cast"), "jpeg_q20": uniform("jpeg_q20"), "unseen_vertical": mixed}
    results: dict[str, dict] = {}
    for name, scenario in scenarios.items():
        count = ARGS.null_windows if name == "no_shift" else ARGS.windows
        results[name] = {f"w{n}": score_windows(scenario, n, count, detector, scoring_reference, rng) for n in SIZES}
        print(name, {k: v["project"]["rate"] for k, v in results[name].items()}, flush=True)
    summary = {
        "tpr_real_shift": results["real_shift"]["w200"]["project"]["rate"],
        "fpr_no_shift": results["no_shift"]["w200"]["project"]["rate"],
        "tpr_real_shift_w100": results["real_shift"]["w100"]["project"]["rate"],
        "fpr_no_shift_w100": results["no_shift"]["w100"]["project"]["rate"],
        "evidently_default_fpr_no_shift": results["no_shift"]["w200"]["evidently_default"]["rate"],
        "seconds_per_window": round(float(np.mean([r[f"w{n}"]["seconds_per_window"] for r in results.values()
                                                   for n in SIZES])), 4),
    }
    write_result("drift", {
        "summary": summary, "scenarios": results,
        "settings": {"model": f"resnet18 triplet, {ARGS.steps} steps of 8x4 at {size}px on fashion-products "
                              f"(articleType), verticals {seen}", "reference_images": len(reference_rows),
                     "scoring_reference": int(reference.scoring.sum()), "held_back_images": len(held_back),
                     "real_shift_images": len(shifted), "unseen_vertical": UNSEEN, "unseen_share": 0.3,
                     "method": settings.method, "false_alarm_rate": settings.false_alarm_rate,
                     "calibration_draws": ARGS.draws, "calibration_seconds": round(calibration_seconds, 1),
                     "permutations": ARGS.permutations, "windows_per_scenario": ARGS.windows,
                     "no_shift_windows": ARGS.null_windows, "seeds": "one model, one reference split; "
                     "intervals are Wilson 95 % over windows"},
        "load": {"before": load_before, "after": subprocess.run(["uptime"], capture_output=True,
                                                                 text=True).stdout.strip(),
                 "torch_threads": torch.get_num_threads(), "seconds": round(time.perf_counter() - started, 1)},
    })


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=120, help="P×K batches the champion-like model trains")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--held-back", type=int, default=480, help="reference images kept out of calibration")
    parser.add_argument("--real-shift", type=int, default=800, help="fashion-products-224 images sampled")
    parser.add_argument("--draws", type=int, default=200, help="calibration draws per window size")
    parser.add_argument("--windows", type=int, default=20, help="windows per shifted scenario and size")
    parser.add_argument("--null-windows", type=int, default=40, help="no-shift windows per size")
    parser.add_argument("--permutations", type=int, default=100)
    ARGS = parser.parse_args()
    main()
