"""The GPU paths, for real: they run where a CUDA device is visible (a GPU machine; CI has none and skips them).

Ray Train with ``use_gpu: auto`` (specialist and distillation runs), and the in-pod steps that move the model to
the GPU (attribute branches, retraining's fine-tune). Each result must load and run on a CPU-only machine,
which is where serving reads it.
"""

from pathlib import Path

import pytest
import torch

from apparel.config import Config
from apparel.data.manifest import Dataset
from apparel.models.attributes import ApparelNet, from_embedding
from apparel.models.embedding import EmbeddingNet, EmbeddingSpec
from apparel.stages.attributes import attributes_stage
from apparel.stages.retrain import finetune_stage
from apparel.train.distill import distill_unified
from apparel.train.embedding_job import make_job, run_embedding_job

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: GPU paths run on a GPU machine")


@pytest.fixture(scope="module")
def ray_on_gpu_machine():
    import ray

    yield
    ray.shutdown()


def with_gpu(config: Config, use_gpu: bool | str) -> Config:
    return config.model_copy(update={"train": config.train.model_copy(update={"use_gpu": use_gpu})})


def trained_on(model_dir: Path) -> str:
    return torch.load(model_dir.parent / "state.pt", weights_only=False)["device"]


def assert_runs_on_cpu(model: EmbeddingNet) -> None:
    assert {p.device.type for p in model.parameters()} == {"cpu"}
    out = model(torch.zeros(2, 3, 32, 32))
    assert torch.allclose(out.norm(dim=1), torch.ones(2), atol=1e-5)


def test_auto_trains_a_specialist_on_the_gpu_through_ray(ray_on_gpu_machine, tiny_dataset: Path,
                                                          tiny_config: Config, tmp_path: Path) -> None:
    config = with_gpu(tiny_config, "auto")
    job = make_job(config, "gpu-specialist", tiny_dataset, ["tops", "shoes"], "triplet")
    model_dir = run_embedding_job(job, config, tmp_path / "ray")
    assert trained_on(model_dir).startswith("cuda")
    assert_runs_on_cpu(EmbeddingNet.load(model_dir))


def test_the_unified_student_distils_on_the_gpu(ray_on_gpu_machine, tiny_dataset: Path, tiny_config: Config,
                                                tmp_path: Path) -> None:
    torch.manual_seed(0)
    teachers = {}
    for vertical in Dataset.load(tiny_dataset).verticals[:2]:
        EmbeddingNet(EmbeddingSpec(embedding_dim=16, image_size=32)).save(tmp_path / vertical)
        teachers[vertical] = tmp_path / vertical
    model_dir = distill_unified(with_gpu(tiny_config, True), tiny_dataset, teachers, tmp_path / "distill")
    assert trained_on(next((tmp_path / "distill" / "ray").rglob("checkpoint_*/model"))).startswith("cuda")
    assert_runs_on_cpu(EmbeddingNet.load(model_dir))


def test_attribute_branches_and_fine_tuning_train_on_the_gpu(tiny_dataset: Path, tiny_config: Config,
                                                             tmp_path: Path) -> None:
    config = with_gpu(tiny_config, True)
    torch.manual_seed(0)
    EmbeddingNet(EmbeddingSpec(embedding_dim=16, image_size=32)).save(tmp_path / "unified")
    torch.cuda.reset_peak_memory_stats()
    model_dir = attributes_stage(config, tiny_dataset, tmp_path / "unified", tmp_path / "attributes")
    assert torch.cuda.max_memory_allocated() > 0  # the steps ran on the GPU
    model = ApparelNet.load(model_dir)
    assert set(model.branches) == set(Dataset.load(tiny_dataset).info.attributes)
    assert {p.device.type for p in model.parameters()} == {"cpu"}

    torch.cuda.reset_peak_memory_stats()
    tuned = ApparelNet.load(finetune_stage(config, tiny_dataset, model_dir, tmp_path / "tuned"))
    assert torch.cuda.max_memory_allocated() > 0
    before, after = model(torch.zeros(1, 3, 32, 32)), tuned(torch.zeros(1, 3, 32, 32))
    assert set(after) == set(before) and not torch.equal(after["embedding"], before["embedding"])


def test_use_gpu_false_keeps_training_on_the_cpu_of_a_gpu_machine(tiny_dataset: Path, tiny_config: Config,
                                                                  tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = from_embedding(EmbeddingNet(EmbeddingSpec(embedding_dim=16, image_size=32)), 8)
    model.save(tmp_path / "champion")
    torch.cuda.reset_peak_memory_stats()
    held = torch.cuda.memory_allocated()  # what earlier tests left cached
    finetune_stage(with_gpu(tiny_config, False), tiny_dataset, tmp_path / "champion", tmp_path / "tuned")
    assert torch.cuda.max_memory_allocated() == held
