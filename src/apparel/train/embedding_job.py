"""Embedding training on Ray Train: ``train_worker`` runs on every worker, ``run_embedding_job``
launches one run from the driver. Specialists, the all-in-one baseline and the unified student
are all :class:`EmbeddingJob` s: only the verticals and the objective differ.

A run checkpoints every epoch under ``storage/<name>``; launching a job with the same name and
storage resumes from the last checkpoint instead of from zero.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch

from apparel.config import Config, TrainConfig
from apparel.data.dataset import PKSampler, load_images
from apparel.data.manifest import Dataset, label_values
from apparel.evaluation.retrieval import per_vertical_retrieval
from apparel.losses import DistillationLoss, TripletMarginLoss
from apparel.miners import build_miner
from apparel.models.embedding import EmbeddingNet, EmbeddingSpec
from apparel.train.loop import embed, shuffled_batches, train_one_epoch, use_threads


@dataclass
class EmbeddingJob:
    name: str
    dataset_root: str
    verticals: list[str]
    objective: Literal["triplet", "regress"]
    label: str
    spec: dict
    train: dict
    teacher_path: str | None = None  # regress: {"train": N×D tensor} aligned with job_frame(job, "train"),
    # and "train_flipped" (the mirror images' targets) when distilling on both views
    init_path: str | None = None  # a model folder of the same spec to start from (else random, or spec.weights)


def job_frame(job: EmbeddingJob, split: str) -> pd.DataFrame:
    """The rows a job sees: its verticals; for triplets and for validation only labelled rows."""
    frame = Dataset.load(job.dataset_root).split(split)
    frame = frame[frame["vertical"].isin(job.verticals)].reset_index(drop=True)
    if job.objective == "triplet" or split != "train":
        frame = frame[pd.notna(label_values(frame, job.label))].reset_index(drop=True)
    return frame


def _codes(values: np.ndarray) -> torch.Tensor:
    """Class indices of the labels; -1 where a row has none."""
    labelled = pd.notna(values)
    codes = np.full(len(values), -1)
    codes[labelled] = np.unique(values[labelled].astype(str), return_inverse=True)[1]
    return torch.from_numpy(codes)


def _validation(model: EmbeddingNet, job: EmbeddingJob, frame: pd.DataFrame, images: torch.Tensor) -> dict:
    """Mean val Recall@1 over the job's verticals (what each epoch is judged by)."""
    if len(frame) < 2:
        return {}
    scores = per_vertical_retrieval(embed(model, images), label_values(frame, job.label), frame["vertical"])
    return {"val_recall@1": float(np.mean([m["recall@1"] for m in scores.values()]))} if scores else {}


def _save_state(directory: Path, model: EmbeddingNet, optimizer, scheduler, epoch: int, job: EmbeddingJob,
                final: bool) -> None:
    """The weights once (``model/``); optimizer and scheduler only while there are epochs left to resume:
    a finished run's checkpoint is the model alone, a quarter of the size with Adam's two moments."""
    # Where it trained: the run record of a GPU worker says cuda (weights are loaded onto the CPU anyway).
    state = {"epoch": epoch, "job": asdict(job), "device": str(next(model.parameters()).device)}
    if not final:
        state.update(optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict())
    torch.save(state, directory / "state.pt")
    model.save(directory / "model")


Report = Callable[[dict, EmbeddingNet, Callable[[Path], None] | None], None]


