"""Every adapter on small fixtures written in its source's exact text format."""

from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from apparel.data.adapters import (
    read_csv,
    read_deepfashion_category,
    read_deepfashion_inshop,
    read_fashion_products,
    read_folder,
    read_manifest,
)

VERTICALS = {"Topwear": "tops", "Shoes": "shoes", "Jeans": "bottoms"}


def image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (9, 9, 9)).save(path)


def test_generic_csv(tmp_path: Path) -> None:
    image(tmp_path / "a.jpg")
    (tmp_path / "cat.csv").write_text("path,sku,dept,color\na.jpg,S1,Topwear,red\nb.jpg,S2,Hats,\n")
    catalog = read_csv(tmp_path / "cat.csv", "path", "sku", "dept", ["color"], VERTICALS)
    assert catalog.rows[["product_id", "vertical", "color"]].values.tolist() == [["S1", "tops", "red"]]
    assert catalog.rejected[0]["reason"] == "no vertical mapped for category 'Hats'"
    with pytest.raises(ValueError, match="missing columns"):
        read_csv(tmp_path / "cat.csv", "path", "sku", "dept", ["size"])


def test_fashion_products_labels_and_styles_layouts(tmp_path: Path) -> None:
    labels = tmp_path / "labels"
    (labels / "labels.csv").parent.mkdir()
    (labels / "labels.csv").write_text(
        "id,filename,gender,masterCategory,subCategory,articleType,baseColour,season,year,usage,productDisplayName,width,height\n"
        '1584,images/1584.jpg,Unisex,Apparel,Topwear,Jackets,White,Summer,2011,Casual,"Domyos, Jacket",225,300\n'
        "1600,images/1600.jpg,Men,Apparel,Bottomwear,Jeans,Blue,,2012,Casual,Jeans,225,300\n"
        "1700,images/1700.jpg,Men,Personal Care,Fragrance,Perfume,Black,Winter,2012,Casual,Deo,225,300\n"
    )
    catalog = read_fashion_products(labels, VERTICALS)
    rows = catalog.rows.set_index("product_id")
    assert rows.loc["1584", "vertical"] == "tops" and rows.loc["1600", "vertical"] == "bottoms"  # articleType wins
    assert rows.loc["1600", "season"] is None and rows.loc["1584", "image"].endswith("labels/images/1584.jpg")
    assert [r["reason"] for r in catalog.rejected] == ["no vertical mapped for category 'Fragrance'"]
    assert catalog.attributes == ["articleType", "baseColour", "gender", "season", "usage"]

    styles = tmp_path / "styles"
    styles.mkdir()
    (styles / "styles.csv").write_text(
        "id,gender,masterCategory,subCategory,articleType,baseColour,season,year,usage,productDisplayName\n"
        "15970,Men,Apparel,Topwear,Shirts,Navy Blue,Fall,2011,Casual,Turtle Check Men Navy Blue Shirt\n"
    )
    rows = read_fashion_products(styles, VERTICALS).rows
    assert rows.loc[0, "image"].endswith("styles/images/15970.jpg") and rows.loc[0, "vertical"] == "tops"


def test_deepfashion_inshop(tmp_path: Path) -> None:
    (tmp_path / "list_eval_partition.txt").write_text(
        "3\nimage_name item_id evaluation_status\n"
        "img/WOMEN/Dresses/id_00000002/02_1_front.jpg                        id_00000002 train\n"
        "img/WOMEN/Dresses/id_00000002/02_2_side.jpg                         id_00000002 train\n"
        "img/MEN/Denim/id_00000080/01_1_front.jpg                            id_00000080 query\n"
    )
    (tmp_path / "list_item_inshop.txt").write_text("2\nid_00000002\nid_00000080\n")
    (tmp_path / "list_attr_items.txt").write_text(
        "2\nitem_id attribute_labels\nid_00000002 -1 1 -1 1\nid_00000080 -1 -1 -1 -1\n")
    catalog = read_deepfashion_inshop(tmp_path)
    rows = catalog.rows
    assert rows["product_id"].tolist() == ["id_00000002", "id_00000002", "id_00000080"]
    assert rows["vertical"].tolist() == ["dresses", "dresses", "denim"]
    assert rows["gender"].tolist() == ["women", "women", "men"]
    assert rows.loc[0, "attributes"] == "attr_1|attr_3" and rows.loc[2, "attributes"] is None
    assert catalog.multilabel == ["attributes"]


def test_deepfashion_category_and_attribute(tmp_path: Path) -> None:
    (tmp_path / "list_category_cloth.txt").write_text(
        "3\ncategory_name  category_type\n"
        "Anorak                  1\nJeans                   2\nDress                   3\n")
    (tmp_path / "list_category_img.txt").write_text(
        "2\nimage_name  category_label\n"
        "img/Sheer_Pleated-Front_Blouse/img_00000001.jpg                        1\n"
        "img/Classic_Skinny_Jeans/img_00000002.jpg                              2\n")
    (tmp_path / "list_attr_cloth.txt").write_text(
        "3\nattribute_name  attribute_type\na-line                       3\nabstract print               1\n"
        "floral                       1\n")
    (tmp_path / "list_attr_img.txt").write_text(
        "2\nimage_name  attribute_labels\n"
        "img/Sheer_Pleated-Front_Blouse/img_00000001.jpg                        -1 1 1\n"
        "img/Classic_Skinny_Jeans/img_00000002.jpg                              -1 -1 -1\n")
    (tmp_path / "list_landmarks.txt").write_text(
        "2\nimage_name  clothes_type  variation_type  landmark_visibility_1  landmark_location_x_1  "
        "landmark_location_y_1  landmark_visibility_2  landmark_location_x_2  landmark_location_y_2\n"
        "img/Sheer_Pleated-Front_Blouse/img_00000001.jpg  1  0  0  146 102  1 173 095\n"
        "img/Classic_Skinny_Jeans/img_00000002.jpg  2  0  0  10 20  0 30 40\n")
    catalog = read_deepfashion_category(tmp_path)
    rows = catalog.rows
    assert rows["vertical"].tolist() == ["upper", "lower"]
    assert rows["category"].tolist() == ["Anorak", "Jeans"]
    assert rows["product_id"].tolist() == ["Sheer_Pleated-Front_Blouse", "Classic_Skinny_Jeans"]
    assert rows.loc[0, "attributes"] == "abstract print|floral" and rows.loc[1, "attributes"] is None
    assert rows.loc[0, "landmarks"] == '{"landmark_1": [146.0, 102.0]}'  # the occluded second point is left out


def test_folder_per_class(tmp_path: Path) -> None:
    image(tmp_path / "shoes" / "a.jpg")
    image(tmp_path / "bags" / "b.png")
    (tmp_path / "bags" / "notes.txt").write_text("not an image")
    rows = read_folder(tmp_path).rows
    assert sorted(rows["vertical"]) == ["bags", "shoes"] and len(rows) == 2


def test_manifest_layout(tmp_path: Path) -> None:
    image(tmp_path / "images" / "x.jpg")
    pd.DataFrame({"image": ["images/x.jpg"], "product_id": ["p1"], "vertical": ["tops"], "colour": ["red"]}).to_csv(
        tmp_path / "labels.csv", index=False)
    catalog = read_manifest(tmp_path)
    assert catalog.attributes == ["colour"] and Path(catalog.rows.loc[0, "image"]).is_file()
