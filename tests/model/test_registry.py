"""The registry against a real `mlflow server` on 127.0.0.1 and against the embedded sqlite store."""

import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from apparel.config import Config
from apparel.data.dataset import load_images
from apparel.data.manifest import Dataset
from apparel.index import fetch_catalog_index
from apparel.inference import InferenceRuntime
from apparel.models.attributes import ApparelNet, ApparelSpec, from_embedding
from apparel.models.embedding import EmbeddingSpec
from apparel.monitoring.references import load_reference, local_copy
from apparel.registry.aliases import CHAMPION, NotReady, approve, history, holder, rollback
from apparel.registry.pyfunc import load_registered, predict_arrays
from apparel.registry.register import EVAL_SET_TAG, frozen_eval_set, register_candidate
from apparel.registry.versions import list_versions
from apparel.stages.data import generate_stage, ingest_stage
from apparel.stages.index import prepare_champion
from apparel.stages.register import register_stage
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
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:  # a loaded machine: workers slow to exit
        server.kill()
        server.wait()


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
        "tracking_uri": uri, "model_name": f"apparel-{request.param}-{tmp_path.name}"[:60]})
    return tiny_config.model_copy(update={"registry": registry})


def with_seed(config: Config, seed: int) -> Config:
    """Same weights under another training config: a different candidate that scores the same."""
    return config.model_copy(update={"train": config.train.model_copy(update={"seed": seed})})


def test_gate_promotes_rejects_rolls_back_and_loads_identically(registry_config: Config, trained, dataset: Path
                                                                ) -> None:
    good, random = trained
    first = register_stage(registry_config, good, dataset, log=lambda _: None)
    assert first.decision.alias == "champion"
    same = register_stage(with_seed(registry_config, 1), good, dataset, log=lambda _: None)
    assert same.decision.alias == "champion", same.decision.reasons  # equal is not worse
    bad = register_stage(registry_config, random, dataset, log=lambda _: None)
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


@pytest.mark.parametrize("registry_config", ["embedded"], indirect=True)  # store-agnostic logic: one store
def test_an_unchanged_candidate_registers_nothing(registry_config: Config, trained, dataset: Path) -> None:
    """Regression (issue 12): an identical re-run registered v2, v3, ... with audit entries each time."""
    good, _ = trained
    first = register_stage(registry_config, good, dataset, log=lambda _: None)
    said: list[str] = []
    again = register_stage(registry_config, good, dataset, log=said.append)
    assert again.unchanged and again.version == first.version and again.status == "unchanged"
    assert said == [f"unchanged: champion stays v{first.version} (v{first.version} has the same weights, "
                    "dataset version and config)"]
    assert [r["version"] for r in list_versions(registry_config)] == [first.version]
    from mlflow import MlflowClient

    assert len(history(MlflowClient(), registry_config.registry.model_name)) == 1
    changed = register_stage(with_seed(registry_config, 7), good, dataset, log=lambda _: None)
    assert not changed.unchanged and changed.version != first.version  # another config is another candidate


@pytest.mark.parametrize("registry_config", ["embedded"], indirect=True)
def test_rollback_walks_back_through_champion_history(registry_config: Config, trained, dataset: Path) -> None:
    """Regression (issue 12): a second rollback re-promoted the version just rolled back."""
    good, _ = trained
    versions = [register_stage(with_seed(registry_config, seed), good, dataset, log=lambda _: None).version
                for seed in (0, 1, 2)]
    from mlflow import MlflowClient

    client, name = MlflowClient(), registry_config.registry.model_name
    assert rollback(client, name).version == versions[1]
    assert rollback(client, name).version == versions[0]  # further back, not back to v3
    with pytest.raises(ValueError, match="no earlier champion"):
        rollback(client, name)
    assert [e.rollback for e in history(client, name)] == [False, False, False, True, True]


@pytest.mark.parametrize("registry_config", ["server"], indirect=True)  # what a pod sees: the server's artefacts
def test_the_frozen_eval_set_lives_in_mlflow(registry_config: Config, trained, dataset: Path,
                                             tmp_path: Path) -> None:
    """Regression (issue 12/15): the frozen set was a relative path on the local disk of one pod."""
    good, random = trained
    first = register_stage(registry_config, good, dataset, log=lambda _: None)
    from mlflow import MlflowClient

    tags = MlflowClient().get_registered_model(registry_config.registry.model_name).tags
    assert tags[EVAL_SET_TAG] == f"runs:/{first.run_id}/eval_set/frozen.csv"
    assert not [p for p in tmp_path.rglob("frozen.csv") if "mlartifacts" not in p.parts]  # no local copy
    # A grown catalog: the gate still scores on the rows frozen at the first registration, from MLflow.
    labels = generate_stage(registry_config, tmp_path / "grown",
                            {"products_per_vertical": 16, "views_per_product": 3, "image_size": 40})
    grown = ingest_stage(registry_config, labels.parent, tmp_path / "grown-dataset")[0]
    assert grown.info.version != Dataset.load(dataset).info.version
    frame, eval_set = frozen_eval_set(registry_config, grown)
    assert eval_set == first.report.eval_set and set(frame["frozen_from"]) == {Dataset.load(dataset).info.version}
    later = register_stage(registry_config, random, dataset, log=lambda _: None)
    assert later.report.eval_set == first.report.eval_set


