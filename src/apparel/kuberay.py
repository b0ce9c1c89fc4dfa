"""Cluster mode of every Ray Train job (specialists, the unified student): a KubeRay ``RayJob`` per run.

The step that needs the model (a KFP pod, where no Ray runs) submits the RayJob through the Kubernetes
API and waits on it. Every pod mounts the shared PVC at ``data.root``, so the dataset, the teacher
cache, Ray Train's checkpoints and the finished model are where both sides see them. The RayJob's
name is unique per pod (a KFP retry never meets 409 AlreadyExists) while the Ray Train run keeps the
job's name and storage, so a retried step resumes from the last checkpoint on the PVC.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

from apparel.config import Config
from apparel.data.manifest import Dataset
from apparel.train.embedding_job import EmbeddingJob, run_embedding_job, scaling_config

GROUP, VERSION, PLURAL = "ray.io", "v1", "rayjobs"
FINISHED = {"SUCCEEDED", "FAILED", "STOPPED"}
RUN_KEY = "apparel.io/run-key"  # label shared by every attempt of one Ray Train run
MAX_NAME = 47  # KubeRay derives RayCluster and Service names from the RayJob's; it rejects longer ones
UID = 10001  # the image's non-root user (Dockerfile)
POD_LABELS = {"app.kubernetes.io/part-of": "apparel", "app.kubernetes.io/component": "rayjob"}  # NetworkPolicies


def cluster_use_gpu(config: Config) -> bool:
    """On a cluster GPUs are requested, not detected: only ``use_gpu: true`` asks for them (as the pipeline does)."""
    return config.train.use_gpu is True


def run_key(job: EmbeddingJob) -> str:
    return hashlib.sha256(job.name.encode()).hexdigest()[:16]


def attempt_id() -> str:
    """This pod's identity: KFP's launcher exports the pod UID (new on every retry); else the pod name."""
    return os.environ.get("KFP_POD_UID") or os.environ.get("HOSTNAME") or uuid.uuid4().hex


def rayjob_name(job: EmbeddingJob, attempt: str) -> str:
    """A DNS-1123 name, unique per run and attempt: the job's name cut to fit, and a hash of both."""
    suffix = hashlib.sha256(f"{job.name}/{attempt}".encode()).hexdigest()[:8]
    cleaned = "".join(c if c.isalnum() else "-" for c in job.name.lower()).strip("-")
    return f"{cleaned[: MAX_NAME - len(suffix) - 1].rstrip('-')}-{suffix}"


def _security() -> tuple[dict, dict]:
    pod = {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID, "fsGroup": UID,
           "seccompProfile": {"type": "RuntimeDefault"}}
    container = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                 "capabilities": {"drop": ["ALL"]}}
    return pod, container


def _pod(config: Config, role: str, resources: dict[str, str], gpu: bool) -> dict:
    """A Ray pod on the project's image: the shared PVC at the data root, scratch and shared memory in emptyDirs."""
    pod_security, container_security = _security()
    container = {
        "name": role, "image": config.pipeline.base_image, "imagePullPolicy": "IfNotPresent",
        "resources": {"requests": resources, "limits": resources}, "securityContext": container_security,
        "env": [{"name": "HOME", "value": "/tmp"}, {"name": "RAY_USAGE_STATS_ENABLED", "value": "0"}],
        "volumeMounts": [{"name": "data", "mountPath": str(config.data.root)},
                         {"name": "tmp", "mountPath": "/tmp"}, {"name": "shm", "mountPath": "/dev/shm"}],
    }
    spec = {
        "automountServiceAccountToken": False, "securityContext": pod_security, "containers": [container],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": config.pipeline.pvc_name}},
                    {"name": "tmp", "emptyDir": {}}, {"name": "shm", "emptyDir": {"medium": "Memory"}}],
    }
    if gpu:
        spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    return {"metadata": {"labels": POD_LABELS}, "spec": spec}


