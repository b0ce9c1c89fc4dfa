"""Ingest throughput on the real catalog, and how much faster an unchanged re-ingest is.

Rate = images decoded per second of the first ingest: rows whose category maps to no vertical are
quarantined without being opened and are not counted (nor are rows whose file is missing or empty).
Every run happens in this one process, on ../shared/data/fashion-products, into fresh folders; the first
ingest is repeated and its median time used.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA, load_average, write_result  # noqa: E402

from apparel.config import DataConfig  # noqa: E402
from apparel.data.adapters import read_fashion_products  # noqa: E402
from apparel.data.ingest import ingest  # noqa: E402

NEVER_OPENED = ("no image path", "file not found", "empty file")


def timed_ingest(source: Path, out: Path, config: DataConfig) -> tuple[float, bool]:
    start = time.perf_counter()
    _, reused = ingest(read_fashion_products(source, config.vertical_map), out, config, str(source), "fashion-products")
    return time.perf_counter() - start, reused


def decoded_images(source: Path, out: Path, config: DataConfig) -> dict[str, int]:
    catalog = read_fashion_products(source, config.vertical_map)
    quarantine = pd.read_csv(out / "quarantine.csv")
    unopened = int(quarantine["reason"].isin(NEVER_OPENED).sum())
    return {"rows": len(catalog.rows) + len(catalog.rejected), "unmapped_never_opened": len(catalog.rejected),
            "missing_files": unopened, "decoded": len(catalog.rows) - unopened,
            "kept": int(len(pd.read_csv(out / "manifest.csv"))), "quarantined": int(len(quarantine))}


def main(repeats: int = 3) -> None:
    source = SHARED_DATA / "fashion-products"
    if not source.is_dir():
        sys.exit(f"benchmark needs {source}")
    load_at_start = load_average()
    config = DataConfig()
    first_times = []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(repeats):
            seconds, _ = timed_ingest(source, Path(tmp) / str(repeat), config)
            first_times.append(seconds)
        rerun_s, reused = timed_ingest(source, Path(tmp) / "0", config)
        counts = decoded_images(source, Path(tmp) / "0", config)
    assert reused, "the unchanged re-ingest must be a no-op"
    first_s = statistics.median(first_times)
    write_result("ingest", {
        "summary": {"decoded_images_per_s": round(counts["decoded"] / first_s, 1),
                    "rerun_speedup": round(first_s / rerun_s, 1)},
        "counts": counts, "first_ingest_s": [round(t, 3) for t in first_times], "rerun_s": round(rerun_s, 4),
        "dataset": "fashion-products", "threads": 4,
    }, load_at_start)


if __name__ == "__main__":
    main()
