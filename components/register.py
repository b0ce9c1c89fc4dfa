from typing import NamedTuple

from kfp.dsl import Artifact, Dataset, Input, Markdown, Model, Output


def register(dataset: Input[Dataset], model: Input[Model], config_json: str, card: Output[Markdown],
             evaluation: Input[Artifact] = None
             ) -> NamedTuple("RegisterOutputs", [("version", str), ("decision", str), ("summary", str)]):
    """Register a version in MLflow; the gate makes it champion or challenger ('unchanged': nothing new).
    Without ``evaluation`` (the evaluate step's folder) the candidate is evaluated here."""
    from collections import namedtuple
    from pathlib import Path

    from apparel.config import config_from_json
    from apparel.stages.register import register_stage

    result = register_stage(config_from_json(config_json), Path(model.path), Path(dataset.path),
                            Path(evaluation.path) if evaluation else None, card=Path(card.path))
    outputs = namedtuple("RegisterOutputs", ["version", "decision", "summary"])
    return outputs(result.version, result.status, result.summary())
