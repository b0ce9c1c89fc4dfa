from kfp.dsl import Dataset, Input, Metrics, Model, Output


def train_generalist(dataset: Input[Dataset], epochs: int, config_json: str, model: Output[Model],
                     metrics: Output[Metrics]):
    """The triplet model over every vertical that each specialist and the unified student start from."""
    import json
    import shutil
    from pathlib import Path

    from apparel.config import config_from_json
    from apparel.data.manifest import Dataset as CatalogDataset
    from apparel.stages.pipeline import val_scores
    from apparel.stages.specialists import generalist_stage

    config = config_from_json(config_json)
    trained = generalist_stage(config, Path(dataset.path), Path(model.path).with_name("generalist-work"), epochs)
    if trained is None:
        raise ValueError("train.generalist_share is 0 but this pipeline was compiled with a generalist step: "
                         "recompile it with the same config (`apparel pipeline compile training`)")
    shutil.copytree(trained, model.path, dirs_exist_ok=True)
    verticals = CatalogDataset.load(Path(dataset.path)).verticals
    scores = val_scores(config, Path(dataset.path), {v: Path(model.path) for v in verticals})
    for name, value in scores.items():
        metrics.log_metric(name, value)
    Path(metrics.path).write_text(json.dumps(scores))  # kfp's local cache needs a file behind each output
