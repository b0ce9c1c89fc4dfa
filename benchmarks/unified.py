"""Specialists vs unified vs all-in-one (Song et al.) on fashion-products and the synthetic catalog.

Everything runs in this one process with the training loop the product uses (``fit``, without the
Ray launcher, whose start-up would dominate runs this small). Retrieval is scored per vertical on the
test split, each vertical in its own gallery, leave one out.

Step budgets, with V verticals, S = ``--steps`` and g = ``--generalist-share`` (the product's
``train.generalist_share``; every step one P×K batch of 8×4 = 32 images, AdamW, cosine schedule over
4 epochs each run):
  * the generalist: g×V×S triplet steps on all verticals; each specialist then (1 − g)×S triplet steps
    on its vertical, starting from the generalist (at ``--specialist-lr``, the product's
    ``train.specialist_lr``, else at the generalist's rate): V×S triplet steps over all the teachers (with
    g = 0: S steps each from scratch, the recipe before the generalist);
  * all-in-one: V×S triplet steps on all verticals, the teachers' total;
  * all-in-one, matched: (1 + F)×V×S triplet steps on all verticals, the whole unified system's budget;
  * unified student: F×V×S steps (F = ``--distill-factor``) of L2 regression onto the specialists'
    embeddings of the training images (after one gradient-free teacher pass) plus, weighted by the
    product's ``train.distill_triplet_weight``, the triplet loss on the same P×K batches, starting from
    the generalist (from scratch when g = 0); counting its teachers, the unified system costs
    (1 + F)×V×S steps against the all-in-one's V×S. Each extra student recipe (``--students``) gets
    the same F×V×S steps from the same teachers.
How many verticals one triplet model should hold (the sweet spot) is ``sweet_spot.py``'s study.

Summary, per dataset and label: for each seed, the ratio of pooled Recall@1 (all queries of the scored
verticals together, i.e. verticals weighted by their queries), top system over bottom system; then the
mean of those paired per-seed ratios with a 95 % t interval over seeds. Verticals whose test gallery
holds a single class for the label (every system scores 1.0 there) are left out and listed.
fashion-products is scored on the label the models train on (articleType+baseColour, unprefixed keys)
and on articleType (``articleType.`` keys); the synthetic catalog on product_id (``synthetic.`` keys).
fashion-products' models are also scored on a second catalog no model trains on (``unseen.`` keys, same
labels): the images of ``fashion-products-224`` whose product ids are not in fashion-products, near-duplicates
of its images and byte-identical copies left out, about 13 times its test split, so that the evaluation's own
noise shrinks and what is left of the interval is the training's.

Results: ``unified.json`` for the product's recipe at the product's input size (``model.image_size``, 48 px: a
generalist on 0.8 of the teachers' steps, specialists fine-tuned from it at 2e-4), 20 seeds on fashion-products
and 5 on synthetic. Every recipe comparison ran at 32 px (``--image-size 32``, files ending in ``_32px``):
``unified_32px.json`` is the product's recipe, ``unified_from_scratch_32px.json`` Song et al.'s
(``--generalist-share 0``), ``unified_generalist_32px.json`` share 0.5 with specialists at the full rate
(``--specialist-lr 0``); ``unified_triplet_mix_32px.json`` is a 3-seed run of share 0.5 whose only student had
``train.distill_triplet_weight`` at 1.0 (the ``triplet_mix`` student recipe); ``unified_unlabelled_32px.json``
(``--students default,unlabelled_images --datasets fashion-products``) adds a student distilled, for the same
F×V×S steps, on the training images plus unlabelled catalog images (``UNLABELLED_SOURCE``: product ids not in
fashion-products, near-duplicates of its images left out). ``unified_teacher_groups.json`` (``--students
default,pair_teachers --device cuda``, 20 seeds on an H200: ``benchmarks/device/``) adds a student distilled from
teachers of two alphabetically adjacent verticals each (``TEACHER_GROUP_SIZE``), each fine-tuned from the same
generalist for 2×(1 − g)×S steps, so that the teachers' total stays V×S.

Seeds run seed-major over the datasets and each finished seed is kept under runs/benchmarks/ (a file
per dataset and seed), so an interrupted run resumes, datasets and ranges of seeds can train in separate
processes at once (``--datasets``, ``--first-seed``), and the result file always holds every finished seed.

    python benchmarks/unified.py [--seeds 10] [--first-seed 0] [--steps 50] [--image-size 48] [--datasets synthetic]
                                 [--students default,pair_teachers] [--device cuda]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, ROOT, SHARED_DATA, load_average, paired_ratio, settings_key, write_result  # noqa: E402
from resume import finished_seeds, save_seed, seed_done  # noqa: E402

from apparel.config import Config, load_config  # noqa: E402
from apparel.data.dataset import load_images  # noqa: E402
from apparel.data.manifest import Dataset, label_values  # noqa: E402
from apparel.evaluation.embeddings import evaluate_models  # noqa: E402
from apparel.models.embedding import EmbeddingNet, count_parameters  # noqa: E402
from apparel.stages.data import generate_stage, ingest_stage  # noqa: E402
from apparel.train.distill import teacher_targets  # noqa: E402
from apparel.train.embedding_job import fit_in_process, job_frame, make_job  # noqa: E402
from apparel.train.loop import embed  # noqa: E402
from apparel.train.specialists import contiguous_groups, generalist_budget, group_name, specialist_budget  # noqa: E402

PRODUCT = load_config(environ={})  # the product's defaults: the recipe this benchmark measures
METRICS = ("recall@1", "recall@5", "recall@10", "map@r")
WORK = ROOT / "runs" / "benchmarks" / "unified"
DEVICE = torch.device("cpu")  # where models train and embed (``--device``; other benchmarks importing these: CPU)
# Settings at the values every run had before the setting existed: left out of the cache key, so those runs'
# caches stay theirs, and filled in where a result file lacks them (the recipe before the generalist, the CPU;
# teacher_group_size is in the first unified_teacher_groups.json's settings, 1 for its default student)
EARLIER = {"generalist_share": 0, "distill_triplet_weight": 0, "specialist_lr": None, "teacher_group_size": 1,
           "device": "cpu"}
# Student recipes: name → TrainConfig overrides of the distillation (``default``: the product's config).
STUDENTS = {"default": {}, "flipped_views": {"distill_flipped_views": True},
            "plain": {"distill_flipped_views": False}, "triplet_mix": {"distill_triplet_weight": 1.0},
            "unlabelled_images": {}, "pair_teachers": {}}
# Verticals per teacher of a student recipe (else 1, the product's specialists): ``pair_teachers`` distils from
# teachers of two alphabetically adjacent verticals each, fine-tuned from the same generalist on the same total
# steps (the sweet spot of sweet_spot.json), and they are scored too, as the system ``pair_teachers``.
TEACHER_GROUP_SIZE = {"pair_teachers": 2}
# ``unlabelled_images`` distils on the training images plus unlabelled catalog images (fashion-products only):
# the other images of the 224 px catalog, their labels blanked, with every id of fashion-products left out and
# every image within NEAR_DUPLICATE of a fashion-products image (a 16 px grey thumbnail, L2) left out too.
UNLABELLED_SOURCE = SHARED_DATA / "fashion-products-224"
NEAR_DUPLICATE = 1.0
UNLABELLED_ROOTS: dict[str, Path] = {}  # dataset folder name → its dataset with the unlabelled images in train
# The same images with their labels, as a second test catalog nobody trains on (``unseen.`` keys): ~13 times the
# test split's queries, so the evaluation's own noise shrinks; the ``unlabelled_images`` student is not scored there.
UNSEEN_TESTS: dict[str, pd.DataFrame] = {}  # dataset folder name → the unseen catalog's rows


def configure(base: Config, steps: int, seed: int, label: str, generalist_share: float = 0.0,
              specialist_lr: float | None = None) -> Config:
    """The benchmark's training settings; other benchmarks import it (no ``ARGS`` here: theirs differ)."""
    train = base.train.model_copy(update={"epochs": 4, "steps_per_epoch": steps // 4, "seed": seed,
                                          "batch_p": 8, "batch_k": 4, "generalist_share": generalist_share,
                                          "specialist_lr": specialist_lr})
    return base.model_copy(update={"train": train, "data": base.data.model_copy(update={"label": label})})


