"""The RayJob a cluster-mode training step submits: valid for the KubeRay CRD, sized from Ray Train's own
ScalingConfig, on the shared PVC, unique per attempt, resumable, and waited on without duplicates."""

import re
import tomllib
from pathlib import Path

import pytest
from kuberay_fakes import ROOT, FakeRayOperator, payload_of, validate

from apparel.config import Config, load_config
from apparel.data.manifest import Dataset
from apparel.kuberay import (
    MAX_NAME,
    rayjob_manifest,
    rayjob_name,
    run_rayjob,
    run_training,
    shared_dataset,
)
from apparel.train.embedding_job import ensure_ray, make_job, scaling_config

DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def specialist_job(config: Config, dataset: Path):
    return make_job(config, "specialist-tops-0123456789abcdef", dataset, ["tops"], "triplet")


def test_two_gpu_workers_in_config_give_a_rayjob_with_exactly_what_ray_train_uses(cluster_config: Config,
                                                                                  tmp_path: Path) -> None:
    assert (cluster_config.train.num_workers, cluster_config.train.use_gpu) == (2, True)
    manifest = rayjob_manifest(cluster_config, specialist_job(cluster_config, tmp_path), tmp_path / "pvc" / "ray", "a")
    validate(manifest)
    cluster = manifest["spec"]["rayClusterSpec"]
    (group,) = cluster["workerGroupSpecs"]
    assert group["replicas"] == group["minReplicas"] == group["maxReplicas"] == 2
    limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
    offered = {"CPU": group["replicas"] * int(limits["cpu"]), "GPU": group["replicas"] * int(limits["nvidia.com/gpu"])}
    assert offered == scaling_config(cluster_config.train, True).total_resources == {"CPU": 8, "GPU": 2}
    assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"  # no training worker lands on the head
    assert payload_of(manifest)["config"]["train"]["use_gpu"] is True  # the run uses the GPUs its pods were given


def test_cpu_only_config_asks_for_no_gpu_and_auto_means_none_on_a_cluster(tmp_path: Path) -> None:
    config = load_config(environ={"APPAREL__MODE": "cluster", "APPAREL__DATA__ROOT": "/data",
                                  "APPAREL__TRAIN__NUM_WORKERS": "3"})
    assert config.train.use_gpu == "auto"
    manifest = rayjob_manifest(config, specialist_job(config, tmp_path), Path("/data/ray"), "a")
    validate(manifest)
    (group,) = manifest["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    assert group["replicas"] == 3 and "nvidia.com/gpu" not in group["template"]["spec"]["containers"][0]["resources"][
        "limits"]
    assert payload_of(manifest)["config"]["train"]["use_gpu"] is False


