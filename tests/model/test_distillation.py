"""The unified student learns to reproduce its teachers (in-process: same loop as on Ray)."""

from pathlib import Path

import torch

from apparel.config import Config
from apparel.data.dataset import load_images
from apparel.data.manifest import Dataset
from apparel.models.embedding import EmbeddingNet, EmbeddingSpec
from apparel.train.distill import teacher_embeddings
from apparel.train.embedding_job import fit_in_process, job_frame, make_job
from apparel.train.loop import embed


def test_distillation_lowers_the_l2_gap_to_the_teachers(tiny_dataset: Path, tiny_config: Config,
                                                        tmp_path: Path) -> None:
    torch.manual_seed(0)
    verticals = Dataset.load(tiny_dataset).verticals[:2]
    teachers = {}
    for vertical in verticals:
        EmbeddingNet(EmbeddingSpec(embedding_dim=16, image_size=32)).save(tmp_path / vertical)
        teachers[vertical] = tmp_path / vertical
    config = tiny_config.model_copy(update={"train": tiny_config.train.model_copy(
        update={"epochs": 6, "steps_per_epoch": 5, "lr": 3e-3})})
    cache = tmp_path / "teachers.pt"
    job = make_job(config, "distill-test", tiny_dataset, verticals, "regress", cache)
    frame = job_frame(job, "train")
    targets = teacher_embeddings(frame, teachers)
    torch.save({"train": targets}, cache)
    images = load_images(frame["image"].tolist(), 32)

    def gap(model: EmbeddingNet) -> float:
        return float(((torch.from_numpy(embed(model, images)) - targets) ** 2).sum(1).mean())

    torch.manual_seed(1)
    before = gap(EmbeddingNet(EmbeddingSpec(embedding_dim=16, image_size=32)))
    after = gap(fit_in_process(job))
    assert after < 0.5 * before, (before, after)
    # Each image's target came from its own vertical's teacher.
    first = frame.index[frame["vertical"] == verticals[0]][0]
    own = embed(EmbeddingNet.load(teachers[verticals[0]]), images[first : first + 1])
    assert torch.allclose(targets[first], torch.from_numpy(own[0]), atol=1e-5)


def test_flipped_views_get_their_own_teacher_targets(tiny_dataset: Path, tiny_config: Config, tmp_path: Path) -> None:
    from apparel.train.distill import teacher_targets

    torch.manual_seed(0)
    vertical = Dataset.load(tiny_dataset).verticals[0]
    EmbeddingNet(EmbeddingSpec(embedding_dim=16, image_size=32)).save(tmp_path / vertical)
    job = make_job(tiny_config, "views", tiny_dataset, [vertical], "regress")
    frame = job_frame(job, "train")
    targets = teacher_targets(frame, {vertical: tmp_path / vertical}, flipped_views=True)
    images = load_images(frame["image"].tolist()[:2], 32)
    teacher = EmbeddingNet.load(tmp_path / vertical)
    assert torch.allclose(targets["train_flipped"][:2], torch.from_numpy(embed(teacher, images.flip(-1))), atol=1e-5)
    assert not torch.allclose(targets["train_flipped"][:2], targets["train"][:2], atol=1e-3)
    assert set(teacher_targets(frame, {vertical: tmp_path / vertical}, flipped_views=False)) == {"train"}
