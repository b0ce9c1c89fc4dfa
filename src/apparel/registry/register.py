"""Register a candidate: score the champion on the frozen set, log the candidate's evaluation to
MLflow, register a new version and let the gate choose its alias.

The candidate is evaluated once (:func:`evaluate_candidate`, the pipeline's evaluate step); register
reads that evaluation. The frozen evaluation set lives in MLflow, as an artefact of the first
registered version's run, so every later gate (any pod, any machine) downloads the same rows.
Registration is idempotent: the same weights, dataset version and config register nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import mlflow
import numpy as np
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
from apparel.registry.tracking import code_commit, configure, environment, retry, start_run
from apparel.registry.versions import list_versions  # noqa: F401 - moved there (no torch import); callers of here

EVAL_SET_TAG = "eval_set.uri"  # registered-model tag: where the frozen evaluation set is stored
EVAL_SET_PATH = "eval_set"  # artefact folder (in the first version's run) holding frozen.csv
CANDIDATE_KEY_TAG = "candidate.key"


@dataclass
class Registration:
    name: str
    version: str  # the new version, or the identical one already registered
    run_id: str
    decision: GateDecision
    report: EvaluationReport
    card: str = ""
    unchanged: bool = False
    champion: str | None = None  # who holds champion once this registration is done

    @property
    def status(self) -> str:
        """champion, challenger or unchanged: what the pipeline's register step returns."""
        return "unchanged" if self.unchanged else self.decision.alias

    def summary(self) -> str:
        if self.unchanged:
            stays = f"champion stays v{self.champion}" if self.champion else "there is no champion"
            return f"unchanged: {stays} (v{self.version} has the same weights, dataset version and config)"
        return f"registered: {self.name} v{self.version} -> {self.decision.alias} (gate: {self.decision.summary()})"


def candidate_key(config: Config, model_dir: Path, dataset_version: str) -> str:
    """Identity of a candidate: its weights, the dataset version and the config that shaped it."""
    digest = hashlib.sha256((model_dir / "spec.json").read_bytes())
    for name, tensor in sorted(ApparelNet.load(model_dir).state_dict().items()):
        digest.update(name.encode() + np.ascontiguousarray(tensor.numpy()).tobytes())
    shaping = {"dataset": dataset_version, "label": config.data.label, "model": config.model.model_dump(mode="json"),
               "train": config.train.model_dump(mode="json")}
    digest.update(json.dumps(shaping, sort_keys=True).encode())
    return digest.hexdigest()[:32]


def registered_with_key(client: MlflowClient, name: str, key: str) -> str | None:
    """The oldest version registered with this candidate key, if any."""
    found = retry(client.search_model_versions)(f"name='{name}' and tags.`{CANDIDATE_KEY_TAG}` = '{key}'")
    return str(min(int(mv.version) for mv in found)) if found else None


def frozen_eval_set(config: Config, dataset: Dataset) -> tuple[pd.DataFrame, str]:
    """The evaluation set every gate uses: downloaded from the first registered version's run; before
    any registration, frozen from this dataset's test split (the first registration stores it)."""
    frame = stored_eval_set(config)
    if frame is None:  # through CSV, so the first gate reads exactly what later gates download
        frame = _read_frame(dataset.split("test").assign(frozen_from=dataset.info.version).to_csv(index=False))
    return frame, f"frozen.csv@{frame['frozen_from'].iloc[0]}:{len(frame)}"


def stored_eval_set(config: Config) -> pd.DataFrame | None:
    """The frozen evaluation set the first registered version stored in MLflow (None before any)."""
    configure(config.registry)
    tags = _registered_model_tags(MlflowClient(), config.registry.model_name)
    if EVAL_SET_TAG not in tags:
        return None
    with tempfile.TemporaryDirectory() as folder:
        path = Path(retry(mlflow.artifacts.download_artifacts)(artifact_uri=tags[EVAL_SET_TAG], dst_path=folder))
        return _read_frame(path.read_text())


def _read_frame(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False).replace({"": None})