def scaled(config: Config, factor: int, **overrides: object) -> Config:
    train = config.train.model_copy(update={"steps_per_epoch": config.train.steps_per_epoch * factor, **overrides})
    return config.model_copy(update={"train": train})


def train_group(config: Config, root: Path, group: list[str], name: str) -> EmbeddingNet:
    return fit_in_process(make_job(scaled(config, len(group)), name, root, group, "triplet"), DEVICE)


def train_generalist(config: Config, root: Path, verticals: list[str], scratch: Path) -> Path | None:
    """The generalist every teacher and student starts from (``apparel.stages.specialists``): its folder, or
    None when the share is 0 and the teachers start from scratch."""
    if config.train.generalist_share == 0:
        return None
    start = scratch / "generalist"
    fit_in_process(make_job(generalist_budget(config, len(verticals)), "generalist", root, verticals, "triplet"),
                   DEVICE).save(start)
    return start


def train_teachers(config: Config, root: Path, verticals: list[str], start: Path | None, group_size: int = 1
                   ) -> dict[str, EmbeddingNet]:
    """The product's teachers, one per vertical, or one per group of ``group_size`` verticals, each fine-tuned from
    the generalist under the product's own budget split; {vertical: the teacher of its group}."""
    teachers = {}
    for group in contiguous_groups(verticals, group_size):
        model = fit_in_process(make_job(specialist_budget(config, len(group)), f"specialist-{group_name(group)}",
                                        root, group, "triplet", init_path=start), DEVICE)
        teachers |= dict.fromkeys(group, model)
    return teachers


