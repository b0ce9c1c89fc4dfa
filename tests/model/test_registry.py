"""The registry against a real `mlflow server` on 127.0.0.1 and against the embedded sqlite store."""

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from apparel.config import Config
from apparel.data.dataset import load_images
from apparel.data.manifest import Dataset
from apparel.models.attributes import ApparelNet, ApparelSpec, from_embedding
from apparel.models.embedding import EmbeddingSpec
from apparel.registry.aliases import approve, history, rollback
from apparel.registry.pyfunc import load_registered, predict_arrays
from apparel.registry.register import register_candidate
from apparel.registry.versions import list_versions
from apparel.stages.data import generate_stage, ingest_stage
from apparel.train.attributes import AttributeSchedule, attribute_specs, encode_targets, train_progressive
from apparel.train.embedding_job import fit_in_process, make_job


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "artefacts"),
         "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2)
            break
        except OSError:
            assert server.poll() is None and time.time() < deadline, "mlflow server did not start"
            time.sleep(0.5)
    yield url
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory, tiny_config: Config) -> Path:
    root = tmp_path_factory.mktemp("registry-data")
    labels = generate_stage(tiny_config, root / "catalog",
                            {"products_per_vertical": 14, "views_per_product": 3, "image_size": 40})
    return ingest_stage(tiny_config, labels.parent, root / "dataset")[0].root


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, dataset: Path, tiny_config: Config) -> tuple[Path, Path]:
    """A trained model and one with random weights of the same shape (the degraded candidate)."""
    torch.manual_seed(0)
    train = tiny_config.train.model_copy(update={"epochs": 3, "steps_per_epoch": 15, "batch_p": 8, "batch_k": 3})
    config = tiny_config.model_copy(update={"train": train})
    ds = Dataset.load(dataset)
    base = fit_in_process(make_job(config, "registry-base", dataset, ds.verticals, "triplet"))
    specs = attribute_specs(ds, ["colour", "pattern"])
    frame = ds.split("train")
    model = train_progressive(from_embedding(base), specs, load_images(frame["image"].tolist(), 32),
                              encode_targets(frame, specs), AttributeSchedule(20, 10, 15, freeze_base=True),
                              log=lambda _: None)
    folder = tmp_path_factory.mktemp("models")
    model.save(folder / "good")
    random = ApparelNet(ApparelSpec(EmbeddingSpec(**vars(model.spec.base)), list(specs)))
    random.save(folder / "random")
    return folder / "good", folder / "random"


@pytest.fixture(params=["server", "embedded"])
def registry_config(request, tiny_config: Config, tmp_path: Path, monkeypatch) -> Config:
    monkeypatch.chdir(tmp_path)  # the embedded default writes runs/ in the working directory
    uri = request.getfixturevalue("mlflow_server") if request.param == "server" else tiny_config.registry.tracking_uri
    registry = tiny_config.registry.model_copy(update={
        "tracking_uri": uri, "model_name": f"apparel-{request.param}-{tmp_path.name}"[:60],
        "eval_set": tmp_path / "frozen.csv"})
    return tiny_config.model_copy(update={"registry": registry})


def test_gate_promotes_rejects_rolls_back_and_loads_identically(registry_config: Config, trained, dataset: Path
                                                                ) -> None:
    good, random = trained
    first = register_candidate(registry_config, good, dataset, log=lambda _: None)
    assert first.decision.alias == "champion"
    same = register_candidate(registry_config, good, dataset, log=lambda _: None)
    assert same.decision.alias == "champion", same.decision.reasons  # equal is not worse
    bad = register_candidate(registry_config, random, dataset, log=lambda _: None)
    assert bad.decision.alias == "challenger"
    assert any(r.startswith("vertical ") for r in bad.decision.reasons), bad.decision.reasons
    rows = {r["version"]: r for r in list_versions(registry_config)}
    assert set(rows) == {first.version, same.version, bad.version}, rows
    assert rows[bad.version]["aliases"] == "challenger" and "Recall@1" in rows[bad.version]["reasons"]
    assert rows[same.version]["aliases"] == "champion"

    from mlflow import MlflowClient

    client = MlflowClient()
    name = registry_config.registry.model_name
    event = rollback(client, name, "bad deploy")
    assert (event.version, event.previous) == (first.version, same.version)
    assert [e.alias for e in history(client, name)] == ["champion", "champion", "challenger", "champion"]

    champion = load_registered(f"models:/{name}@champion")
    images = load_images(Dataset.load(dataset).split("test")["image"].tolist()[:4], 32).permute(0, 2, 3, 1).numpy()
    expected = predict_arrays(ApparelNet.load(good), images)
    loaded = predict_arrays(champion, images)
    assert set(loaded) == {"embedding", "colour", "pattern"}
    for key in expected:
        np.testing.assert_array_equal(loaded[key], expected[key])
    with pytest.raises(ValueError, match="expected uint8 images"):
        predict_arrays(champion, images.astype(np.float32))


def test_review_mode_waits_for_approval(registry_config: Config, trained, dataset: Path) -> None:
    good, _ = trained
    config = registry_config.model_copy(update={"registry": registry_config.registry.model_copy(
        update={"review_mode": True})})
    held = register_candidate(config, good, dataset, log=lambda _: None)
    assert held.decision.alias == "challenger" and "review mode" in held.decision.summary()
    from mlflow import MlflowClient

    event = approve(MlflowClient(), config.registry.model_name, held.version, "looks right")
    assert event.alias == "champion" and event.who and event.why == "looks right"
    with pytest.raises(ValueError, match="no version 99"):
        approve(MlflowClient(), config.registry.model_name, "99")


WRITER = """
import sys
import mlflow
from apparel.config import RegistryConfig
from apparel.registry.tracking import configure, retry
config = RegistryConfig(tracking_uri=sys.argv[1], artifact_root=sys.argv[2], experiment="parallel")
experiment = configure(config)
for i in range(3):
    with retry(mlflow.start_run)(experiment_id=experiment, run_name=f"{sys.argv[3]}-{i}"):
        retry(mlflow.log_metrics)({"recall": i / 3, "loss": 1 - i / 3})
        retry(mlflow.log_params)({"writer": sys.argv[3]})
"""


def test_parallel_writers_share_one_sqlite_store(tmp_path: Path) -> None:
    (tmp_path / "writer.py").write_text(WRITER)
    uri = f"sqlite:///{tmp_path / 'shared.db'}"
    from apparel.config import RegistryConfig
    from apparel.registry.tracking import configure

    # The driver creates the store (schema migrations) before parallel writers start, as the pipeline does.
    configure(RegistryConfig(tracking_uri=uri, artifact_root=tmp_path / "art", experiment="parallel"))
    writers = [subprocess.Popen([sys.executable, str(tmp_path / "writer.py"), uri, str(tmp_path / "art"), f"w{i}"],
                                stderr=subprocess.PIPE, text=True) for i in range(4)]
    for writer in writers:
        assert writer.wait(timeout=300) == 0, writer.stderr.read()[-2000:]
    import mlflow

    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["parallel"])
    assert len(runs) == 12 and set(runs["params.writer"]) == {"w0", "w1", "w2", "w3"}