def _registered_model_tags(client: MlflowClient, name: str) -> dict[str, str]:
    try:
        return retry(client.get_registered_model)(name).tags
    except mlflow.exceptions.MlflowException as error:
        if aliases.not_found(error):
            return {}
        raise


def store_eval_set(client: MlflowClient, name: str, frame: pd.DataFrame, run_id: str) -> None:
    """First registration only: the frozen set becomes an artefact of this run, found by a model tag."""
    if EVAL_SET_TAG in _registered_model_tags(client, name):
        return
    with tempfile.TemporaryDirectory() as folder:
        frame.to_csv(Path(folder) / "frozen.csv", index=False)
        retry(client.log_artifact)(run_id, str(Path(folder) / "frozen.csv"), EVAL_SET_PATH)
    retry(client.set_registered_model_tag)(name, EVAL_SET_TAG, f"runs:/{run_id}/{EVAL_SET_PATH}/frozen.csv")


def champion_report(config: Config, frame: pd.DataFrame, eval_set: str) -> tuple[str | None, EvaluationReport | None]:
    client = MlflowClient()
    version = aliases.holder(client, config.registry.model_name, aliases.CHAMPION)
    if version is None:
        return None, None
    champion = load_registered(f"models:/{config.registry.model_name}@{aliases.CHAMPION}")
    return version, evaluate_apparel_model(champion, frame, config.data.label, eval_set)[0]


def evaluate_candidate(config: Config, model_dir: Path, dataset_root: Path, out_dir: Path,
                       teachers: dict[str, Path] | None = None) -> EvaluationReport:
    """The candidate's one evaluation on the frozen set: ``evaluation.json``, ``baselines.json`` (the
    specialists in ``teachers``, scored beside it) and the plots people look at, all in ``out_dir``
    (register logs the folder as the run's ``reports/``). Besides the per-split figures, the catalog's test
    queries are scored against the whole catalog at ``dataset_root`` as the service searches it."""
    from apparel.evaluation.embeddings import evaluate_models
    from apparel.models.embedding import EmbeddingNet
    from apparel.stages.evaluate import served_search_scores

    frame, eval_set = frozen_eval_set(config, Dataset.load(dataset_root))
    model = ApparelNet.load(model_dir)
    report, embeddings = evaluate_apparel_model(model, frame, config.data.label, eval_set)
    report.served = served_search_scores(config, model, dataset_root)
    out_dir.mkdir(parents=True, exist_ok=True)
    baselines = {}
    if teachers:
        specialists = {v: EmbeddingNet.load(p) for v, p in teachers.items()}
        baselines["specialists"] = EvaluationReport(evaluate_models(specialists, frame, config.data.label), {},
                                                    eval_set)
    reports.recall_curves(report, out_dir / "recall_at_k.png")
    reports.comparison_bars({**baselines, "unified": report}, out_dir / "specialists_vs_unified.png")
    reports.confusion_matrices(model, frame, out_dir / "attribute_confusion.png")
    reports.projection(embeddings, frame["vertical"], out_dir / "embedding_projection.png")
    report.save(out_dir / "evaluation.json")
    (out_dir / "baselines.json").write_text(json.dumps({k: asdict(v) for k, v in baselines.items()}))
    return report


def read_evaluation(evaluation_dir: Path) -> tuple[EvaluationReport, dict[str, EvaluationReport]]:
    baselines = json.loads((evaluation_dir / "baselines.json").read_text())
    return (EvaluationReport.load(evaluation_dir / "evaluation.json"),
            {k: EvaluationReport(**v) for k, v in baselines.items()})


