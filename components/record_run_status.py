from kfp import dsl


def record_run_status(status: dsl.PipelineTaskFinalStatus, run_name: str, config_json: str):
    """Exit handler: appends every run's final state (succeeded, failed, cancelled) to pipeline_runs.jsonl.
    ``run_name`` is the pipeline job's name (kfp's local runner fills ``status`` with a fixed placeholder)."""
    from apparel.config import config_from_json
    from apparel.stages.pipeline import record_run_status as record

    record(config_from_json(config_json), run_name, status.state, status.error_message)
