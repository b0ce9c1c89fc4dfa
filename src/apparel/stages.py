"""Stage functions: what the CLI commands and the kfp components call. Thin over the library."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from apparel.config import Config
from apparel.data.adapters import ADAPTERS, RawCatalog
from apparel.data.ingest import ingest
from apparel.data.manifest import Dataset
from apparel.data.synthetic import generate_catalog
from apparel.progress import progress_bar


def generate_stage(config: Config, out: Path, overrides: dict[str, Any] | None = None) -> Path:
    synthetic = config.data.synthetic.model_copy(update=overrides or {})
    if synthetic.products_per_vertical < 2 or synthetic.views_per_product < 1:
        raise ValueError("need at least 2 products per vertical and 1 view per product")
    total = synthetic.products_per_vertical * synthetic.views_per_product * 5
    with progress_bar("drawing catalog", total) as advance:
        return generate_catalog(synthetic, out, advance)


def read_catalog(config: Config, source: Path, adapter: str) -> RawCatalog:
    if adapter not in ADAPTERS or adapter == "csv":
        known = ", ".join(a for a in ADAPTERS if a != "csv")
        raise ValueError(f"unknown adapter '{adapter}' (known: {known}; generic CSV is a library call)")
    if not source.exists():
        raise FileNotFoundError(f"catalog not found: {source}")
    if adapter == "fashion-products":
        return ADAPTERS[adapter](source, config.data.vertical_map)
    return ADAPTERS[adapter](source)


def ingest_stage(config: Config, source: Path, out: Path, adapter: str = "manifest") -> tuple[Dataset, bool]:
    catalog = read_catalog(config, source, adapter)
    with progress_bar("validating images", len(catalog.rows)) as advance:
        return ingest(catalog, out, config.data, str(source), adapter, advance)


def main_job(config: Config, workdir: Path) -> Iterator[str]:
    """The README's first command: everything the platform does, on the synthetic default."""
    labels = generate_stage(config, workdir / "catalog")
    dataset, _ = ingest_stage(config, labels.parent, workdir / "dataset")
    yield f"dataset {dataset.info.version}: {dataset.info.counts['images']['total']} images"


def train_specialists_stage(config: Config, dataset_root: Path, out_dir: Path,
                            verticals: list[str] | None = None) -> dict[str, Path]:
    from apparel.train.specialists import train_specialists

    known = Dataset.load(dataset_root).verticals
    unknown = sorted(set(verticals or []) - set(known))
    if unknown:
        raise ValueError(f"unknown vertical(s) {unknown} (dataset has: {', '.join(known)})")
    return train_specialists(config, dataset_root, out_dir, verticals or None)


def specialists_in(folder: Path) -> dict[str, Path]:
    """The specialist model folders under ``folder`` (one per vertical, as train-specialists writes)."""
    found = {p.parent.name: p.parent for p in sorted(folder.glob("*/spec.json")) if "+" not in p.parent.name}
    if not found:
        raise FileNotFoundError(f"no specialist models in {folder}: run `apparel train-specialists` first")
    return found


def distill_stage(config: Config, dataset_root: Path, specialists_dir: Path, out_dir: Path) -> Path:
    from apparel.train.distill import distill_unified

    return distill_unified(config, dataset_root, specialists_in(specialists_dir), out_dir)


def retrieval_stage(config: Config, dataset_root: Path, model_dir: Path, split: str = "test"
                    ) -> dict[str, dict[str, float]]:
    """Per-vertical Recall@K and MAP@R of one model (unified or all-in-one) on a split."""
    from apparel.evaluation.embeddings import evaluate_models
    from apparel.models.embedding import EmbeddingNet

    if not (model_dir / "spec.json").is_file():
        raise FileNotFoundError(f"no model at {model_dir} (spec.json missing)")
    dataset = Dataset.load(dataset_root)
    model = EmbeddingNet.load(model_dir)
    return evaluate_models({v: model for v in dataset.verticals}, dataset.split(split), config.data.label)


