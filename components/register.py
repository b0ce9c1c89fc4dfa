from typing import NamedTuple

from kfp.dsl import Artifact, Dataset, Input, Markdown, Model, Output


def register(dataset: Input[Dataset], model: Input[Model], config_json: str, card: Output[Markdown],
             baselines: Input[Artifact] = None) -> NamedTuple("RegisterOutputs", [("version", str), ("decision", str)]):
    """Register a version in MLflow; the gate makes it champion or challenger."""
    from collections import namedtuple
    from pathlib import Path

    from apparel.config import config_from_json
    from apparel.stages.register import register_from

    config = config_from_json(config_json)
    result = register_from(config, Path(model.path), Path(dataset.path), Path(baselines.path) if baselines else None,
                           Path(card.path))
    return namedtuple("RegisterOutputs", ["version", "decision"])(result.version, result.decision.alias)
