"""Every rendered manifest validated as a cluster would: built-in kinds with kubernetes-validate (strict, against
a stated Kubernetes version), KubeRay's custom resources — from the chart and from the code — against KubeRay's
CRD schemas (kubernetes-validate has no schema for them and only warns)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jsonschema
import pytest
import yaml
from chartlib import KUBERAY_SCHEMAS, ROOT, SCENARIOS, code_rayjob, find

from apparel.config import load_config

kubernetes_validate = pytest.importorskip("kubernetes_validate")

KUBERNETES_VERSION = "1.35.0"  # the version helm 4.1 (KubeClientVersion v1.35) is built against
CRD_FILES = {"RayJob": "ray.io_rayjobs.yaml", "RayCluster": "ray.io_rayclusters.yaml"}


@cache
def crd_validator(kind: str) -> jsonschema.protocols.Validator:
    """The v1 schema of KubeRay's CRD, built once (libyaml: the CRD files are 1-1.4 MB)."""
    if not (KUBERAY_SCHEMAS / CRD_FILES[kind]).is_file():
        pytest.skip("../shared/schemas/kuberay is absent")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    crd = yaml.load((KUBERAY_SCHEMAS / CRD_FILES[kind]).read_text(), Loader=loader)
    schema = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")["schema"]["openAPIV3Schema"]
    validator = jsonschema.validators.validator_for(schema)
    return validator(schema)


def validate(manifest: dict) -> None:
    if manifest["apiVersion"].startswith("ray.io/"):
        assert manifest["apiVersion"] == "ray.io/v1"
        crd_validator(manifest["kind"]).validate(manifest)
    else:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_rendered_manifest_is_valid(rendered: dict, scenario: str) -> None:
    for manifest in rendered[scenario]:
        validate(manifest)  # raises on the first invalid field, naming it


def test_kubernetes_validate_has_no_schema_for_kuberay_kinds(rendered: dict) -> None:
    """Why custom resources go through the CRD schemas: kubernetes-validate cannot check them."""
    rayjob = find(rendered["gpu"], "RayJob")[0]
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(rayjob, KUBERNETES_VERSION, strict=True)


def test_invalid_manifests_are_caught(rendered: dict) -> None:
    deployment = find(rendered["default"], "Deployment", "-serving")[0]
    typo = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(typo)
    rayjob = find(rendered["gpu"], "RayJob")[0]
    wrong_type = {**rayjob, "spec": {**rayjob["spec"], "shutdownAfterJobFinishes": "yes"}}
    with pytest.raises(jsonschema.ValidationError):
        validate(wrong_type)


def test_kubernetes_validate_cli_strict_on_a_rendered_file(rendered: dict, tmp_path: Path) -> None:
    """The same check through the tool's own command line, as a user would run it."""
    import subprocess
    import sys

    path = tmp_path / "default.yaml"
    path.write_text(yaml.safe_dump_all(rendered["default"]))
    done = subprocess.run([sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", "-k",
                           KUBERNETES_VERSION, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "ERROR" not in done.stdout, done.stdout + done.stderr


@pytest.mark.parametrize("config_file", ["configs/cluster.yaml", "chart"])
def test_the_codes_rayjob_is_valid_against_the_kuberay_crd(rendered: dict, config_file: str, tmp_path: Path) -> None:
    """Whatever `apparel.kuberay.rayjob_manifest` produces, for the repo's cluster config and for the config
    the chart renders (GPU scenario), is a valid RayJob that mounts the chart's shared volume."""
    if config_file == "chart":
        configmap = find(rendered["gpu"], "ConfigMap", "-config")[0]
        (tmp_path / "config.yaml").write_text(configmap["data"]["config.yaml"])
        config = load_config(tmp_path / "config.yaml")
    else:
        config = load_config(ROOT / config_file)
    manifest = code_rayjob(config, tmp_path)
    validate(manifest)
    claims = {v["persistentVolumeClaim"]["claimName"] for group in _groups(manifest)
              for v in group["template"]["spec"].get("volumes", []) if "persistentVolumeClaim" in v}
    chart_claim = find(rendered["gpu"], "PersistentVolumeClaim")[0]["metadata"]["name"]
    assert claims == {chart_claim}


def _groups(rayjob: dict) -> list[dict]:
    cluster = rayjob["spec"]["rayClusterSpec"]
    return [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