def fit(job: EmbeddingJob, report: Report, resume_state: dict | None = None, rank: int = 0, world: int = 1,
        device: torch.device | None = None, wrap: Callable[[torch.nn.Module], torch.nn.Module] = lambda m: m
        ) -> EmbeddingNet:
    """The training loop of every embedding job, on one worker.

    ``report(metrics, model, save)`` is called once an epoch; ``save(dir)`` writes a resumable state
    (rank 0 only). The Ray worker and the in-process runner differ only in ``report`` and ``wrap``.
    """
    train = TrainConfig(**job.train)
    use_threads(train.torch_threads)
    device = device or torch.device("cpu")
    torch.manual_seed(train.seed * 1000 + rank)
    spec = EmbeddingSpec(**job.spec)
    frame = job_frame(job, "train")
    images = load_images(frame["image"].tolist(), spec.image_size)
    flip = True  # random mirror images, unless each view has its own target
    triplet = TripletMarginLoss(train.margin, build_miner(train.miner, train.margin))
    labels = _codes(label_values(frame, job.label))  # -1: unlabelled (a regress job distils those too)
    if job.objective == "triplet":
        targets: torch.Tensor | tuple[torch.Tensor, ...] = labels
        loss_fn = triplet
    else:
        teachers = torch.load(job.teacher_path, weights_only=True)
        targets = teachers["train"]
        if "train_flipped" in teachers:
            images, targets = torch.cat([images, images.flip(-1)]), torch.cat([targets, teachers["train_flipped"]])
            labels, flip = torch.cat([labels, labels]), False
        loss_fn = DistillationLoss(triplet, train.distill_triplet_weight)
        if train.distill_triplet_weight > 0:
            targets = (targets, labels)

    model = EmbeddingNet(spec)
    if job.init_path and not resume_state:
        model.load_state_dict(EmbeddingNet.load(Path(job.init_path)).state_dict())
    model = model.to(device)
    wrapped = wrap(model)
    optimizer = torch.optim.AdamW(wrapped.parameters(), lr=train.lr, weight_decay=train.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, train.epochs))
    start_epoch = 0
    if resume_state:
        model.load_state_dict(resume_state["model"])
        if "optimizer" in resume_state:  # absent once the run finished
            optimizer.load_state_dict(resume_state["optimizer"])
            scheduler.load_state_dict(resume_state["scheduler"])
        start_epoch = resume_state["epoch"] + 1
        if rank == 0:
            print(f"[{job.name}] resuming after epoch {start_epoch}/{train.epochs}")

    val_frame = job_frame(job, "val") if rank == 0 else None
    val_images = load_images(val_frame["image"].tolist(), spec.image_size) if rank == 0 else None
    steps = max(1, train.steps_per_epoch // world)
    for epoch in range(start_epoch, train.epochs):
        batches = _epoch_batches(job, train, labels, len(images), epoch, rank, steps)
        loss = train_one_epoch(wrapped, batches, images, targets, loss_fn, optimizer, device, flip)
        scheduler.step()
        metrics = {"epoch": epoch, "loss": loss}
        if rank != 0:
            report(metrics, model, None)
            continue
        metrics.update(_validation(model, job, val_frame, val_images))
        print(f"[{job.name}] epoch {epoch + 1}/{train.epochs} "
              + " ".join(f"{k}={v:.4f}" for k, v in metrics.items() if k != "epoch"), flush=True)
        final = epoch + 1 == train.epochs
        report(metrics, model, lambda d, e=epoch, f=final: _save_state(d, model, optimizer, scheduler, e, job, f))
    return model


def _epoch_batches(job: EmbeddingJob, train: TrainConfig, labels: torch.Tensor, n: int, epoch: int, rank: int,
                   steps: int) -> list[list[int]]:
    """P×K batches of labelled rows for a triplet loss (the student's too, when weighted); else shuffled rows."""
    if job.objective == "triplet" or train.distill_triplet_weight > 0:
        labelled = np.flatnonzero(labels.numpy() >= 0)
        sampler = PKSampler(labels.numpy()[labelled], train.batch_p, train.batch_k, seed=train.seed * 1000 + rank,
                            batches=steps)
        sampler.set_epoch(epoch)
        return [labelled[batch].tolist() for batch in sampler]
    batches: list[list[int]] = []
    while len(batches) < steps:
        seed = train.seed + epoch * 7919 + rank + len(batches)
        batches += shuffled_batches(n, train.batch_p * train.batch_k, seed)
    return batches[:steps]


def train_worker(job_dict: dict) -> None:
    """Ray Train's per-worker entry: DDP-wrapped model, checkpoints through ``ray.train.report``."""
    import ray.train
    import ray.train.torch

    context = ray.train.get_context()
    resume_state = None
    checkpoint = ray.train.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as directory:
            resume_state = torch.load(Path(directory) / "state.pt", map_location="cpu", weights_only=False)
            resume_state["model"] = torch.load(Path(directory) / "model" / "weights.pt", map_location="cpu",
                                               weights_only=True)

    def report(metrics: dict, model: EmbeddingNet, save: Callable[[Path], None] | None) -> None:
        if save is None:
            ray.train.report(metrics, checkpoint=None)
            return
        with tempfile.TemporaryDirectory() as directory:
            save(Path(directory))
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(directory))

    fit(EmbeddingJob(**job_dict), report, resume_state, context.get_world_rank(), context.get_world_size(),
        ray.train.torch.get_device(), ray.train.torch.prepare_model)


def fit_in_process(job: EmbeddingJob, device: torch.device | None = None) -> EmbeddingNet:
    """The same loop without Ray: for benchmarks and quick experiments (no checkpoints); CPU unless ``device``."""
    return fit(job, report=lambda metrics, model, save: None, device=device).eval()


