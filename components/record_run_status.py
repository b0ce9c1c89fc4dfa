from kfp import dsl


def record_run_status(status: dsl.PipelineTaskFinalStatus, config_json: str):
    """Exit handler: appends every run's final state (succeeded, failed, cancelled) to pipeline_runs.jsonl."""
    from apparel.config import config_from_json
    from apparel.stages.pipeline import record_run_status as record

    record(config_from_json(config_json), status.pipeline_job_resource_name, status.state, status.error_message)