def distill(config: Config, root: Path, specialists: dict[str, EmbeddingNet], scratch: Path, factor: int = 1,
            recipe: dict | None = None, start: Path | None = None) -> EmbeddingNet:
    """The unified student, distilled for `factor` times the steps of one model over all verticals from
    ``start`` (the generalist) or scratch, with the product's distillation code (teacher targets and
    regression job) under the recipe's settings."""
    folders = {}
    for vertical, model in specialists.items():
        model.save(scratch / vertical)  # a group's teacher once per vertical: teacher_targets reads folders
        folders[vertical] = scratch / vertical
    config = scaled(config, len(specialists) * factor, **(recipe or {}))
    job = make_job(config, "unified", root, sorted(specialists), "regress", scratch / "teachers.pt", start)
    torch.save(teacher_targets(job_frame(job, "train"), folders, config.train.distill_flipped_views),
               scratch / "teachers.pt")
    return fit_in_process(job, DEVICE)


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


def degenerate_verticals(test, label: str) -> list[str]:
    """Verticals whose labelled test images all share one class: any embedding scores 1.0 there."""
    labels = label_values(test, label)
    keep = np.array([value is not None for value in labels])
    classes = {v: set(labels[keep & (test["vertical"] == v).to_numpy()]) for v in sorted(set(test["vertical"]))}
    return [v for v, found in classes.items() if len(found) <= 1]


