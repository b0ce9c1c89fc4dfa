"""Helpers of the cluster-path tests: the KubeRay CRD schema, RayJob payloads, and the Kubernetes API of a
cluster running the KubeRay operator, in memory (no cluster runs on these machines)."""

import base64
import functools
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT.parent / "shared" / "schemas" / "kuberay"
CLUSTER_YAML = ROOT / "configs" / "cluster.yaml"


def validate(manifest: dict, kind_file: str = "ray.io_rayjobs.yaml") -> None:
    """As the API server would (the CRD's structural schema), minus the costly check of the schema itself."""
    import jsonschema

    jsonschema.Draft7Validator(crd_schema(kind_file)).validate(manifest)


@functools.cache
def crd_schema(kind_file: str) -> dict:
    if not (SCHEMAS / kind_file).is_file():
        pytest.skip("../shared/schemas/kuberay is absent")
    crd = yaml.load((SCHEMAS / kind_file).read_text(), Loader=yaml.CSafeLoader)  # 3 MB: the C loader
    return next(v for v in crd["spec"]["versions"] if v["name"] == "v1")["schema"]["openAPIV3Schema"]


def payload_of(manifest: dict) -> dict:
    """The job, config and storage the RayJob's entrypoint receives."""
    return json.loads(base64.b64decode(manifest["spec"]["entrypoint"].split()[-1]))


class FakeRayOperator:
    """CustomObjectsApi of a cluster with KubeRay: RayJobs are kept as created (a second create of a name
    is 409, as on a real API server); ``run(manifest)`` plays the job and its outcome becomes the status."""

    def __init__(self, run: Callable[[dict], None] | None = None) -> None:
        self.objects: dict[str, dict] = {}
        self.created: list[dict] = []
        self.run = run

    def create_namespaced_custom_object(self, group, version, namespace, plural, body):
        from kubernetes.client import ApiException

        assert (group, version, plural) == ("ray.io", "v1", "rayjobs")
        name = body["metadata"]["name"]
        if name in self.objects:
            raise ApiException(status=409, reason="AlreadyExists")
        self.created.append(body)
        status = {"jobStatus": "SUCCEEDED", "jobDeploymentStatus": "Complete"}
        try:
            if self.run:
                self.run(body)
        except Exception as error:  # the job failed inside the cluster
            status = {"jobStatus": "FAILED", "jobDeploymentStatus": "Failed", "message": str(error)}
        self.objects[name] = {**body, "status": status}
        return body

    def get_namespaced_custom_object(self, group, version, namespace, plural, name):
        return self.objects[name]

    def list_namespaced_custom_object(self, group, version, namespace, plural, label_selector=""):
        key, value = label_selector.split("=")
        return {"items": [o for o in self.objects.values() if o["metadata"]["labels"].get(key) == value]}
