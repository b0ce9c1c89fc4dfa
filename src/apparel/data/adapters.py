"""Adapters from catalog layouts into rows of the manifest schema.

Each adapter returns a :class:`RawCatalog`: rows with ``image`` (absolute path), ``product_id``,
``vertical`` and attribute columns, plus the label files it read (they enter the dataset version)
and rows it could not place (they go to quarantine, never silently away).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from apparel.data.manifest import MULTILABEL_SEPARATOR, REQUIRED

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@dataclass
class RawCatalog:
    rows: pd.DataFrame
    attributes: list[str]
    label_files: list[Path]
    multilabel: list[str] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)


def _with_vertical(rows: pd.DataFrame, keys: list[pd.Series], vertical_map: dict[str, str]) -> RawCatalog:
    """Maps the first key column that has a mapping to a vertical; unmapped rows are rejected."""
    vertical = pd.Series([None] * len(rows), index=rows.index, dtype=object)
    for key in keys:
        vertical = vertical.combine_first(key.map(vertical_map))
    rows = rows.assign(vertical=vertical)
    unmapped = rows["vertical"].isna()
    rejected = [
        {"image": str(r.image), "reason": f"no vertical mapped for category '{k}'"}
        for r, k in zip(rows[unmapped].itertuples(), keys[-1][unmapped], strict=True)
    ]
    return RawCatalog(rows[~unmapped].reset_index(drop=True), [], [], rejected=rejected)


def read_manifest(root: Path) -> RawCatalog:
    """A ``labels.csv`` already in the manifest layout (the synthetic generator writes one)."""
    labels = root / "labels.csv"
    rows = pd.read_csv(labels, dtype=str, keep_default_na=False).replace({"": None})
    missing = [c for c in REQUIRED if c not in rows.columns]
    if missing:
        raise ValueError(f"{labels}: missing columns {missing}")
    rows["image"] = [str((root / p).resolve()) if p else None for p in rows["image"]]
    attributes = [c for c in rows.columns if c not in (*REQUIRED, "landmarks", "split", "sha256")]
    return RawCatalog(rows, attributes, [labels])


def read_csv(path: Path, image: str, product_id: str, vertical: str, attributes: list[str],
             vertical_map: dict[str, str] | None = None) -> RawCatalog:
    """Any CSV: name the columns that hold the image path, product id, vertical and attributes."""
    rows = pd.read_csv(path, dtype=str, keep_default_na=False).replace({"": None})
    missing = [c for c in (image, product_id, vertical, *attributes) if c not in rows.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}")
    out = pd.DataFrame({
        "image": [str((path.parent / p).resolve()) if p else None for p in rows[image]],
        "product_id": rows[product_id],
        **{a: rows[a] for a in attributes},
    })
    keys = [rows[vertical]]
    catalog = _with_vertical(out, keys, vertical_map) if vertical_map else None
    if catalog is None:
        catalog = RawCatalog(out.assign(vertical=rows[vertical]), [], [])
    catalog.attributes, catalog.label_files = list(attributes), [path]
    return catalog


FASHION_PRODUCT_ATTRIBUTES = ["articleType", "baseColour", "gender", "season", "usage"]


def read_fashion_products(root: Path, vertical_map: dict[str, str]) -> RawCatalog:
    """Fashion Product Images: ``labels.csv`` (with ``filename``) or ``styles.csv`` (images/<id>.jpg).

    The vertical comes from ``articleType`` when the map names it, else from ``subCategory``.
    """
    path = root / "labels.csv" if (root / "labels.csv").is_file() else root / "styles.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{root}: neither labels.csv nor styles.csv")
    rows = pd.read_csv(path, dtype=str, keep_default_na=False, on_bad_lines="warn").replace({"": None})
    filenames = rows["filename"] if "filename" in rows.columns else "images/" + rows["id"] + ".jpg"
    out = pd.DataFrame({
        "image": [str((root / f).resolve()) for f in filenames],
        "product_id": rows["id"],
        **{a: rows[a] for a in FASHION_PRODUCT_ATTRIBUTES},
    })
    catalog = _with_vertical(out, [rows["articleType"], rows["subCategory"]], vertical_map)
    catalog.attributes, catalog.label_files = list(FASHION_PRODUCT_ATTRIBUTES), [path]
    return catalog


def _read_listing(path: Path) -> list[list[str]]:
    """DeepFashion ``list_*.txt``: a count line, a header line, then whitespace-separated rows."""
    lines = path.read_text().splitlines()
    return [line.split() for line in lines[2:] if line.strip()]


def _positive(values: list[str], names: list[str]) -> str | None:
    labels = [n for n, v in zip(names, values, strict=True) if v == "1"]
    return MULTILABEL_SEPARATOR.join(labels) or None


def read_deepfashion_inshop(root: Path) -> RawCatalog:
    """DeepFashion In-shop Clothes Retrieval: partition, item list and item attributes."""
    partition = _read_listing(root / "list_eval_partition.txt")
    item_list = root / "list_item_inshop.txt"  # a count line, then one item id a line (no header)
    items = {line.strip() for line in item_list.read_text().splitlines()[1:] if line.strip()} if (
        item_list.is_file()) else None
    attr_rows = {r[0]: r[1:] for r in _read_listing(root / "list_attr_items.txt")} if (
        root / "list_attr_items.txt").is_file() else {}
    width = len(next(iter(attr_rows.values()), []))
    names = [f"attr_{i}" for i in range(width)]
    rows, rejected = [], []
    for image, item, _status in partition:
        if items is not None and item not in items:
            rejected.append({"image": str(root / image), "reason": f"item '{item}' not in list_item_inshop.txt"})
            continue
        parts = Path(image).parts  # img/WOMEN/Dresses/id_00000002/02_1_front.jpg
        rows.append({"image": str((root / image).resolve()), "product_id": item,
                     "vertical": parts[2].lower() if len(parts) > 3 else None,
                     "gender": parts[1].lower() if len(parts) > 3 else None,
                     "attributes": _positive(attr_rows[item], names) if item in attr_rows else None})
    label_files = [p for p in (root / "list_eval_partition.txt", root / "list_item_inshop.txt",
                               root / "list_attr_items.txt") if p.is_file()]
    return RawCatalog(pd.DataFrame(rows), ["gender", "attributes"], label_files, ["attributes"], rejected)


CLOTH_TYPES = {"1": "upper", "2": "lower", "3": "full"}


def read_deepfashion_category(root: Path) -> RawCatalog:
    """DeepFashion Category and Attribute Prediction: categories, attributes and landmarks."""
    category_rows = _read_listing(root / "list_category_img.txt")
    cloth = _read_listing(root / "list_category_cloth.txt") if (root / "list_category_cloth.txt").is_file() else []
    # Category names may contain no spaces; the type is the last field.
    categories = {str(i + 1): (row[0], CLOTH_TYPES.get(row[-1], row[-1])) for i, row in enumerate(cloth)}
    attr_names = [" ".join(r[:-1]) for r in _read_listing(root / "list_attr_cloth.txt")] if (
        root / "list_attr_cloth.txt").is_file() else []
    attrs = {r[0]: r[1:] for r in _read_listing(root / "list_attr_img.txt")} if (
        root / "list_attr_img.txt").is_file() else {}
    landmarks = {r[0]: r[1:] for r in _read_listing(root / "list_landmarks.txt")} if (
        root / "list_landmarks.txt").is_file() else {}
    rows = []
    for image, label in category_rows:
        name, vertical = categories.get(label, (f"category_{label}", None))
        values = attrs.get(image)
        names = attr_names or [f"attr_{i}" for i in range(len(values or []))]
        rows.append({
            "image": str((root / image).resolve()),
            "product_id": Path(image).parent.name,  # img/<product>/img_00000001.jpg
            "vertical": vertical or "apparel",
            "category": name,
            "attributes": _positive(values, names) if values else None,
            "landmarks": _landmarks_json(landmarks.get(image)),
        })
    label_files = sorted(p for p in root.glob("list_*.txt"))
    return RawCatalog(pd.DataFrame(rows), ["category", "attributes"], label_files, ["attributes"])


def _landmarks_json(fields: list[str] | None) -> str | None:
    """``clothes_type variation_type`` then (visibility, x, y) per landmark; 0 = visible."""
    if not fields:
        return None
    triples = fields[2:]
    points = {f"landmark_{i // 3 + 1}": [float(triples[i + 1]), float(triples[i + 2])]
              for i in range(0, len(triples) - 2, 3) if triples[i] == "0"}
    return json.dumps(points)


def read_folder(root: Path) -> RawCatalog:
    """Folder per class: ``root/<class>/<image>``; the class is the vertical, each image a product."""
    rows = [
        {"image": str(path.resolve()), "product_id": f"{path.parent.name}/{path.stem}", "vertical": path.parent.name}
        for path in sorted(root.glob("*/*")) if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
    ]
    return RawCatalog(pd.DataFrame(rows, columns=["image", "product_id", "vertical"]), [], [])


def guess_adapter(root: Path) -> str | None:
    """Which adapter a catalog folder's files suggest (for a hint when the chosen one does not fit)."""
    if not root.is_dir():
        return None
    if (root / "list_eval_partition.txt").is_file():
        return "deepfashion-inshop"
    if (root / "list_category_img.txt").is_file():
        return "deepfashion-category"
    for labels in (root / "labels.csv", root / "styles.csv"):
        if labels.is_file():
            columns = set(pd.read_csv(labels, nrows=0).columns)
            if set(REQUIRED) <= columns:
                return "manifest"
            if {"id", "articleType", "subCategory"} <= columns:
                return "fashion-products"
    if any(p.suffix.lower() in IMAGE_SUFFIXES for p in root.glob("*/*")):
        return "folder"
    return None


ADAPTERS: dict[str, Callable[..., RawCatalog]] = {
    "manifest": read_manifest,
    "csv": read_csv,
    "fashion-products": read_fashion_products,
    "deepfashion-inshop": read_deepfashion_inshop,
    "deepfashion-category": read_deepfashion_category,
    "folder": read_folder,
}
