"""Multi-user Kubeflow Pipelines (what values-production.yaml targets) admits only callers with a ServiceAccount
token for its audience: the pods that call the KFP API get one, projected where apparel.kfp_client reads it."""

from __future__ import annotations

from pathlib import Path

from chartlib import find, pod_specs, rendered_config

from apparel.kfp_client import KFP_TOKEN_PATH

KFP_CALLERS = {("Job", "apparel-schedule"), ("CronJob", "apparel-drift")}  # pipeline submit, drift trigger


def _token_paths(spec: dict) -> list[str]:
    """Where the pod's containers find a projected token for KFP's audience."""
    volumes = {v["name"]: source["serviceAccountToken"] for v in spec["volumes"]
               for source in v.get("projected", {}).get("sources", []) if "serviceAccountToken" in source}
    return [f"{mount['mountPath']}/{volumes[mount['name']]['path']}" for container in spec["containers"]
            for mount in container["volumeMounts"] if mount["name"] in volumes
            and volumes[mount["name"]]["audience"] == "pipelines.kubeflow.org"]


def test_production_mounts_the_kfp_token_in_the_pods_that_call_kfp(rendered: dict, tmp_path: Path) -> None:
    manifests = rendered["production"]
    assert rendered_config(manifests, tmp_path).pipeline.kfp_auth == "serviceaccount-token"
    pods = {(m["kind"], m["metadata"]["name"]): spec for m in manifests for _, spec in pod_specs(m)}
    assert KFP_CALLERS <= set(pods)
    for key, spec in pods.items():
        assert _token_paths(spec) == ([str(KFP_TOKEN_PATH)] if key in KFP_CALLERS else []), key


def test_the_default_sends_no_token(rendered: dict, tmp_path: Path) -> None:
    manifests = rendered["default"]
    assert rendered_config(manifests, tmp_path).pipeline.kfp_auth == "none"
    assert find(manifests, "Job", "-schedule") and find(manifests, "CronJob", "-drift")
    assert not [m["metadata"]["name"] for m in manifests for _, spec in pod_specs(m) if _token_paths(spec)]
