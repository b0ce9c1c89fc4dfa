"""The training pipeline end to end on kfp's local runner, through the CLI, twice (the second from cache)."""

import os
import sqlite3
import subprocess
import sys
import time
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


def pipeline_run(workdir: Path) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, **TINY, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", "from apparel.cli import main; main()", "pipeline", "run"],
                            cwd=workdir, env=env, capture_output=True, text=True, timeout=1500,
                            stdin=subprocess.DEVNULL)
    return result, time.perf_counter() - start


@pytest.mark.slow
def test_training_pipeline_registers_indexes_and_caches(tmp_path: Path) -> None:
    first, first_s = pipeline_run(tmp_path)
    assert first.returncode == 0, (first.stdout + first.stderr)[-4000:]
    assert "registered: apparel-unified v1 -> champion" in first.stdout
    assert "Recall@1: " in first.stdout and "search index: " in first.stdout
    with sqlite3.connect(tmp_path / "runs" / "mlflow.db") as db:
        assert db.execute("select count(*) from model_versions").fetchone()[0] == 1
        assert db.execute("select count(*) from metrics where key like 'retrieval.%.recall_at_1'").fetchone()[0] >= 5
    assert list((tmp_path / "runs" / "pipeline").glob("*/build-index/index/catalog.faiss"))

    second, second_s = pipeline_run(tmp_path)
    assert second.returncode == 0, (second.stdout + second.stderr)[-4000:]
    log = second.stdout + second.stderr
    # A cache hit skips the task without the "Executing task" line a real execution logs.
    for task in ("ingest", "train-specialist", "distill", "add-attribute-branches", "evaluate"):
        assert f"Executing task \x1b[96m'{task}'" not in log, task
    assert "Executing task \x1b[96m'register'" in log
    assert "registered: apparel-unified v2 -> champion" in second.stdout  # same model: the gate passes it
    assert second_s < first_s
