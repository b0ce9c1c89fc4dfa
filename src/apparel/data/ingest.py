"""Catalog ingest: validate every image, quarantine what is unusable, split by product, version.

Nothing is dropped silently: every rejected row lands in ``quarantine.csv`` with its reason.
Re-ingesting an unchanged catalog is a no-op decided from file sizes and modification times
alone, so it costs a ``stat`` per image rather than a decode.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from apparel.config import DataConfig
from apparel.data.adapters import RawCatalog
from apparel.data.decode import ImageError, open_rgb
from apparel.data.manifest import Dataset, DatasetInfo

SPLITS = ("train", "val", "test")


@dataclass
class ImageCheck:
    sha256: str | None
    reason: str | None  # None when the image is usable


def check_image(path: str | None, max_pixels: int) -> ImageCheck:
    """Reads and decodes one image; says why it is unusable instead of raising."""
    if not path:
        return ImageCheck(None, "no image path")
    file = Path(path)
    if not file.is_file():
        return ImageCheck(None, "file not found")
    data = file.read_bytes()
    if not data:
        return ImageCheck(None, "empty file")
    digest = hashlib.sha256(data).hexdigest()
    try:
        open_rgb(data, max_pixels)
    except ImageError as error:
        return ImageCheck(digest, str(error))
    return ImageCheck(digest, None)


def assign_split(product_id: str, fractions: tuple[float, float, float], seed: int) -> str:
    """Deterministic by product id, so no product ever straddles two splits."""
    bucket = int(hashlib.sha256(f"{seed}:{product_id}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    edge = 0.0
    for split, fraction in zip(SPLITS, fractions, strict=True):
        edge += fraction
        if bucket < edge:
            return split
    return SPLITS[-1]


def fingerprint(catalog: RawCatalog, config: DataConfig, adapter: str) -> str:
    """Cheap identity of the inputs: label file contents, image paths, sizes and mtimes, knobs."""
    digest = hashlib.sha256(json.dumps([adapter, config.split_fractions, config.split_seed,
                                        config.max_image_pixels]).encode())
    for label_file in catalog.label_files:
        digest.update(label_file.read_bytes())
    for path in catalog.rows["image"].fillna(""):
        try:
            stat = Path(path).stat()
            digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        except OSError:
            digest.update(f"{path}:missing".encode())
    return digest.hexdigest()


def _quarantine_row(row: dict, reason: str) -> dict:
    return {"image": row.get("image"), "product_id": row.get("product_id"), "reason": reason}


def validate(catalog: RawCatalog, max_pixels: int, progress: Callable[[int], None] | None = None,
             threads: int = 4) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Splits catalog rows into clean rows (with ``sha256``) and quarantined rows with reasons."""
    rows = catalog.rows.to_dict("records")

    def check(row: dict) -> ImageCheck:
        result = check_image(row.get("image"), max_pixels)
        if progress:
            progress(1)
        return result

    with ThreadPoolExecutor(threads) as pool:
        checks = list(pool.map(check, rows))
    clean, quarantine = [], list(catalog.rejected)
    first_by_hash: dict[str, str] = {}
    for row, result in sorted(zip(rows, checks, strict=True), key=lambda rc: (str(rc[0].get("image")))):
        missing = [c for c in ("product_id", "vertical") if not row.get(c)]
        if result.reason:
            quarantine.append(_quarantine_row(row, result.reason))
        elif missing:
            quarantine.append(_quarantine_row(row, f"missing label: {', '.join(missing)}"))
        elif result.sha256 in first_by_hash:
            quarantine.append(_quarantine_row(row, f"duplicate of {first_by_hash[result.sha256]}"))
        else:
            first_by_hash[result.sha256] = row["image"]
            clean.append({**row, "sha256": result.sha256})
    return pd.DataFrame(clean), pd.DataFrame(quarantine, columns=["image", "product_id", "reason"])


def dataset_version(manifest: pd.DataFrame) -> str:
    """Content hash of the images and labels: the same catalog always gets the same version."""
    labels = manifest.drop(columns=["image"]).sort_values("sha256").to_csv(index=False)
    return hashlib.sha256(labels.encode()).hexdigest()[:16]


def ingest(catalog: RawCatalog, out_dir: Path, config: DataConfig, source: str, adapter: str,
           progress: Callable[[int], None] | None = None) -> tuple[Dataset, bool]:
    """Writes ``manifest.csv``, ``quarantine.csv`` and ``dataset.json``; returns (dataset, reused)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    inputs = fingerprint(catalog, config, adapter)
    info_path = out_dir / "dataset.json"
    done = info_path.is_file() and (out_dir / "manifest.csv").is_file()
    if done and DatasetInfo.load(info_path).fingerprint == inputs:
        return Dataset.load(out_dir), True
    clean, quarantine = validate(catalog, config.max_image_pixels, progress)
    if clean.empty:
        raise ValueError(f"no usable image in {source}: {len(quarantine)} quarantined")
    clean["split"] = [assign_split(p, config.split_fractions, config.split_seed) for p in clean["product_id"]]
    columns = ["image", "product_id", "vertical", "split", "sha256", *catalog.attributes]
    if "landmarks" in clean.columns:
        columns.append("landmarks")
    manifest = clean[columns].sort_values(["vertical", "product_id", "image"]).reset_index(drop=True)
    counts = {
        "images": {"total": len(manifest)},
        "products": {"total": int(manifest["product_id"].nunique())},
        "vertical": {k: int(v) for k, v in manifest["vertical"].value_counts().sort_index().items()},
        "split": {k: int(v) for k, v in manifest["split"].value_counts().sort_index().items()},
        "quarantine": {k: int(v) for k, v in quarantine["reason"].str.split(":").str[0].value_counts().items()},
    }
    info = DatasetInfo(version=dataset_version(manifest), fingerprint=inputs, source=source, adapter=adapter,
                       attributes=list(catalog.attributes), multilabel=list(catalog.multilabel), counts=counts,
                       quarantined=len(quarantine))
    # Write the manifest before dataset.json: an interrupted ingest leaves no valid fingerprint behind.
    info_path.unlink(missing_ok=True)
    manifest.to_csv(out_dir / "manifest.csv", index=False)
    quarantine.to_csv(out_dir / "quarantine.csv", index=False)
    info.save(info_path)
    return Dataset(out_dir, manifest, info), False
