"""Stage functions: what the CLI commands and the kfp components call. Thin over the library."""

from __future__ import annotations

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


def ingest_source(config: Config, source: str, adapter: str, out: Path) -> Dataset:
    """'synthetic' draws the default catalog inside ``out``; anything else is a catalog path."""
    if source == "synthetic":
        labels = generate_stage(config, out / "catalog")
        return ingest_stage(config, labels.parent, out, "manifest")[0]
    return ingest_stage(config, Path(source), out, adapter)[0]


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


def index_stage(config: Config, dataset_root: Path, model_dir: Path, out_dir: Path) -> Path:
    """The similar-item search index over the whole catalog: faiss index + the row each id means."""
    from apparel.evaluation.embeddings import embed_frame
    from apparel.index import build_index, save_index
    from apparel.models.attributes import ApparelNet

    dataset = Dataset.load(dataset_root)
    model = ApparelNet.load(model_dir)
    embeddings = embed_frame(model.base, dataset.manifest)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_index(build_index(embeddings), str(out_dir / "catalog.faiss"))
    dataset.manifest[["image", "product_id", "vertical"]].to_csv(out_dir / "ids.csv", index_label="id")
    return out_dir


def champion_dataset_version(config: Config) -> str | None:
    """The dataset version the current champion was trained on (None without a champion)."""
    from mlflow import MlflowClient

    from apparel.registry import aliases
    from apparel.registry.tracking import configure

    configure(config.registry)
    client = MlflowClient()
    version = aliases.holder(client, config.registry.model_name, aliases.CHAMPION)
    if version is None:
        return None
    return client.get_model_version(config.registry.model_name, version).tags.get("dataset.version")


def download_champion(config: Config, out_dir: Path) -> Path:
    from apparel.registry.pyfunc import load_registered
    from apparel.registry.tracking import configure

    configure(config.registry)
    load_registered(f"models:/{config.registry.model_name}@champion").save(out_dir)
    return out_dir


def finetune_stage(config: Config, dataset_root: Path, champion_dir: Path, out_dir: Path) -> Path:
    """Retraining: continue from the champion on the new data (triplet on the embedding, masked
    attribute losses, an L2 pull towards the champion's embedding so retrieval does not drift)."""
    from apparel.models.attributes import ApparelNet
    from apparel.train.finetune import finetune

    dataset = Dataset.load(dataset_root)
    model = ApparelNet.load(champion_dir)
    frame, images = _train_frame_tensors(config, dataset, model.spec.base.image_size)
    finetune(model, frame, images, config)
    model.save(out_dir)
    return out_dir


def with_epochs(config: Config, epochs: int = 0, distill_epochs: int = 0) -> Config:
    """A pipeline parameter of 0 keeps the configured value."""
    updates = {k: v for k, v in {"epochs": epochs, "distill_epochs": distill_epochs}.items() if v}
    return config.model_copy(update={"train": config.train.model_copy(update=updates)}) if updates else config


def _copy_model(source: Path, target: Path) -> None:
    import shutil

    shutil.copytree(source, target, dirs_exist_ok=True)


def _val_scores(config: Config, dataset: Dataset, models: dict) -> dict[str, float]:
    from apparel.evaluation.embeddings import evaluate_models

    scores = evaluate_models(models, dataset.split("val"), config.data.label)
    return {f"val.{v}.{m.replace('@', '_at_')}": s[m] for v, s in scores.items() for m in ("recall@1", "map@r")}


def specialist_stage(config: Config, dataset_root: Path, vertical: str, out: Path, epochs: int = 0
                     ) -> dict[str, float]:
    """One vertical's specialist: local Ray here, a KubeRay RayJob in cluster mode."""
    from apparel.models.embedding import EmbeddingNet
    from apparel.train.embedding_job import make_job, run_embedding_job

    config = with_epochs(config, epochs)
    dataset = Dataset.load(dataset_root)
    job = make_job(config, f"specialist-{vertical}-{dataset.info.version}", dataset_root, [vertical], "triplet")
    storage = Path(config.data.root).resolve() / "ray"
    if config.mode == "cluster":
        from apparel.kuberay import run_rayjob

        model_dir = run_rayjob(config, job, storage)
    else:
        model_dir = run_embedding_job(job, config, storage)
    _copy_model(model_dir, out)
    return _val_scores(config, dataset, {vertical: EmbeddingNet.load(out)})


def distill_from(config: Config, dataset_root: Path, teachers: dict[str, Path], out: Path, epochs: int = 0
                 ) -> dict[str, float]:
    from apparel.models.embedding import EmbeddingNet
    from apparel.train.distill import distill_unified

    config = with_epochs(config, distill_epochs=epochs)
    dataset = Dataset.load(dataset_root)
    work = Path(config.data.root).resolve() / "distill" / dataset.info.version
    _copy_model(distill_unified(config, dataset_root, teachers, work), out)
    unified = EmbeddingNet.load(out)
    return _val_scores(config, dataset, {v: unified for v in teachers})


