from kfp.dsl import Dataset, Input, Model, Output


def add_attribute_branches(dataset: Input[Dataset], unified: Input[Model], config_json: str, model: Output[Model]):
    """Progressive attribute branches on the unified trunk, losses masked where labels are missing."""
    import shutil
    from pathlib import Path

    from apparel.config import config_from_json
    from apparel.stages.attributes import attributes_stage, attributes_workdir

    config = config_from_json(config_json)
    work = attributes_workdir(config, Path(dataset.path), Path(unified.path))  # durable: a retry resumes
    trained = attributes_stage(config, Path(dataset.path), Path(unified.path), work)
    shutil.copytree(trained, model.path, dirs_exist_ok=True)
