import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from apparel.config import SyntheticConfig
from apparel.data.synthetic import ATTRIBUTES, VERTICAL_ATTRIBUTES, VERTICALS, generate_catalog


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes_other_seed_other_catalog(tmp_path: Path) -> None:
    config = SyntheticConfig(products_per_vertical=3, views_per_product=2, image_size=48)
    generate_catalog(config, tmp_path / "a")
    generate_catalog(config, tmp_path / "b")
    generate_catalog(config.model_copy(update={"seed": 1}), tmp_path / "c")
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a") != digest(tmp_path / "c")


def test_labels_are_consistent_with_verticals(tmp_path: Path) -> None:
    config = SyntheticConfig(products_per_vertical=6, views_per_product=3, image_size=64)
    labels = pd.read_csv(generate_catalog(config, tmp_path))
    assert set(labels["vertical"]) == set(VERTICALS) and len(labels) == 6 * 3 * len(VERTICALS)
    assert (labels.groupby("product_id").size() == 3).all()
    for vertical, specific in VERTICAL_ATTRIBUTES.items():
        rows = labels[labels["vertical"] == vertical]
        for name in ATTRIBUTES[2:]:
            if name in specific:
                assert rows[name].isin(specific[name]).all()
            else:
                assert rows[name].isna().all()
    # Views of one product share every label.
    assert (labels.groupby("product_id")[["colour", "pattern"]].nunique() == 1).all().all()


def test_landmarks_follow_the_drawing(tmp_path: Path) -> None:
    config = SyntheticConfig(products_per_vertical=8, views_per_product=2, image_size=64)
    labels = pd.read_csv(generate_catalog(config, tmp_path))
    for row in labels.itertuples():
        points = json.loads(row.landmarks)
        assert points, row.product_id
        coords = np.array(list(points.values()))
        assert ((coords > -16) & (coords < 80)).all()  # inside the frame, give or take the pose
        if row.vertical == "tops" and row.sleeve == "long":
            assert points["sleeve_left"][0] < points["sleeve_right"][0]
        if row.vertical == "shoes":
            assert points["toe"][0] > points["heel"][0]
    # Two views of one product differ in pose, so their landmarks differ.
    tops = labels[labels["vertical"] == "tops"]
    assert tops.iloc[0]["landmarks"] != tops.iloc[1]["landmarks"]


def test_missing_label_rate(tmp_path: Path) -> None:
    config = SyntheticConfig(products_per_vertical=20, views_per_product=2, image_size=32, missing_label_rate=0.5)
    labels = pd.read_csv(generate_catalog(config, tmp_path))
    missing = labels["colour"].isna().mean()
    assert 0.35 < missing < 0.65
    assert labels["vertical"].notna().all() and labels["product_id"].notna().all()


def test_thousands_of_images_in_seconds(tmp_path: Path) -> None:
    import time

    start = time.perf_counter()
    generate_catalog(SyntheticConfig(products_per_vertical=100, views_per_product=2), tmp_path)
    assert len(list((tmp_path / "images").iterdir())) == 1000
    assert time.perf_counter() - start < 20


def test_a_new_drop_is_a_new_season_of_products(tmp_path: Path) -> None:
    config = SyntheticConfig(products_per_vertical=2, views_per_product=1, image_size=48)
    first = pd.read_csv(generate_catalog(config, tmp_path / "d0"))
    second = pd.read_csv(generate_catalog(config.model_copy(update={"drop": 1}), tmp_path / "d1"))
    assert not set(first["product_id"]) & set(second["product_id"])
    assert digest(tmp_path / "d0" / "images") != digest(tmp_path / "d1" / "images")


def test_a_new_look_changes_that_vertical_only_and_darkens_it(tmp_path: Path) -> None:
    config = SyntheticConfig(products_per_vertical=3, views_per_product=2, image_size=48, drop=1)
    plain, changed = tmp_path / "plain", tmp_path / "changed"
    generate_catalog(config, plain)
    generate_catalog(config.model_copy(update={"new_look": ["shoes"]}), changed)

    def pixels(folder: Path, vertical: str) -> np.ndarray:
        return np.stack([np.asarray(Image.open(p), dtype=np.float32) for p in sorted(
            (folder / "images").glob(f"{vertical}-*.jpg"))])

    for vertical in VERTICALS:
        same = np.array_equal(pixels(plain, vertical), pixels(changed, vertical))
        assert same == (vertical != "shoes"), vertical
    assert pixels(changed, "shoes").mean() < 0.7 * pixels(plain, "shoes").mean()


def test_a_new_look_for_an_unknown_vertical_is_refused(tmp_path: Path) -> None:
    import pytest

    with pytest.raises(ValueError, match="unknown verticals \\['hats'\\]"):
        generate_catalog(SyntheticConfig(products_per_vertical=2, new_look=["hats"]), tmp_path)
