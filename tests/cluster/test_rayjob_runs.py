"""A cluster-mode specialist step end to end, minus Kubernetes: the RayJob it submits is played by running
its own entrypoint against a real Ray cluster; a retried step submits a new RayJob that resumes the run."""

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from kuberay_fakes import ROOT, FakeRayOperator, payload_of, validate

import apparel.kuberay
from apparel.config import Config, load_config
from apparel.models.embedding import EmbeddingNet, EmbeddingSpec
from apparel.stages.pipeline import val_scores
from apparel.stages.specialists import specialists_stage

pytestmark = pytest.mark.slow

TINY = {"APPAREL__TRAIN__USE_GPU": "false", "APPAREL__TRAIN__NUM_WORKERS": "1", "APPAREL__TRAIN__CPUS_PER_WORKER": "1",
        "APPAREL__TRAIN__GENERALIST_SHARE": "0.5", "APPAREL__TRAIN__EPOCHS": "2",
        "APPAREL__TRAIN__STEPS_PER_EPOCH": "2", "APPAREL__TRAIN__BATCH_P": "4",
        "APPAREL__TRAIN__BATCH_K": "2", "APPAREL__MODEL__IMAGE_SIZE": "32", "APPAREL__MODEL__EMBEDDING_DIM": "16"}


@pytest.fixture(scope="module")
def ray_address():
    """The Ray cluster a RayJob would bring up (head + worker), here one local Ray."""
    import ray

    from apparel.train.embedding_job import ensure_ray

    ensure_ray(load_config(environ={}))
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def play_rayjob(address: str, logs: list[str]):
    """What the head does with the RayJob: run its entrypoint as the job's driver."""

    def run(manifest: dict) -> None:
        validate(manifest)
        command = shlex.split(manifest["spec"]["entrypoint"])
        assert command[:3] == ["python", "-m", "apparel.train.rayjob_entry"]
        env = {**os.environ, "RAY_ADDRESS": address, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"}
        done = subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True, text=True, timeout=600)
        logs.append(done.stdout + done.stderr)
        if done.returncode:
            raise RuntimeError(done.stderr[-2000:])

    return run


def test_a_specialist_step_trains_through_its_rayjob_and_a_retry_resumes(ray_address: str, tiny_catalog: Path,
                                                                        tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    config: Config = load_config(ROOT / "configs" / "cluster.yaml",
                                 environ={**TINY, "APPAREL__DATA__ROOT": str(tmp_path / "pvc")})
    logs: list[str] = []
    operator = FakeRayOperator(play_rayjob(ray_address, logs))
    monkeypatch.setattr(apparel.kuberay, "kubernetes_api", lambda: operator)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)  # the KFP pod itself has no Ray

    # the generalist is a KFP artefact in the step's own pod: the stage stages it on the PVC for the RayJob
    EmbeddingNet(EmbeddingSpec(embedding_dim=16, image_size=32)).save(tmp_path / "kfp-inputs" / "generalist")
    generalist = tmp_path / "kfp-inputs" / "generalist"
    monkeypatch.setenv("KFP_POD_UID", "attempt-1")
    model = specialists_stage(config, tiny_catalog, tmp_path / "out-1", ["tops"], generalist=generalist)["tops"]
    scores = val_scores(config, tiny_catalog, {"tops": model})
    assert (tmp_path / "out-1" / "tops" / "weights.pt").is_file() and 0 <= scores["val.tops.recall_at_1"] <= 1
    (first,) = operator.created
    job = payload_of(first)["job"]
    assert Path(job["dataset_root"]).is_relative_to(tmp_path / "pvc")  # staged where Ray pods can read it
    assert Path(job["init_path"]).is_relative_to(tmp_path / "pvc")
    checkpoints = list((tmp_path / "pvc" / "ray" / job["name"]).glob("checkpoint_*"))
    assert checkpoints, "the run checkpoints on the shared volume"

    monkeypatch.setenv("KFP_POD_UID", "attempt-2")  # KFP retries the step in a new pod
    specialists_stage(config, tiny_catalog, tmp_path / "out-2", ["tops"], generalist=generalist)
    second = operator.created[1]
    assert second["metadata"]["name"] != first["metadata"]["name"]
    assert payload_of(second)["job"]["name"] == job["name"]
    assert "resuming after epoch 2/2" in logs[1], logs[1][-3000:]
