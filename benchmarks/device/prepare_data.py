"""What a GPU machine needs to run ``benchmarks/unified.py`` on fashion-products: the machine reaches no network
and receives at most 64 MiB, so the images travel shrunk to the models' input size, as lossless PNGs under their
own names (PIL reads them by content), which ``load_image`` turns into the very arrays the originals give (every
image is checked); ``unified_teacher_groups.sh`` puts them where ``../shared/data`` would be. Only the images
ingest opens (mapped rows) and the unseen catalog's are kept; the unseen catalog's list and this machine's
manifest go along, so the device reuses the list and checks that its ingest gives the same rows and splits.

    python benchmarks/device/prepare_data.py   # writes .devdata/ (git-ignored), then carry it with .whl/
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import SHARED_DATA  # noqa: E402

from apparel.data.dataset import load_image  # noqa: E402

OUT = ROOT / ".devdata"
WORK = ROOT / "runs" / "benchmarks" / "unified"  # unified.py's datasets, made on this machine first
SIZE = 48


def shrink(paths: list[str]) -> None:
    for path in map(Path, paths):
        target = OUT / path.parent.parent.name / "images" / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        model_input = load_image(str(path), SIZE)
        Image.fromarray(model_input).save(target, format="PNG", optimize=True)
        if not np.array_equal(load_image(str(target), SIZE), model_input):
            raise SystemExit(f"{path}: the shrunk image gives other model inputs")


def main() -> None:
    manifest, unseen = WORK / "fashion-products-ds" / "manifest.csv", WORK / "fashion-products-ds-unseen.csv"
    if not (manifest.is_file() and unseen.is_file()):
        raise SystemExit("run benchmarks/unified.py here first: it ingests fashion-products, lists the unseen images")
    shutil.rmtree(OUT, ignore_errors=True)
    (OUT / "fashion-products").mkdir(parents=True)
    for name in ("labels.csv", "duplicates.csv"):
        shutil.copy(SHARED_DATA / "fashion-products" / name, OUT / "fashion-products" / name)
    images = pd.read_csv(manifest, dtype=str)["image"].tolist() + pd.read_csv(unseen, dtype=str)["image"].tolist()
    shrink(images)
    shutil.copy(unseen, OUT / unseen.name)
    shutil.copy(manifest, OUT / "cpu-manifest.csv")
    print(f"{len(images)} images at {SIZE} px in {OUT}")


if __name__ == "__main__":
    main()
