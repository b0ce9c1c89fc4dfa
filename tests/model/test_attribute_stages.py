"""Progressive branches and add-attribute on a tiny synthetic catalog."""

from pathlib import Path

import pytest
import torch

from apparel.config import Config
from apparel.data.dataset import load_images, normalize
from apparel.data.manifest import Dataset
from apparel.models.attributes import ApparelNet
from apparel.models.embedding import EmbeddingNet, EmbeddingSpec
from apparel.stages.attributes import add_attribute_stage, attributes_stage, val_recall_at_1
from apparel.stages.data import generate_stage, ingest_stage


@pytest.fixture(scope="module")
def unified(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("unified")
    EmbeddingNet(EmbeddingSpec(embedding_dim=16, image_size=32)).save(folder)
    return folder


def quick(config: Config, **train: object) -> Config:
    updates = {"attribute_branch_steps": 3, "attribute_finetune_steps": 2, "attribute_final_steps": 2, **train}
    return config.model_copy(update={"train": config.train.model_copy(update=updates)})


def test_progressive_stage_adds_branches_in_order_and_resumes(tiny_dataset: Path, tiny_config: Config,
                                                             unified: Path, tmp_path: Path) -> None:
    config = quick(tiny_config)
    path = attributes_stage(config, tiny_dataset, unified, tmp_path, ["colour", "pattern"])
    model = ApparelNet.load(path)
    assert list(model.branches) == ["colour", "pattern"]
    assert model.spec.attributes[0].classes == Dataset.load(tiny_dataset).attribute_values("colour")
    # A rerun that finds the partial model only adds what is missing.
    again = attributes_stage(config, tiny_dataset, unified, tmp_path, ["colour", "pattern", "heel"])
    resumed = ApparelNet.load(again)
    assert list(resumed.branches) == ["colour", "pattern", "heel"]


def test_progressive_stage_says_what_the_fine_tune_did_to_retrieval(tiny_config: Config, unified: Path,
                                                                   tmp_path: Path, capsys) -> None:
    """The trunk search uses moves under the attribute fine-tune: the step prints val Recall@1 of the unified model
    and of the trunk it leaves. The model wraps the unified trunk itself, so "before" must be taken before training.
    One view per product and colour as the label keep Recall@1 below 1; a fast, unanchored trunk moves it."""
    labels = generate_stage(tiny_config, tmp_path / "catalog",
                            {"products_per_vertical": 30, "views_per_product": 1, "image_size": 40})
    ingest_stage(tiny_config, labels.parent, root := tmp_path / "dataset")
    config = quick(tiny_config, attribute_final_steps=10, attribute_base_lr=0.1, attribute_embedding_weight=0.0)
    config = config.model_copy(update={"data": config.data.model_copy(update={"label": "colour"})})
    torch.manual_seed(0)
    model = ApparelNet.load(attributes_stage(config, root, unified, tmp_path / "attributes", ["colour"]))
    dataset = Dataset.load(root)
    before, after = (val_recall_at_1(config, dataset, net) for net in (EmbeddingNet.load(unified), model.base))
    assert before != after
    # runlog shows every "[…] end-to-end" line among the pipeline's progress lines
    assert (f"[attributes] end-to-end: embedding val_recall@1 {before:.4f} before the branches, {after:.4f} after"
            in capsys.readouterr().out.splitlines())


def test_progressive_stage_trains_the_same_model_whatever_drew_random_numbers_before(
        tiny_dataset: Path, tiny_config: Config, unified: Path, tmp_path: Path) -> None:
    """The stage seeds torch itself: a run's branches do not depend on what the process did before it."""
    config = quick(tiny_config)
    torch.manual_seed(1)
    first = attributes_stage(config, tiny_dataset, unified, tmp_path / "first", ["colour"])
    torch.rand(100)
    second = attributes_stage(config, tiny_dataset, unified, tmp_path / "second", ["colour"])
    weights = [ApparelNet.load(folder).state_dict() for folder in (first, second)]
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])


def test_add_attribute_with_a_frozen_base_keeps_every_existing_output(tiny_dataset: Path, tiny_config: Config,
                                                                     unified: Path, tmp_path: Path) -> None:
    config = quick(tiny_config)
    first = attributes_stage(config, tiny_dataset, unified, tmp_path / "first", ["colour"])
    added, check = add_attribute_stage(config, tiny_dataset, first, "sleeve", tmp_path / "added")
    before, after = ApparelNet.load(first), ApparelNet.load(added)
    frame = Dataset.load(tiny_dataset).split("test")
    images = normalize(load_images(frame["image"].tolist(), 32))
    with torch.no_grad():
        old, new = before(images), after(images)
    assert torch.equal(old["embedding"], new["embedding"])
    assert torch.equal(old["colour"], new["colour"])
    assert "sleeve" in new and check["val_recall@1_before"] == check["val_recall@1_after"]
    with pytest.raises(ValueError, match="already predicts"):
        add_attribute_stage(config, tiny_dataset, added, "sleeve", tmp_path / "again")


def test_add_attribute_with_finetune_moves_the_embedding_and_rechecks_retrieval(
        tiny_dataset: Path, tiny_config: Config, unified: Path, tmp_path: Path) -> None:
    config = quick(tiny_config)
    first = attributes_stage(config, tiny_dataset, unified, tmp_path / "first", ["colour"])
    added, check = add_attribute_stage(config, tiny_dataset, first, "pattern", tmp_path / "tuned", finetune=True)
    x = normalize(load_images(Dataset.load(tiny_dataset).split("val")["image"].tolist()[:4], 32))
    with torch.no_grad():
        assert not torch.equal(ApparelNet.load(first)(x)["embedding"], ApparelNet.load(added)(x)["embedding"])
    assert set(check) == {"val_recall@1_before", "val_recall@1_after"}
