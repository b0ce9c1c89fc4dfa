"""Every kfp component, called through its ``.python_func`` in pipeline order on a tiny catalog: the
code a pipeline step runs, with real Ray, a real sqlite MLflow store and real files."""

import json
from pathlib import Path

import pytest
from kfp import dsl

from apparel.config import Config, config_to_json, load_config
from components.attributes import add_attribute_branches
from components.build_index import build_index
from components.check_new_data import check_new_data
from components.distill import distill
from components.evaluate import evaluate
from components.finetune import finetune_champion
from components.ingest import ingest
from components.record_run_status import record_run_status
from components.register import register
from components.train_generalist import train_generalist
from components.train_specialist import train_specialist

pytestmark = pytest.mark.slow  # two specialists and a student on local Ray: about a minute

TINY = {
    "APPAREL__MODEL__IMAGE_SIZE": "32", "APPAREL__MODEL__EMBEDDING_DIM": "16",
    "APPAREL__TRAIN__EPOCHS": "1", "APPAREL__TRAIN__STEPS_PER_EPOCH": "2", "APPAREL__TRAIN__DISTILL_EPOCHS": "1",
    "APPAREL__TRAIN__BATCH_P": "4", "APPAREL__TRAIN__BATCH_K": "2", "APPAREL__TRAIN__ATTRIBUTE_BRANCH_STEPS": "2",
    "APPAREL__TRAIN__GENERALIST_SHARE": "0.5",  # the generalist step and specialists that start from it
    "APPAREL__TRAIN__ATTRIBUTE_FINETUNE_STEPS": "1", "APPAREL__TRAIN__ATTRIBUTE_FINAL_STEPS": "1",
    "APPAREL__DATA__SYNTHETIC__PRODUCTS_PER_VERTICAL": "5", "APPAREL__DATA__SYNTHETIC__VIEWS_PER_PRODUCT": "3",
    "APPAREL__DATA__SYNTHETIC__IMAGE_SIZE": "40",
}


def run(component, *args, **kwargs):
    return dsl.component(component).python_func(*args, **kwargs)


def tiny(root: Path, model_name: str = "apparel-components") -> Config:
    return load_config(environ={**TINY, "APPAREL__DATA__ROOT": str(root / "data"),
                                "APPAREL__REGISTRY__TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
                                "APPAREL__REGISTRY__ARTIFACT_ROOT": str(root / "mlartifacts"),
                                "APPAREL__REGISTRY__MODEL_NAME": model_name})


@pytest.fixture(scope="module")
def steps(tmp_path_factory: pytest.TempPathFactory):
    """The training pipeline's steps in order; returns their outputs."""
    import ray

    root = tmp_path_factory.mktemp("components")
    config = config_to_json(tiny(root))
    dataset = dsl.Dataset(uri=str(root / "dataset"))
    verticals = run(ingest, "synthetic", "manifest", ["tops", "shoes"], config, dataset,
                    dsl.Markdown(uri=str(root / "report.md")))
    generalist = dsl.Model(uri=str(root / "generalist" / "model"))
    run(train_generalist, dataset, 0, config, generalist, dsl.Metrics(uri=str(root / "m-generalist")))
    specialists = []
    for vertical in verticals:
        model = dsl.Model(uri=str(root / f"specialist-{vertical}" / "model"))
        run(train_specialist, dataset, vertical, 0, config, model, dsl.Metrics(uri=str(root / f"m-{vertical}")),
            generalist)
        specialists.append(model)
    unified = dsl.Model(uri=str(root / "distill" / "model"))
    run(distill, dataset, specialists, 0, config, unified, dsl.Metrics(uri=str(root / "m-distill")), generalist)
    ray.shutdown()
    candidate = dsl.Model(uri=str(root / "attributes" / "model"))
    run(add_attribute_branches, dataset, unified, config, candidate)
    yield {"root": root, "config": config, "dataset": dataset, "verticals": verticals, "specialists": specialists,
           "unified": unified, "candidate": candidate, "generalist": generalist}


def test_ingest_returns_the_chosen_verticals(tmp_path: Path) -> None:
    config = config_to_json(tiny(tmp_path))
    dataset, report = dsl.Dataset(uri=str(tmp_path / "dataset")), dsl.Markdown(uri=str(tmp_path / "report.md"))
    assert run(ingest, "synthetic", "manifest", ["shoes", "tops", "hats"], config, dataset, report) == ["shoes", "tops"]
    assert (tmp_path / "dataset" / "manifest.csv").is_file() and dataset.metadata["images"] == 75
    with pytest.raises(ValueError, match="none of"):
        run(ingest, "synthetic", "manifest", ["hats"], config, dataset, report)