def test_every_ray_pod_mounts_the_configured_pvc_at_the_data_root_on_the_project_image(cluster_config: Config,
                                                                                      tmp_path: Path) -> None:
    config = cluster_config.model_copy(update={"pipeline": cluster_config.pipeline.model_copy(
        update={"pvc_name": "catalog-volume"})})
    manifest = rayjob_manifest(config, specialist_job(config, tmp_path), tmp_path / "pvc" / "ray", "a")
    cluster = manifest["spec"]["rayClusterSpec"]
    pods = [cluster["headGroupSpec"]["template"]] + [g["template"] for g in cluster["workerGroupSpecs"]]
    for pod in [*pods, manifest["spec"]["submitterPodTemplate"]]:
        (container,) = pod["spec"]["containers"]
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        assert pod["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["resources"]["limits"] and container["image"] == config.pipeline.base_image
        assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "rayjob"  # what NetworkPolicies select
    for pod in pods:
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        (container,) = pod["spec"]["containers"]
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert volumes["data"]["persistentVolumeClaim"]["claimName"] == "catalog-volume"
        assert mounts["data"] == str(config.data.root)
        assert container["image"] == config.pipeline.base_image == "ghcr.io/apparel-mlops/apparel:0.1.0-gpu"
        assert container["securityContext"]["readOnlyRootFilesystem"] is True and mounts["tmp"] == "/tmp"


def test_ray_version_is_the_installed_ray_which_pyproject_pins(cluster_config: Config, tmp_path: Path) -> None:
    import ray

    manifest = rayjob_manifest(cluster_config, specialist_job(cluster_config, tmp_path), tmp_path / "pvc", "a")
    assert manifest["spec"]["rayClusterSpec"]["rayVersion"] == ray.__version__
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (pin,) = [d for d in dependencies if d.startswith("ray[")]
    assert pin.split("#")[0].strip().endswith(f"=={ray.__version__}")
    major, minor = (int(part) for part in ray.__version__.split(".")[:2])
    assert (major, minor) >= (2, 50)  # Ray Train V2 is the default: a run restores its checkpoints by name


def test_names_are_unique_per_attempt_while_the_run_and_its_storage_stay(cluster_config: Config,
                                                                         tmp_path: Path) -> None:
    long = make_job(cluster_config, "specialist-" + "very-long-vertical-name-" * 4 + "0123456789abcdef", tmp_path,
                    ["tops"], "triplet")
    first, retry = (rayjob_manifest(cluster_config, long, tmp_path / "pvc" / "ray", pod) for pod in ("uid-1", "uid-2"))
    names = {first["metadata"]["name"], retry["metadata"]["name"]}
    assert len(names) == 2 and all(DNS_1123.match(n) and len(n) <= MAX_NAME for n in names)
    assert payload_of(first)["job"]["name"] == payload_of(retry)["job"]["name"] == long.name  # Ray Train run name
    assert payload_of(first)["storage"] == payload_of(retry)["storage"]
    assert first["metadata"]["labels"] == retry["metadata"]["labels"]
    assert rayjob_name(long, "uid-1") == first["metadata"]["name"]  # stable for one attempt


def test_a_retried_step_submits_a_new_rayjob_without_409(cluster_config: Config, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    api = FakeRayOperator(run=lambda manifest: None)
    job = specialist_job(cluster_config, tmp_path)
    storage = tmp_path / "pvc" / "ray"
    for attempt in ("pod-uid-1", "pod-uid-2"):
        monkeypatch.setenv("KFP_POD_UID", attempt)
        assert run_rayjob(cluster_config, job, storage, api, poll_s=0, log=lambda line: None) == (
            storage / "models" / job.name)
    assert len(api.created) == 2 and len({m["metadata"]["name"] for m in api.created}) == 2


def test_a_retry_waits_on_the_earlier_attempts_rayjob_still_running(cluster_config: Config, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    api = FakeRayOperator()
    job = specialist_job(cluster_config, tmp_path)
    running = rayjob_manifest(cluster_config, job, tmp_path / "pvc" / "ray", "pod-uid-1")
    api.objects[running["metadata"]["name"]] = {**running, "status": {"jobStatus": "RUNNING"}}
    states = iter(["RUNNING", "SUCCEEDED"])

    def get(*args):
        return {**running, "status": {"jobStatus": next(states)}}

    monkeypatch.setattr(api, "get_namespaced_custom_object", get)
    monkeypatch.setenv("KFP_POD_UID", "pod-uid-2")
    lines: list[str] = []
    run_rayjob(cluster_config, job, tmp_path / "pvc" / "ray", api, poll_s=0, log=lines.append)
    assert api.created == []  # no second run writing the same checkpoints
    assert lines == [f"[rayjob {running['metadata']['name']}] RUNNING", f"[rayjob {running['metadata']['name']}] "
                     "SUCCEEDED"]


def test_a_failed_rayjob_fails_the_step_with_its_message(cluster_config: Config, tmp_path: Path) -> None:
    def crash(manifest: dict) -> None:
        raise RuntimeError("worker OOMKilled")

    with pytest.raises(RuntimeError, match="ended FAILED: worker OOMKilled"):
        run_rayjob(cluster_config, specialist_job(cluster_config, tmp_path), tmp_path / "pvc" / "ray",
                   FakeRayOperator(crash), poll_s=0, log=lambda line: None)


def test_a_kfp_pod_in_cluster_mode_never_joins_a_ray_cluster_of_its_own(cluster_config: Config,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert not ray.is_initialized()
    with pytest.raises(RuntimeError, match="RayJobs"):
        ensure_ray(cluster_config)


def test_the_dataset_is_staged_on_the_pvc_with_its_images(cluster_config: Config, tiny_catalog: Path) -> None:
    staged = shared_dataset(cluster_config, tiny_catalog)
    assert staged.is_relative_to(Path(cluster_config.data.root)) and staged.name == Dataset.load(
        tiny_catalog).info.version
    images = Dataset.load(staged).manifest["image"]
    assert all(Path(i).is_relative_to(staged) and Path(i).is_file() for i in images)
    assert shared_dataset(cluster_config, tiny_catalog) == staged  # once per version
    assert shared_dataset(cluster_config, staged) == staged  # already on the PVC: used in place


def test_images_no_ray_pod_can_read_are_a_clear_error(cluster_config: Config, tiny_catalog: Path,
                                                      tmp_path: Path) -> None:
    import shutil

    moved = tmp_path / "elsewhere" / "dataset"
    shutil.copytree(tiny_catalog, moved)
    (moved / "catalog").rename(moved.parent / "catalog")  # the manifest still names images in the old place
    with pytest.raises(ValueError, match="RayJob pods cannot read them"):
        shared_dataset(cluster_config, moved)
    assert not list((Path(cluster_config.data.root) / "datasets").glob("*"))


def test_storage_off_the_pvc_is_refused(cluster_config: Config, tiny_catalog: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not under data.root"):
        run_training(specialist_job(cluster_config, tiny_catalog), cluster_config, tmp_path / "pod-local" / "ray")


def test_a_rayjob_goes_to_the_steps_own_namespace_where_the_pvc_is(cluster_config: Config, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KFP_NAMESPACE", "team-a")
    api = FakeRayOperator()
    with pytest.raises(ValueError, match="runs in 'team-a'"):
        run_rayjob(cluster_config, specialist_job(cluster_config, tmp_path), tmp_path / "pvc" / "ray", api, poll_s=0)
    assert api.created == []


def test_a_starting_model_goes_to_the_pvc_before_a_rayjob_reads_it(cluster_config: Config, tiny_catalog: Path,
                                                                    tmp_path: Path) -> None:
    """The generalist is a KFP artefact in the step's own pod: RayJob pods could not read it there."""
    from apparel.models.embedding import EmbeddingNet, EmbeddingSpec
    from apparel.stages.specialists import on_shared_volume

    EmbeddingNet(EmbeddingSpec(embedding_dim=8, image_size=32)).save(tmp_path / "pod-local" / "generalist")
    storage = Path(cluster_config.data.root) / "ray"
    local = make_job(cluster_config, "specialist-tops-1", tiny_catalog, ["tops"], "triplet",
                     init_path=tmp_path / "pod-local" / "generalist")
    with pytest.raises(ValueError, match="generalist is not under data.root"):
        run_training(local, cluster_config, storage)
    shared = on_shared_volume(cluster_config, tmp_path / "pod-local" / "generalist")
    assert shared.is_relative_to(Path(cluster_config.data.root).resolve())
    assert (shared / "weights.pt").read_bytes() == (tmp_path / "pod-local" / "generalist" / "weights.pt").read_bytes()
    assert on_shared_volume(cluster_config, tmp_path / "pod-local" / "generalist") == shared  # copied once
