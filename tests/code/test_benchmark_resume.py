"""The benchmarks' resume helper: finished seeds are found again under the files earlier runs wrote, and a
seed record made on another version of the catalog starts over."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from resume import done_elsewhere, finished_seeds, resumed, save_record, save_seed, seed_done  # noqa: E402


def test_seed_files_keep_the_layout_of_existing_caches(tmp_path: Path) -> None:
    cache = tmp_path / "seeds-synthetic-key"
    for seed in (10, 2):
        save_seed(cache, seed, {"seed": seed, "unseen_scores": {}})
    assert sorted(p.name for p in cache.iterdir()) == ["seed-10.json", "seed-2.json"]
    assert [s["seed"] for s in finished_seeds(cache)] == [2, 10]  # numeric order, not the files' names
    assert seed_done(cache, 2) and not seed_done(cache, 3)


def test_a_seed_without_a_required_score_is_not_done(tmp_path: Path) -> None:
    save_seed(tmp_path, 0, {"scores": {}})
    assert seed_done(tmp_path, 0) and not seed_done(tmp_path, 0, "unseen_scores")


def test_a_record_resumes_its_seeds_on_the_same_catalog_only(tmp_path: Path) -> None:
    record = tmp_path / "synthetic-seeds-key.json"
    done = resumed(record, "v1")
    assert done == {"dataset_version": "v1", "per_seed": []}
    trunk = record.with_suffix(".trunk")
    trunk.mkdir()  # trained by the first seed, beside the record
    done["per_seed"].append({"accuracy": 0.5})
    save_record(record, done)
    assert resumed(record, "v1")["per_seed"] == [{"accuracy": 0.5}] and trunk.is_dir()
    assert resumed(record, "v2") == {"dataset_version": "v2", "per_seed": []} and not trunk.exists()


def test_records_another_process_finished_are_taken_when_they_have_every_seed(tmp_path: Path) -> None:
    records = {name: tmp_path / f"{name}.json" for name in ("a", "b", "c")}
    records["a"].write_text(json.dumps({"per_seed": [1, 2, 3]}))
    records["b"].write_text(json.dumps({"per_seed": [1]}))
    assert done_elsewhere(records, trained={}, seeds=3) == {"a": {"per_seed": [1, 2, 3]}}
    assert done_elsewhere(records, trained={"a": {}}, seeds=3) == {}
