from kfp.dsl import Dataset, Input, Metrics, Model, Output


def distill(dataset: Input[Dataset], specialists: Input[list[Model]], epochs: int, config_json: str,
            model: Output[Model], metrics: Output[Metrics], generalist: Input[Model] = None):
    """The unified model regressing each image's own specialist embedding (L2), starting from the
    specialists' generalist when there is one."""
    import json
    import shutil
    from pathlib import Path

    from apparel.config import config_from_json
    from apparel.stages.distill import distill_stage
    from apparel.stages.pipeline import val_scores

    config = config_from_json(config_json)
    teachers = {s.metadata["vertical"]: Path(s.path) for s in specialists}
    start = Path(generalist.path) if generalist else None
    trained = distill_stage(config, Path(dataset.path), teachers, epochs=epochs, generalist=start)
    shutil.copytree(trained, model.path, dirs_exist_ok=True)
    scores = val_scores(config, Path(dataset.path), {v: Path(model.path) for v in teachers})
    for name, value in scores.items():
        metrics.log_metric(name, value)
    Path(metrics.path).write_text(json.dumps(scores))  # kfp's local cache needs a file behind each output