def run_seed(config: Config, root: Path, eval_labels: list[str], students: list[str]) -> dict:
    dataset = Dataset.load(root)
    verticals = dataset.verticals
    test = dataset.split("test")
    with tempfile.TemporaryDirectory() as scratch:
        start = train_generalist(config, root, verticals, Path(scratch))
        teachers = {1: train_teachers(config, root, verticals, start)}
        specialists = teachers[1]
        all_in_one = train_group(config, root, verticals, "all-in-one")
        # the sceptic's baseline: one triplet model given every step the unified system took
        matched = train_group(scaled(config, 1 + ARGS.distill_factor), root, verticals, "all-in-one-matched")
        systems = {"specialists": specialists, "all_in_one": {v: all_in_one for v in verticals},
                   "all_in_one_matched": {v: matched for v in verticals}}
        for student in students:
            work = Path(scratch) / student
            work.mkdir()
            student_root = UNLABELLED_ROOTS.get(root.name) if student == "unlabelled_images" else root
            if student_root is None:
                continue  # this dataset has no unlabelled images
            size = TEACHER_GROUP_SIZE.get(student, 1)
            if size not in teachers:
                teachers[size] = train_teachers(config, root, verticals, start, size)
                systems[student] = teachers[size]
            unified = distill(config, student_root, teachers[size], work, ARGS.distill_factor, STUDENTS[student],
                              start)
            systems["unified" if student == "default" else f"unified_{student}"] = {v: unified for v in verticals}
    result: dict = {"scores": {label: {name: evaluate_models(models, test, label) for name, models in systems.items()}
                               for label in eval_labels}}
    unseen = UNSEEN_TESTS.get(root.name)
    if unseen is not None:
        result["unseen_scores"] = {label: {name: evaluate_models(models, unseen, label)
                                           for name, models in systems.items() if name != "unified_unlabelled_images"}
                                   for label in eval_labels}
    images = load_images(test["image"].tolist(), config.model.image_size)
    result["latency_ms"] = latency_ms({"specialists": specialists, "unified": systems["unified"]}, images,
                                      test["vertical"].to_numpy())
    distinct = {id(m): m for m in specialists.values()}.values()  # a group's teacher serves several verticals
    result["params"] = {"specialists": sum(count_parameters(m) for m in distinct),
                        "unified": count_parameters(systems["unified"][verticals[0]])}
    return result


def pooled_recall_at_1(scores: dict[str, dict[str, float]], left_out: list[str]) -> float:
    kept = [s for v, s in scores.items() if v not in left_out]
    return float(np.average([s["recall@1"] for s in kept], weights=[s["queries"] for s in kept]))


def summarise(per_seed: list[dict], label: str) -> dict:
    """Mean ± std over seeds of each metric, per system and vertical."""
    table: dict = {}
    for system in per_seed[0]["scores"][label]:
        for vertical in per_seed[0]["scores"][label][system]:
            for metric in (*METRICS, "queries"):
                values = [s["scores"][label][system][vertical][metric] for s in per_seed]
                table.setdefault(system, {}).setdefault(vertical, {})[metric] = {
                    "mean": round(float(np.mean(values)), 4), "std": round(float(np.std(values)), 4)}
    return table


def label_summary(per_seed: list[dict], label: str, left_out: list[str], prefix: str) -> dict[str, float]:
    pooled = {system: [pooled_recall_at_1(s["scores"][label][system], left_out) for s in per_seed]
              for system in per_seed[0]["scores"][label]}
    summary = {f"{prefix}pooled_recall@1.{system}": round(float(np.mean(values)), 4)
               for system, values in pooled.items()}
    for top in [s for s in pooled if s.startswith("unified")]:
        name = top.removeprefix("unified").lstrip("_")
        suffix = f"_{name}" if name else ""
        summary |= paired_ratio(pooled[top], pooled["all_in_one"], prefix, f"unified{suffix}_over_all_in_one")
        summary |= paired_ratio(pooled[top], pooled["specialists"], prefix, f"unified{suffix}_over_specialists")
        if "all_in_one_matched" in pooled:
            summary |= paired_ratio(pooled[top], pooled["all_in_one_matched"], prefix,
                                    f"unified{suffix}_over_all_in_one_matched")
        if name:
            summary |= paired_ratio(pooled[top], pooled["unified"], prefix, f"unified_{name}_over_unified")
    return summary


