"""The provenance helper every benchmark writes its result through: the real commit, the command line, and a
run in the `benchmarks` experiment of the tracking store."""

import json
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from apparel.config import RegistryConfig

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import provenance  # noqa: E402


def test_provenance_names_the_checked_out_commit_and_the_command() -> None:
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()
    recorded = provenance.provenance(["benchmarks/unified.py", "--datasets", "a b"])
    assert recorded["commit"].removesuffix("-dirty") == head
    assert recorded["command"] == "benchmarks/unified.py --datasets 'a b'"
    assert "cores" in recorded["machine"] and recorded["date"].endswith("+00:00")


def test_a_dirty_tree_is_marked(monkeypatch) -> None:
    outputs = {"rev-parse": "abc\n", "status": " M benchmarks/common.py\n"}
    monkeypatch.setattr(provenance, "git", lambda *args: outputs[args[0]])
    assert provenance.commit() == "abc-dirty"


@pytest.fixture
def tracking_uri_restored():
    """log_run points MLflow at its store process-wide: later tests get the previous store back."""
    previous = mlflow.get_tracking_uri()
    yield
    mlflow.set_tracking_uri(previous)
    mlflow.set_registry_uri(previous)


@pytest.mark.usefixtures("tracking_uri_restored")
def test_a_result_is_logged_as_a_run_in_the_benchmarks_experiment(tmp_path: Path) -> None:
    result = {"summary": {"ratio": 0.9, "unified_recall@1": 0.5, "label": "text", "passed": True},
              "settings": {"seeds": 3, "datasets": ["synthetic"]}, "provenance": provenance.provenance(["x.py"])}
    path = tmp_path / "example.json"
    path.write_text(json.dumps(result))
    registry = RegistryConfig(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=tmp_path / "art")
    run_id = provenance.log_run("example", path, registry)

    run = mlflow.get_run(run_id)
    assert mlflow.get_experiment(run.info.experiment_id).name == "benchmarks"
    assert run.info.run_name == "example"
    assert run.data.metrics == {"ratio": 0.9, "unified_recall_1": 0.5}
    assert run.data.params["seeds"] == "3" and run.data.params["provenance.command"] == "x.py"
    artifacts = [a.path for a in mlflow.MlflowClient().list_artifacts(run_id)]
    assert artifacts == ["example.json"]
