"""How the long benchmarks resume: each finished seed is kept on disk, under a cache path named by the run's
settings (common.settings_key), so an interrupted run skips the seeds it has and more seeds extend a finished run.

Two layouts, each kept as it was so that existing caches are found again:
- seed files (unified.py, sweet_spot.py): a folder per dataset, a file per seed, so processes training other
  seeds of the same dataset never write the same file;
- seed records (attributes.py, attributes_recipes.py): a file per dataset, its seeds in order beside what they
  share (sizes, head names), and the trunk they all start from kept next to it (``<record>.trunk``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path


def seed_file(cache: Path, seed: int) -> Path:
    return cache / f"seed-{seed}.json"


def seed_done(cache: Path, seed: int, required_key: str | None = None) -> bool:
    """Whether the seed's file is there and, with ``required_key``, holds it: a seed cached before that score
    existed is trained again, in its place."""
    path = seed_file(cache, seed)
    return path.is_file() and (required_key is None or required_key in json.loads(path.read_text()))


def save_seed(cache: Path, seed: int, result: dict) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    seed_file(cache, seed).write_text(json.dumps(result))


def finished_seeds(cache: Path) -> list[dict]:
    """A dataset's finished seeds, in seed order (those of a run in another process too)."""
    paths = sorted(cache.glob("seed-*.json"), key=lambda p: int(p.stem.removeprefix("seed-")))
    return [json.loads(p.read_text()) for p in paths]


def resumed(record: Path, dataset_version: str) -> dict:
    """A dataset's seed record (finished seeds under ``per_seed``); one made on another version of the catalog
    starts over, its trunk removed with it."""
    done = json.loads(record.read_text()) if record.is_file() else {}
    if done.get("dataset_version") != dataset_version:
        done = {"dataset_version": dataset_version, "per_seed": []}
        shutil.rmtree(record.with_suffix(".trunk"), ignore_errors=True)
    return done


def save_record(record: Path, done: dict) -> None:
    record.write_text(json.dumps(done))


def done_elsewhere(records: dict[str, Path], trained: dict, seeds: int) -> dict[str, dict]:
    """The seed records of the datasets another process trained (not in ``trained``), with all ``seeds``."""
    found = {name: json.loads(path.read_text()) for name, path in records.items()
             if name not in trained and path.is_file()}
    return {name: done for name, done in found.items() if len(done["per_seed"]) >= seeds}
