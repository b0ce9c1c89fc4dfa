"""Steps that train in their own pod (attribute branches, fine-tuning) use the GPU the pod requested."""

from pathlib import Path

import pytest
import torch

from apparel.config import Config, load_config
from apparel.models.attributes import from_embedding
from apparel.models.embedding import EmbeddingNet, EmbeddingSpec
from apparel.stages.attributes import attributes_stage, attributes_workdir
from apparel.stages.retrain import finetune_stage
from apparel.train.device import training_device

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: the error cannot happen")


@pytest.mark.parametrize(("setting", "cuda", "expected"), [
    (True, True, "cuda"), ("auto", True, "cuda"), (False, True, "cpu"), ("auto", False, "cpu"), (False, False, "cpu"),
])
def test_device_follows_use_gpu_and_what_is_visible(setting, cuda: bool, expected: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert training_device(setting) == torch.device(expected)


def test_a_requested_gpu_that_is_not_there_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="no CUDA device is visible"):
        training_device(True)


def gpu_config(tmp_path: Path) -> Config:
    return load_config(environ={"APPAREL__TRAIN__USE_GPU": "true", "APPAREL__DATA__ROOT": str(tmp_path / "pvc"),
                                "APPAREL__MODEL__IMAGE_SIZE": "32", "APPAREL__MODEL__EMBEDDING_DIM": "16"})


@no_cuda
def test_attribute_branches_train_where_use_gpu_says(tiny_catalog: Path, tmp_path: Path) -> None:
    EmbeddingNet(EmbeddingSpec(embedding_dim=16, image_size=32)).save(tmp_path / "unified")
    with pytest.raises(RuntimeError, match="no CUDA device is visible"):
        attributes_stage(gpu_config(tmp_path), tiny_catalog, tmp_path / "unified", tmp_path / "work")


@no_cuda
def test_fine_tuning_trains_where_use_gpu_says(tiny_catalog: Path, tmp_path: Path) -> None:
    from_embedding(EmbeddingNet(EmbeddingSpec(embedding_dim=16, image_size=32)), 8).save(tmp_path / "champion")
    with pytest.raises(RuntimeError, match="no CUDA device is visible"):
        finetune_stage(gpu_config(tmp_path), tiny_catalog, tmp_path / "champion", tmp_path / "tuned")


def test_attribute_work_is_kept_on_the_data_root_keyed_by_its_inputs(tiny_catalog: Path, tmp_path: Path) -> None:
    config = gpu_config(tmp_path)
    torch.manual_seed(0)
    EmbeddingNet(EmbeddingSpec(embedding_dim=16, image_size=32)).save(tmp_path / "unified")
    work = attributes_workdir(config, tiny_catalog, tmp_path / "unified")
    assert work.is_relative_to(tmp_path / "pvc") and work == attributes_workdir(config, tiny_catalog,
                                                                                tmp_path / "unified")
    EmbeddingNet(EmbeddingSpec(embedding_dim=16, image_size=32)).save(tmp_path / "unified")  # other weights
    assert attributes_workdir(config, tiny_catalog, tmp_path / "unified") != work
