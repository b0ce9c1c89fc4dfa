"""The pipelines end to end on kfp's local runner, through the CLI: training twice (the second from
cache), then scheduled retraining on an unchanged and on a grown catalog."""

import json
import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

TINY = {
    "APPAREL__MODEL__IMAGE_SIZE": "32", "APPAREL__MODEL__EMBEDDING_DIM": "16",
    "APPAREL__TRAIN__EPOCHS": "1", "APPAREL__TRAIN__STEPS_PER_EPOCH": "2", "APPAREL__TRAIN__DISTILL_EPOCHS": "1",
    "APPAREL__TRAIN__BATCH_P": "4", "APPAREL__TRAIN__BATCH_K": "2", "APPAREL__TRAIN__ATTRIBUTE_BRANCH_STEPS": "2",
    "APPAREL__TRAIN__ATTRIBUTE_FINETUNE_STEPS": "1", "APPAREL__TRAIN__ATTRIBUTE_FINAL_STEPS": "1",
    "APPAREL__DATA__SYNTHETIC__PRODUCTS_PER_VERTICAL": "6",
    "APPAREL__DATA__SYNTHETIC__VIEWS_PER_PRODUCT": "3", "APPAREL__DATA__SYNTHETIC__IMAGE_SIZE": "40",
}


def pipeline_run(workdir: Path, name: str = "training", **overrides: str
                 ) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, **TINY, **overrides, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", "from apparel.cli import main; main()", "pipeline", "run", name],
                            cwd=workdir, env=env, capture_output=True, text=True, timeout=1500,
                            stdin=subprocess.DEVNULL)
    return result, time.perf_counter() - start


def full_log(workdir: Path, result: subprocess.CompletedProcess) -> str:
    """The log file the run names in its first line (kfp, Ray and framework output go there, not to the terminal)."""
    header = result.stdout.splitlines()[0]
    assert header.startswith("pipeline ") and " full log in " in header, header
    return (workdir / header.split(" full log in ", 1)[1]).read_text()


def executed(result: subprocess.CompletedProcess, task: str, workdir: Path) -> bool:
    """Whether the local runner ran ``task``: a cache hit or a skipped branch logs no "Executing task"."""
    return f"Executing task '{task}'" in full_log(workdir, result)


def assert_quiet(workdir: Path, result: subprocess.CompletedProcess) -> None:
    """Regression: main printed ~1,400 lines (config JSON dumps, faiss's AVX fallbacks, the placeholder-image
    warning, every epoch line twice) with colour codes into files."""
    shown = result.stdout.splitlines() + result.stderr.splitlines()
    assert len(shown) <= 60, "\n".join(shown)
    assert not any(marker in result.stdout + result.stderr
               for marker in ('"config_json"', "AVX", "base image", "\x1b["))
    epochs = [line for line in shown if " epoch " in line]
    assert len(epochs) == len(set(epochs)), epochs
    log = full_log(workdir, result)
    assert "\x1b[" not in log and "Could not load library with AVX" not in log
    assert "Running pipeline: 'apparel-training'" in log


def registered_versions(workdir: Path) -> int:
    with sqlite3.connect(workdir / "runs" / "mlflow.db") as db:
        return db.execute("select count(*) from model_versions").fetchone()[0]


@dataclass
class Trained:
    """One workspace for both tests (one training run fewer): retraining before any champion, then
    training twice, the second from cache."""

    workdir: Path
    orphan: subprocess.CompletedProcess
    first: subprocess.CompletedProcess
    first_s: float
    second: subprocess.CompletedProcess
    second_s: float
    versions_after_second: int


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Trained:
    workdir = tmp_path_factory.mktemp("pipeline")
    orphan, _ = pipeline_run(workdir, "retraining")
    first, first_s = pipeline_run(workdir)
    second, second_s = pipeline_run(workdir)
    return Trained(workdir, orphan, first, first_s, second, second_s, registered_versions(workdir))


