"""Policy checks on the rendered chart: a real scanner (checkov, once over every scenario) and the project's own
rules — restricted pod security on every pod (KubeRay's included), limits set, pinned images, no plaintext
secrets, RBAC exactly as granted, every pod behind a NetworkPolicy."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from chartlib import CHART, SCENARIOS, code_rayjob, find, pod_specs

from apparel.config import load_config

WORKLOADS = {"Deployment", "CronJob", "Job", "RayCluster", "RayJob"}


def test_checkov_finds_nothing(checkov: Path, rendered: dict, tmp_path: Path) -> None:
    for scenario, manifests in rendered.items():
        (tmp_path / f"{scenario}.yaml").write_text(yaml.safe_dump_all(manifests))
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE"}  # no network: don't fetch Prisma Cloud's guideline mapping
    done = subprocess.run([str(checkov), "--directory", str(tmp_path), "--config-file", str(CHART / ".checkov.yaml"),
                           "--output", "json", "--compact", "--quiet"], capture_output=True, text=True, env=env,
                          timeout=300)
    report = json.loads(done.stdout)
    report = report[0] if isinstance(report, list) else report
    failed = [(r["check_id"], r["check_name"], r["resource"], Path(r["file_path"]).name)
              for r in report["results"]["failed_checks"]]
    assert not failed and done.returncode == 0, failed
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 500  # it really ran the Kubernetes checks on every scenario


def all_pods(rendered: dict) -> list[tuple[str, str, dict]]:
    return [(scenario, f"{where} {m['metadata']['name']}", spec) for scenario, manifests in rendered.items()
            for m in manifests for where, spec in pod_specs(m)]


def test_every_workload_makes_pods(rendered: dict) -> None:
    """So the checks below cannot pass by finding nothing."""
    kinds = {m["kind"] for manifests in rendered.values() for m in manifests if pod_specs(m)}
    assert kinds == WORKLOADS


def assert_restricted(label: str, spec: dict) -> None:
    """The restricted Pod Security Standard, plus what the project adds: no token, a writable /tmp."""
    pod = spec["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["seccompProfile"]["type"] == "RuntimeDefault", label
    assert not any(spec.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")), label
    assert all("hostPath" not in v for v in spec.get("volumes", [])), label
    assert spec["automountServiceAccountToken"] is False, label
    for container in spec["containers"] + spec.get("initContainers", []):
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False, label
        assert context["readOnlyRootFilesystem"] is True, label
        assert context["capabilities"]["drop"] == ["ALL"] and not context["capabilities"].get("add"), label
        assert context.get("privileged", False) is False and context.get("runAsNonRoot", True) is True, label
        assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"]), label  # writable scratch


def test_restricted_pod_security_on_every_pod(rendered: dict) -> None:
    for scenario, where, spec in all_pods(rendered):
        assert_restricted(f"{scenario}: {where}", spec)


def test_the_codes_rayjob_pods_are_restricted_too(rendered: dict, tmp_path: Path) -> None:
    """The RayJobs the pipeline creates run in the same namespace as the chart's pods."""
    configmap = find(rendered["gpu"], "ConfigMap", "-config")[0]
    (tmp_path / "config.yaml").write_text(configmap["data"]["config.yaml"])
    manifest = code_rayjob(load_config(tmp_path / "config.yaml"), tmp_path)
    specs = pod_specs(manifest)
    assert specs
    for where, spec in specs:
        assert_restricted(f"apparel.kuberay {where}", spec)


def test_every_container_has_requests_and_limits(rendered: dict) -> None:
    for scenario, where, spec in all_pods(rendered):
        for container in spec["containers"] + spec.get("initContainers", []):
            resources = container["resources"]
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[kind]), f"{scenario}: {where} {kind}"


def test_images_are_pinned(rendered: dict) -> None:
    images = {c["image"] for _, _, spec in all_pods(rendered)
              for c in spec["containers"] + spec.get("initContainers", [])}
    assert images
    for image in images:
        name, _, digest = image.partition("@")
        tag = name.rpartition(":")[2] if ":" in name.rpartition("/")[2] else ""
        assert re.fullmatch(r"sha256:[a-f0-9]{64}", digest) or (tag and tag != "latest"), image
    production = {c["image"] for _, _, spec in all_pods({"production": rendered["production"]})
                  for c in spec["containers"]}
    assert all("@sha256:" in image for image in production)


SECRET_NAME = re.compile(r"pass(word)?|secret|token|access_?key|credential|api_?key", re.IGNORECASE)
CREDENTIAL_IN_URI = re.compile(r"\w+://[^/\s:@]+:[^/\s@]+@")


def test_no_plaintext_secrets(rendered: dict) -> None:
    for scenario, manifests in rendered.items():
        assert not find(manifests, "Secret"), scenario  # the chart only references Secrets the operator made
        for manifest in manifests:
            assert not CREDENTIAL_IN_URI.search(yaml.safe_dump(manifest)), manifest["metadata"]["name"]
        for _, where, spec in all_pods({scenario: manifests}):
            for container in spec["containers"]:
                for env in container.get("env", []):
                    if SECRET_NAME.search(env["name"]):
                        assert "secretKeyRef" in env.get("valueFrom", {}), f"{scenario}: {where} {env['name']}"
    mlflow = find(rendered["production"], "Deployment", "-mlflow")[0]["spec"]["template"]["spec"]["containers"][0]
    from_secrets = {e["name"] for e in mlflow["env"] if "secretKeyRef" in e.get("valueFrom", {})}
    assert from_secrets == {"MLFLOW_BACKEND_STORE_URI", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}


