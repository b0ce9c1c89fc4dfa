from kfp.dsl import Dataset, Input


def check_new_data(dataset: Input[Dataset], config_json: str) -> str:
    """'retrain' when the ingested data differs from the champion's, 'skip' when it does not, and
    'no-champion' when there is nothing to fine-tune (run the training pipeline first)."""
    from pathlib import Path

    from apparel.config import config_from_json
    from apparel.stages.retrain import retraining_decision

    return retraining_decision(config_from_json(config_json), Path(dataset.path))
