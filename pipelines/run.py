"""Compile, run locally (kfp's local runner + local Ray + sqlite MLflow), or submit to a KFP cluster."""

from __future__ import annotations

import os
from pathlib import Path

from kfp import compiler

from apparel.config import Config
from apparel.kfp_client import kfp_client
from pipelines.retraining import build_retraining_pipeline
from pipelines.training import build_training_pipeline

COMPILED = Path(__file__).resolve().parent / "compiled"
PIPELINES = {"training": build_training_pipeline, "retraining": build_retraining_pipeline}


def compile_pipeline(name: str, config: Config, path: Path) -> Path:
    compiler.Compiler().compile(PIPELINES[name](config), str(path))
    return path


def step_names(name: str, config: Config) -> list[str]:
    """The steps a pipeline can run (tasks with an executor, inside loops, conditions and exit handlers)."""
    spec = PIPELINES[name](config).pipeline_spec

    def walk(dag) -> list[str]:
        found = []
        for task_name, task in dag.tasks.items():
            component = spec.components[task.component_ref.name]
            found += walk(component.dag) if component.WhichOneof("implementation") == "dag" else [task_name]
        return found

    return walk(spec.root.dag)


def localised(config: Config) -> Config:
    """Absolute paths, so every component subprocess writes to the same places."""
    data = config.data.model_copy(update={"root": Path(config.data.root).resolve()})
    registry = config.registry.model_copy(update={"artifact_root": Path(config.registry.artifact_root).resolve()})
    from apparel.registry.tracking import tracking_uri

    registry = registry.model_copy(update={"tracking_uri": tracking_uri(registry)})
    pipeline = config.pipeline.model_copy(update={"pipeline_root": Path(config.pipeline.pipeline_root).resolve()})
    return config.model_copy(update={"data": data, "registry": registry, "pipeline": pipeline})


def run_locally(name: str, config: Config, **arguments) -> dict:
    """Runs a pipeline on kfp's local runner; components share one local Ray cluster."""
    import warnings

    import kfp.local
    import ray

    from apparel.registry.tracking import configure
    from apparel.train.embedding_job import ensure_ray

    # The local runner runs components in this Python, not in the image the cluster uses: expected here.
    warnings.filterwarnings("ignore", message=".*non-Python base image", category=RuntimeWarning)
    config = localised(config)
    configure(config.registry)  # create the sqlite store before parallel steps write to it
    ensure_ray(config)
    os.environ["RAY_ADDRESS"] = ray.get_runtime_context().gcs_address  # steps join this cluster
    kfp.local.init(runner=kfp.local.SubprocessRunner(use_venv=False),
                   pipeline_root=str(config.pipeline.pipeline_root), enable_caching=True, raise_on_error=True)
    task = PIPELINES[name](config)(**arguments)
    return {key: _value(value) for key, value in task.outputs.items()} if task.outputs else {}


def _value(output):
    return getattr(output, "path", output)


def recurring_run_arguments(config: Config, package: Path, experiment_id: str) -> dict:
    """What `kfp.Client.create_recurring_run` receives for scheduled retraining."""
    return {"experiment_id": experiment_id, "job_name": "apparel-scheduled-retraining",
            "description": "Retrain when the catalog changed; the gate decides promotion.",
            "cron_expression": config.pipeline.retrain_cron, "pipeline_package_path": str(package),
            "params": {"source": config.data.source, "adapter": config.data.adapter}, "max_concurrency": 1,
            "no_catchup": True, "enabled": True, "service_account": config.pipeline.service_account}


def submit(config: Config, schedule: bool, client=None) -> dict[str, str]:
    """Sends the training pipeline to a KFP endpoint and, with ``schedule``, the recurring retraining run.
    Packages are compiled into a temporary folder: the image's root filesystem is read-only."""
    import tempfile

    if not config.pipeline.kfp_host and client is None:
        raise ValueError("pipeline.kfp_host is empty: set it in the config (e.g. configs/cluster.yaml)")
    client = client or kfp_client(config.pipeline)
    with tempfile.TemporaryDirectory(prefix="apparel-submit-") as folder:
        training = compile_pipeline("training", config, Path(folder) / "training.yaml")
        run = client.create_run_from_pipeline_package(str(training), arguments={"source": config.data.source,
                                                                               "adapter": config.data.adapter},
                                                     experiment_name="apparel", namespace=config.pipeline.namespace,
                                                     service_account=config.pipeline.service_account)
        submitted = {"run_id": run.run_id}
        if schedule:
            retraining = compile_pipeline("retraining", config, Path(folder) / "retraining.yaml")
            experiment = client.create_experiment("apparel", namespace=config.pipeline.namespace)
            job = client.create_recurring_run(**recurring_run_arguments(config, retraining,
                                                                        experiment.experiment_id))
            submitted["recurring_run_id"] = job.recurring_run_id
    return submitted
