"""What pipeline runs share: epoch overrides, model copies, validation scores, run records, the summary."""

from __future__ import annotations

from pathlib import Path

from apparel.config import Config
from apparel.data.manifest import Dataset


def with_epochs(config: Config, epochs: int = 0, distill_epochs: int = 0) -> Config:
    """A pipeline parameter of 0 keeps the configured value."""
    updates = {k: v for k, v in {"epochs": epochs, "distill_epochs": distill_epochs}.items() if v}
    return config.model_copy(update={"train": config.train.model_copy(update=updates)}) if updates else config


def copy_model(source: Path, target: Path) -> None:
    import shutil

    shutil.copytree(source, target, dirs_exist_ok=True)


def val_scores(config: Config, dataset: Dataset, models: dict) -> dict[str, float]:
    from apparel.evaluation.embeddings import evaluate_models

    scores = evaluate_models(models, dataset.split("val"), config.data.label)
    return {f"val.{v}.{m.replace('@', '_at_')}": s[m] for v, s in scores.items() for m in ("recall@1", "map@r")}


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
        f"serve the champion: .venv/bin/apparel serve  (HTTP http://127.0.0.1:{config.serving.http_port}, "
        f"gRPC 127.0.0.1:{config.serving.grpc_port})",
        f"then query it: curl -F image=@{example_image(config)} -F k=5 "
        f"http://127.0.0.1:{config.serving.http_port}/search",
    ]


def example_image(config: Config) -> str:
    """A catalog photo to paste into the query the summary prints."""
    root = Path(config.data.root)
    found = next((p for pattern in ("*.jpg", "*.png") for p in sorted(root.rglob(pattern))[:1]), None)
    return str(found) if found else "PHOTO.jpg"