@pytest.mark.parametrize("values", sorted(p.name for p in CHART.glob("values*.yaml")) + [f"ci/{s}-values.yaml"
                                                                                        for s in SCENARIOS])
def test_values_files_hold_no_credentials(values: str) -> None:
    def walk(node, path=""):
        if isinstance(node, dict):
            for key, value in node.items():
                yield from walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from walk(value, f"{path}[{index}]")
        else:
            yield path, node

    for path, value in walk(yaml.safe_load((CHART / values).read_text())):
        leaf = path.rsplit(".", 1)[-1]
        if SECRET_NAME.search(leaf) and not re.search(r"(existingSecret|Key)$", leaf):
            pytest.fail(f"{values}: {path} looks like a credential")
        assert not (isinstance(value, str) and CREDENTIAL_IN_URI.search(value)), f"{values}: {path}"


def test_rbac_is_exactly_the_pipelines_rayjob_verbs(rendered: dict) -> None:
    for scenario, manifests in rendered.items():
        assert not find(manifests, "ClusterRole") and not find(manifests, "ClusterRoleBinding"), scenario
        roles = find(manifests, "Role")
        if not roles:
            continue
        (role,) = roles
        assert role["rules"] == [{"apiGroups": ["ray.io"], "resources": ["rayjobs"],
                                  "verbs": ["create", "get", "list", "watch", "delete"]}]
        (binding,) = find(manifests, "RoleBinding")
        assert binding["roleRef"]["name"] == role["metadata"]["name"]
        steps = [f"{s['namespace']}:{s['name']}" for s in binding["subjects"][1:]]
        assert binding["subjects"][0]["name"] == "apparel-pipeline"
        assert steps == (["apparel:default-editor"] if scenario == "production" else []), scenario
        tokens = {a["metadata"]["name"]: a["automountServiceAccountToken"] for a in find(manifests, "ServiceAccount")}
        assert [name for name, mounted in tokens.items() if mounted] == ["apparel-pipeline"], scenario


def _selects(policy: dict, labels: dict) -> bool:
    wanted = policy["spec"]["podSelector"].get("matchLabels", {})
    return all(labels.get(k) == v for k, v in wanted.items())


def test_every_pod_is_behind_a_default_deny_policy_and_opens_only_its_ports(rendered: dict) -> None:
    manifests = rendered["production"]
    policies = find(manifests, "NetworkPolicy")
    deny = next(p for p in policies if p["metadata"]["name"].endswith("-default-deny"))
    assert "ingress" not in deny["spec"] and deny["spec"]["policyTypes"] == ["Ingress"]
    for manifest in manifests:
        for where, _ in pod_specs(manifest):
            assert _selects(deny, _pod_labels(manifest, where)), f"{where} {manifest['metadata']['name']}"
    serving = next(p for p in policies if p["metadata"]["name"].endswith("-serving"))
    assert [p["port"] for p in serving["spec"]["ingress"][0]["ports"]] == ["http", "grpc"]
    assert serving["spec"]["ingress"][0]["from"]  # production: only the ingress controller's namespace


def _pod_labels(manifest: dict, where: str) -> dict:
    spec = manifest["spec"]
    if manifest["kind"] == "CronJob":
        return spec["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    if manifest["kind"] in {"Deployment", "Job"}:
        return spec["template"]["metadata"]["labels"]
    cluster = spec.get("rayClusterSpec", spec)
    if where.endswith("head"):
        return cluster["headGroupSpec"]["template"]["metadata"]["labels"]
    if where.endswith("submitter"):
        return spec["submitterPodTemplate"]["metadata"]["labels"]
    return cluster["workerGroupSpecs"][0]["template"]["metadata"]["labels"]


def test_the_pipelines_rayjob_pods_talk_among_themselves(rendered: dict, tmp_path: Path) -> None:
    """Besides the KubeRay operator's polls (test_chart_network.py has who else may reach them)."""
    policy = find(rendered["default"], "NetworkPolicy", "-pipeline-rayjobs")[0]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert policy["spec"]["ingress"][0] == {"from": [{"podSelector": {"matchLabels": selector}}]}
    configmap = find(rendered["default"], "ConfigMap", "-config")[0]
    (tmp_path / "config.yaml").write_text(configmap["data"]["config.yaml"])
    pods = [m for m in _rayjob_pod_templates(code_rayjob(load_config(tmp_path / "config.yaml"), tmp_path))]
    assert pods
    for pod in pods:
        assert "labels" in pod.get("metadata", {}), "apparel.kuberay leaves a RayJob pod unlabelled"
        assert _selects(policy, pod["metadata"]["labels"])


def _rayjob_pod_templates(rayjob: dict) -> list[dict]:
    cluster = rayjob["spec"]["rayClusterSpec"]
    templates = [cluster["headGroupSpec"]["template"], *(g["template"] for g in cluster["workerGroupSpecs"])]
    return templates + ([rayjob["spec"]["submitterPodTemplate"]] if "submitterPodTemplate" in rayjob["spec"] else [])
