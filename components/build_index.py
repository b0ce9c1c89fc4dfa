from kfp.dsl import Artifact, Dataset, Input, Model, Output


def build_index(dataset: Input[Dataset], model: Input[Model], config_json: str, index: Output[Artifact]):
    """faiss index of the whole catalog's embeddings, for similar-item search."""
    from pathlib import Path

    from apparel.config import config_from_json
    from apparel.stages.index import index_stage

    index_stage(config_from_json(config_json), Path(dataset.path), Path(model.path), Path(index.path))
