"""The index stage against a real sqlite MLflow store: the champion's index is logged with its version and
fetched back whole; a challenger gets none."""

from pathlib import Path

import numpy as np
import pytest
import torch

from apparel.config import Config
from apparel.data.manifest import Dataset
from apparel.evaluation.embeddings import embed_frame
from apparel.index import fetch_catalog_index
from apparel.models.attributes import ApparelNet, ApparelSpec
from apparel.models.embedding import EmbeddingSpec
from apparel.registry.register import register_candidate
from apparel.stages.index import index_stage
from apparel.stages.register import register_stage
from apparel.train.attributes import attribute_specs


@pytest.fixture
def registry_config(tiny_config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.chdir(tmp_path)  # the embedded sqlite store and its artefacts go to runs/ here
    registry = tiny_config.registry.model_copy(update={"eval_set": tmp_path / "frozen.csv"})
    return tiny_config.model_copy(update={"registry": registry})


@pytest.fixture
def model_dir(tiny_dataset: Path, tmp_path: Path) -> Path:
    torch.manual_seed(0)
    specs = attribute_specs(Dataset.load(tiny_dataset), ["colour"])
    model = ApparelNet(ApparelSpec(EmbeddingSpec(embedding_dim=16, image_size=32), specs))
    model.save(tmp_path / "model")
    return tmp_path / "model"


def test_the_champion_gets_an_index_with_its_version_and_a_challenger_none(
        registry_config: Config, tiny_dataset: Path, model_dir: Path, tmp_path: Path) -> None:
    lines = []
    champion = register_stage(registry_config, model_dir, tiny_dataset, log=lines.append)
    assert champion.decision.alias == "champion"
    size = len(Dataset.load(tiny_dataset).manifest)
    # built by the register step, before the alias moved; the index step after it only copies it
    assert (f"index: Flat over {size} images, logged with apparel-unified v{champion.version} "
            f"(run {champion.run_id}, artefacts index/)") in lines
    outcome = index_stage(registry_config, tiny_dataset, model_dir, tmp_path / "champion-index", champion.version,
                          champion.decision.alias, log=lines.append)
    assert not outcome["built"] and (tmp_path / "champion-index" / "catalog.faiss").is_file()
    assert lines[-1] == (f"index: v{champion.version} already has its index (Flat over {size} images, built "
                         "before the champion alias moved)")

    catalog = fetch_catalog_index(registry_config, champion.version)
    dataset = Dataset.load(tiny_dataset)
    assert catalog.meta.model_version == champion.version and catalog.meta.embedding_dim == 16
    assert catalog.meta.size == len(dataset.manifest) and catalog.meta.factory == "Flat"
    assert list(catalog.rows.columns) == ["product_id", "vertical", "image", *dataset.info.attributes]
    assert catalog.rows["product_id"].tolist() == dataset.manifest["product_id"].tolist()
    embeddings = embed_frame(ApparelNet.load(model_dir).base, dataset.manifest)
    scores, positions = catalog.search(embeddings[:10], 1)
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-4)  # each image finds itself (or an identical twin)
    np.testing.assert_allclose(embeddings[positions[:, 0]], embeddings[:10], atol=1e-4)
    assert set(catalog.predict_vertical(embeddings[:10])) <= set(dataset.verticals)

    review = registry_config.model_copy(update={"registry": registry_config.registry.model_copy(
        update={"review_mode": True})})
    other = ApparelNet.load(model_dir)  # other weights: the same ones would be an unchanged re-registration
    torch.nn.init.normal_(other.base.head.weight if hasattr(other.base, "head") else next(other.parameters()))
    other.save(tmp_path / "other-model")
    challenger = register_candidate(review, tmp_path / "other-model", tiny_dataset, log=lambda _: None)
    assert challenger.decision.alias == "challenger" and challenger.version != champion.version
    skipped = index_stage(review, tiny_dataset, tmp_path / "other-model", tmp_path / "challenger-index",
                          challenger.version, challenger.decision.alias, log=lines.append)
    assert not skipped["built"]
    assert lines[-1] == f"index: v{challenger.version} is challenger, not champion: no index built"
    assert not (tmp_path / "challenger-index" / "catalog.faiss").exists()
    with pytest.raises(FileNotFoundError, match=f"v{challenger.version} has no search index"):
        fetch_catalog_index(review, challenger.version)
