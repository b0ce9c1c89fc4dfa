"""Compiled IR in sync with the code, carrying what the cluster needs; RayJob and schedule arguments."""

from pathlib import Path

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from apparel.config import load_config
from apparel.kuberay import rayjob_manifest
from apparel.train.embedding_job import make_job
from pipelines.run import COMPILED, PIPELINES, compile_pipeline, recurring_run_arguments, submit

SCHEMAS = Path(__file__).resolve().parents[3] / "shared" / "schemas" / "kuberay"


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
    assert executors["exec-ingest"]["container"]["image"] == "ghcr.io/example/apparel:0.1.0"


def test_gpu_and_per_component_images_come_from_config(tmp_path: Path) -> None:
    config = load_config(environ={"APPAREL__TRAIN__USE_GPU": "true",
                                  "APPAREL__PIPELINE__IMAGES": '{"train_specialist": "registry/gpu:1"}'})
    ir = next(yaml.safe_load_all(compile_pipeline("training", config, tmp_path / "t.yaml").read_text()))
    container = ir["deploymentSpec"]["executors"]["exec-train-specialist"]["container"]
    assert container["image"] == "registry/gpu:1"
    assert container["resources"]["accelerator"]["resourceCount"] == "1"


def crd_schema(kind_file: str) -> dict:
    crd = yaml.safe_load((SCHEMAS / kind_file).read_text())
    return next(v for v in crd["spec"]["versions"] if v["name"] == "v1")["schema"]["openAPIV3Schema"]


def test_rayjob_manifest_is_valid_against_the_kuberay_crd(tmp_path: Path) -> None:
    if not (SCHEMAS / "ray.io_rayjobs.yaml").is_file():
        pytest.skip("../shared/schemas/kuberay is absent")
    import jsonschema

    config = load_config(Path(__file__).resolve().parents[2] / "configs" / "cluster.yaml", environ={})
    job = make_job(config, "specialist-tops-0123456789abcdef", tmp_path, ["tops"], "triplet")
    manifest = rayjob_manifest(config, job, Path("/mnt/data/ray"))
    jsonschema.validate(manifest, crd_schema("ray.io_rayjobs.yaml"))
    assert manifest["metadata"]["name"] == job.name and job.name.startswith("specialist-tops-0123456789abcdef-")
    worker = manifest["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == "1"
    broken = {**manifest, "spec": {**manifest["spec"], "shutdownAfterJobFinishes": "yes"}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, crd_schema("ray.io_rayjobs.yaml"))


def test_recurring_run_arguments_and_submit_needs_a_host(tmp_path: Path) -> None:
    config = load_config(environ={"APPAREL__PIPELINE__RETRAIN_CRON": "0 30 2 * * *"})
    arguments = recurring_run_arguments(config, tmp_path / "retraining.yaml", "exp-1")
    assert arguments["cron_expression"] == "0 30 2 * * *"
    assert arguments["pipeline_package_path"].endswith("retraining.yaml")
    assert arguments["experiment_id"] == "exp-1" and arguments["max_concurrency"] == 1
    assert arguments["params"] == {"source": "synthetic", "adapter": "manifest"}
    with pytest.raises(ValueError, match="kfp_host is empty"):
        submit(load_config(environ={}), schedule=True)
