import shutil
from pathlib import Path

import pandas as pd
import pytest
from image_bytes import png_declaring
from PIL import Image

from apparel.config import DataConfig, SyntheticConfig
from apparel.data.adapters import read_manifest
from apparel.data.ingest import assign_split, ingest
from apparel.data.synthetic import generate_catalog


@pytest.fixture
def messy_catalog(tmp_path: Path) -> Path:
    root = tmp_path / "messy"
    (root / "images").mkdir(parents=True)
    rows = []

    def add(name: str, product: str | None = "p", vertical: str | None = "tops") -> None:
        rows.append({"image": f"images/{name}", "product_id": product, "vertical": vertical, "colour": "red"})

    for i, mode in enumerate(["RGB", "RGBA", "P", "L", "CMYK"]):
        name = f"ok_{mode}.{'jpg' if mode in ('RGB', 'CMYK') else 'png'}"
        Image.new(mode, (16, 16), color=i * 40 if mode in ("L", "P") else None).save(root / "images" / name)
        if mode != "RGB":  # distinct content, so none is a duplicate of another
            Image.open(root / "images" / name).convert(mode).save(root / "images" / name)
        add(name, product=f"p{i}")
    Image.new("RGB", (64, 64), (200, 10, 10)).save(root / "images" / "full.jpg", quality=95)
    data = (root / "images" / "full.jpg").read_bytes()
    (root / "images" / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (root / "images" / "empty.jpg").write_bytes(b"")
    (root / "images" / "garbage.jpg").write_bytes(bytes(range(256)) * 4)
    (root / "images" / "readme.jpg").write_text("this is text, not a picture")
    (root / "images" / "bomb.png").write_bytes(png_declaring(100_000, 100_000))
    shutil.copy(root / "images" / "ok_RGB.jpg", root / "images" / "ok_copy.jpg")
    for name in ("full.jpg", "truncated.jpg", "empty.jpg", "garbage.jpg", "readme.jpg", "bomb.png", "ok_copy.jpg"):
        add(name, product=f"q_{name}")
    add("full.jpg", product=None)  # missing label (and a duplicate path)
    add("nowhere.jpg")
    Image.new("RGB", (16, 16), (1, 2, 3)).save(root / "images" / "novertical.jpg")
    add("novertical.jpg", vertical=None)
    pd.DataFrame(rows).to_csv(root / "labels.csv", index=False)
    return root


def test_every_bad_file_is_quarantined_with_its_reason(messy_catalog: Path, tmp_path: Path) -> None:
    dataset, reused = ingest(read_manifest(messy_catalog), tmp_path / "ds", DataConfig(), "messy", "manifest")
    assert not reused
    quarantine = pd.read_csv(tmp_path / "ds" / "quarantine.csv")
    reasons = {Path(i).name: r for i, r in zip(quarantine["image"], quarantine["reason"], strict=True)}
    assert reasons["truncated.jpg"].startswith("unreadable")
    assert reasons["empty.jpg"] == "empty file"
    assert reasons["garbage.jpg"] == "not an image"
    assert reasons["readme.jpg"] == "not an image"
    assert reasons["bomb.png"].startswith("decompression bomb")
    # Regression: main quoted Pillow's limit (178956970 pixels), not the one the user configures.
    assert reasons["bomb.png"].endswith("> data.max_image_pixels 40,000,000") and "178956970" not in reasons["bomb.png"]
    assert reasons["ok_copy.jpg"].startswith("duplicate of") and reasons["ok_copy.jpg"].endswith("ok_RGB.jpg")
    assert reasons["nowhere.jpg"] == "file not found"
    assert reasons["novertical.jpg"] == "missing label: vertical"
    assert "missing label: product_id" in set(quarantine["reason"])
    kept = {Path(p).name for p in dataset.manifest["image"]}
    assert kept == {"ok_RGB.jpg", "ok_RGBA.png", "ok_P.png", "ok_L.png", "ok_CMYK.jpg", "full.jpg"}
    # Nothing silently dropped: every input row is either kept or quarantined.
    assert len(kept) + len(quarantine) == len(pd.read_csv(messy_catalog / "labels.csv"))


@pytest.fixture
def synthetic(tmp_path: Path) -> Path:
    generate_catalog(SyntheticConfig(products_per_vertical=20, views_per_product=3, image_size=32), tmp_path / "cat")
    return tmp_path / "cat"


def test_splits_never_share_a_product_and_are_deterministic(synthetic: Path, tmp_path: Path) -> None:
    dataset, _ = ingest(read_manifest(synthetic), tmp_path / "ds", DataConfig(), "syn", "manifest")
    per_product = dataset.manifest.groupby("product_id")["split"].nunique()
    assert (per_product == 1).all()
    assert set(dataset.manifest["split"]) == {"train", "val", "test"}
    assert assign_split("abc", (0.7, 0.1, 0.2), 0) == assign_split("abc", (0.7, 0.1, 0.2), 0)


def test_version_is_content_and_rerun_is_a_no_op(synthetic: Path, tmp_path: Path) -> None:
    first, reused = ingest(read_manifest(synthetic), tmp_path / "a", DataConfig(), "syn", "manifest")
    again, reused_again = ingest(read_manifest(synthetic), tmp_path / "a", DataConfig(), "syn", "manifest")
    assert not reused and reused_again and again.info.version == first.info.version
    elsewhere, _ = ingest(read_manifest(synthetic), tmp_path / "b", DataConfig(), "syn", "manifest")
    assert elsewhere.info.version == first.info.version
    labels = pd.read_csv(synthetic / "labels.csv")
    labels.loc[0, "colour"] = "mauve"
    labels.to_csv(synthetic / "labels.csv", index=False)
    changed, reused = ingest(read_manifest(synthetic), tmp_path / "a", DataConfig(), "syn", "manifest")
    assert not reused and changed.info.version != first.info.version


def test_fashion_products_counts_match_its_readme(fashion_products: Path, tmp_path: Path) -> None:
    from apparel.data.adapters import read_fashion_products

    config = DataConfig()
    dataset, _ = ingest(read_fashion_products(fashion_products, config.vertical_map), tmp_path / "fp", config,
                        str(fashion_products), "fashion-products")
    quarantine = pd.read_csv(tmp_path / "fp" / "quarantine.csv")
    assert len(dataset.manifest) + len(quarantine) == 2506  # README: 2,506 images, each kept or quarantined
    duplicates = pd.read_csv(fashion_products / "duplicates.csv")
    expected_duplicates = len(duplicates) - duplicates["group"].nunique()
    duplicated = quarantine["reason"].str.startswith("duplicate of")
    unmapped = quarantine["reason"].str.startswith("no vertical mapped")
    assert duplicated.sum() <= expected_duplicates  # a duplicate may already have gone for its category
    assert (duplicated | unmapped).all()
    assert {"tops", "bottoms", "shoes", "bags"} <= set(dataset.manifest["vertical"])


def test_a_changed_vertical_map_is_not_a_reuse(synthetic: Path, tmp_path: Path) -> None:
    """Regression (issue 12): the reuse fingerprint ignored vertical_map, so a new mapping kept the old manifest."""
    from apparel.data.adapters import read_csv

    labels = synthetic / "labels.csv"
    verticals = sorted(pd.read_csv(labels)["vertical"].unique())
    first_map = {v: v for v in verticals}
    merged_map = {**first_map, verticals[0]: verticals[1]}  # two source categories become one vertical

    def run(mapping: dict[str, str]):
        config = DataConfig(vertical_map=mapping)
        return ingest(read_csv(labels, "image", "product_id", "vertical", [], config.vertical_map), tmp_path / "ds",
                      config, "csv", "csv")

    first, _ = run(first_map)
    merged, reused = run(merged_map)
    assert not reused and merged.info.version != first.info.version
    assert verticals[0] not in set(merged.manifest["vertical"])


def test_a_folder_of_drops_is_read_as_its_newest_drop(tmp_path: Path) -> None:
    """Retraining points at the folder new drops land in; it must learn from the newest one."""
    from apparel.config import Config
    from apparel.stages.data import ingest_source, newest_drop

    config = SyntheticConfig(products_per_vertical=2, views_per_product=2, image_size=32)
    drops = tmp_path / "drops"
    generate_catalog(config, drops / "2026-11-01")
    generate_catalog(config.model_copy(update={"drop": 1}), drops / "2026-12-01")
    assert newest_drop(drops) == drops / "2026-12-01"
    assert newest_drop(drops / "2026-11-01") == drops / "2026-11-01"  # a catalog is itself
    dataset = ingest_source(Config(), str(drops), "manifest", tmp_path / "dataset")
    assert dataset.manifest["product_id"].str.contains("-d1-").all()