def submitter(config: Config) -> dict:
    """The pod that runs `ray job submit` against the head (KubeRay sets its command), as hardened as the rest."""
    pod_security, container_security = _security()
    resources = {"cpu": "200m", "memory": "512Mi"}
    container = {"name": "ray-job-submitter", "image": config.pipeline.base_image,
                 "resources": {"requests": resources, "limits": resources}, "securityContext": container_security,
                 "env": [{"name": "HOME", "value": "/tmp"}], "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]}
    return {"metadata": {"labels": POD_LABELS},
            "spec": {"restartPolicy": "Never", "automountServiceAccountToken": False, "securityContext": pod_security,
                     "containers": [container], "volumes": [{"name": "tmp", "emptyDir": {}}]}}


def worker_group(config: Config) -> dict:
    """One worker pod per Ray Train worker, sized from the very ScalingConfig the run will use."""
    scaling = scaling_config(config.train, cluster_use_gpu(config))
    per_worker = scaling.resources_per_worker
    cpus, gpus = int(per_worker["CPU"]), int(per_worker.get("GPU", 0))
    resources = {"cpu": str(cpus), "memory": config.pipeline.ray_worker_memory}
    if gpus:
        resources["nvidia.com/gpu"] = str(gpus)
    return {"groupName": "gpu-workers" if gpus else "cpu-workers", "replicas": scaling.num_workers,
            "minReplicas": scaling.num_workers, "maxReplicas": scaling.num_workers,
            "rayStartParams": {"num-cpus": str(cpus), "num-gpus": str(gpus)},
            "template": _pod(config, "ray-worker", resources, bool(gpus))}


def rayjob_manifest(config: Config, job: EmbeddingJob, storage: Path, attempt: str) -> dict:
    """The RayJob that runs ``job`` (paths already on the shared PVC) and leaves its model in ``storage``."""
    import ray

    # The run inside the RayJob uses exactly the GPU setting its pods were given.
    train = config.train.model_copy(update={"use_gpu": cluster_use_gpu(config)})
    payload = base64.b64encode(json.dumps({"job": asdict(job), "storage": str(storage),
                                           "config": config.model_copy(update={"train": train})
                                           .model_dump(mode="json")}).encode()).decode()
    name = rayjob_name(job, attempt)
    head = {"cpu": config.pipeline.ray_head_cpu, "memory": config.pipeline.ray_head_memory}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "RayJob",
        "metadata": {"name": name, "namespace": config.pipeline.namespace,
                     "labels": {"app.kubernetes.io/part-of": "apparel", "app.kubernetes.io/component": "training",
                                RUN_KEY: run_key(job)},
                     "annotations": {"apparel.io/run-name": job.name, "apparel.io/attempt": attempt}},
        "spec": {
            "entrypoint": f"python -m apparel.train.rayjob_entry {payload}",
            "shutdownAfterJobFinishes": True,
            "ttlSecondsAfterFinished": 3600,
            "backoffLimit": 0,  # the KFP step retries; its next attempt resumes the checkpoints
            "submissionMode": "K8sJobMode",
            "submitterPodTemplate": submitter(config),
            "rayClusterSpec": {
                "rayVersion": ray.__version__,  # the image installs the project, so this very Ray
                # The head runs the driver and Ray Train's controller (num_cpus=0), no training worker.
                "headGroupSpec": {"rayStartParams": {"dashboard-host": "0.0.0.0", "num-cpus": "0"},
                                  "template": _pod(config, "ray-head", head, False)},
                "workerGroupSpecs": [worker_group(config)],
            },
        },
    }


def shared_path(config: Config, path: Path) -> bool:
    return Path(path).resolve().is_relative_to(Path(config.data.root).resolve())


