from kfp.dsl import Dataset, Input, Metrics, Model, Output


def train_specialist(dataset: Input[Dataset], vertical: str, epochs: int, config_json: str, model: Output[Model],
                     metrics: Output[Metrics], generalist: Input[Model] = None):
    """One vertical's triplet-loss specialist on Ray Train (local Ray, or a KubeRay RayJob on a cluster),
    fine-tuned from ``generalist`` (absent when the pipeline was compiled with generalist_share 0)."""
    import json
    import shutil
    from pathlib import Path

    from apparel.config import config_from_json
    from apparel.stages.pipeline import val_scores
    from apparel.stages.specialists import specialists_stage

    config = config_from_json(config_json)
    work = Path(model.path).with_name("specialist-work")
    start = Path(generalist.path) if generalist else None
    trained = specialists_stage(config, Path(dataset.path), work, [vertical], epochs, start)[vertical]
    shutil.copytree(trained, model.path, dirs_exist_ok=True)
    model.metadata["vertical"] = vertical
    scores = val_scores(config, Path(dataset.path), {vertical: Path(model.path)})
    for name, value in scores.items():
        metrics.log_metric(name, value)
    # A file behind the artefact too: kfp's local cache treats an output without one as stale.
    Path(metrics.path).write_text(json.dumps(scores))
