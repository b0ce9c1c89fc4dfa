"""Helpers of the chart tests: where the tools are, helm template, and walking rendered manifests.

The tools come from `make tools` (a prerequisite of `make test`): helm unpacked under .tools/bin, checkov in its
own venv under .tools/checkov, kubernetes-validate in the project venv. A test skips only when its tool is absent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

from apparel.config import Config, load_config

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "apparel"
SCENARIOS = sorted(path.name.removesuffix("-values.yaml") for path in (CHART / "ci").glob("*-values.yaml"))
RELEASE, NAMESPACE = "apparel", "apparel"
KUBERAY_SCHEMAS = ROOT.parent / "shared" / "schemas" / "kuberay"


def tool(name: str, *candidates: Path) -> Path | None:
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    found = shutil.which(name)
    return Path(found) if found else None


def run_helm(helm: Path, *args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(helm), *map(str, args)], capture_output=True, text=True, timeout=120)


def values_file(scenario: str) -> Path:
    return CHART / "ci" / f"{scenario}-values.yaml"


def template(helm: Path, *values: Path, sets: tuple[str, ...] = ()) -> list[dict]:
    args = ["template", RELEASE, CHART, "--namespace", NAMESPACE]
    for path in values:
        args += ["--values", path]
    for assignment in sets:
        args += ["--set", assignment]
    done = run_helm(helm, *args)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def find(manifests: list[dict], kind: str, name_suffix: str = "") -> list[dict]:
    return [m for m in manifests if m["kind"] == kind and m["metadata"]["name"].endswith(name_suffix)]


def pod_templates(manifest: dict) -> list[tuple[str, dict]]:
    """(where, pod template: metadata and spec) for every pod a manifest makes, custom resources included."""
    kind, spec = manifest["kind"], manifest.get("spec", {})
    if kind in {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}:
        return [(kind, spec["template"])]
    if kind == "CronJob":
        return [(kind, spec["jobTemplate"]["spec"]["template"])]
    if kind == "Pod":
        return [(kind, manifest)]
    if kind in {"RayCluster", "RayJob"}:
        cluster = spec["rayClusterSpec"] if kind == "RayJob" else spec
        found = [(f"{kind} head", cluster["headGroupSpec"]["template"])]
        found += [(f"{kind} {group['groupName']}", group["template"]) for group in cluster["workerGroupSpecs"]]
        if "submitterPodTemplate" in spec:
            found.append((f"{kind} submitter", spec["submitterPodTemplate"]))
        return found
    return []


def pod_specs(manifest: dict) -> list[tuple[str, dict]]:
    """(where, pod spec) for every pod a manifest makes, custom resources included."""
    return [(where, template["spec"]) for where, template in pod_templates(manifest)]



def code_rayjob(config, tmp_path: Path) -> dict:
    """What `apparel.kuberay.rayjob_manifest` makes for one specialist job (with an attempt id where the code
    takes one: RayJob names are unique per run and attempt)."""
    import inspect

    from apparel.kuberay import rayjob_manifest
    from apparel.train.embedding_job import make_job

    job = make_job(config, "specialist-tops-0123456789abcdef", tmp_path, ["tops"], "triplet")
    extra = {"attempt": "attempt-1"} if "attempt" in inspect.signature(rayjob_manifest).parameters else {}
    return rayjob_manifest(config, job, Path(config.data.root) / "ray", **extra)


def rendered_config(manifests: list[dict], tmp_path: Path) -> Config:
    """The project's config file the chart rendered (its ConfigMap), loaded with the typed Config."""
    configmap = find(manifests, "ConfigMap", "-config")[0]
    path = tmp_path / "config.yaml"
    path.write_text(configmap["data"]["config.yaml"])
    return load_config(path)
