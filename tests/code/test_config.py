from pathlib import Path

import pytest

from apparel.config import Config, ConfigError, config_from_json, config_to_json, load_config

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_then_file_then_environment(tmp_path: Path) -> None:
    override = tmp_path / "c.yaml"
    override.write_text("train:\n  epochs: 3\n  lr: 0.5\n")
    config = load_config(override, environ={"APPAREL__TRAIN__EPOCHS": "9", "APPAREL__DATA__SYNTHETIC__SEED": "4"})
    assert config.train.epochs == 9  # the environment wins over the file
    assert config.train.lr == 0.5  # the file wins over the default
    assert config.data.synthetic.seed == 4
    assert config.train.batch_k == load_config(environ={}).train.batch_k


def test_environment_values_are_typed_like_the_fields() -> None:
    config = load_config(environ={"APPAREL__TRAIN__USE_GPU": "true", "APPAREL__DATA__SPLIT_FRACTIONS": "[0.6,0.2,0.2]",
                                  "APPAREL__DATA__VERTICAL_MAP": '{"Tee": "tops"}',
                                  "apparel__train__miner": "semi_hard"})
    assert config.train.use_gpu is True and config.data.split_fractions == (0.6, 0.2, 0.2)
    assert config.data.vertical_map == {"Tee": "tops"} and config.train.miner == "semi_hard"
    assert load_config(environ={"APPAREL__TRAIN__USE_GPU": "auto"}).train.use_gpu == "auto"


def test_apparel_config_names_the_file_when_no_path_is_given(tmp_path: Path, monkeypatch) -> None:
    """Containers pass the config file by environment (regression: APPAREL_CONFIG was ignored on main)."""
    file = tmp_path / "c.yaml"
    file.write_text("train:\n  epochs: 3\n")
    assert load_config(environ={"APPAREL_CONFIG": str(file)}).train.epochs == 3
    assert load_config(environ={"APPAREL_CONFIG": str(file), "APPAREL__TRAIN__EPOCHS": "4"}).train.epochs == 4
    monkeypatch.setenv("APPAREL_CONFIG", str(file))
    assert load_config().train.epochs == 3 and Config().train.epochs == 5  # Config() is the documented defaults


def test_json_round_trip_ignores_the_environment(monkeypatch) -> None:
    """What a pipeline step receives is the config the driver resolved, not the step's own environment."""
    sent = load_config(environ={"APPAREL__TRAIN__EPOCHS": "2"})
    monkeypatch.setenv("APPAREL__TRAIN__EPOCHS", "7")
    assert config_from_json(config_to_json(sent)) == sent


def test_shipped_files_load() -> None:
    assert load_config(ROOT / "configs/local.yaml", environ={}).mode == "local"
    cluster = load_config(ROOT / "configs/cluster.yaml", environ={})
    assert cluster.mode == "cluster" and cluster.registry.tracking_uri.startswith("http")


def test_unknown_keys_and_missing_files_are_errors(tmp_path: Path) -> None:
    typo = tmp_path / "typo.yaml"
    typo.write_text("train:\n  epocs: 3\n")
    with pytest.raises(ConfigError, match=r"train\.epocs = 3 \(in .*typo.yaml\): unknown setting"):
        load_config(typo, environ={})
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "absent.yaml", environ={})
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(listing, environ={})


def test_a_bad_value_is_named_with_its_field_value_and_origin() -> None:
    """Regression: main said '1 validation error for Config' without the field."""
    with pytest.raises(ConfigError) as error:
        load_config(environ={"APPAREL__TRAIN__EPOCHS": "many"})
    message = str(error.value)
    assert message.startswith("config: train.epochs = 'many' (from APPAREL__TRAIN__EPOCHS): ") and "\n" not in message


def test_settings_that_used_to_leak_are_in_the_config() -> None:
    """Regression: these were constants in train/attributes.py, train/finetune.py and registry/pyfunc.py."""
    from apparel.train.attributes import schedule_from

    config = load_config(environ={"APPAREL__TRAIN__ATTRIBUTE_LR": "0.01", "APPAREL__TRAIN__ATTRIBUTE_BASE_LR": "0.001",
                                  "APPAREL__TRAIN__ATTRIBUTE_EMBEDDING_WEIGHT": "0.5"})
    schedule = schedule_from(config.train)
    assert (schedule.lr, schedule.base_lr, schedule.embedding_weight) == (0.01, 0.001, 0.5)
    defaults = load_config(environ={})
    assert defaults.train.finetune_lr > 0 and defaults.data.io_threads > 0
    assert "pydantic-settings>=2" in defaults.registry.pip_requirements
