from kfp.dsl import Artifact, Dataset, Input, Model, Output


def build_index(dataset: Input[Dataset], model: Input[Model], version: str, decision: str, config_json: str,
                index: Output[Artifact]):
    """faiss index of the whole catalog for the version the gate made champion, logged with that version."""
    from pathlib import Path

    from apparel.config import config_from_json
    from apparel.stages.index import index_stage

    outcome = index_stage(config_from_json(config_json), Path(dataset.path), Path(model.path), Path(index.path),
                          version, decision)
    index.metadata.update({k: v for k, v in outcome.items() if k != "message"})
