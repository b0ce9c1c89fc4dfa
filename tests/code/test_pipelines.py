"""Compiled IR in sync with the code, carrying what the cluster needs; RayJob and schedule arguments."""

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from apparel.config import load_config
from apparel.kuberay import rayjob_manifest
from apparel.train.embedding_job import make_job
from pipelines.run import COMPILED, PIPELINES, compile_pipeline, recurring_run_arguments, submit

SCHEMAS = Path(__file__).resolve().parents[3] / "shared" / "schemas" / "kuberay"
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("name", list(PIPELINES))
def test_compiled_ir_is_in_sync_and_parses(name: str, tmp_path: Path) -> None:
    fresh = compile_pipeline(name, load_config(environ={}), tmp_path / f"{name}.yaml").read_text()
    committed = (COMPILED / f"{name}.yaml").read_text()
    assert fresh == committed, f"pipelines/compiled/{name}.yaml is stale: run `apparel pipeline compile {name}`"
    spec = json_format.ParseDict(next(yaml.safe_load_all(committed)), pipeline_spec_pb2.PipelineSpec())
    assert spec.pipeline_info.name == f"apparel-{name}"


def training_ir() -> dict:
    return next(yaml.safe_load_all((COMPILED / "training.yaml").read_text()))


def test_ir_carries_exit_handler_retries_resources_caching_and_parallelism() -> None:
    ir = training_ir()
    root = ir["root"]["dag"]["tasks"]
    # Regression (issue 12): the exit step was "record-failure" and a cached re-run skipped it.
    assert root["record-run-status"]["triggerPolicy"]["strategy"] == "ALL_UPSTREAM_TASKS_COMPLETED"
    assert root["record-run-status"]["cachingOptions"] == {}  # never a cache hit: every run is recorded
    handler = ir["components"]["comp-exit-handler-1"]["dag"]["tasks"]
    assert handler["distill"]["retryPolicy"]["maxRetryCount"] == 2
    assert handler["register"]["cachingOptions"] == {}  # caching off: a registry write is never reused
    assert handler["ingest"]["cachingOptions"]["enableCache"] is True
    loop = next(t for t in handler.values() if "iteratorPolicy" in t)
    assert loop["iteratorPolicy"]["parallelismLimit"] == 2
    executors = ir["deploymentSpec"]["executors"]
    resources = executors["exec-train-specialist"]["container"]["resources"]
    assert resources["cpuLimit"] == 2.0 and resources["memoryLimit"] == 8.0
    assert executors["exec-ingest"]["container"]["image"] == "ghcr.io/apparel-mlops/apparel:0.1.0"


def test_gpu_and_per_component_images_come_from_config(tmp_path: Path) -> None:
    config = load_config(environ={"APPAREL__TRAIN__USE_GPU": "true",
                                  "APPAREL__PIPELINE__IMAGES": '{"train_specialist": "registry/gpu:1"}'})
    ir = next(yaml.safe_load_all(compile_pipeline("training", config, tmp_path / "t.yaml").read_text()))
    executors = ir["deploymentSpec"]["executors"]
    assert executors["exec-train-specialist"]["container"]["image"] == "registry/gpu:1"
    assert executors["exec-add-attribute-branches"]["container"]["resources"]["accelerator"]["resourceCount"] == "1"


def crd_schema(kind_file: str) -> dict:
    if not (SCHEMAS / kind_file).is_file():
        pytest.skip("../shared/schemas/kuberay is absent")
    crd = yaml.load((SCHEMAS / kind_file).read_text(), Loader=yaml.CSafeLoader)  # 3 MB: the C loader
    return next(v for v in crd["spec"]["versions"] if v["name"] == "v1")["schema"]["openAPIV3Schema"]


@pytest.mark.parametrize("config_file", ["cluster.yaml", None])
def test_rayjob_manifest_is_valid_against_the_kuberay_crd(config_file: str | None, tmp_path: Path) -> None:
    import jsonschema

    overrides = {} if config_file else {"APPAREL__MODE": "cluster", "APPAREL__DATA__ROOT": "/data"}
    config = load_config(CONFIGS / config_file if config_file else None, environ=overrides)
    job = make_job(config, "specialist-tops-0123456789abcdef", tmp_path, ["tops"], "triplet")
    manifest = rayjob_manifest(config, job, Path(config.data.root) / "ray", "pod-uid")
    validator = jsonschema.Draft7Validator(crd_schema("ray.io_rayjobs.yaml"))
    validator.validate(manifest)
    assert manifest["metadata"]["name"].startswith("specialist-tops-0123456789abcdef-")
    broken = {**manifest, "spec": {**manifest["spec"], "shutdownAfterJobFinishes": "yes"}}
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(broken)