def dataset_result(name: str, root: Path, per_seed: list[dict], eval_labels: list[str], prefixes: list[str]) -> dict:
    test = Dataset.load(root).split("test")
    left_out = {label: degenerate_verticals(test, label) for label in eval_labels}
    summary: dict[str, float] = {}
    for label, prefix in zip(eval_labels, prefixes, strict=True):
        summary |= label_summary(per_seed, label, left_out[label], prefix)
    unseen, unseen_left_out = UNSEEN_TESTS.get(root.name), None
    if unseen is not None and all("unseen_scores" in s for s in per_seed):
        unseen_seeds = [{"scores": s["unseen_scores"]} for s in per_seed]
        unseen_left_out = {label: degenerate_verticals(unseen, label) for label in eval_labels}
        for label, prefix in zip(eval_labels, prefixes, strict=True):
            summary |= label_summary(unseen_seeds, label, unseen_left_out[label], f"unseen.{prefix}")
    latency = [s["latency_ms"]["unified"] / s["latency_ms"]["specialists"] for s in per_seed]
    summary[f"{prefixes[0]}latency_ratio_unified_over_specialists"] = round(float(np.mean(latency)), 4)
    summary[f"{prefixes[0]}params_ratio_unified_over_specialists"] = round(
        per_seed[0]["params"]["unified"] / per_seed[0]["params"]["specialists"], 4)
    return {"summary": summary, "labels": eval_labels, "degenerate_verticals": left_out,
            "tables": {label: summarise(per_seed, label) for label in eval_labels},
            "per_seed_pooled_recall@1": {label: [{system: round(pooled_recall_at_1(scores, left_out[label]), 4)
                                                  for system, scores in s["scores"][label].items()}
                                                 for s in per_seed] for label in eval_labels},
            "seeds": len(per_seed),
            "verticals": Dataset.load(root).verticals, "test_images": int(len(test)), "dataset": name,
            "unseen_test_images": None if unseen is None else int(len(unseen)),
            "unseen_degenerate_verticals": unseen_left_out}