def evaluate_stage(config: Config, dataset_root: Path, model_dir: Path, teachers: dict[str, Path],
                   report_html: Path, baselines_json: Path) -> dict[str, float]:
    """Scores on the frozen set, an HTML report people read in the KFP UI, and the specialists'
    scores for the registry to log beside the candidate's."""
    import json
    from dataclasses import asdict

    from apparel.evaluation.embeddings import evaluate_models
    from apparel.evaluation.report import EvaluationReport, evaluate_apparel_model
    from apparel.models.attributes import ApparelNet
    from apparel.models.embedding import EmbeddingNet
    from apparel.registry.html import evaluation_html
    from apparel.registry.register import frozen_eval_set

    frame, eval_set = frozen_eval_set(config, Dataset.load(dataset_root))
    report, _ = evaluate_apparel_model(ApparelNet.load(model_dir), frame, config.data.label, eval_set)
    specialists = EvaluationReport(evaluate_models({v: EmbeddingNet.load(p) for v, p in teachers.items()}, frame,
                                                   config.data.label), {}, eval_set)
    baselines_json.write_text(json.dumps({"specialists": asdict(specialists)}))
    report_html.write_text(evaluation_html(report, {"specialists": specialists}))
    return report.flat_metrics()


def register_from(config: Config, model_dir: Path, dataset_root: Path, baselines_json: Path | None, card: Path):
    import json

    from apparel.evaluation.report import EvaluationReport
    from apparel.registry.register import register_candidate

    baselines = {}
    if baselines_json is not None and baselines_json.is_file():
        baselines = {k: EvaluationReport(**v) for k, v in json.loads(baselines_json.read_text()).items()}
    result = register_candidate(config, model_dir, dataset_root, baselines)
    card.write_text(result.card)
    return result


def record_run_status(config: Config, run: str, state: str, error: str | None) -> None:
    """The exit handler's record: one JSON line per finished run, failures with their message."""
    import json
    from datetime import UTC, datetime

    log = Path(config.data.root).resolve() / "pipeline_runs.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    entry = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "run": run, "state": state, "error": error}
    with log.open("a") as handle:
        handle.write(json.dumps(entry) + "\n")
    print(f"pipeline run {run}: {state}" + (f" ({error})" if error else ""))


def needs_retraining(config: Config, dataset_root: Path) -> bool:
    return champion_dataset_version(config) != Dataset.load(dataset_root).info.version


def pipeline_summary(config: Config, versions_before: int = 0) -> list[str]:
    """What a local pipeline run ends with: the version it registered, its gate decision, key
    metrics, where to look. ``versions_before`` is how many versions existed before the run."""
    from mlflow import MlflowClient

    from apparel.registry.register import list_versions
    from apparel.registry.tracking import configure, tracking_uri

    versions = list_versions(config)
    if len(versions) <= versions_before:
        champion = next((v["version"] for v in versions if "champion" in v["aliases"].split(",")), None)
        return [f"nothing registered: no new data since the champion's dataset "
                f"({'champion stays v' + champion if champion else 'there is no champion'})"]
    latest = versions[0]
    configure(config.registry)
    version = MlflowClient().get_model_version(config.registry.model_name, latest["version"])
    metrics = MlflowClient().get_run(version.tags["run_id"]).data.metrics
    recall = {k.split(".")[1]: v for k, v in metrics.items() if k.startswith("retrieval.") and
              k.endswith(".recall_at_1")}
    accuracy = {k.split(".")[1]: v for k, v in metrics.items() if k.startswith("attribute.") and
                k.endswith(".accuracy")}
    # The newest index: the one this run built (run folders of both pipelines sit side by side).
    index = sorted(Path(config.pipeline.pipeline_root).resolve().glob("*/build-index/index"),
                   key=lambda path: path.stat().st_mtime)
    return [
        f"registered: {config.registry.model_name} v{latest['version']} -> {latest['aliases']} "
        f"(gate: {latest['reasons']})",
        "Recall@1: " + ", ".join(f"{k} {v:.3f}" for k, v in sorted(recall.items())),
        "attribute accuracy: " + ", ".join(f"{k} {v:.3f}" for k, v in sorted(accuracy.items())),
        f"search index: {index[-1] if index else 'not built'}",
        f"MLflow UI: .venv/bin/apparel mlflow-ui  (store {tracking_uri(config.registry)}, http://127.0.0.1:5000)",
        f"serving: the champion is models:/{config.registry.model_name}@champion",
    ]