def cluster_ir(name: str, tmp_path: Path) -> tuple[dict, dict]:
    """The pipeline compiled with configs/cluster.yaml: (pipeline spec, kubernetes platform spec)."""
    config = load_config(CONFIGS / "cluster.yaml", environ={})
    documents = list(yaml.safe_load_all(compile_pipeline(name, config, tmp_path / f"{name}.yaml").read_text()))
    return documents[0], documents[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


@pytest.mark.parametrize("name", list(PIPELINES))
def test_cluster_ir_mounts_the_pvc_runs_the_image_as_non_root_and_installs_nothing(name: str,
                                                                                  tmp_path: Path) -> None:
    ir, platform = cluster_ir(name, tmp_path)
    executors = ir["deploymentSpec"]["executors"]
    assert set(platform) == set(executors)  # every step
    for executor, container in ((k, v["container"]) for k, v in executors.items()):
        (mount,) = platform[executor]["pvcMount"]
        assert (mount["constant"], mount["mountPath"]) == ("apparel-data", "/data"), executor
        assert platform[executor]["securityContext"]["runAsNonRoot"] is True
        assert container["image"] == "ghcr.io/apparel-mlops/apparel:0.1.0-gpu"
        assert "pip install" not in " ".join(container["command"]), f"{executor} installs packages at start-up"


def test_cluster_ir_gives_gpus_to_steps_that_train_in_their_pod_and_retries_training(tmp_path: Path) -> None:
    ir, _ = cluster_ir("training", tmp_path)
    executors = ir["deploymentSpec"]["executors"]
    accelerator = {k: v["container"].get("resources", {}).get("accelerator") for k, v in executors.items()}
    assert accelerator["exec-add-attribute-branches"]["resourceType"] == "nvidia.com/gpu"
    assert accelerator["exec-add-attribute-branches"]["resourceCount"] == "1"
    # Ray Train steps only submit and wait on a RayJob, whose worker pods hold the GPUs.
    assert accelerator["exec-train-specialist"] is None and accelerator["exec-distill"] is None
    handler = ir["components"]["comp-exit-handler-1"]["dag"]["tasks"]
    assert handler["distill"]["retryPolicy"]["maxRetryCount"] == 2
    assert handler["add-attribute-branches"]["retryPolicy"]["maxRetryCount"] == 2
    loop = next(t for t in handler.values() if "iteratorPolicy" in t)
    specialist = ir["components"][loop["componentRef"]["name"]]["dag"]["tasks"]["train-specialist"]
    assert specialist["retryPolicy"]["maxRetryCount"] == 2
    retraining, _ = cluster_ir("retraining", tmp_path)
    finetune = retraining["deploymentSpec"]["executors"]["exec-finetune-champion"]["container"]
    assert finetune["resources"]["accelerator"]["resourceCount"] == "1"


def test_recurring_run_arguments_and_submit_needs_a_host(tmp_path: Path) -> None:
    config = load_config(environ={"APPAREL__PIPELINE__RETRAIN_CRON": "0 30 2 * * *"})
    arguments = recurring_run_arguments(config, tmp_path / "retraining.yaml", "exp-1")
    assert arguments["cron_expression"] == "0 30 2 * * *"
    assert arguments["pipeline_package_path"].endswith("retraining.yaml")
    assert arguments["experiment_id"] == "exp-1" and arguments["max_concurrency"] == 1
    assert arguments["params"] == {"source": "synthetic", "adapter": "manifest"}
    assert arguments["service_account"] == "apparel-pipeline"  # the account allowed to create RayJobs
    with pytest.raises(ValueError, match="kfp_host is empty"):
        submit(load_config(environ={}), schedule=True)


class RecordingClient:
    """Stands in for kfp.Client (no KFP server runs here): keeps what each call received."""

    def __init__(self) -> None:
        self.packages: dict[str, str] = {}

    def create_run_from_pipeline_package(self, package: str, **_: object) -> SimpleNamespace:
        self.packages["training"] = Path(package).read_text()
        return SimpleNamespace(run_id="run-1")

    def create_experiment(self, name: str, namespace: str) -> SimpleNamespace:
        return SimpleNamespace(experiment_id="exp-1")

    def create_recurring_run(self, pipeline_package_path: str, **_: object) -> SimpleNamespace:
        self.packages["retraining"] = Path(pipeline_package_path).read_text()
        return SimpleNamespace(recurring_run_id="rec-1")


def test_submit_writes_nothing_beside_the_installed_code() -> None:
    # Regression: submit wrote its packages into pipelines/compiled/, which is read-only in the image.
    before = sorted(COMPILED.iterdir())
    client = RecordingClient()
    assert submit(load_config(environ={}), schedule=True, client=client) == {"run_id": "run-1",
                                                                           "recurring_run_id": "rec-1"}
    assert sorted(COMPILED.iterdir()) == before
    assert "apparel-training" in client.packages["training"] and "apparel-retraining" in client.packages["retraining"]


def test_cluster_mode_needs_an_absolute_data_root_to_mount_the_pvc_at(tmp_path: Path) -> None:
    config = load_config(environ={"APPAREL__MODE": "cluster"})  # data.root stays the laptop's runs/data
    with pytest.raises(ValueError, match="absolute data.root"):
        compile_pipeline("training", config, tmp_path / "t.yaml")


def test_specialists_and_the_student_start_from_the_generalist(tmp_path: Path) -> None:
    """On by default (``generalist_share`` 0.8: unified_32px.json against unified_from_scratch_32px.json): the compiled
    pipeline trains the generalist first and hands it to every specialist and the student; share 0 (Song et
    al.'s recipe) compiles without it."""
    handler = training_ir()["components"]["comp-exit-handler-1"]["dag"]["tasks"]
    generalist = {"taskOutputArtifact": {"outputArtifactKey": "model", "producerTask": "train-generalist"}}
    assert handler["train-generalist"]["retryPolicy"]["maxRetryCount"] == 2
    assert handler["distill"]["inputs"]["artifacts"]["generalist"] == generalist
    loop = next(t for t in handler.values() if "iteratorPolicy" in t)
    assert loop["inputs"]["artifacts"]["pipelinechannel--train-generalist-model"] == generalist
    scratch = compile_pipeline("training", load_config(environ={"APPAREL__TRAIN__GENERALIST_SHARE": "0"}),
                               tmp_path / "scratch.yaml")
    tasks = next(yaml.safe_load_all(scratch.read_text()))["components"]["comp-exit-handler-1"]["dag"]["tasks"]
    assert "train-generalist" not in tasks and "generalist" not in tasks["distill"]["inputs"].get("artifacts", {})