def prepare(base: Config, trained: list[str], products: int, students: list[str]
            ) -> dict[str, tuple[Path, Config, list[str], list[str]]]:
    """Ingested datasets (reused when unchanged): root, config, eval labels, summary-key prefixes, with
    ``products`` synthetic products per vertical; the unseen catalog and the ``students``' unlabelled datasets
    go to UNSEEN_TESTS and UNLABELLED_ROOTS. Every dataset is prepared, so that the result file holds the
    finished seeds of each; the real catalog is ingested again only when ``trained`` (see ``mine``), the synthetic
    one drawn only when missing, one process at a time."""
    WORK.mkdir(parents=True, exist_ok=True)
    with open(WORK / "prepare.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # processes started together: one draws and ingests, the others reuse
        return prepare_datasets(base, trained, products, students)


def prepare_datasets(base: Config, trained: list[str], products: int, students: list[str]
                     ) -> dict[str, tuple[Path, Config, list[str], list[str]]]:
    datasets = {}
    real = SHARED_DATA / "fashion-products"
    if real.is_dir():
        config = base.model_copy(update={"data": base.data.model_copy(update={"label": "articleType+baseColour"})})
        if mine("fashion-products", WORK / "fashion-products-ds", trained):
            ingest_stage(config, real, WORK / "fashion-products-ds", "fashion-products")
        datasets["fashion-products"] = (WORK / "fashion-products-ds", config,
                                        ["articleType+baseColour", "articleType"], ["", "articleType."])
        if UNLABELLED_SOURCE.is_dir():
            unseen = unseen_images(config, WORK / "fashion-products-ds", real / "labels.csv")
            UNSEEN_TESTS["fashion-products-ds"] = unseen
            if "unlabelled_images" in students:
                UNLABELLED_ROOTS["fashion-products-ds"] = with_unlabelled(WORK / "fashion-products-ds", unseen)
    # never drawn again: drawing rewrites every image (and so re-ingests) under processes reading them, and one
    # read a half-written manifest (the same settings draw the same catalog)
    if not (WORK / f"synthetic-{products}-ds" / "dataset.json").is_file():
        catalog = {"products_per_vertical": products, "views_per_product": 4}
        labels = generate_stage(base, WORK / f"synthetic-{products}", catalog)
        ingest_stage(base, labels.parent, WORK / f"synthetic-{products}-ds")
    datasets["synthetic"] = (WORK / f"synthetic-{products}-ds", base, ["product_id"], ["synthetic."])
    return datasets


def unseen_images(config: Config, root: Path, known_labels: Path) -> pd.DataFrame:
    """The images of ``UNLABELLED_SOURCE`` that ``root``'s models never see, with their labels: every product id
    of fashion-products left out, and every image within NEAR_DUPLICATE of one of its images (16 px grey
    thumbnails, L2) and every byte-identical copy but one (copies would find each other whatever the model).
    Kept in a CSV beside the datasets."""
    cached = WORK / f"{root.name}-unseen.csv"
    if cached.is_file():
        return pd.read_csv(cached, dtype=str)
    extra = ingest_stage(config, UNLABELLED_SOURCE, WORK / "fashion-products-224-ds", "fashion-products")[0].manifest
    manifest = Dataset.load(root).manifest
    extra = extra[~extra["product_id"].isin(set(pd.read_csv(known_labels, dtype=str)["id"]))]

    def thumbnails(frame: pd.DataFrame) -> torch.Tensor:
        return load_images(frame["image"].tolist(), 16).float().div(255).mean(1).flatten(1)

    distance = torch.cdist(thumbnails(extra), thumbnails(manifest)).min(1).values.numpy()
    print(f"unseen images: {(distance > NEAR_DUPLICATE).sum()} ({(distance <= NEAR_DUPLICATE).sum()} near-duplicates "
          "left out)")
    extra = extra[distance > NEAR_DUPLICATE].drop_duplicates("sha256").assign(split="test")
    extra.to_csv(cached, index=False)
    return pd.read_csv(cached, dtype=str)


def with_unlabelled(root: Path, unseen: pd.DataFrame) -> Path:
    """``root`` plus the unseen catalog images with their labels blanked, all in train."""
    out = WORK / f"{root.name}-unlabelled"
    if (out / "manifest.csv").is_file():
        return out
    extra = unseen.assign(split="train")
    extra[[c for c in extra.columns if c not in ("image", "product_id", "vertical", "split", "sha256")]] = None
    out.mkdir(parents=True)
    pd.concat([Dataset.load(root).manifest, extra]).to_csv(out / "manifest.csv", index=False)
    shutil.copy(root / "dataset.json", out / "dataset.json")
    return out


def mine(name: str, root: Path, trained: list[str]) -> bool:
    """Whether this process prepares the dataset: one it trains on, or one nobody has made yet. Another
    process training on a dataset may be reading it: re-ingesting it under that process broke its run."""
    return name in trained or not (root / "dataset.json").is_file()


def settings() -> dict:
    return {"steps_per_vertical": ARGS.steps, "image_size": ARGS.image_size, "products_per_vertical": ARGS.products,
            "batch": "8x4", "distill_factor": ARGS.distill_factor, "students": ARGS.students,
            "backbone": "resnet18", "torch_threads": ARGS.threads, "generalist_share": ARGS.generalist_share,
            "specialist_lr": ARGS.specialist_lr, "distill_triplet_weight": PRODUCT.train.distill_triplet_weight,
            "device": ARGS.device, "unseen_test": bool(UNSEEN_TESTS)}


def main() -> None:
    torch.set_num_threads(ARGS.threads)
    load_at_start = load_average()
    base = load_config(environ={"APPAREL__MODEL__IMAGE_SIZE": str(ARGS.image_size)})
    datasets = prepare(base, ARGS.datasets, ARGS.products, ARGS.students)
    # threads change the speed, not the models: seeds trained with other thread counts are the same work
    key = settings_key({k: v for k, v in settings().items()
                        if k not in ("torch_threads", "unseen_test") and EARLIER.get(k, "") != v})
    caches = {name: WORK / f"seeds-{name}-{key}" for name in datasets}  # a file per seed: runs may overlap
    for seed in range(ARGS.first_seed, ARGS.seeds):
        for name, (root, config, labels, _) in datasets.items():
            if name not in ARGS.datasets:
                continue
            if seed_done(caches[name], seed, "unseen_scores" if root.name in UNSEEN_TESTS else None):
                continue
            start = time.perf_counter()
            save_seed(caches[name], seed, run_seed(configure(config, ARGS.steps, seed, config.data.label,
                                                             ARGS.generalist_share, ARGS.specialist_lr),
                                                   root, labels, ARGS.students))
            print(f"{name} seed {seed}: {time.perf_counter() - start:.0f}s (load {load_average()[0]})", flush=True)
            write(datasets, caches, load_at_start)
    write(datasets, caches, load_at_start)


def result_name() -> str:
    """unified.json for the product's own recipe at its own input size, else a name saying what differs."""
    product = PRODUCT.train
    if "unlabelled_images" in ARGS.students:
        name = "unified_unlabelled"
    elif "pair_teachers" in ARGS.students:
        name = "unified_teacher_groups"
    elif (ARGS.generalist_share, ARGS.specialist_lr) == (product.generalist_share, product.specialist_lr):
        name = "unified"
    else:
        name = "unified_generalist" if ARGS.generalist_share else "unified_from_scratch"
    return name if ARGS.image_size == PRODUCT.model.image_size else f"{name}_{ARGS.image_size}px"


def write(datasets: dict, caches: dict[str, Path], load_at_start: list[float]) -> None:
    """The result file from every dataset's finished seeds. A dataset with none here (its caches made on
    another machine) keeps its block from the file it replaces, if that was measured under these settings."""
    done = {name: finished_seeds(path) for name, path in caches.items()}
    results = {name: dataset_result(name, root, done[name], labels, prefixes)
               for name, (root, _, labels, prefixes) in datasets.items() if done[name]}
    name = result_name()
    earlier = RESULTS / f"{name}.json"
    if earlier.is_file():
        previous = json.loads(earlier.read_text())
        if same_work(previous["settings"], settings()):
            results = {dataset: block for dataset, block in previous["datasets"].items() if dataset in datasets} \
                | results
    summary = {key: value for result in results.values() for key, value in result["summary"].items()}
    write_result(name, {"summary": summary, "datasets": results, "settings": settings(),
                                 "pooling": "Recall@1 pooled over all queries of the scored verticals (verticals "
                                            "weighted by queries); ratios are means of paired per-seed ratios, "
                                            "95 % t intervals over seeds"}, load_at_start)


def same_work(first: dict, second: dict) -> bool:
    """Whether two runs' settings train the same models (threads change the speed only; a setting a file
    lacks had its EARLIER value)."""
    return {k: v for k, v in (EARLIER | first).items() if k != "torch_threads"} == \
        {k: v for k, v in (EARLIER | second).items() if k != "torch_threads"}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0,
                        help="train seeds from this one up to --seeds (another process may train the others)")
    parser.add_argument("--steps", type=int, default=50, help="P×K batches per vertical")
    parser.add_argument("--image-size", type=int, default=PRODUCT.model.image_size)
    parser.add_argument("--distill-factor", type=int, default=2,
                        help="the student distils for this many times the steps of one all-in-one model")
    parser.add_argument("--products", type=int, default=120, help="synthetic products per vertical")
    parser.add_argument("--students", type=lambda s: s.split(","), default=["default"],
                        help=f"student recipes, comma-separated, 'default' first ({', '.join(STUDENTS)})")
    parser.add_argument("--datasets", type=lambda s: s.split(","), default=["fashion-products", "synthetic"],
                        help="which datasets to train in this invocation (finished seeds of others are kept)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="where models train and embed (cuda: a GPU)")
    parser.add_argument("--generalist-share", type=float, default=PRODUCT.train.generalist_share,
                        help="share of the teachers' triplet steps on the generalist (0: specialists from scratch)")
    parser.add_argument("--specialist-lr", type=float, default=PRODUCT.train.specialist_lr,
                        help="learning rate of the specialists' fine-tune from the generalist (0: train.lr)")
    ARGS = parser.parse_args()
    ARGS.specialist_lr = ARGS.specialist_lr or None
    DEVICE = torch.device(ARGS.device)
    main()
