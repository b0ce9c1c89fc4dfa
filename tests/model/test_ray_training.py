"""Real Ray Train runs on local Ray: DDP over two CPU workers, checkpoints, resume after a kill."""

import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import torch

from apparel.config import Config
from apparel.models.embedding import EmbeddingNet
from apparel.train.embedding_job import make_job, run_embedding_job


@pytest.fixture(scope="module")
def ray_session():
    import ray

    yield
    ray.shutdown()


def test_two_worker_ddp_run_produces_a_checkpointed_model(ray_session, tiny_dataset: Path, tiny_config: Config,
                                                          tmp_path: Path) -> None:
    config = tiny_config.model_copy(update={"train": tiny_config.train.model_copy(update={"num_workers": 2})})
    job = make_job(config, "ddp-test", tiny_dataset, ["tops", "shoes"], "triplet")
    model_dir = run_embedding_job(job, config, tmp_path / "ray")
    model = EmbeddingNet.load(model_dir)
    out = model(torch.zeros(2, 3, 32, 32))
    assert out.shape == (2, 16) and torch.allclose(out.norm(dim=1), torch.ones(2), atol=1e-5)
    state = torch.load(model_dir.parent / "state.pt", weights_only=False)
    assert state["epoch"] == config.train.epochs - 1
    # One checkpoint per run by default; a finished run's holds the weights once and no optimizer state
    # (regression: main kept model + Adam moments + a second copy of the weights, 4x the model).
    assert len(list((tmp_path / "ray" / "ddp-test").glob("checkpoint_*/state.pt"))) == 1
    assert "optimizer" not in state and "model" not in state
    checkpoint_bytes = sum(f.stat().st_size for f in model_dir.parent.rglob("*") if f.is_file())
    assert checkpoint_bytes < 1.2 * (model_dir / "weights.pt").stat().st_size


RUNNER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from apparel.config import load_config
    from apparel.train.embedding_job import make_job, run_embedding_job
    config = load_config(environ={"APPAREL__MODEL__IMAGE_SIZE": "32", "APPAREL__MODEL__EMBEDDING_DIM": "16",
                                  "APPAREL__TRAIN__EPOCHS": "6", "APPAREL__TRAIN__STEPS_PER_EPOCH": "6",
                                  "APPAREL__TRAIN__BATCH_P": "4", "APPAREL__TRAIN__BATCH_K": "2"})
    job = make_job(config, "resume-test", Path(sys.argv[1]), ["tops"], "triplet")
    print("MODEL", run_embedding_job(job, config, Path(sys.argv[2])), flush=True)
""")


def test_a_killed_run_resumes_from_its_last_checkpoint(tiny_dataset: Path, tmp_path: Path) -> None:
    script = tmp_path / "runner.py"
    script.write_text(RUNNER)
    storage = tmp_path / "ray"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}
    first = subprocess.Popen([sys.executable, str(script), str(tiny_dataset), str(storage)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(first.stdout), daemon=True)
    reader.start()
    deadline = time.time() + 240
    # Kill once Ray has registered a checkpoint: "Reporting training result 1" follows its upload.
    while time.time() < deadline and not any("Reporting training result 2" in line for line in lines):
        assert first.poll() is None, "".join(lines)[-3000:]
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert not any("[resume-test] epoch 6/6" in line for line in lines), "the run finished before it was killed"
    second = subprocess.run([sys.executable, str(script), str(tiny_dataset), str(storage)], env=env,
                            capture_output=True, text=True, timeout=300)
    log = second.stdout + second.stderr
    assert second.returncode == 0, log[-3000:]
    resumed = re.search(r"resuming after epoch (\d)/6", log)
    assert resumed and 1 <= int(resumed.group(1)) < 6, log[-3000:]  # the controller may lag one report
    assert "[resume-test] epoch 1/6" not in log  # nothing was trained twice from zero
    assert "[resume-test] epoch 6/6" in log
