"""`apparel clean`: shows what it would free, deletes only with --yes, keeps what is in use and the MLflow
store unless --mlflow (regression: main had no way to reclaim runs/, 1.6 GB after two runs)."""

import os
import subprocess
import sys
from pathlib import Path

APPAREL = [sys.executable, "-c", "from apparel.cli import main; main()"]
TRAINING = "runs/pipeline/apparel-training-2026-01-0{}-00-00-00-000001"


def apparel(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPAREL")}
    return subprocess.run([*APPAREL, *args], capture_output=True, text=True, cwd=cwd, stdin=subprocess.DEVNULL,
                          timeout=300, env=env)


def put(root: Path, relative: str, size: int = 1000, when: float = 1_000.0) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    os.utime(path, (when, when))
    return path


def workspace(root: Path) -> None:
    put(root, TRAINING.format(1) + "/add-attribute-branches/model/spec.json", when=1_000)  # superseded
    put(root, TRAINING.format(1) + "/ingest/dataset/dataset.json", when=1_000)
    put(root, TRAINING.format(2) + "/add-attribute-branches/model/spec.json", when=2_000)  # newest model
    put(root, TRAINING.format(2) + "/ingest/dataset/dataset.json", when=2_000)
    put(root, TRAINING.format(3) + "/register/card", when=3_000)  # newest run: every training step cached
    put(root, "runs/data/ray/specialist-bags-v1/checkpoint_1/state.pt", size=1_000_000)
    put(root, "runs/data/distill/v1/teachers-abc.pt", size=500_000)
    for day in range(7):
        put(root, f"runs/logs/training-2026010{day}.log", when=1_000 + day)
    put(root, "runs/mlflow.db", size=2000)
    put(root, "runs/mlartifacts/1/model.pt", size=3000)


def test_clean_shows_then_deletes_and_keeps_what_is_in_use(tmp_path: Path) -> None:
    workspace(tmp_path)
    dry = apparel("clean", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    listed = {line.split()[2] for line in dry.stdout.splitlines()[:-1]}
    assert listed == {TRAINING.format(1), "runs/data/ray/specialist-bags-v1", "runs/data/distill/v1",
                      "runs/logs/training-20260100.log", "runs/logs/training-20260101.log"}, dry.stdout
    assert dry.stdout.splitlines()[-1].startswith("would free 1.4 MB in 5 paths; `apparel clean --yes` deletes")
    assert (tmp_path / TRAINING.format(1)).is_dir()  # a dry run deletes nothing

    done = apparel("clean", "--yes", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.splitlines()[-1] == "freed 1.4 MB in 5 paths", done.stdout
    assert not (tmp_path / TRAINING.format(1)).exists() and not list((tmp_path / "runs/data/ray").iterdir())
    assert (tmp_path / TRAINING.format(2)).is_dir() and (tmp_path / TRAINING.format(3)).is_dir()
    assert (tmp_path / "runs/mlflow.db").is_file() and (tmp_path / "runs/mlartifacts/1/model.pt").is_file()
    assert len(list((tmp_path / "runs/logs").glob("*.log"))) == 5

    store = apparel("clean", "--mlflow", "--yes", cwd=tmp_path)
    assert store.returncode == 0, store.stderr
    assert not (tmp_path / "runs/mlflow.db").exists() and not (tmp_path / "runs/mlartifacts").exists()