def test_review_mode_waits_for_approval(registry_config: Config, trained, dataset: Path) -> None:
    good, _ = trained
    config = registry_config.model_copy(update={"registry": registry_config.registry.model_copy(
        update={"review_mode": True})})
    held = register_stage(config, good, dataset, log=lambda _: None)
    assert held.decision.alias == "challenger" and "review mode" in held.decision.summary()
    from mlflow import MlflowClient

    event = approve(MlflowClient(), config.registry.model_name, held.version, "looks right",
                    prepare=lambda version: prepare_champion(config, version, dataset))
    assert event.alias == "champion" and event.who and event.why == "looks right"
    assert champion_ready(config, held.version)
    assert "already has its index and drift reference" in prepare_champion(config, held.version, dataset)["message"]
    with pytest.raises(ValueError, match="no version 99"):
        approve(MlflowClient(), config.registry.model_name, "99")


def champion_ready(config: Config, version: str) -> bool:
    """What a server needs to start on ``version``: its own catalog index and its drift reference."""
    return (fetch_catalog_index(config, version).meta.model_version == version
            and load_reference(config, version) is not None)


def index_vectors_of(config: Config, version: str, model_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(the first catalog vectors of ``version``'s index, the same images embedded by ``model_dir``)."""
    catalog = fetch_catalog_index(config, version)
    runtime = InferenceRuntime(ApparelNet.load(model_dir), config.data.max_image_pixels)
    return catalog.vectors()[:4], runtime.predict(catalog.rows["image"].tolist()[:4]).embeddings


def forget_champion_artefacts(config: Config, version: str) -> None:
    """The state of a version that was champion before champions kept their index: none, no reference."""
    from mlflow import MlflowClient

    client = MlflowClient()
    run_id = client.get_model_version(config.registry.model_name, version).tags["run_id"]
    artefacts = Path(urllib.parse.urlparse(client.get_run(run_id).info.artifact_uri).path)  # the embedded store
    for folder in (artefacts / "index", artefacts / "monitoring", local_copy(config, version)):
        shutil.rmtree(folder)


@pytest.mark.parametrize("registry_config", ["embedded"], indirect=True)
def test_every_path_to_champion_leaves_it_with_its_index_or_refuses(registry_config: Config, trained,
                                                                    dataset: Path) -> None:
    """Regression: `apparel register` made v2 champion without its index; no server could start after."""
    from mlflow import MlflowClient

    good, random = trained
    first = register_stage(registry_config, good, dataset, log=lambda _: None)  # the gate: pipeline and CLI
    client, name = MlflowClient(), registry_config.registry.model_name  # once the store is configured
    assert holder(client, name, CHAMPION) == first.version and champion_ready(registry_config, first.version)

    refused = f"has no search index and no drift reference.*champion stays v{first.version}.*`apparel index"
    with pytest.raises(NotReady, match=refused):  # a gate given no way to build them does not move the alias
        register_candidate(with_seed(registry_config, 1), good, dataset, log=lambda _: None)
    assert holder(client, name, CHAMPION) == first.version

    review = registry_config.model_copy(update={"registry": registry_config.registry.model_copy(
        update={"review_mode": True})})
    held = register_stage(review, random, dataset, log=lambda _: None)
    with pytest.raises(NotReady, match=refused):
        approve(client, name, held.version)
    assert holder(client, name, CHAMPION) == first.version
    approve(client, name, held.version, prepare=lambda version: prepare_champion(review, version, dataset))
    assert holder(client, name, CHAMPION) == held.version and champion_ready(review, held.version)
    np.testing.assert_allclose(*index_vectors_of(review, held.version, random), atol=1e-4)  # its own weights

    forget_champion_artefacts(review, first.version)
    with pytest.raises(NotReady, match=f"v{first.version} has no search index"):
        rollback(client, name)
    assert holder(client, name, CHAMPION) == held.version
    event = rollback(client, name, prepare=lambda version: prepare_champion(review, version, dataset))
    assert event.version == first.version and champion_ready(review, first.version)
    np.testing.assert_allclose(*index_vectors_of(review, first.version, good), atol=1e-4)


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


def test_only_a_missing_alias_means_no_champion(mlflow_server: str, tmp_path: Path, monkeypatch) -> None:
    """Regression (issue 12): any MlflowException (a server error too) read as "no champion". The failure is
    judged by MLflow's error code, never its English wording (which changed between 3.17 and 3.18)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from apparel.registry.aliases import CHAMPION, holder

    real = MlflowClient(mlflow_server, mlflow_server)
    assert holder(real, "never-registered", CHAMPION) is None
    real.create_registered_model("no-alias-yet")
    assert holder(real, "no-alias-yet", CHAMPION) is None
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    broken = failing_server()
    with pytest.raises(MlflowException) as error:
        holder(MlflowClient(broken, broken), "no-alias-yet", CHAMPION)
    assert error.value.error_code == "INTERNAL_ERROR" and error.value.get_http_status_code() == 500


def failing_server() -> str:
    """A tracking endpoint whose every call fails with a server error (HTTP 500, MLflow's error body)."""
    import http.server
    import json
    import threading

    class Failing(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            body = json.dumps({"error_code": "INTERNAL_ERROR", "message": "store unavailable"}).encode()
            self.send_response(500)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


AUDIT_WRITER = """
import sys
from mlflow import MlflowClient
from apparel.registry.aliases import move_alias
client = MlflowClient(sys.argv[1], sys.argv[1])
for i in range(5):
    move_alias(client, sys.argv[2], "challenger", sys.argv[3], f"writer {sys.argv[3]} move {i}")
"""


def test_concurrent_alias_moves_never_lose_an_audit_entry(mlflow_server: str, tmp_path: Path) -> None:
    """Regression (issue 12): entries were numbered len(history), so parallel writers overwrote each other."""
    from mlflow import MlflowClient

    from apparel.registry.aliases import history

    client = MlflowClient(mlflow_server, mlflow_server)
    name = f"audit-{tmp_path.name}"[:60]
    client.create_registered_model(name)
    run = client.create_run(client.create_experiment(name))
    versions = [client.create_model_version(name, f"runs:/{run.info.run_id}/model", run.info.run_id).version
                for _ in range(4)]
    (tmp_path / "writer.py").write_text(AUDIT_WRITER)
    writers = [subprocess.Popen([sys.executable, str(tmp_path / "writer.py"), mlflow_server, name, str(v)],
                                stderr=subprocess.PIPE, text=True) for v in versions]
    for writer in writers:
        assert writer.wait(timeout=300) == 0, writer.stderr.read()[-2000:]
    events = history(client, name)
    assert len(events) == 20
    assert sorted(e.why for e in events) == sorted(f"writer {v} move {i}" for v in versions for i in range(5))


def test_every_store_call_waits_out_a_locked_sqlite_store(tmp_path: Path) -> None:
    """Regression (issue 12): experiment look-up, run start and registration were outside the retry.
    Another process holds sqlite's write lock past sqlite's own 5 s busy wait; the writes still land."""
    import sqlite3
    import threading

    import mlflow

    from apparel.config import RegistryConfig
    from apparel.registry.tracking import configure, retry, start_run

    db = tmp_path / "locked.db"
    config = RegistryConfig(tracking_uri=f"sqlite:///{db}", artifact_root=tmp_path / "art", experiment="first")
    configure(config)  # schema in place before the lock
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(7.0, lambda: holder.execute("COMMIT"))
    release.start()
    try:
        later = config.model_copy(update={"experiment": "created-while-locked"})
        with start_run(later, "while-locked") as run:
            retry(mlflow.log_metric)("m", 1.0)
    finally:
        release.join()
        holder.close()
    assert mlflow.get_run(run.info.run_id).data.metrics == {"m": 1.0}


@pytest.mark.parametrize("registry_config", ["embedded"], indirect=True)
def test_search_as_served_is_logged_shown_and_summarised(registry_config: Config, trained, dataset: Path) -> None:
    from mlflow import MlflowClient

    from apparel.evaluation.report import served_line
    from apparel.stages.pipeline import _metrics

    good, _ = trained
    registered = register_stage(registry_config, good, dataset, log=lambda _: None)
    metrics = MlflowClient().get_run(registered.run_id).data.metrics
    test_queries = len(frozen_eval_set(registry_config, Dataset.load(dataset))[0])
    assert metrics["served.gallery"] == len(Dataset.load(dataset).manifest) > test_queries
    assert 0 < metrics["served.queries"] <= test_queries
    assert {f"served.{m}" for m in ("recall_at_1", "recall_at_5", "recall_at_10", "map_at_r")} <= set(metrics)
    line = served_line(registered.report.served)
    assert line in registered.card and _metrics(registry_config, registered.version)[-1] == line
    assert line.startswith(f"search as served: Recall@1 {metrics['served.recall_at_1']:.3f}, Recall@5 ")
    assert line.endswith(f"test queries against the {len(Dataset.load(dataset).manifest)}-image catalog index)")
