"""What a drift event starts: a KFP run through kfp.Client on a cluster (the compiled retraining
pipeline), the retraining pipeline on kfp's local runner locally, or a command."""

import dataclasses
import json
import sys
import time
from pathlib import Path

import yaml

from apparel.config import Config
from apparel.monitoring.events import DriftEvent
from apparel.monitoring.trigger import trigger

EVENT = DriftEvent("v3/overall/7", "3", "overall", [{"key": "v3/overall/7", "score": 4.2}], 1.3)


class RecordingClient:
    """Stands in for kfp.Client: no KFP API server can run here. It keeps what it was sent."""

    def __init__(self):
        self.calls = []

    def create_run_from_pipeline_package(self, pipeline_file, arguments, run_name, experiment_name, namespace):
        with open(pipeline_file) as handle:
            package = next(yaml.safe_load_all(handle))
            self.calls.append({"package": package, "arguments": arguments, "run_name": run_name,
                               "experiment": experiment_name, "namespace": namespace})
        return type("Run", (), {"run_id": "run-123"})()


def test_cluster_event_submits_the_compiled_retraining_pipeline_through_kfp_client():
    config = Config(mode="cluster")
    config.pipeline.kfp_host, config.data.source = "http://ml-pipeline.kubeflow:8888", "/data/catalog"
    config.data.root = Path("/data")  # the PVC mount path the cluster pipeline requires
    client = RecordingClient()
    run = trigger(config, EVENT, client)
    assert run == {"kind": "kfp", "run_id": "run-123", "host": "http://ml-pipeline.kubeflow:8888"}
    [call] = client.calls
    assert call["package"]["pipelineInfo"]["name"] == "apparel-retraining"
    assert {"check-new-data", "finetune-champion"} <= set(call["package"]["deploymentSpec"]["executors"]) | {
        name.removeprefix("exec-") for name in call["package"]["deploymentSpec"]["executors"]}
    assert call["arguments"] == {"source": "/data/catalog", "adapter": "manifest"}
    assert call["run_name"] == "drift-v3-overall-7" and call["namespace"] == "apparel"


def test_cluster_event_without_a_kfp_host_is_an_error_not_a_silent_skip():
    import pytest

    with pytest.raises(ValueError, match="kfp_host"):
        trigger(Config(mode="cluster"), EVENT)


def test_command_trigger_gets_the_event_on_stdin(tmp_path):
    config = Config()
    config.monitoring.trigger = "command"
    config.monitoring.trigger_command = [sys.executable, "-c", "import json,sys; print(json.load(sys.stdin)['key'])"]
    assert trigger(config, EVENT) == {"kind": "command", "command": config.monitoring.trigger_command,
                                      "exit_code": 0, "output": "v3/overall/7"}


def test_local_event_launches_the_retraining_pipeline_and_records_its_outcome(tmp_path):
    """The real local path, detached: kfp's local runner starts the retraining pipeline; here its
    catalog does not exist, so the pipeline's first step fails fast. Regression (issue 39): the wrapper
    then died with a TypeError and nothing said what the run did; now it writes the outcome."""
    from apparel.monitoring.events import EventStore

    config = Config()
    config.monitoring.folder = tmp_path / "monitoring"
    config.data.source, config.data.root = str(tmp_path / "no-such-catalog"), tmp_path / "data"
    config.pipeline.pipeline_root = tmp_path / "pipeline"
    config.registry.tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config.registry.artifact_root = tmp_path / "mlartifacts"
    run = trigger(config, EVENT)
    assert run["kind"] == "kfp-local" and run["pipeline"] == "retraining"
    outcome = Path(run["outcome"])
    deadline = time.monotonic() + 420
    while not outcome.is_file() and time.monotonic() < deadline:
        time.sleep(2)
    log = open(run["log"]).read()
    assert "drift event: retraining pipeline on the kfp local runner" in log
    assert "apparel-retraining" in log and "ingest" in log, log[-2000:]
    recorded = json.loads(outcome.read_text())
    assert recorded["outcome"] == "failed" and "TypeError" not in log, log[-2000:]
    assert "retraining outcome: failed" in log
    assert json.loads((tmp_path / "monitoring" / "runs" / "v3_overall_7.json").read_text())["data"]["source"] == \
        config.data.source
    events = EventStore(tmp_path / "monitoring" / "events")  # what `apparel monitor events` shows with the event
    event = dataclasses.replace(EVENT, run=run)
    assert events.claim(event)
    events.record(event)
    assert events.list()[0].outcome["outcome"] == "failed"