def ensure_ray(config: Config) -> None:
    """Local Ray sized for small machines; RAY_ADDRESS (set inside a RayJob) joins that cluster instead.
    A cluster-mode process without one is a KFP step: its Ray Train runs go out as RayJobs (apparel.kuberay)."""
    import ray

    if ray.is_initialized():
        return
    # Ray Train's print patch tees every worker print into its logger too: each epoch line came out twice.
    os.environ.setdefault("RAY_TRAIN_ENABLE_PRINT_PATCH", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_memory_usage_threshold", "0.98")  # small hosts: don't kill the trainer early
    if os.environ.get("RAY_ADDRESS"):
        ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=True)
        return
    if config.mode == "cluster":
        raise RuntimeError("cluster mode: Ray Train runs go out as KubeRay RayJobs (apparel.kuberay.run_training); "
                           "this process has no Ray cluster to join (RAY_ADDRESS is unset)")
    # The dashboard also serves the state API that Ray Train's placement-group cleaner polls.
    ray.init(num_cpus=os.cpu_count(), object_store_memory=256 * 1024**2, include_dashboard=True,
             dashboard_host="127.0.0.1",
             log_to_driver=True, configure_logging=False)


def resolve_gpu(setting: bool | str) -> bool:
    if isinstance(setting, bool):
        return setting
    import ray

    return ray.cluster_resources().get("GPU", 0) > 0


def scaling_config(train: TrainConfig, use_gpu: bool):
    """Ray Train's workers for a run; a RayJob's worker group is sized from the same object (apparel.kuberay)."""
    from ray.train import ScalingConfig

    per_worker = {"CPU": train.cpus_per_worker, **({"GPU": 1} if use_gpu else {})}
    return ScalingConfig(num_workers=train.num_workers, use_gpu=use_gpu, resources_per_worker=per_worker)


def run_embedding_job(job: EmbeddingJob, config: Config, storage: Path) -> Path:
    """Runs (or resumes) one training run; returns the folder of the model it ended with."""
    from ray.train import CheckpointConfig, RunConfig
    from ray.train.torch import TorchTrainer

    ensure_ray(config)
    train = config.train
    trainer = TorchTrainer(
        train_worker,
        train_loop_config=asdict(job),
        scaling_config=scaling_config(train, resolve_gpu(train.use_gpu)),
        run_config=RunConfig(name=job.name, storage_path=str(storage.resolve()),
                             checkpoint_config=CheckpointConfig(num_to_keep=train.checkpoints_to_keep)),
    )
    result = trainer.fit()
    if result.checkpoint is None:
        raise RuntimeError(f"training run '{job.name}' produced no checkpoint")
    return Path(result.checkpoint.path) / "model"


def run_concurrently(jobs: list[EmbeddingJob], config: Config, storage: Path) -> list[Path]:
    """Independent runs side by side, as many as the CPUs allow (one on a 2-core laptop per worker pair)."""
    ensure_ray(config)  # once, before the threads: concurrent ray.init calls start two clusters
    per_run = config.train.num_workers * config.train.cpus_per_worker
    parallel = max(1, min(len(jobs), (os.cpu_count() or 1) // per_run))
    with ThreadPoolExecutor(parallel) as pool:
        return list(pool.map(lambda j: run_embedding_job(j, config, storage), jobs))


# Train settings that never change an embedding run's weights (where it runs, or other stages' knobs).
# (generalist_share and specialist_lr shape a run through its steps, starting model and lr, all in the
# identity already.)
NOT_SHAPING = {"use_gpu", "cpus_per_worker", "torch_threads", "checkpoints_to_keep", "distill_epochs", "freeze_base",
               "finetune_lr", "finetune_embedding_weight", "generalist_share", "specialist_lr"}


def run_identity(spec: dict, train: dict, label: str, objective: str, verticals: list[str],
                 init_path: Path | None = None) -> str:
    """Short hash of everything that shapes a run's result: runs that differ in any of it never share
    a Ray run folder, so a changed learning rate, miner, epoch count or starting model can't resume a
    finished run."""
    shaping = {k: v for k, v in train.items() if k not in NOT_SHAPING and not k.startswith("attribute_")}
    start = hashlib.sha256((init_path / "weights.pt").read_bytes()).hexdigest() if init_path else None
    text = json.dumps([spec, shaping, label, objective, sorted(verticals), *([start] if start else [])],
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def make_job(config: Config, name: str, dataset_root: Path, verticals: list[str], objective: str,
             teacher_path: Path | None = None, init_path: Path | None = None) -> EmbeddingJob:
    """``name`` (which should carry the data's identity, e.g. its version) gets the config's identity appended;
    ``init_path``: a model folder whose weights the run starts from (part of the identity)."""
    spec = asdict(EmbeddingSpec(backbone=config.model.backbone, embedding_dim=config.model.embedding_dim,
                                image_size=config.model.image_size, weights=config.model.weights))
    train = config.train.model_dump(mode="json")
    identity = run_identity(spec, train, config.data.label, objective, list(verticals), init_path)
    return EmbeddingJob(name=f"{name}-{identity}", dataset_root=str(Path(dataset_root).resolve()),
                        verticals=list(verticals), objective=objective, label=config.data.label, spec=spec,
                        train=train, teacher_path=str(teacher_path) if teacher_path else None,
                        init_path=str(Path(init_path).resolve()) if init_path else None)

