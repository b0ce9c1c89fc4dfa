"""Attribute stages: progressive branches on the unified model, and one more branch on a trained model."""

from __future__ import annotations

import math
from pathlib import Path

from apparel.config import Config
from apparel.data.manifest import Dataset


def train_frame_tensors(config: Config, dataset: Dataset, image_size: int):
    from apparel.data.dataset import load_images
    from apparel.train.loop import use_threads

    use_threads(config.train.torch_threads)

    frame = dataset.split("train")
    return frame, load_images(frame["image"].tolist(), image_size)


def val_recall_at_1(config: Config, dataset: Dataset, embedding_net) -> float:
    """Recall@1 of an embedding model on the validation split, mean over verticals (nan without one)."""
    from apparel.evaluation.embeddings import evaluate_models, mean_metric

    scores = evaluate_models(dict.fromkeys(dataset.verticals, embedding_net), dataset.split("val"), config.data.label)
    return mean_metric(scores) if scores else math.nan


def attributes_workdir(config: Config, dataset_root: Path, unified_dir: Path) -> Path:
    """Durable work folder of one attribute training (the shared PVC on a cluster), keyed by what it
    trains on, so a retried step resumes after the last saved branch instead of starting over."""
    import hashlib

    digest = hashlib.sha256((Path(unified_dir) / "weights.pt").read_bytes())
    digest.update(config.train.model_dump_json().encode())
    version = Dataset.load(dataset_root).info.version
    return Path(config.data.root).resolve() / "attributes" / f"{version}-{digest.hexdigest()[:12]}"


def attributes_stage(config: Config, dataset_root: Path, unified_dir: Path, out_dir: Path,
                     attributes: list[str] | None = None) -> Path:
    """Progressive branches on the unified model; resumes after the last branch it saved."""
    import torch

    from apparel.models.attributes import ApparelNet, from_embedding
    from apparel.models.embedding import EmbeddingNet
    from apparel.train.attributes import attribute_specs, encode_targets, schedule_from, train_progressive
    from apparel.train.device import training_device
    from apparel.train.loop import embed

    device = training_device(config.train.use_gpu)
    dataset = Dataset.load(dataset_root)
    specs = attribute_specs(dataset, attributes or dataset.info.attributes)
    partial, final = out_dir / "partial", out_dir / "model"
    unified = EmbeddingNet.load(unified_dir).to(device)
    model = from_embedding(unified, config.train.attribute_width, config.train.attribute_attention,
                           config.train.attribute_local_maps)
    if (partial / "spec.json").is_file():
        model = ApparelNet.load(partial)
        print(f"[attributes] resuming with branches: {', '.join(model.branches)}")
    model.to(device)  # the training loop follows the model's device, batch by batch
    todo = [s for s in specs if s.name not in model.branches]
    frame, images = train_frame_tensors(config, dataset, unified.spec.image_size)
    schedule = schedule_from(config.train)
    anchor = None if schedule.freeze_base else torch.from_numpy(embed(unified, images))
    # Search is served from this trunk, so say what fine-tuning it for the attributes did to retrieval; the
    # model wraps `unified` itself, so its score is taken before training moves it.
    before = val_recall_at_1(config, dataset, unified)
    torch.manual_seed(config.train.seed)  # new branches' weights and flips: the same whatever ran before
    train_progressive(model, todo, images, encode_targets(frame, specs), schedule, anchor,
                      on_branch=lambda m: m.save(partial))
    if not math.isnan(before):  # the dataset has a validation split to score
        after = val_recall_at_1(config, dataset, model.base)
        print(f"[attributes] end-to-end: embedding val_recall@1 {before:.4f} before the branches, {after:.4f} after")
    model.cpu().save(final)
    return final


def add_attribute_stage(config: Config, dataset_root: Path, model_dir: Path, name: str, out_dir: Path,
                        finetune: bool = False) -> tuple[Path, dict[str, float]]:
    """One more branch on a trained model. With the base frozen (the default) every existing output
    stays identical; with ``finetune`` the embedding moves and retrieval is re-checked.
    Returns the new model folder and {recall@1 before, after} on the validation split."""
    import torch

    from apparel.models.attributes import ApparelNet
    from apparel.train.attributes import attribute_specs, encode_targets, schedule_from, train_progressive
    from apparel.train.loop import embed

    if not (model_dir / "spec.json").is_file():
        raise FileNotFoundError(f"no model at {model_dir} (spec.json missing)")
    dataset = Dataset.load(dataset_root)
    model = ApparelNet.load(model_dir)
    spec = attribute_specs(dataset, [name])[0]
    if name in model.branches:
        raise ValueError(f"model already predicts '{name}'")
    frame, images = train_frame_tensors(config, dataset, model.spec.base.image_size)
    before = val_recall_at_1(config, dataset, model.base)
    schedule = schedule_from(config.train, freeze_base=not finetune)
    anchor = torch.from_numpy(embed(model.base, images)) if finetune else None
    # With --finetune the base moves, so existing branches are re-tuned on whatever labels exist.
    known = [a for a in model.spec.attributes if a.name in dataset.info.attributes] if finetune else []
    targets = encode_targets(frame, [*known, spec])
    torch.manual_seed(config.train.seed)
    train_progressive(model, [spec], images, targets, schedule, anchor, tune_existing=finetune)
    model.save(out_dir)
    return out_dir, {"val_recall@1_before": before, "val_recall@1_after": val_recall_at_1(config, dataset, model.base)}
