"""Ingest throughput on the real catalog, and how much faster an unchanged re-ingest is.

Both runs happen in this one process, on ../shared/data/fashion-products, into a fresh folder.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA, write_result  # noqa: E402

from apparel.config import DataConfig  # noqa: E402
from apparel.data.adapters import read_fashion_products  # noqa: E402
from apparel.data.ingest import ingest  # noqa: E402


def timed_ingest(source: Path, out: Path, config: DataConfig) -> tuple[float, int, bool]:
    start = time.perf_counter()
    dataset, reused = ingest(read_fashion_products(source, config.vertical_map), out, config, str(source),
                             "fashion-products")
    return time.perf_counter() - start, len(dataset.manifest) + dataset.info.quarantined, reused


def main() -> None:
    source = SHARED_DATA / "fashion-products"
    if not source.is_dir():
        sys.exit(f"benchmark needs {source}")
    config = DataConfig()
    with tempfile.TemporaryDirectory() as tmp:
        first_s, images, _ = timed_ingest(source, Path(tmp), config)
        rerun_s, _, reused = timed_ingest(source, Path(tmp), config)
    assert reused, "the unchanged re-ingest must be a no-op"
    write_result("ingest", {
        "summary": {"images_per_s": round(images / first_s, 1), "rerun_speedup": round(first_s / rerun_s, 1)},
        "images": images, "first_ingest_s": round(first_s, 3), "rerun_s": round(rerun_s, 4),
        "dataset": "fashion-products",
    })


if __name__ == "__main__":
    main()
