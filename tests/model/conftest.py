from pathlib import Path

import pytest

from apparel.config import Config, load_config
from apparel.stages.data import generate_stage, ingest_stage

TINY = {
    "APPAREL__MODEL__IMAGE_SIZE": "32",
    "APPAREL__MODEL__EMBEDDING_DIM": "16",
    "APPAREL__TRAIN__EPOCHS": "2",
    "APPAREL__TRAIN__STEPS_PER_EPOCH": "2",
    "APPAREL__TRAIN__DISTILL_EPOCHS": "2",
    "APPAREL__TRAIN__BATCH_P": "4",
    "APPAREL__TRAIN__BATCH_K": "2",
}


@pytest.fixture(scope="session")
def tiny_config() -> Config:
    return load_config(environ=TINY)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory, tiny_config: Config) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    labels = generate_stage(tiny_config, root / "catalog",
                            {"products_per_vertical": 8, "views_per_product": 3, "image_size": 40})
    ingest_stage(tiny_config, labels.parent, root / "dataset")
    return root / "dataset"
