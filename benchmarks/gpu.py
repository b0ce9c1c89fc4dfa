"""What a GPU buys: the embedding training job and catalog embedding on the GPU vs the same machine's CPUs.

Needs a CUDA device (it exits with one line where there is none). One process, the two devices timed in
alternation (the order flips each repeat), every repeat on its own seed; ratios are paired per repeat, the mean
with a 95 % t interval over repeats.

  * training: one run of the embedding job's loop (``apparel.train.embedding_job.fit``, what each Ray Train
    worker runs) on the product's defaults — resnet18 from scratch, 48 px, P×K 16×4, ``train.epochs`` ×
    ``train.steps_per_epoch`` triplet steps (5 × 20), validation after each epoch — over every vertical of the
    default synthetic catalog (the generalist's job). Both devices do the same steps; the rate is training
    images per second, steps × P × K over the run's wall time (image loading and validation included, as a
    user waits for them).
  * embedding: the catalog's images, tiled to ``--embed-images``, through an untrained model at batch 256
    (``apparel.train.loop.embed``); the rate is images per second.

CPU runs use torch's default threads (one per core, as ``train.torch_threads: 0``). Each device does one
untimed warm-up of both workloads first (CUDA context, kernel selection, page cache).

    python benchmarks/gpu.py [--repeats 5] [--embed-images 16384]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, load_average, paired_ratio, write_result  # noqa: E402

from apparel.config import load_config  # noqa: E402
from apparel.data.dataset import load_images  # noqa: E402
from apparel.data.manifest import Dataset  # noqa: E402
from apparel.models.embedding import EmbeddingNet, EmbeddingSpec  # noqa: E402
from apparel.stages.data import generate_stage, ingest_stage  # noqa: E402
from apparel.train.embedding_job import EmbeddingJob, fit, make_job  # noqa: E402
from apparel.train.loop import embed  # noqa: E402

WORK = ROOT / "runs" / "benchmarks" / "gpu"
DEVICES = {"cpu": torch.device("cpu"), "gpu": torch.device("cuda")}


def default_catalog() -> Path:
    config = load_config()
    root = WORK / "synthetic-ds"
    if not (root / "dataset.json").is_file():
        ingest_stage(config, generate_stage(config, WORK / "synthetic").parent, root)
    return root


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_training(job: EmbeddingJob, device: torch.device) -> float:
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # the job's epoch lines: one summary line per repeat instead
        fit(job, report=lambda metrics, model, save: None, device=device)
    synchronize(device)
    return time.perf_counter() - start


def time_embedding(images: torch.Tensor, spec: EmbeddingSpec, device: torch.device) -> float:
    model = EmbeddingNet(spec).to(device)
    synchronize(device)
    start = time.perf_counter()
    embed(model, images, 256, device)  # ends with a copy to the CPU, which waits for the GPU
    return time.perf_counter() - start


def main() -> None:
    if not torch.cuda.is_available():
        sys.exit("benchmarks/gpu.py: no CUDA device is visible; run it on a GPU machine")
    load_at_start = load_average()
    config = load_config()
    root = default_catalog()
    job = make_job(config, "gpu-benchmark", root, Dataset.load(root).verticals, "triplet")
    spec = EmbeddingSpec(**job.spec)
    catalog = load_images(Dataset.load(root).manifest["image"].tolist(), spec.image_size)
    images = catalog.repeat((ARGS.embed_images + len(catalog) - 1) // len(catalog), 1, 1, 1)[: ARGS.embed_images]
    steps = config.train.epochs * config.train.steps_per_epoch
    batch = config.train.batch_p * config.train.batch_k

    for device in DEVICES.values():  # warm-up, untimed
        time_training(replace(job, train={**job.train, "epochs": 1, "steps_per_epoch": 2}), device)
        time_embedding(images[:1024], spec, device)
    train_s: dict[str, list[float]] = {name: [] for name in DEVICES}
    embed_s: dict[str, list[float]] = {name: [] for name in DEVICES}
    for repeat in range(ARGS.repeats):
        seeded = replace(job, train={**job.train, "seed": repeat})
        for name in list(DEVICES)[:: 1 if repeat % 2 == 0 else -1]:
            torch.manual_seed(repeat)
            train_s[name].append(time_training(seeded, DEVICES[name]))
            embed_s[name].append(time_embedding(images, spec, DEVICES[name]))
        print(f"repeat {repeat + 1}/{ARGS.repeats}: training {train_s['cpu'][-1]:.1f} s on CPU, "
              f"{train_s['gpu'][-1]:.1f} s on GPU; embedding {embed_s['cpu'][-1]:.2f} s vs "
              f"{embed_s['gpu'][-1]:.2f} s", flush=True)

    def rates(seconds: dict[str, list[float]], work: int) -> dict[str, list[float]]:
        return {device: [round(work / s, 1) for s in times] for device, times in seconds.items()}

    train_rate, embed_rate = rates(train_s, steps * batch), rates(embed_s, len(images))
    summary = {
        **paired_ratio(train_rate["gpu"], train_rate["cpu"], name="training_images_per_s_gpu_over_cpu"),
        **paired_ratio(embed_rate["gpu"], embed_rate["cpu"], name="embedded_images_per_s_gpu_over_cpu"),
        "training_images_per_s_gpu": round(sum(train_rate["gpu"]) / ARGS.repeats, 1),
        "training_images_per_s_cpu": round(sum(train_rate["cpu"]) / ARGS.repeats, 1),
        "embedded_images_per_s_gpu": round(sum(embed_rate["gpu"]) / ARGS.repeats, 1),
        "embedded_images_per_s_cpu": round(sum(embed_rate["cpu"]) / ARGS.repeats, 1),
    }
    result = {"summary": summary,
              "settings": {"repeats": ARGS.repeats, "training_steps": steps, "batch": batch,
                           "image_size": spec.image_size, "backbone": spec.backbone, "verticals": job.verticals,
                           "training_images": len(Dataset.load(root).split("train")),
                           "embedded_images": len(images)},
              "seconds": {"training": train_s, "embedding": embed_s},
              "images_per_s": {"training": train_rate, "embedding": embed_rate}}
    write_result("gpu", result, load_at_start)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--embed-images", type=int, default=16384)
    ARGS = parser.parse_args()
    main()
