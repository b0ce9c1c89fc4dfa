from pathlib import Path

import pytest
from pydantic import ValidationError

from apparel.config import load_config

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_then_file_then_environment(tmp_path: Path) -> None:
    override = tmp_path / "c.yaml"
    override.write_text("train:\n  epochs: 3\n  lr: 0.5\n")
    config = load_config(override, environ={"APPAREL__TRAIN__EPOCHS": "9", "APPAREL__DATA__SYNTHETIC__SEED": "4"})
    assert config.train.epochs == 9  # the environment wins over the file
    assert config.train.lr == 0.5  # the file wins over the default
    assert config.data.synthetic.seed == 4
    assert config.train.batch_k == load_config(environ={}).train.batch_k


def test_shipped_files_load() -> None:
    assert load_config(ROOT / "configs/local.yaml", environ={}).mode == "local"
    cluster = load_config(ROOT / "configs/cluster.yaml", environ={})
    assert cluster.mode == "cluster" and cluster.registry.tracking_uri.startswith("http")


def test_unknown_keys_and_missing_files_are_errors(tmp_path: Path) -> None:
    typo = tmp_path / "typo.yaml"
    typo.write_text("train:\n  epocs: 3\n")
    with pytest.raises(ValidationError, match="epocs"):
        load_config(typo, environ={})
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "absent.yaml", environ={})
