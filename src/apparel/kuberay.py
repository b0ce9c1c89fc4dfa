"""Cluster mode of the training step: a KubeRay ``RayJob`` that runs the same Ray Train job on GPU
workers, submitted through the Kubernetes API and waited on. Storage is a volume every pod mounts,
so checkpoints (and so resumption) survive a retried step."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import asdict
from pathlib import Path

from apparel.config import Config
from apparel.train.embedding_job import EmbeddingJob

GROUP, VERSION, PLURAL = "ray.io", "v1", "rayjobs"
FINISHED = {"SUCCEEDED", "FAILED", "STOPPED"}


def _container(config: Config, name: str, gpus: int) -> dict:
    limits = {"cpu": config.pipeline.specialist_cpu, "memory": config.pipeline.specialist_memory}
    if gpus:
        limits["nvidia.com/gpu"] = str(gpus)
    return {"name": name, "image": config.pipeline.base_image, "resources": {"limits": limits, "requests": limits},
            "volumeMounts": [{"name": "data", "mountPath": str(config.data.root)}]}


def _pod(config: Config, name: str, gpus: int) -> dict:
    return {"spec": {"containers": [_container(config, name, gpus)],
                     "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "apparel-data"}}]}}


def rayjob_name(job: EmbeddingJob) -> str:
    """Kubernetes names: lowercase, digits and '-', at most 63 characters."""
    cleaned = "".join(c if c.isalnum() else "-" for c in job.name.lower()).strip("-")
    return cleaned[:63].rstrip("-")


def rayjob_manifest(config: Config, job: EmbeddingJob, storage: Path) -> dict:
    workers = config.pipeline.ray_gpu_workers
    payload = base64.b64encode(json.dumps({"job": asdict(job), "config": config.model_dump(mode="json"),
                                           "storage": str(storage)}).encode()).decode()
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "RayJob",
        "metadata": {"name": rayjob_name(job), "namespace": config.pipeline.namespace,
                     "labels": {"app.kubernetes.io/part-of": "apparel", "apparel/job": rayjob_name(job)}},
        "spec": {
            "entrypoint": f"python -m apparel.train.rayjob_entry {payload}",
            "shutdownAfterJobFinishes": True,
            "ttlSecondsAfterFinished": 3600,
            "backoffLimit": config.pipeline.retries,
            "submissionMode": "K8sJobMode",
            "rayClusterSpec": {
                "rayVersion": config.pipeline.ray_image.split(":")[-1].split("-")[0],
                "headGroupSpec": {"rayStartParams": {"dashboard-host": "0.0.0.0", "num-cpus": "0"},
                                  "template": _pod(config, "ray-head", 0)},
                "workerGroupSpecs": [{"groupName": "gpu-workers", "replicas": workers, "minReplicas": workers,
                                      "maxReplicas": workers, "rayStartParams": {},
                                      "template": _pod(config, "ray-worker", 1)}],
            },
        },
    }


def run_rayjob(config: Config, job: EmbeddingJob, storage: Path, timeout_s: float = 24 * 3600,
               poll_s: float = 15.0) -> Path:
    """Submits the RayJob, waits for it to finish, returns the model folder it left in storage."""
    from kubernetes import client
    from kubernetes import config as kube_config

    kube_config.load_incluster_config()
    api = client.CustomObjectsApi()
    manifest = rayjob_manifest(config, job, storage)
    namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, manifest)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name).get("status", {})
        state = status.get("jobStatus", "PENDING")
        print(f"[rayjob {name}] {state} {status.get('message', '')}", flush=True)
        if state in FINISHED:
            if state != "SUCCEEDED":
                raise RuntimeError(f"RayJob {name} ended {state}: {status.get('message', '')}")
            return storage / "models" / job.name
        time.sleep(poll_s)
    raise TimeoutError(f"RayJob {name} did not finish in {timeout_s:.0f}s")