def _train_frame_tensors(config: Config, dataset: Dataset, image_size: int):
    from apparel.data.dataset import load_images

    frame = dataset.split("train")
    return frame, load_images(frame["image"].tolist(), image_size)


def attributes_stage(config: Config, dataset_root: Path, unified_dir: Path, out_dir: Path,
                     attributes: list[str] | None = None) -> Path:
    """Progressive branches on the unified model; resumes after the last branch it saved."""
    import torch

    from apparel.models.attributes import ApparelNet, from_embedding
    from apparel.models.embedding import EmbeddingNet
    from apparel.train.attributes import attribute_specs, encode_targets, schedule_from, train_progressive
    from apparel.train.loop import embed

    dataset = Dataset.load(dataset_root)
    specs = attribute_specs(dataset, attributes or dataset.info.attributes)
    partial, final = out_dir / "partial", out_dir / "model"
    unified = EmbeddingNet.load(unified_dir)
    model = from_embedding(unified, config.train.attribute_width, config.train.attribute_attention)
    if (partial / "spec.json").is_file():
        model = ApparelNet.load(partial)
        print(f"[attributes] resuming with branches: {', '.join(model.branches)}")
    todo = [s for s in specs if s.name not in model.branches]
    frame, images = _train_frame_tensors(config, dataset, unified.spec.image_size)
    schedule = schedule_from(config.train)
    anchor = None if schedule.freeze_base else torch.from_numpy(embed(unified, images))
    train_progressive(model, todo, images, encode_targets(frame, specs), schedule, anchor,
                      on_branch=lambda m: m.save(partial))
    model.save(final)
    return final


def add_attribute_stage(config: Config, dataset_root: Path, model_dir: Path, name: str, out_dir: Path,
                        finetune: bool = False) -> tuple[Path, dict[str, float]]:
    """One more branch on a trained model. With the base frozen (the default) every existing output
    stays identical; with ``finetune`` the embedding moves and retrieval is re-checked.
    Returns the new model folder and {recall@1 before, after} on the validation split."""
    import torch

    from apparel.evaluation.embeddings import evaluate_models, mean_metric
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
    frame, images = _train_frame_tensors(config, dataset, model.spec.base.image_size)
    val = dataset.split("val")

    def recall(m: ApparelNet) -> float:
        return mean_metric(evaluate_models({v: m.base for v in dataset.verticals}, val, config.data.label))

    before = recall(model)
    schedule = schedule_from(config.train, freeze_base=not finetune)
    anchor = torch.from_numpy(embed(model.base, images)) if finetune else None
    # With --finetune the base moves, so existing branches are re-tuned on whatever labels exist.
    known = [a for a in model.spec.attributes if a.name in dataset.info.attributes] if finetune else []
    targets = encode_targets(frame, [*known, spec])
    train_progressive(model, [spec], images, targets, schedule, anchor, tune_existing=finetune)
    model.save(out_dir)
    return out_dir, {"val_recall@1_before": before, "val_recall@1_after": recall(model)}


def register_stage(config: Config, model_dir: Path, dataset_root: Path, specialists_dir: Path | None = None):
    """Evaluate, log, register, gate. Specialists (when given) are logged beside for comparison."""
    from apparel.evaluation.embeddings import evaluate_models
    from apparel.evaluation.report import EvaluationReport
    from apparel.models.embedding import EmbeddingNet
    from apparel.registry.register import frozen_eval_set, register_candidate

    if not (model_dir / "spec.json").is_file():
        raise FileNotFoundError(f"no model at {model_dir} (spec.json missing): run `apparel attributes` first")
    baselines = {}
    if specialists_dir is not None:
        frame, eval_set = frozen_eval_set(config, Dataset.load(dataset_root))
        models = {v: EmbeddingNet.load(p) for v, p in specialists_in(specialists_dir).items()}
        baselines["specialists"] = EvaluationReport(evaluate_models(models, frame, config.data.label), {}, eval_set)
    return register_candidate(config, model_dir, dataset_root, baselines)