@pytest.mark.slow
def test_training_pipeline_registers_indexes_and_caches(trained: Trained) -> None:
    tmp_path, first, second = trained.workdir, trained.first, trained.second
    assert first.returncode == 0, (first.stdout + first.stderr)[-4000:]
    assert_quiet(tmp_path, first)
    steps = [line for line in first.stdout.splitlines() if line.startswith("[")]
    assert [line.split()[0] for line in steps] == [f"[{k}/9]" for k in range(1, 10)], steps
    assert steps[1].split()[1] == "train-generalist", steps  # the default: specialists start from it
    assert "registered: apparel-unified v1 -> champion" in first.stdout
    assert "Recall@1: mean " in first.stdout and "search index: " in first.stdout
    with sqlite3.connect(tmp_path / "runs" / "mlflow.db") as db:
        assert db.execute("select count(*) from metrics where key like 'retrieval.%.recall_at_1'").fetchone()[0] >= 5
    assert list((tmp_path / "runs" / "pipeline").glob("*/build-index/index/catalog.faiss"))

    assert second.returncode == 0, (second.stdout + second.stderr)[-4000:]
    for task in ("ingest", "train-generalist", "train-specialist", "distill", "add-attribute-branches", "evaluate"):
        assert not executed(second, task, tmp_path), task
    assert executed(second, "register", tmp_path) and executed(second, "record-run-status", tmp_path)
    assert_quiet(tmp_path, second)
    assert "cached" in next(line for line in second.stdout.splitlines() if "] train-specialist" in line)
    # Regression (issue 12): an unchanged re-run registered v2; and its final state went unrecorded.
    assert "unchanged: champion stays v1" in second.stdout
    assert trained.versions_after_second == 1
    runs = [json.loads(line) for line in (tmp_path / "runs" / "data" / "pipeline_runs.jsonl").read_text().splitlines()]
    training = [r for r in runs if "retraining" not in r["run"]]  # the fixture's first run was a retraining
    assert len(training) == len(runs) - 1, runs
    assert [r["state"] for r in training] == ["SUCCEEDED", "SUCCEEDED"] and training[0]["run"] != training[1]["run"]
    assert trained.second_s < trained.first_s


@pytest.mark.slow
def test_retraining_skips_an_unchanged_catalog_and_gates_a_fine_tune_on_new_data(trained: Trained) -> None:
    tmp_path, orphan = trained.workdir, trained.orphan  # regression (issue 12): crashed in the fine-tune step
    assert orphan.returncode == 0, (orphan.stdout + orphan.stderr)[-4000:]
    assert "nothing to fine-tune: there is no champion yet" in orphan.stdout
    assert not executed(orphan, "finetune-champion", tmp_path)
    assert trained.first.returncode == 0

    unchanged, _ = pipeline_run(tmp_path, "retraining")
    assert unchanged.returncode == 0, (unchanged.stdout + unchanged.stderr)[-4000:]
    assert not executed(unchanged, "finetune-champion", tmp_path)
    assert "nothing registered: no new data since the champion's dataset (champion stays v1)" in unchanged.stdout
    assert registered_versions(tmp_path) == 1

    grown, _ = pipeline_run(tmp_path, "retraining", APPAREL__DATA__SYNTHETIC__PRODUCTS_PER_VERTICAL="8")
    assert grown.returncode == 0, (grown.stdout + grown.stderr)[-4000:]
    assert executed(grown, "finetune-champion", tmp_path) and executed(grown, "build-index", tmp_path)
    assert registered_versions(tmp_path) == 2
    line = next(x for x in grown.stdout.splitlines() if x.startswith("registered: "))
    assert line.startswith(("registered: apparel-unified v2 -> champion (gate: ",
                            "registered: apparel-unified v2 -> challenger (gate: ")), line
    # The summary names this run's own index (or says a challenger gets none), never another run's.
    index = next(x for x in grown.stdout.splitlines() if x.startswith(("search index: ", "no index: ")))
    assert ("apparel-retraining-" in index) if "-> champion" in line else index.startswith("no index: challenger")
