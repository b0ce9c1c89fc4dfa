from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Model, Output


def evaluate(dataset: Input[Dataset], model: Input[Model], specialists: Input[list[Model]], config_json: str,
             metrics: Output[Metrics], report: Output[HTML], evaluation: Output[Artifact]):
    """The candidate's one evaluation on the frozen set, beside the specialists; register reads ``evaluation``."""
    import json
    from pathlib import Path

    from apparel.config import config_from_json
    from apparel.stages.evaluate import evaluate_stage

    config = config_from_json(config_json)
    teachers = {s.metadata["vertical"]: Path(s.path) for s in specialists}
    flat = evaluate_stage(config, Path(dataset.path), Path(model.path), teachers, Path(evaluation.path),
                          Path(report.path))
    for name, value in flat.items():
        metrics.log_metric(name, value)
    Path(metrics.path).write_text(json.dumps(flat))  # kfp's local cache needs a file behind each output
