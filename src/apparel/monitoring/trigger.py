"""What a drift event starts: the retraining pipeline, once.

Locally, the retraining pipeline runs on kfp's local runner (``pipelines/run.py``) in a detached
process, so the monitor job does not hold its lock for the length of a retraining; its log is
``<monitoring folder>/runs/<event>.log``. On a cluster (``mode: cluster``) it is a KFP run through
``kfp.Client``. ``trigger: command`` runs any command with the event JSON on stdin (tests, or a
site's own hook).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from apparel.config import Config, config_to_json
from apparel.kfp_client import kfp_client
from apparel.monitoring.events import DriftEvent


def trigger(config: Config, event: DriftEvent, client=None) -> dict:
    """Starts the retraining for ``event``; returns what was started (recorded with the event)."""
    if config.monitoring.trigger == "command":
        return run_command(config.monitoring.trigger_command, event)
    if config.mode == "cluster":
        return submit_run(config, event, client)
    return start_local(config, event)


def run_command(command: list[str], event: DriftEvent) -> dict:
    if not command:
        raise ValueError("monitoring.trigger is 'command' but monitoring.trigger_command is empty")
    done = subprocess.run(command, input=json.dumps(asdict(event)), capture_output=True, text=True, check=False)
    output = (done.stdout.strip().splitlines() or [""])[-1]
    return {"kind": "command", "command": command, "exit_code": done.returncode, "output": output}


def start_local(config: Config, event: DriftEvent) -> dict:
    """``apparel pipeline run retraining`` on kfp's local runner, detached; the config travels as JSON."""
    folder = Path(config.monitoring.folder).resolve() / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / event.key.replace("/", "_")
    settings, log, outcome = stem.with_suffix(".json"), stem.with_suffix(".log"), stem.with_suffix(".outcome.json")
    settings.write_text(config_to_json(config))
    command = [sys.executable, "-m", "apparel.monitoring.retrain", str(settings), str(outcome)]
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return {"kind": "kfp-local", "pid": process.pid, "log": str(log), "outcome": str(outcome),
            "pipeline": "retraining"}


def submit_run(config: Config, event: DriftEvent, client=None) -> dict:
    """A KFP run of the compiled retraining pipeline on ``pipeline.kfp_host``."""
    import tempfile

    from pipelines.run import compile_pipeline

    if not config.pipeline.kfp_host and client is None:
        raise ValueError("pipeline.kfp_host is empty: a cluster drift job needs the KFP endpoint")
    client = client or kfp_client(config.pipeline)
    with tempfile.TemporaryDirectory() as folder:
        package = compile_pipeline("retraining", config, Path(folder) / "retraining.yaml")
        run = client.create_run_from_pipeline_package(
            str(package), arguments={"source": config.data.source, "adapter": config.data.adapter},
            run_name=f"drift-{event.key.replace('/', '-')}", experiment_name="apparel",
            namespace=config.pipeline.namespace)
    return {"kind": "kfp", "run_id": run.run_id, "host": config.pipeline.kfp_host}
