"""`helm lint --strict` on every scenario, and values.schema.json refusing wrong values (so `helm lint` and
`helm install` fail on them)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml
from chartlib import CHART, ROOT, SCENARIOS, run_helm, values_file


@pytest.mark.parametrize("values", [*(f"ci/{s}-values.yaml" for s in SCENARIOS), "values-gpu.yaml",
                                    "values-production.yaml"])
def test_helm_lint_strict_passes(helm: Path, values: str) -> None:
    done = run_helm(helm, "lint", "--strict", CHART, "--values", CHART / values)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


@pytest.mark.parametrize(("assignment", "complaint"), [
    ("imageTag=0.1.0", "additional properties 'imageTag' not allowed"),
    ("config.train.epoch=3", "additional properties 'epoch' not allowed"),
    ("config.train.epochs=many", "/config/train/epochs"),
    ("config.model.backbone=vgg16", "/config/model/backbone"),
    ("config.registry.review_mode=maybe", "/config/registry/review_mode"),
    ("securityContext.readOnlyRootFilesystem=false", "/securityContext/readOnlyRootFilesystem"),
    ("podSecurityContext.runAsNonRoot=false", "/podSecurityContext/runAsNonRoot"),
    ("serving.resources.limits=null", "/serving/resources"),
    ("serving.autoscaling.targetCPUUtilizationPercentage=170", "/serving/autoscaling/targetCPUUtilizationPercentage"),
    ("mlflow.artifactStore.destination=my-bucket", "/mlflow/artifactStore/destination"),
    ("training.rayVersion=latest", "/training/rayVersion"),
])
def test_a_wrong_value_fails_helm_lint(helm: Path, assignment: str, complaint: str) -> None:
    done = run_helm(helm, "lint", "--strict", CHART, "--set", assignment)
    assert done.returncode != 0
    assert complaint in done.stdout + done.stderr, done.stdout + done.stderr


# Values helm lint and helm template passed before, which the API server or the scheduler would refuse:
# (--set assignments, what the error must say).
SCHEMA_REFUSES = [
    (["monitoring.drift.schedule=every 15 minutes"],
     "at '/monitoring/drift/schedule': 'every 15 minutes' does not match"),
    (["config.train.num_workers=-2"], "at '/config/train/num_workers': minimum: got -2, want 1"),
    (["image.tag=latest"], "at '/image/tag': value must be 'image.tag must be a pinned version"),
    (["mlflow.image=ghcr.io/mlflow/mlflow:latest"],
     "at '/mlflow/image': value must be 'mlflow.image must have a pinned tag or digest"),
]
# Across fields, out of JSON schema's reach: a template `fail` (_validate.tpl). helm v4's lint only logs a
# template's `fail` (INFO), so these fail `helm template` and `helm install`, not `helm lint`.
TEMPLATES_REFUSE = [
    (["serving.autoscaling.minReplicas=10", "serving.autoscaling.maxReplicas=4"],
     "serving.autoscaling.minReplicas (10) must be <= maxReplicas (4)"),
    (["serving.resources.requests.cpu=3"],
     "serving.resources.requests.cpu (3) must be <= serving.resources.limits.cpu (2)"),
    (["monitoring.drift.resources.requests.memory=5Gi"],
     "monitoring.drift.resources.requests.memory (5Gi) must be <= monitoring.drift.resources.limits.memory (4Gi)"),
    (["config.serving.grpc_port=3000"],
     "config.serving.grpc_port (3000) must differ from config.serving.http_port (3000)"),
    (["config.train.cpus_per_worker=16"],
     "config.train.cpus_per_worker (16) must be <= training.worker.resources.limits.cpu (8)"),
]
REFUSALS = ([("lint", *case) for case in SCHEMA_REFUSES] + [("template", *case) for case in SCHEMA_REFUSES]
            + [("template", *case) for case in TEMPLATES_REFUSE])


@pytest.mark.parametrize(("command", "assignments", "complaint"), REFUSALS)
def test_values_the_cluster_would_refuse_fail_naming_the_field(helm: Path, command: str, assignments: list[str],
                                                              complaint: str) -> None:
    sets = [arg for assignment in assignments for arg in ("--set", assignment)]
    done = run_helm(helm, command, *(["--strict"] if command == "lint" else []), CHART, *sets)
    assert done.returncode != 0
    assert complaint in done.stdout + done.stderr, done.stdout + done.stderr


def test_a_right_override_of_the_same_keys_passes(helm: Path) -> None:
    done = run_helm(helm, "lint", "--strict", CHART, "--set", "image.tag=0.2.0", "--set", "config.train.epochs=3",
                    "--set", "config.model.backbone=resnet50", "--set", "config.registry.review_mode=true",
                    "--set", "monitoring.drift.schedule=@hourly", "--set", "serving.resources.requests.cpu=1500m",
                    "--set", "config.train.cpus_per_worker=8", "--set", "serving.autoscaling.minReplicas=8",
                    "--set", "mlflow.image=ghcr.io/mlflow/mlflow:v3.17.2")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_config_schema_is_generated_from_the_typed_config() -> None:
    spec = importlib.util.spec_from_file_location("sync_schema", ROOT / "charts" / "sync_schema.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    current = (CHART / "values.schema.json").read_text()
    stale = "is stale: run `python charts/sync_schema.py`"
    assert module.render(module.synced_schema(yaml.safe_load(current))) == current, f"values.schema.json {stale}"
    assert module.FIELDS.read_text() == module.render_fields(), f"files/config-fields.json {stale}"


@pytest.mark.parametrize("example", ["gpu", "production"])
def test_ci_scenarios_are_the_documented_examples(example: str) -> None:
    """ci/ holds one values file per scenario; the GPU and production ones are the examples users copy."""
    documented = yaml.safe_load((CHART / f"values-{example}.yaml").read_text())
    assert yaml.safe_load(values_file(example).read_text()) == documented


def test_values_yaml_documents_every_key() -> None:
    """`# -- (type) description` above every key holding a value, or above the object it sits in (helm-docs)."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented = [line.strip() for number, line in enumerate(lines) if _holds_value(line)
                    and not _documented(lines, number)]
    assert not undocumented


def _holds_value(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith(("#", "-")) and bool(stripped.partition(":")[2].strip())


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _documented(lines: list[str], number: int) -> bool:
    """A `# --` comment right above this key, or above the nearest enclosing key."""
    above = number - 1
    while above >= 0 and lines[above].strip().startswith("#"):
        if lines[above].strip().startswith("# --"):
            return True
        above -= 1
    parents = [n for n in range(number) if lines[n].strip() and not lines[n].strip().startswith("#")
               and _indent(lines[n]) < _indent(lines[number])]
    return bool(parents) and _documented(lines, parents[-1])