def register_candidate(config: Config, model_dir: Path, dataset_root: Path, evaluation_dir: Path | None = None,
                       teachers: dict[str, Path] | None = None, log=print,
                       prepare: aliases.Prepare | None = None) -> Registration:
    """Gate and register the candidate evaluated in ``evaluation_dir`` (evaluated here, beside
    ``teachers``, when None); an identical candidate registers nothing. A version the gate promotes gets
    ``prepare`` (its search index and drift reference) before the champion alias moves; without it the
    alias refuses to move (:class:`aliases.NotReady`)."""
    configure(config.registry)
    client, name = MlflowClient(), config.registry.model_name
    dataset = Dataset.load(dataset_root)
    key = candidate_key(config, model_dir, dataset.info.version)
    champion_version = aliases.holder(client, name, aliases.CHAMPION)
    same = registered_with_key(client, name, key)
    if same is not None:
        version = retry(client.get_model_version)(name, same)
        result = Registration(name, same, version.tags.get("run_id", ""), GateDecision(False, ["unchanged"]),
                              EvaluationReport(), unchanged=True, champion=champion_version)
        log(result.summary())
        return result
    with tempfile.TemporaryDirectory() as scratch:
        if evaluation_dir is None:
            evaluation_dir = Path(scratch)
            evaluate_candidate(config, model_dir, dataset_root, evaluation_dir, teachers)
        return _register(config, client, model_dir, dataset, key, evaluation_dir, log, prepare)


def _register(config: Config, client: MlflowClient, model_dir: Path, dataset: Dataset, key: str,
              evaluation_dir: Path, log, prepare: aliases.Prepare | None) -> Registration:
    name = config.registry.model_name
    report, baselines = read_evaluation(evaluation_dir)
    frame, eval_set = frozen_eval_set(config, dataset)
    if report.eval_set != eval_set:
        raise ValueError(f"the candidate was evaluated on {report.eval_set}, the gate uses {eval_set}: re-evaluate")
    champion_version, champion = champion_report(config, frame, eval_set)
    decision = decide(report, champion, config.registry.recall_tolerance, config.registry.accuracy_tolerance,
                      config.registry.review_mode)
    model = ApparelNet.load(model_dir)
    params = {**asdict(model.spec.base), "attributes": ",".join(model.branches),
              **{f"train.{k}": v for k, v in config.train.model_dump().items()}}
    with start_run(config.registry, f"register-{dataset.info.version}") as run:
        retry(mlflow.log_params)(params)
        retry(mlflow.set_tags)({"dataset.version": dataset.info.version, "dataset.source": dataset.info.source,
                                "code.commit": code_commit(), "eval_set": eval_set, **environment(),
                                "gate.decision": decision.alias, "gate.reasons": decision.summary(),
                                "gate.champion_version": champion_version or "none", CANDIDATE_KEY_TAG: key})
        retry(mlflow.log_metrics)(report.flat_metrics())
        for baseline_name, baseline in baselines.items():
            retry(mlflow.log_metrics)({f"{baseline_name}.{k}": v for k, v in baseline.flat_metrics().items()})
        example = load_images(frame["image"].tolist()[:1], model.spec.base.image_size).permute(0, 2, 3, 1).numpy()
        info = retry(log_apparel_model)(model_dir, None, example, config.registry.pip_requirements)
        version = str(retry(mlflow.register_model)(info.model_uri, name).version)
        card = reports.model_card(name, version, report,
                                  {"version": dataset.info.version, "source": dataset.info.source,
                                   "adapter": dataset.info.adapter, "images": len(dataset.manifest)},
                                  f"{decision.alias} ({decision.summary()})", asdict(model.spec.base))
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "model_card.md").write_text(card)
            retry(mlflow.log_artifacts)(str(evaluation_dir), "reports")
            retry(mlflow.log_artifacts)(folder, "reports")
    store_eval_set(client, name, frame, run.info.run_id)
    for tag, value in {"gate.decision": decision.alias, "gate.reasons": decision.summary(),
                       "dataset.version": dataset.info.version, "run_id": run.info.run_id,
                       CANDIDATE_KEY_TAG: key}.items():
        retry(client.set_model_version_tag)(name, version, tag, value)
    if decision.promote and prepare is not None:
        prepare(version)
    aliases.move_alias(client, name, decision.alias, version, f"gate: {decision.summary()}")
    champion_now = version if decision.promote else champion_version
    result = Registration(name, version, run.info.run_id, decision, report, card, champion=champion_now)
    log(result.summary())
    return result

