"""Step commands find their inputs without paths: the newest pipeline or step-command output (regression:
on main `apparel retrieval` after `make run` failed, its default `runs/unified/model` is not where the
pipeline writes)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from apparel.config import load_config
from apparel.models.attributes import from_embedding
from apparel.models.embedding import EmbeddingNet, EmbeddingSpec
from apparel.workspace import generalist_beside, newest, newest_specialists

APPAREL = [sys.executable, "-c", "from apparel.cli import main; main()"]


def apparel(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPAREL")}
    return subprocess.run([*APPAREL, *args], capture_output=True, text=True, cwd=cwd, stdin=subprocess.DEVNULL,
                          timeout=300, env=env)


def touch_model(folder: Path, when: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spec.json").write_text("{}")
    os.utime(folder / "spec.json", (when, when))
    return folder


def test_newest_output_wins_whoever_wrote_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(environ={})
    with pytest.raises(FileNotFoundError, match="no model yet: run `apparel run` or `apparel attributes` first"):
        newest(config, "model")
    old = touch_model(tmp_path / "runs/pipeline/apparel-training-1/add-attribute-branches/model", 1_000)
    assert newest(config, "model").resolve() == old
    tuned = touch_model(tmp_path / "runs/pipeline/apparel-retraining-2/finetune-champion/model", 2_000)
    assert newest(config, "model").resolve() == tuned
    touch_model(tmp_path / "runs/attributes/model", 3_000)
    assert newest(config, "model") == Path("runs/attributes/model")


def test_newest_specialists_come_from_the_parallel_for_metadata(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "runs/pipeline/apparel-training-1"
    for i, vertical in enumerate(["bags", "tops"]):
        step = run / f"for-loop-2-iteration-{i}" / "train-specialist"
        touch_model(step / "model", 1_000)
        artifact = {"name": "model", "uri": str(step / "model"), "metadata": {"vertical": vertical}}
        (step / "executor_output.json").write_text(json.dumps({"artifacts": {"model": {"artifacts": [artifact]}}}))
    found = newest_specialists(load_config(environ={}))
    assert {v: p.resolve().relative_to(run).parts[0] for v, p in found.items()} == {"bags": "for-loop-2-iteration-0",
                                                                         "tops": "for-loop-2-iteration-1"}
    assert generalist_beside(found) is None  # trained from scratch
    touch_model(run / "train-generalist" / "model", 900)
    (run / "train-generalist" / "model" / "weights.pt").write_bytes(b"")
    assert generalist_beside(found).resolve() == run / "train-generalist" / "model"
    touch_model(tmp_path / "runs/specialists/shoes", 2_000)
    touch_model(tmp_path / "runs/specialists/_generalist", 2_000)
    (tmp_path / "runs/specialists/_generalist/weights.pt").write_bytes(b"")
    mine = newest_specialists(load_config(environ={}))
    assert list(mine) == ["shoes"]  # the generalist beside them is no vertical
    assert generalist_beside(mine) == Path("runs/specialists/_generalist")


def test_retrieval_after_a_pipeline_run_needs_no_paths(tmp_path: Path) -> None:
    run = tmp_path / "runs/pipeline/apparel-training-1"
    missing = apparel("retrieval", cwd=tmp_path)
    assert missing.returncode != 0 and missing.stderr.strip().count("\n") == 0
    assert "no dataset yet" in missing.stderr or "no model yet" in missing.stderr, missing.stderr
    made = apparel("generate", "--out", "catalog", "--products-per-vertical", "3", "--views", "2", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    ingested = apparel("ingest", "catalog", "--out", str(run / "ingest/dataset"), cwd=tmp_path)
    assert ingested.returncode == 0, ingested.stderr
    torch.manual_seed(0)
    from_embedding(EmbeddingNet(EmbeddingSpec(embedding_dim=8, image_size=32))).save(
        run / "add-attribute-branches/model")
    result = apparel("retrieval", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "add-attribute-branches/model" in result.stdout.splitlines()[0]
    assert {line.split()[0] for line in result.stdout.splitlines()[1:]} <= {"bags", "dresses", "shoes", "tops",
                                                                              "trousers"}
    assert "recall@1=" in result.stdout


def test_summary_query_uses_a_test_image_of_the_newest_dataset(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: after `apparel run` the summary's curl line said `image=@PHOTO.jpg` (it looked for photos
    under data.root, the pipeline ingests under pipeline_root) and `.venv/bin/apparel` from any folder."""
    from apparel.stages.pipeline import _where_to_look, example_image

    monkeypatch.chdir(tmp_path)
    config = load_config(environ={})
    assert example_image(config) == "PHOTO.jpg"
    dataset = tmp_path / "runs/pipeline/apparel-training-1/ingest/dataset"
    dataset.mkdir(parents=True)
    for name in ("a.jpg", "b.jpg"):
        (dataset / name).write_bytes(b"jpeg")
    (dataset / "manifest.csv").write_text(f"image,product_id,vertical,split\n{dataset / 'a.jpg'},a,tops,train\n"
                                          f"{dataset / 'gone.jpg'},g,tops,test\n{dataset / 'b.jpg'},b,tops,test\n")
    (dataset / "dataset.json").write_text(json.dumps({"version": "v", "fingerprint": "f", "source": "s",
                                                      "adapter": "manifest", "attributes": [], "multilabel": [],
                                                      "counts": {}, "quarantined": 0}))
    assert example_image(config) == "runs/pipeline/apparel-training-1/ingest/dataset/b.jpg"  # a test image
    monkeypatch.setattr(sys, "argv", [str(tmp_path / ".venv/bin/apparel")])
    (tmp_path / ".venv/bin").mkdir(parents=True)
    (tmp_path / ".venv/bin/apparel").write_text("")
    assert "serve the champion: .venv/bin/apparel serve" in _where_to_look(config)[1]
    monkeypatch.chdir(dataset)
    assert f"serve the champion: {tmp_path}/.venv/bin/apparel serve" in _where_to_look(config)[1]
