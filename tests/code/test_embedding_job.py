"""Run identity: what decides whether a Ray run folder may be resumed."""

from pathlib import Path

import pytest

from apparel.config import load_config
from apparel.train.embedding_job import make_job


def job_name(tmp_path: Path, **train: str) -> str:
    config = load_config(environ={f"APPAREL__TRAIN__{k.upper()}": v for k, v in train.items()})
    return make_job(config, "specialist-tops-v1", tmp_path, ["tops"], "triplet").name


@pytest.mark.parametrize("setting", [{"lr": "0.01"}, {"miner": "semi_hard"}, {"epochs": "9"},
                                     {"steps_per_epoch": "3"}, {"batch_p": "8"}, {"margin": "0.5"}, {"seed": "3"}])
def test_a_config_that_shapes_the_result_is_another_run(setting: dict, tmp_path: Path) -> None:
    """Regression (issue 12): names carried only the dataset version, so a changed learning rate,
    miner or epoch count resumed the finished run and returned its old weights."""
    assert job_name(tmp_path, **setting) != job_name(tmp_path)


def test_the_model_shapes_the_run_too(tmp_path: Path) -> None:
    config = load_config(environ={"APPAREL__MODEL__EMBEDDING_DIM": "32"})
    other = make_job(config, "specialist-tops-v1", tmp_path, ["tops"], "triplet").name
    assert other != job_name(tmp_path)


@pytest.mark.parametrize("setting", [{"use_gpu": "false"}, {"attribute_final_steps": "7"}, {"distill_epochs": "2"},
                                     {"checkpoints_to_keep": "3"}, {"finetune_lr": "0.1"}])
def test_settings_that_do_not_change_the_weights_keep_the_run(setting: dict, tmp_path: Path) -> None:
    assert job_name(tmp_path, **setting) == job_name(tmp_path)
    assert job_name(tmp_path).startswith("specialist-tops-v1-")


def test_the_starting_model_shapes_the_run(tmp_path: Path) -> None:
    """A specialist fine-tuned from one generalist is another run than one from another, or from scratch."""
    import torch

    from apparel.models.embedding import EmbeddingNet, EmbeddingSpec

    config = load_config(environ={})
    for seed in (0, 1):
        torch.manual_seed(seed)
        EmbeddingNet(EmbeddingSpec(embedding_dim=8, image_size=32)).save(tmp_path / f"start{seed}")
    names = {make_job(config, "specialist-tops-v1", tmp_path, ["tops"], "triplet", init_path=start).name
             for start in (None, tmp_path / "start0", tmp_path / "start1")}
    assert len(names) == 3
    assert job_name(tmp_path) in names  # without a starting model the identity is what it always was


def test_generalist_and_specialists_share_the_specialists_steps() -> None:
    from apparel.train.specialists import generalist_budget, specialist_budget

    config = load_config(environ={"APPAREL__TRAIN__STEPS_PER_EPOCH": "20", "APPAREL__TRAIN__GENERALIST_SHARE": "0.5"})
    assert generalist_budget(config, 5).train.steps_per_epoch == 50  # half of 5 verticals × 20
    assert specialist_budget(config).train.steps_per_epoch == 10
    assert specialist_budget(config, 2).train.steps_per_epoch == 20  # a teacher of two verticals: both shares
    scratch = load_config(environ={"APPAREL__TRAIN__STEPS_PER_EPOCH": "20", "APPAREL__TRAIN__GENERALIST_SHARE": "0"})
    assert specialist_budget(scratch).train.steps_per_epoch == 20


def test_specialists_fine_tune_from_the_generalist_at_their_own_learning_rate(tmp_path: Path) -> None:
    from apparel.train.specialists import generalist_budget, specialist_budget

    env = {"APPAREL__TRAIN__LR": "0.002", "APPAREL__TRAIN__SPECIALIST_LR": "0.0002"}
    config = load_config(environ={**env, "APPAREL__TRAIN__GENERALIST_SHARE": "0.5"})
    assert specialist_budget(config).train.lr == 0.0002
    assert generalist_budget(config, 5).train.lr == 0.002
    scratch = load_config(environ={**env, "APPAREL__TRAIN__GENERALIST_SHARE": "0"})
    assert specialist_budget(scratch).train.lr == 0.002  # from scratch: no generalist to keep
    unset = config.model_copy(update={"train": config.train.model_copy(update={"specialist_lr": None})})
    assert specialist_budget(unset).train.lr == 0.002
    # the lr a specialist runs at is in its identity, so the two fine-tunes never share a Ray run
    names = {make_job(specialist_budget(c), "specialist-tops-v1", tmp_path, ["tops"], "triplet").name
             for c in (config, unset)}
    assert len(names) == 2
