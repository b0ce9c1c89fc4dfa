"""Register a candidate: evaluate it and the champion on the frozen set, log everything to MLflow,
register a new version and let the gate choose its alias."""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient

from apparel.config import Config
from apparel.data.dataset import load_images
from apparel.data.manifest import Dataset
from apparel.evaluation.report import EvaluationReport, evaluate_apparel_model
from apparel.models.attributes import ApparelNet
from apparel.registry import aliases, reports
from apparel.registry.gate import GateDecision, decide
from apparel.registry.pyfunc import load_registered, log_apparel_model
from apparel.registry.tracking import code_commit, configure, environment, retry
from apparel.registry.versions import list_versions  # noqa: F401 - moved there (no torch import); callers of here


@dataclass
class Registration:
    name: str
    version: str
    run_id: str
    decision: GateDecision
    report: EvaluationReport
    card: str = ""


def frozen_eval_set(config: Config, dataset: Dataset) -> tuple[pd.DataFrame, str]:
    """The evaluation set every gate uses: frozen from the first dataset's test split."""
    path = Path(config.registry.eval_set)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        dataset.split("test").assign(frozen_from=dataset.info.version).to_csv(path, index=False)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False).replace({"": None})
    return frame, f"{path.name}@{frame['frozen_from'].iloc[0]}:{len(frame)}"


def champion_report(config: Config, frame: pd.DataFrame, eval_set: str) -> tuple[str | None, EvaluationReport | None]:
    client = MlflowClient()
    version = aliases.holder(client, config.registry.model_name, aliases.CHAMPION)
    if version is None:
        return None, None
    champion = load_registered(f"models:/{config.registry.model_name}@{aliases.CHAMPION}")
    return version, evaluate_apparel_model(champion, frame, config.data.label, eval_set)[0]


def _artefacts(folder: Path, model: ApparelNet, report: EvaluationReport, embeddings, frame: pd.DataFrame,
               baselines: dict[str, EvaluationReport]) -> None:
    reports.recall_curves(report, folder / "recall_at_k.png")
    reports.comparison_bars({**baselines, "unified": report}, folder / "specialists_vs_unified.png")
    reports.confusion_matrices(model, frame, folder / "attribute_confusion.png")
    reports.projection(embeddings, frame["vertical"], folder / "embedding_projection.png")
    report.save(folder / "evaluation.json")


def register_candidate(config: Config, model_dir: Path, dataset_root: Path,
                       baselines: dict[str, EvaluationReport] | None = None, log=print) -> Registration:
    configure(config.registry)
    experiment = mlflow.get_experiment_by_name(config.registry.experiment).experiment_id
    dataset = Dataset.load(dataset_root)
    frame, eval_set = frozen_eval_set(config, dataset)
    model = ApparelNet.load(model_dir)
    report, embeddings = evaluate_apparel_model(model, frame, config.data.label, eval_set)
    champion_version, champion = champion_report(config, frame, eval_set)
    decision = decide(report, champion, config.registry.recall_tolerance, config.registry.accuracy_tolerance,
                      config.registry.review_mode)
    params = {**asdict(model.spec.base), "attributes": ",".join(model.branches),
              **{f"train.{k}": v for k, v in config.train.model_dump().items()}}
    with mlflow.start_run(experiment_id=experiment, run_name=f"register-{dataset.info.version}") as run:
        retry(mlflow.log_params)(params)
        retry(mlflow.set_tags)({"dataset.version": dataset.info.version, "dataset.source": dataset.info.source,
                                "code.commit": code_commit(), "eval_set": eval_set, **environment(),
                                "gate.decision": decision.alias, "gate.reasons": decision.summary(),
                                "gate.champion_version": champion_version or "none"})
        retry(mlflow.log_metrics)(report.flat_metrics())
        for name, baseline in (baselines or {}).items():
            retry(mlflow.log_metrics)({f"{name}.{k}": v for k, v in baseline.flat_metrics().items()})
        with tempfile.TemporaryDirectory() as folder:
            _artefacts(Path(folder), model, report, embeddings, frame, baselines or {})
            example = load_images(frame["image"].tolist()[:1], model.spec.base.image_size).permute(0, 2, 3, 1).numpy()
            info = log_apparel_model(model_dir, config.registry.model_name, example,
                                     config.registry.pip_requirements)
            version = str(info.registered_model_version)
            card = reports.model_card(config.registry.model_name, version, report,
                                      {"version": dataset.info.version, "source": dataset.info.source,
                                       "adapter": dataset.info.adapter, "images": len(dataset.manifest)},
                                      f"{decision.alias} ({decision.summary()})", asdict(model.spec.base))
            (Path(folder) / "model_card.md").write_text(card)
            retry(mlflow.log_artifacts)(folder, "reports")
    client = MlflowClient()
    for key, value in {"gate.decision": decision.alias, "gate.reasons": decision.summary(),
                       "dataset.version": dataset.info.version, "run_id": run.info.run_id}.items():
        retry(client.set_model_version_tag)(config.registry.model_name, version, key, value)
    aliases.move_alias(client, config.registry.model_name, decision.alias, version, f"gate: {decision.summary()}")
    log(f"registered {config.registry.model_name} v{version}: {decision.alias} ({decision.summary()})")
    return Registration(config.registry.model_name, version, run.info.run_id, decision, report, card)
