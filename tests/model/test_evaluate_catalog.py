"""`apparel evaluate`: any model folder on any ingested catalog, queries and gallery from any split."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from apparel.config import Config
from apparel.data.manifest import Dataset
from apparel.evaluation.catalog import CatalogSlice, evaluate_on_catalog, load_model
from apparel.models.attributes import from_embedding
from apparel.models.embedding import EmbeddingNet, EmbeddingSpec
from apparel.stages.evaluate import retrieval_stage
from apparel.train.attributes import attribute_specs


@pytest.fixture(scope="module")
def model_dirs(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("models")
    embedding = EmbeddingNet(EmbeddingSpec(embedding_dim=16, image_size=32))
    embedding.save(root / "embedding")
    apparel = from_embedding(embedding)
    apparel.add_branch(attribute_specs(Dataset.load(tiny_dataset), ["colour"])[0])
    apparel.save(root / "apparel")
    return {"embedding": root / "embedding", "apparel": root / "apparel"}


def test_leave_one_out_on_a_split_matches_the_training_code(tiny_dataset: Path, tiny_config: Config,
                                                            model_dirs: dict[str, Path]) -> None:
    scores = evaluate_on_catalog(load_model(str(model_dirs["embedding"])), CatalogSlice(tiny_dataset, "test"), None,
                                 "product_id")
    expected = retrieval_stage(tiny_config, tiny_dataset, model_dirs["embedding"], "test")
    assert scores.leave_one_out and scores.retrieval.keys() == expected.keys()
    for vertical, metrics in expected.items():
        assert scores.retrieval[vertical] == pytest.approx(metrics)
    weights = [m["queries"] for m in expected.values()]
    assert scores.pooled["recall@1"] == pytest.approx(np.average([m["recall@1"] for m in expected.values()],
                                                                 weights=weights))
    assert scores.pooled["queries"] == sum(weights)


def test_queries_inside_a_larger_gallery_never_find_themselves(tiny_dataset: Path, model_dirs: dict[str, Path]
                                                               ) -> None:
    model = load_model(str(model_dirs["embedding"]))
    alone = evaluate_on_catalog(model, CatalogSlice(tiny_dataset, "test"), None, "product_id")
    among_all = evaluate_on_catalog(model, CatalogSlice(tiny_dataset, "test"), CatalogSlice(tiny_dataset, "all"),
                                    "product_id")
    assert among_all.leave_one_out
    # Products never cross splits: same relevant items, only more distractors, so no Recall@K can rise.
    for vertical, metrics in alone.retrieval.items():
        assert among_all.retrieval[vertical]["queries"] == metrics["queries"]
        for k in (1, 5, 10, 20):
            assert among_all.retrieval[vertical][f"recall@{k}"] <= metrics[f"recall@{k}"] + 1e-9


def test_queries_from_one_split_against_a_gallery_from_another(tiny_dataset: Path, model_dirs: dict[str, Path]
                                                               ) -> None:
    scores = evaluate_on_catalog(load_model(str(model_dirs["apparel"])), CatalogSlice(tiny_dataset, "test"),
                                 CatalogSlice(tiny_dataset, "train"), "vertical+colour")
    assert not scores.leave_one_out and scores.retrieval
    test = Dataset.load(tiny_dataset).split("test")
    assert scores.pooled["queries"] <= test["colour"].notna().sum()
    assert set(scores.attributes) == {"colour"} and 0 <= scores.attributes["colour"]["accuracy"] <= 1


def test_the_command_writes_json_and_rejects_a_missing_model(tiny_dataset: Path, model_dirs: dict[str, Path],
                                                             tmp_path: Path) -> None:
    command = [sys.executable, "-c", "from apparel.cli import main; main()", "evaluate"]
    out = tmp_path / "scores.json"
    done = subprocess.run([*command, str(model_dirs["apparel"]), "--queries", str(tiny_dataset), "--label",
                           "product_id", "--out", str(out)], capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    scores = json.loads(out.read_text())
    assert scores["leave_one_out"] and scores["label"] == "product_id" and "colour" in scores["attributes"]
    assert "all (pooled)" in done.stdout
    missing = subprocess.run([*command, str(tmp_path / "nothing"), "--queries", str(tiny_dataset)],
                             capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert missing.returncode == 1 and missing.stderr.strip().startswith("error: no model at")


def test_an_mlflow_model_uri_scores_like_its_folder(tiny_dataset: Path, tiny_config: Config,
                                                       model_dirs: dict[str, Path], tmp_path: Path) -> None:
    import mlflow

    from apparel.registry.pyfunc import log_apparel_model
    from apparel.stages.evaluate import catalog_stage

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(store)
    experiment = mlflow.create_experiment("evaluate", artifact_location=(tmp_path / "artefacts").as_uri())
    with mlflow.start_run(experiment_id=experiment) as run:
        example = np.zeros((1, 32, 32, 3), dtype=np.uint8)
        log_apparel_model(model_dirs["apparel"], None, example, tiny_config.registry.pip_requirements)
    uri = f"runs:/{run.info.run_id}/model"
    registry = tiny_config.registry.model_copy(update={"tracking_uri": store})
    config = tiny_config.model_copy(update={"registry": registry})
    out = tmp_path / "scores.json"
    from_uri = catalog_stage(config, uri, tiny_dataset, None, "test", "test", "product_id", out)
    from_folder = evaluate_on_catalog(load_model(str(model_dirs["apparel"])), CatalogSlice(tiny_dataset, "test"), None,
                                      "product_id")
    assert from_uri.retrieval.keys() == from_folder.retrieval.keys() and from_uri.retrieval
    for vertical, metrics in from_folder.retrieval.items():
        assert from_uri.retrieval[vertical] == pytest.approx(metrics)
    assert json.loads(out.read_text())["model"] == uri
