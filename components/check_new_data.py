from kfp.dsl import Dataset, Input


def check_new_data(dataset: Input[Dataset], config_json: str) -> str:
    """'retrain' when the ingested data differs from what the champion was trained on, else 'skip'."""
    from pathlib import Path

    from apparel.config import config_from_json
    from apparel.stages.retrain import needs_retraining

    return "retrain" if needs_retraining(config_from_json(config_json), Path(dataset.path)) else "skip"
