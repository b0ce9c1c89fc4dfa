from kfp.dsl import Dataset, Input, Model, Output


def finetune_champion(dataset: Input[Dataset], config_json: str, model: Output[Model]):
    """Continue training the current champion on the new data."""
    import tempfile
    from pathlib import Path

    from apparel.config import config_from_json
    from apparel.stages.retrain import download_champion, finetune_stage

    config = config_from_json(config_json)
    with tempfile.TemporaryDirectory() as champion:
        download_champion(config, Path(champion))
        finetune_stage(config, Path(dataset.path), Path(champion), Path(model.path))
