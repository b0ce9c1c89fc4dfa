"""Catalog stages: draw the synthetic catalog, read a catalog through its adapter, ingest it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from apparel.config import Config
from apparel.data.adapters import ADAPTERS, RawCatalog, guess_adapter
from apparel.data.ingest import ingest
from apparel.data.manifest import Dataset
from apparel.data.synthetic import generate_catalog
from apparel.progress import progress_bar


def generate_stage(config: Config, out: Path, overrides: dict[str, Any] | None = None) -> Path:
    synthetic = config.data.synthetic.model_copy(update=overrides or {})
    if synthetic.products_per_vertical < 2 or synthetic.views_per_product < 1:
        raise ValueError("need at least 2 products per vertical and 1 view per product")
    total = synthetic.products_per_vertical * synthetic.views_per_product * 5
    with progress_bar("drawing catalog", total) as advance:
        return generate_catalog(synthetic, out, advance)


def read_catalog(config: Config, source: Path, adapter: str) -> RawCatalog:
    if adapter not in ADAPTERS or adapter == "csv":
        known = ", ".join(a for a in ADAPTERS if a != "csv")
        raise ValueError(f"unknown adapter '{adapter}' (known: {known}; generic CSV is a library call)")
    if not source.exists():
        raise FileNotFoundError(f"catalog not found: {source}")
    try:
        if adapter == "fashion-products":
            return ADAPTERS[adapter](source, config.data.vertical_map)
        return ADAPTERS[adapter](source)
    except (ValueError, KeyError, OSError) as error:
        guess = guess_adapter(source)
        if guess is None or guess == adapter:
            raise
        raise ValueError(f"{str(error).splitlines()[0]}: this looks like a {guess} catalog, try --adapter {guess}"
                         ) from error


def ingest_stage(config: Config, source: Path, out: Path, adapter: str = "manifest") -> tuple[Dataset, bool]:
    catalog = read_catalog(config, source, adapter)
    with progress_bar("validating images", len(catalog.rows)) as advance:
        return ingest(catalog, out, config.data, str(source), adapter, advance)


def newest_drop(source: Path) -> Path:
    """A folder that holds only catalog drops (sub-folders named so that they sort by age, e.g. 2026-12-01/)
    stands for its newest drop; any other source is itself."""
    if not source.is_dir():
        return source
    entries = [entry for entry in source.iterdir() if not entry.name.startswith(".")]
    drops = sorted(entry for entry in entries if entry.is_dir())
    return drops[-1] if drops and len(drops) == len(entries) else source


def ingest_source(config: Config, source: str, adapter: str, out: Path) -> Dataset:
    """'synthetic' draws the configured catalog (its drop) inside ``out``; anything else is a catalog path,
    or a folder of drops, of which the newest is read."""
    if source == "synthetic":
        labels = generate_stage(config, out / "catalog")
        return ingest_stage(config, labels.parent, out, "manifest")[0]
    catalog = newest_drop(Path(source))
    if catalog != Path(source):
        print(f"catalog drops in {source}: reading the newest, {catalog.name}", flush=True)
    return ingest_stage(config, catalog, out, adapter)[0]