def test_training_steps_write_models_with_their_metrics(steps: dict) -> None:
    for model in steps["specialists"]:
        assert (Path(model.path) / "spec.json").is_file() and model.metadata["vertical"] in steps["verticals"]
        vertical = model.metadata["vertical"]
        scores = json.loads((steps["root"] / f"m-{vertical}").read_text())
        # Scored on the validation split (a tiny catalog's val split may hold no product of a vertical).
        assert set(scores) <= {f"val.{vertical}.recall_at_1", f"val.{vertical}.map_at_r"}
    assert (Path(steps["unified"].path) / "spec.json").is_file()
    assert len(json.loads((steps["root"] / "m-distill").read_text())) <= 2 * len(steps["verticals"])
    # the generalist every specialist started from is scored on every vertical, and copied to the data root
    # (the shared volume on a cluster) that the Ray runs read it from
    assert len(json.loads((steps["root"] / "m-generalist").read_text())) <= 2 * len(steps["verticals"])
    weights = (Path(steps["generalist"].path) / "weights.pt").read_bytes()
    assert any(p.read_bytes() == weights for p in (steps["root"] / "data" / "start").glob("*/weights.pt"))
    spec = json.loads((Path(steps["candidate"].path) / "spec.json").read_text())["apparel"]
    assert [a["name"] for a in spec["attributes"]]  # branches were added


def test_evaluate_once_register_gate_index_retrain(steps: dict, monkeypatch) -> None:
    """Register reads the evaluate step's report: the candidate is evaluated once (regression, issue 12)."""
    from apparel.registry import register as registry

    root, config, dataset, candidate = steps["root"], steps["config"], steps["dataset"], steps["candidate"]
    evaluation = dsl.Artifact(uri=str(root / "evaluation"))
    run(evaluate, dataset, candidate, steps["specialists"], config, dsl.Metrics(uri=str(root / "m-eval")),
        dsl.HTML(uri=str(root / "report.html")), evaluation)
    assert (root / "evaluation" / "evaluation.json").is_file() and "<table>" in (root / "report.html").read_text()
    evaluations = []
    real = registry.evaluate_apparel_model
    monkeypatch.setattr(registry, "evaluate_apparel_model", lambda *a, **k: evaluations.append(a) or real(*a, **k))
    card = dsl.Markdown(uri=str(root / "card.md"))
    version, decision, summary = run(register, dataset, candidate, config, card, evaluation)
    assert (version, decision) == ("1", "champion") and evaluations == []  # no champion yet: nothing to score
    assert summary.startswith("registered: apparel-components v1 -> champion")
    assert "Model card" in (root / "card.md").read_text()
    assert run(register, dataset, candidate, config, card, evaluation) == (
        "1", "unchanged", "unchanged: champion stays v1 (v1 has the same weights, dataset version and config)")

    index = dsl.Artifact(uri=str(root / "index"))
    run(build_index, dataset, candidate, version, decision, config, index)
    outcome = json.loads((root / "index" / "outcome.json").read_text())
    # register built v1's index before the alias moved (a champion never lacks one); this step copies it
    assert (outcome["version"], outcome["decision"], outcome["built"]) == ("1", "champion", False)
    assert list((root / "index").glob("*.faiss"))

    assert run(check_new_data, dataset, config) == "skip"
    tuned = dsl.Model(uri=str(root / "tuned"))
    run(finetune_champion, dataset, config, tuned)
    assert (root / "tuned" / "spec.json").is_file()


def test_retraining_without_a_champion_says_there_is_nothing_to_fine_tune(steps: dict, tmp_path: Path) -> None:
    """Regression (issue 12): the fine-tune step crashed when no champion existed."""
    config = config_to_json(tiny(tmp_path, "apparel-no-champion"))
    assert run(check_new_data, steps["dataset"], config) == "no-champion"
    with pytest.raises(ValueError, match="nothing to fine-tune: there is no champion yet"):
        run(finetune_champion, steps["dataset"], config, dsl.Model(uri=str(tmp_path / "tuned")))


@pytest.mark.parametrize("state", ["SUCCEEDED", "FAILED"])
def test_record_run_status_records_every_final_state(state: str, tmp_path: Path) -> None:
    """Regression (issue 12): the exit step was named record-failure; every run's state is recorded."""
    from apparel.stages.pipeline import recorded_runs

    config = tiny(tmp_path)
    error = "boom" if state == "FAILED" else None
    status = dsl.PipelineTaskFinalStatus(state, "local-pipeline-exit-handler-1", "pipeline-steps", None, error)
    run(record_run_status, status, "apparel-training-1", config_to_json(config))
    assert [(r["run"], r["state"], r["error"]) for r in recorded_runs(config)] == [("apparel-training-1", state, error)]
