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


def test_changed_code_marks_the_commit_dirty_and_a_rewritten_result_does_not(tmp_path: Path) -> None:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path,
                              capture_output=True, text=True, check=True).stdout.strip()

    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    code, result = tmp_path / "benchmarks" / "common.py", tmp_path / "benchmarks" / "results" / "x.json"
    code.write_text("a = 1\n")
    result.write_text("{}\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "first")
    head = git("rev-parse", "HEAD")
    result.write_text('{"seeds": 2}\n')
    assert provenance.commit(tmp_path) == head
    code.write_text("a = 2\n")
    assert provenance.commit(tmp_path) == f"{head}-dirty"


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


@pytest.mark.usefixtures("tracking_uri_restored")
def test_every_benchmark_writes_through_provenance(tmp_path: Path, monkeypatch) -> None:
    """common.write_result, the one place benchmark scripts write results, records provenance and logs the run
    to the store the project's config names."""
    import common

    monkeypatch.setattr(common, "RESULTS", tmp_path)
    monkeypatch.delenv("APPAREL_CONFIG", raising=False)
    monkeypatch.setenv("APPAREL__REGISTRY__TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("APPAREL__REGISTRY__ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    path = common.write_result("example", {"summary": {"ratio": 1.0}}, quiet=True)
    assert set(json.loads(path.read_text())["provenance"]) == {"commit", "command", "machine", "date"}
    runs = mlflow.search_runs(experiment_names=["benchmarks"], output_format="list")
    assert [(run.info.run_name, run.data.metrics) for run in runs] == [("example", {"ratio": 1.0})]
