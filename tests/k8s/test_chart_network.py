"""Who may reach whom: an explicit connectivity matrix evaluated against every scenario's rendered NetworkPolicies
(netpol.py), and no object rendered twice."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from chartlib import NAMESPACE, SCENARIOS, code_rayjob, find, pod_templates
from netpol import Pod, can_reach

from apparel.config import load_config

RAY_PORTS = {"gcs": 6379, "dashboard": 8265, "client": 10001}  # KubeRay adds them to every Ray pod it starts

# Pods outside the chart, where the chart's defaults and values-production.yaml expect them.
OUTSIDERS = {
    "client": Pod("ingress-nginx-controller", "ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"}),
    "kuberay operator": Pod("kuberay-operator", "kuberay-system", {"app.kubernetes.io/name": "kuberay-operator"}),
    "kfp api": Pod("ml-pipeline", "kubeflow", {"app": "ml-pipeline"}, {"http": 8888}),
    "pipeline step": Pod("kfp-step", NAMESPACE, {"pipelines.kubeflow.org/v2_component": "true"}),
    "stranger": Pod("stranger", "elsewhere", {"app": "stranger"}),
    "impostor": Pod("impostor", "kuberay-system", {"app.kubernetes.io/name": "not-the-operator"}),
}

# (source, destination, destination port name): must connect in every scenario that has both ends.
MUST_REACH = [
    ("client", "serving", "http"),
    ("client", "serving", "grpc"),
    ("serving", "mlflow", "http"),
    ("drift", "mlflow", "http"),
    ("pipeline step", "mlflow", "http"),
    ("kuberay operator", "chart ray head", "dashboard"),
    ("kuberay operator", "pipeline ray head", "dashboard"),
    ("chart ray", "chart ray", "gcs"),
    ("chart ray", "chart ray", "dashboard"),
    ("pipeline ray", "pipeline ray", "gcs"),
    ("pipeline ray", "pipeline ray", "dashboard"),
    ("pipeline step", "kfp api", "http"),
    ("schedule", "kfp api", "http"),
    ("drift", "kfp api", "http"),
]

# Must not connect wherever NetworkPolicies are on: what keeps the matrix above from passing by allowing all.
MUST_NOT_REACH = [
    ("stranger", "mlflow", "http"),
    ("client", "mlflow", "http"),
    ("stranger", "dashboard", "ui"),
    ("stranger", "chart ray head", "dashboard"),
    ("stranger", "pipeline ray head", "dashboard"),
    ("impostor", "chart ray head", "dashboard"),
    ("impostor", "pipeline ray head", "dashboard"),
    ("kuberay operator", "chart ray head", "gcs"),
    ("kuberay operator", "pipeline ray head", "gcs"),
    ("serving", "chart ray head", "dashboard"),
    ("serving", "pipeline ray head", "dashboard"),
]


def _pod(manifest: dict, where: str, template: dict, ray: bool) -> Pod:
    ports = {p["name"]: p["containerPort"] for c in template["spec"]["containers"] for p in c.get("ports", [])}
    return Pod(f"{where} {manifest['metadata']['name']}", manifest["metadata"].get("namespace", NAMESPACE),
               template["metadata"]["labels"], {**RAY_PORTS, **ports} if ray else ports)


def _ray_roles(prefix: str, manifests: list[dict]) -> dict[str, list[Pod]]:
    pods = [(where, _pod(m, where, template, ray=True)) for m in manifests for where, template in pod_templates(m)]
    return {f"{prefix} ray": [pod for _, pod in pods],
            f"{prefix} ray head": [pod for where, pod in pods if where.endswith("head")]}


def roles(manifests: list[dict], tmp_path: Path) -> dict[str, list[Pod]]:
    """Role -> the pods that play it in one scenario (the chart's, the pipeline's RayJobs', the outsiders)."""
    found = {name: [pod] for name, pod in OUTSIDERS.items()}
    for role, kind, suffix in [("serving", "Deployment", "-serving"), ("mlflow", "Deployment", "-mlflow"),
                               ("dashboard", "Deployment", "-dashboard"), ("drift", "CronJob", "-drift"),
                               ("schedule", "Job", "-schedule")]:
        found[role] = [_pod(m, where, template, ray=False) for m in find(manifests, kind, suffix)
                       for where, template in pod_templates(m)]
    found |= _ray_roles("chart", find(manifests, "RayCluster") + find(manifests, "RayJob"))
    if find(manifests, "Role"):  # the pipeline's steps may create RayJobs (apparel.kuberay)
        configmap = find(manifests, "ConfigMap", "-config")[0]
        (tmp_path / "config.yaml").write_text(configmap["data"]["config.yaml"])
        found |= _ray_roles("pipeline", [code_rayjob(load_config(tmp_path / "config.yaml"), tmp_path)])
    return found


def _pairs(matrix: list[tuple[str, str, str]], found: dict[str, list[Pod]]):
    for source_role, destination_role, port_name in matrix:
        for source in found.get(source_role, []):
            for destination in found.get(destination_role, []):
                yield source, destination, destination.ports[port_name]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_connectivity_matrix(rendered: dict, scenario: str, tmp_path: Path) -> None:
    manifests = rendered[scenario]
    policies = find(manifests, "NetworkPolicy")
    found = roles(manifests, tmp_path)
    blocked = [f"{s.name} -> {d.name}:{port}" for s, d, port in _pairs(MUST_REACH, found)
               if not can_reach(policies, s, d, port)]
    assert not blocked, f"{scenario}: blocked {blocked}"
    forbidden = list(_pairs(MUST_NOT_REACH, found)) if policies else []
    open_ = [f"{s.name} -> {d.name}:{port}" for s, d, port in forbidden if can_reach(policies, s, d, port)]
    assert not open_, f"{scenario}: open {open_}"


def test_the_matrix_covers_every_kind_of_pod(rendered: dict, tmp_path: Path) -> None:
    """So that the matrix cannot pass by finding no pods: production has every role."""
    found = roles(rendered["production"], tmp_path)
    assert all(found.get(role) for s, d, _ in MUST_REACH + MUST_NOT_REACH for role in (s, d))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_no_object_is_rendered_twice(rendered: dict, scenario: str) -> None:
    keys = Counter((m["kind"], m["metadata"].get("namespace"), m["metadata"]["name"]) for m in rendered[scenario])
    assert not [key for key, count in keys.items() if count > 1], scenario
