from kfp import dsl


def record_failure(status: dsl.PipelineTaskFinalStatus, config_json: str):
    """Exit handler: appends the run's final state to the failure log when it did not succeed."""
    from apparel.config import config_from_json
    from apparel.stages.pipeline import record_run_status

    record_run_status(config_from_json(config_json), status.pipeline_job_resource_name, status.state,
                      status.error_message)
