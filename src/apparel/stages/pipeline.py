"""What pipeline runs share: epoch overrides, validation scores, run records, the summary."""

from __future__ import annotations

import sys
from pathlib import Path

from apparel.config import Config
from apparel.data.manifest import Dataset
from apparel.runlog import shown_path


def with_epochs(config: Config, epochs: int = 0, distill_epochs: int = 0) -> Config:
    """A pipeline parameter of 0 keeps the configured value."""
    updates = {k: v for k, v in {"epochs": epochs, "distill_epochs": distill_epochs}.items() if v}
    return config.model_copy(update={"train": config.train.model_copy(update=updates)}) if updates else config


def val_scores(config: Config, dataset_root: Path, models: dict[str, Path]) -> dict[str, float]:
    """Recall@1 and MAP@R on the validation split, per vertical, of {vertical: model folder}."""
    from apparel.evaluation.embeddings import evaluate_models
    from apparel.models.embedding import EmbeddingNet

    loaded = {v: EmbeddingNet.load(p) for v, p in models.items()}
    scores = evaluate_models(loaded, Dataset.load(dataset_root).split("val"), config.data.label)
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


def figures(title: str, scores: dict[str, float]) -> str:
    """'title: mean 0.780 | bags 0.750, dresses 0.750': the mean on its own, then each vertical or attribute."""
    parts = ", ".join(f"{k} {v:.3f}" for k, v in sorted(scores.items()) if k != "mean")
    return f"{title}: mean {scores['mean']:.3f} | {parts}" if "mean" in scores else f"{title}: {parts}"


def run_log(config: Config) -> Path:
    return Path(config.data.root).resolve() / "pipeline_runs.jsonl"


def recorded_runs(config: Config) -> list[dict]:
    """Every run the exit handler recorded, oldest first."""
    import json

    log = run_log(config)
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.is_file() else []


def step_outputs(config: Config, run: str, task: str) -> dict | None:
    """The parameters a step of ``run`` returned (None when the step did not execute in that run)."""
    import json

    path = Path(config.pipeline.pipeline_root).resolve() / run / task / "executor_output.json"
    return json.loads(path.read_text()).get("parameterValues", {}) if path.is_file() else None


def run_outcome(config: Config, run: str) -> dict:
    """What a finished local run of a pipeline did, in one record: 'registered' (with the version and the
    gate's decision), 'no-new-data' (the catalog is the one the champion was trained on), 'no-champion',
    or 'nothing-registered'."""
    registered = step_outputs(config, run, "register")
    if registered is not None:
        return {"run": run, "outcome": "registered", "version": registered["version"],
                "decision": registered["decision"], "summary": registered["summary"]}
    check = (step_outputs(config, run, "check-new-data") or {}).get("Output")
    outcome = {"skip": "no-new-data", "no-champion": "no-champion"}.get(check, "nothing-registered")
    return {"run": run, "outcome": outcome, "summary": _nothing_registered(config, run)}


def pipeline_summary(config: Config, run: str) -> list[str]:
    """What a local pipeline run ends with, read from that run's own steps: what register did (or why
    nothing was registered), key metrics of that version, the index this run built, where to look."""
    registered = step_outputs(config, run, "register")
    if registered is None:
        return [_nothing_registered(config, run), *_where_to_look(config)]
    lines = [registered["summary"], *_metrics(config, registered["version"])]
    index = Path(config.pipeline.pipeline_root).resolve() / run / "build-index" / "index"
    if registered["decision"] == "challenger":
        lines.append("no index: challenger (the index follows the champion)")
    elif index.exists():
        lines.append(f"search index: {index}")
    else:
        lines.append("search index: not rebuilt in this run (the champion's index stands)")
    return lines + _where_to_look(config)


def _nothing_registered(config: Config, run: str) -> str:
    from apparel.stages.retrain import NO_CHAMPION

    check = step_outputs(config, run, "check-new-data") or {}
    if check.get("Output") == "no-champion":
        return NO_CHAMPION
    from mlflow import MlflowClient

    from apparel.registry import aliases
    from apparel.registry.tracking import configure

    configure(config.registry)
    champion = aliases.holder(MlflowClient(), config.registry.model_name, aliases.CHAMPION)
    return (f"nothing registered: no new data since the champion's dataset (champion stays v{champion})"
            if check.get("Output") == "skip" else "nothing registered")


def _metrics(config: Config, version: str) -> list[str]:
    from mlflow import MlflowClient

    from apparel.evaluation.report import served_line
    from apparel.registry.tracking import configure, retry

    configure(config.registry)
    client = MlflowClient()
    run_id = retry(client.get_model_version)(config.registry.model_name, version).tags["run_id"]
    metrics = retry(client.get_run)(run_id).data.metrics
    recall = {k.split(".")[1]: v for k, v in metrics.items() if k.startswith("retrieval.") and
              k.endswith(".recall_at_1")}
    accuracy = {k.split(".")[1]: v for k, v in metrics.items() if k.startswith("attribute.") and
                k.endswith(".accuracy")}
    served = {k.removeprefix("served."): v for k, v in metrics.items() if k.startswith("served.")}
    return [figures("Recall@1", recall), figures("attribute accuracy", accuracy),
            *([served_line(served)] if served else [])]


def _where_to_look(config: Config) -> list[str]:
    from apparel.registry.tracking import tracking_uri

    apparel = cli_command()
    return [f"MLflow UI: {apparel} mlflow-ui  (store {tracking_uri(config.registry)}, http://127.0.0.1:5000)",
            f"serve the champion: {apparel} serve  (HTTP http://127.0.0.1:{config.serving.http_port}, "
            f"gRPC 127.0.0.1:{config.serving.grpc_port})",
            f"then query it: curl -F image=@{example_image(config)} -F k=5 "
            f"http://127.0.0.1:{config.serving.http_port}/search"]


def cli_command() -> str:
    """How to call this CLI again from here: the launcher running now (relative when below the working
    folder, e.g. `.venv/bin/apparel`), else plain `apparel`."""
    launcher = Path(sys.argv[0])
    return shown_path(launcher) if launcher.name == "apparel" and launcher.is_file() else "apparel"


def example_image(config: Config) -> str:
    """A photo to paste into the query the summary prints: a test image (never trained on) of the newest
    ingested dataset, else any of its images, else a placeholder."""
    from apparel.workspace import newest

    try:
        manifest = Dataset.load(newest(config, "dataset")).manifest
    except FileNotFoundError:
        return "PHOTO.jpg"
    images = [Path(p) for p in (*manifest.loc[manifest["split"] == "test", "image"], *manifest["image"])]
    return next((shown_path(image) for image in images if image.is_file()), "PHOTO.jpg")
