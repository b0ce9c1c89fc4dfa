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


def test_a_run_starts_from_its_starting_model(tiny_dataset: Path, tiny_config: Config, tmp_path: Path) -> None:
    """Specialists and the student start from the generalist: with a zero learning rate, the weights a
    run ends with are the ones it started from (and not a fresh random network's)."""
    torch.manual_seed(5)  # not the run's own seed: its random start would be this very network
    EmbeddingNet(EmbeddingSpec(embedding_dim=16, image_size=32)).save(tmp_path / "generalist")
    start = EmbeddingNet.load(tmp_path / "generalist").state_dict()
    config = tiny_config.model_copy(update={"train": tiny_config.train.model_copy(update={"lr": 0.0})})
    vertical = Dataset.load(tiny_dataset).verticals[0]
    for init, same in ((tmp_path / "generalist", True), (None, False)):
        torch.manual_seed(1)
        ended = fit_in_process(make_job(config, "start", tiny_dataset, [vertical], "triplet", init_path=init))
        weights = {k: v for k, v in ended.state_dict().items() if "running" not in k and "num_batches" not in k}
        assert all(torch.equal(v, start[k]) for k, v in weights.items()) is same


def test_specialists_need_the_generalist_they_start_from(tiny_dataset: Path, tiny_config: Config,
                                                         tmp_path: Path) -> None:
    import pytest

    from apparel.stages.specialists import specialists_stage

    config = tiny_config.model_copy(update={"train": tiny_config.train.model_copy(update={"generalist_share": 0.5})})
    with pytest.raises(ValueError, match="start from a generalist"):
        specialists_stage(config, tiny_dataset, tmp_path / "out")


def test_a_student_with_a_triplet_weight_sees_labelled_p_by_k_batches(tiny_dataset: Path, tiny_config: Config,
                                                                      tmp_path: Path) -> None:
    """The triplet term needs positives in each batch: the student's batches are then P×K over labelled
    rows (a catalog never labels everything), and plain shuffled batches over every row without it."""
    from apparel.data.manifest import label_values
    from apparel.train.embedding_job import _codes, _epoch_batches

    vertical = Dataset.load(tiny_dataset).verticals[0]
    job = make_job(tiny_config, "mixed", tiny_dataset, [vertical], "regress")
    labels = label_values(job_frame(job, "train"), job.label).astype(object)
    labels[::3] = None  # a third unlabelled
    codes = _codes(labels)
    assert (codes[::3] == -1).all() and (codes[1::3] >= 0).all()
    train = tiny_config.train.model_copy(update={"distill_triplet_weight": 1.0})
    batches = _epoch_batches(job, train, codes, len(codes), 0, 0, 3)
    assert len(batches) == 3
    for batch in batches:
        chosen = codes[batch]
        assert (chosen >= 0).all() and len(batch) == train.batch_p * train.batch_k
        assert all((chosen == c).sum() >= 2 for c in chosen)  # every anchor has a positive
    plain = _epoch_batches(job, train.model_copy(update={"distill_triplet_weight": 0.0}), codes, len(codes), 0, 0, 3)
    assert any((codes[b] < 0).any() for b in plain)  # unlabelled rows are distilled too