def shared_dataset(config: Config, dataset_root: Path) -> Path:
    """The dataset where RayJob pods see it: itself when on the PVC, else a copy under
    ``data.root/datasets/<version>`` whose manifest points at the copied images."""
    dataset_root = Path(dataset_root).resolve()
    if shared_path(config, dataset_root):
        return dataset_root
    dataset = Dataset.load(dataset_root)
    target = Path(config.data.root).resolve() / "datasets" / dataset.info.version
    if (target / "manifest.csv").is_file():
        return target
    staging = target.with_name(f".{target.name}-{uuid.uuid4().hex[:8]}")
    shutil.copytree(dataset_root, staging)
    manifest = dataset.manifest.copy()
    inside = manifest["image"].str.startswith(f"{dataset_root}/")
    manifest.loc[inside, "image"] = manifest.loc[inside, "image"].str.replace(str(dataset_root), str(target), n=1,
                                                                              regex=False)
    outside = manifest.loc[~manifest["image"].map(lambda image: shared_path(config, Path(image))), "image"]
    if len(outside):
        shutil.rmtree(staging)
        raise ValueError(f"{len(outside)} image(s) of dataset {dataset.info.version} are neither in it nor under "
                         f"data.root ({config.data.root}), so RayJob pods cannot read them, e.g. {outside.iloc[0]}")
    manifest.to_csv(staging / "manifest.csv", index=False)
    staging.rename(target)  # atomic: a concurrent step sees a whole dataset or none
    return target


def _in_flight(api, namespace: str, job: EmbeddingJob) -> str | None:
    """A RayJob of an earlier attempt of the same run that is still running: waited on, not duplicated."""
    listed = api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL,
                                               label_selector=f"{RUN_KEY}={run_key(job)}")
    running = [item["metadata"]["name"] for item in listed.get("items", [])
               if item.get("status", {}).get("jobStatus") not in FINISHED
               and item.get("status", {}).get("jobDeploymentStatus") not in {"Failed", "ValidationFailed"}]
    return running[0] if running else None


def _wait(api, namespace: str, name: str, timeout_s: float, poll_s: float, log: Callable[[str], None]) -> None:
    deadline, last = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        status = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name).get("status", {})
        state = status.get("jobStatus") or "PENDING"
        if status.get("jobDeploymentStatus") in {"Failed", "ValidationFailed"}:
            state = "FAILED"
        if state != last:
            log(f"[rayjob {name}] {state} {status.get('message', '')}".rstrip())
            last = state
        if state in FINISHED:
            if state != "SUCCEEDED":
                raise RuntimeError(f"RayJob {name} ended {state}: {status.get('message', '')}")
            return
        time.sleep(poll_s)
    raise TimeoutError(f"RayJob {name} did not finish in {timeout_s:.0f}s")


def kubernetes_api():
    """The custom-objects API with the pod's ServiceAccount (which may create and watch rayjobs.ray.io)."""
    from kubernetes import client
    from kubernetes import config as kube_config

    kube_config.load_incluster_config()
    return client.CustomObjectsApi()


def run_rayjob(config: Config, job: EmbeddingJob, storage: Path, api=None, timeout_s: float = 24 * 3600,
               poll_s: float = 15.0, log: Callable[[str], None] = print) -> Path:
    """Submits the RayJob (or waits on an earlier attempt's, still running), returns the model folder it left."""
    step_namespace = os.environ.get("KFP_NAMESPACE")  # KFP's launcher exports the step pod's namespace
    if step_namespace and step_namespace != config.pipeline.namespace:
        raise ValueError(f"pipeline.namespace is '{config.pipeline.namespace}' but this step runs in "
                         f"'{step_namespace}': the RayJob must run beside the PVC and the ServiceAccount")
    api = api or kubernetes_api()
    manifest = rayjob_manifest(config, job, storage, attempt_id())
    namespace = manifest["metadata"]["namespace"]
    name = _in_flight(api, namespace, job)
    if name is None:
        name = manifest["metadata"]["name"]
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, manifest)
    _wait(api, namespace, name, timeout_s, poll_s, log)
    return storage / "models" / job.name


def run_training(job: EmbeddingJob, config: Config, storage: Path) -> Path:
    """One Ray Train run: on local Ray, or in cluster mode as a RayJob on the shared PVC. Returns its model folder."""
    if config.mode != "cluster":
        return run_embedding_job(job, config, storage)
    outside = [str(p) for p in (storage, job.teacher_path, job.init_path) if p and not shared_path(config, Path(p))]
    if outside:
        raise ValueError(f"{', '.join(outside)} is not under data.root ({config.data.root}), the shared PVC "
                         "RayJob pods mount")
    job = replace(job, dataset_root=str(shared_dataset(config, Path(job.dataset_root))))
    return run_rayjob(config, job, Path(storage).resolve())
