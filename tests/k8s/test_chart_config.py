"""One configuration: the chart renders the project's config file, every pod reads it, and what the chart
templates (commands, ports, volume, Ray workers) agrees with that config and with the CLI."""

from __future__ import annotations

import importlib.metadata
import json
import shutil
from pathlib import Path

import pytest
import typer
import yaml
from chartlib import CHART, NAMESPACE, SCENARIOS, find, pod_specs, rendered_config, run_helm

from apparel.cli import app
from apparel.config import Config

CONFIG_PATH = "/etc/apparel/config.yaml"
PREFIX = ["apparel", "--config", CONFIG_PATH]


def apparel_containers(manifests: list[dict]) -> list[tuple[str, dict]]:
    return [(f"{m['kind']}/{m['metadata']['name']}", c) for m in manifests for _, spec in pod_specs(m)
            for c in spec["containers"] if c.get("command", [None])[0] == "apparel"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_rendered_config_loads_with_the_typed_config(rendered: dict, scenario: str, tmp_path: Path) -> None:
    manifests = rendered[scenario]
    config = rendered_config(manifests, tmp_path)
    assert config.mode == "cluster"
    assert config.pipeline.namespace == NAMESPACE  # RBAC is granted in the release namespace only
    assert str(config.data.root) == "/data"
    serving_image = find(manifests, "Deployment", "-serving")[0]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert config.pipeline.base_image == serving_image  # pipeline steps and RayJobs run the image the chart runs
    mlflow = find(manifests, "Service", "-mlflow")
    if mlflow:
        service = mlflow[0]
        port = service["spec"]["ports"][0]["port"]
        assert config.registry.tracking_uri == f"http://{service['metadata']['name']}.{NAMESPACE}.svc:{port}"
    else:
        assert config.registry.tracking_uri.startswith("http")


def test_values_config_overrides_reach_the_rendered_file(rendered: dict, tmp_path: Path) -> None:
    config = rendered_config(rendered["production"], tmp_path)
    production = yaml.safe_load((Path(__file__).resolve().parents[2] / "charts/apparel/values-production.yaml")
                                .read_text())["config"]
    assert config.train.num_workers == production["train"]["num_workers"]
    assert config.registry.review_mode is True and config.data.adapter == "fashion-products"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_apparel_container_reads_the_mounted_config(rendered: dict, scenario: str) -> None:
    manifests = rendered[scenario]
    containers = apparel_containers(manifests)
    assert containers
    for where, container in containers:
        assert container["command"] == PREFIX, where
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert mounts["config"] == str(Path(CONFIG_PATH).parent), where


EXPECTED_COMMANDS = {
    "Deployment/apparel-serving": ["serve", "--host", "0.0.0.0"],
    "CronJob/apparel-drift": ["monitor", "run"],
    "Deployment/apparel-dashboard": ["monitor", "ui", "--host", "0.0.0.0"],
    "Job/apparel-schedule": ["pipeline", "submit", "--schedule"],
}


def test_commands_are_the_contract(rendered: dict) -> None:
    commands = {where: container["args"] for where, container in apparel_containers(rendered["default"])}
    assert commands == EXPECTED_COMMANDS


def _command(path: list[str]):
    """The CLI command at `path`; a missing one is a failure naming it (the chart would run a command that is not
    there)."""
    command = typer.main.get_command(app)
    for depth, name in enumerate(path):
        assert name in getattr(command, "commands", {}), f"`apparel {' '.join(path[: depth + 1])}` does not exist"
        command = command.commands[name]
    return command


@pytest.mark.parametrize("args", list(EXPECTED_COMMANDS.values()), ids=list(EXPECTED_COMMANDS))
def test_the_cli_has_the_commands_and_options_the_chart_runs(args: list[str]) -> None:
    words = [a for a in args if not a.startswith("-") and a != "0.0.0.0"]
    command = _command(words)
    options = {opt for param in command.params for opt in [*param.opts, *getattr(param, "secondary_opts", [])]}
    for flag in (a for a in args if a.startswith("--")):
        assert flag in options, f"`apparel {' '.join(words)}` has no {flag}"
    assert "--config" in {opt for p in typer.main.get_command(app).params for opt in p.opts}


def test_service_ports_follow_the_config(rendered: dict) -> None:
    defaults = Config.model_construct()  # defaults only: no environment, no config file
    http, grpc = defaults.serving.http_port, defaults.serving.grpc_port
    service = find(rendered["default"], "Service", "-serving")[0]
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {"http": http, "grpc": grpc}
    ui, metrics = defaults.monitoring.ui_port, defaults.monitoring.metrics_port
    dashboard = find(rendered["default"], "Service", "-dashboard")[0]
    assert {p["name"]: p["port"] for p in dashboard["spec"]["ports"]} == {"ui": ui, "metrics": metrics}


def test_serving_probes_livez_and_readyz_on_http(rendered: dict) -> None:
    container = find(rendered["default"], "Deployment", "-serving")[0]["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_one_shared_volume_named_as_in_the_config(rendered: dict, scenario: str, tmp_path: Path) -> None:
    manifests = rendered[scenario]
    config = rendered_config(manifests, tmp_path)
    claim = config.pipeline.pvc_name
    claims = find(manifests, "PersistentVolumeClaim")
    if claims:
        assert [c["metadata"]["name"] for c in claims] == [claim]
        assert claims[0]["spec"]["accessModes"] == ["ReadWriteMany"]
    for manifest in manifests:
        for where, spec in pod_specs(manifest):
            volumes = {v["name"]: v for v in spec.get("volumes", [])}
            if "data" in volumes:
                assert volumes["data"]["persistentVolumeClaim"]["claimName"] == claim, where
                mounts = [m for c in spec["containers"] for m in c["volumeMounts"] if m["name"] == "data"]
                assert {m["mountPath"] for m in mounts} == {"/data"}, where


def test_ray_workers_are_what_ray_train_uses(rendered: dict, tmp_path: Path) -> None:
    """`train.num_workers` GPU pods with one GPU each: the ScalingConfig's workers, no more, no fewer."""
    manifests = rendered["gpu"]
    config = rendered_config(manifests, tmp_path)
    assert config.train.num_workers == 2 and config.train.use_gpu is True
    for kind in ("RayCluster", "RayJob"):
        manifest = find(manifests, kind)[0]
        cluster = manifest["spec"]["rayClusterSpec"] if kind == "RayJob" else manifest["spec"]
        (group,) = cluster["workerGroupSpecs"]
        assert group["replicas"] == group["minReplicas"] == group["maxReplicas"] == config.train.num_workers
        limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
        assert limits["nvidia.com/gpu"] == 1
        head = cluster["headGroupSpec"]
        assert head["rayStartParams"]["num-cpus"] == "0"
        assert "nvidia.com/gpu" not in head["template"]["spec"]["containers"][0]["resources"]["limits"]
        assert cluster["rayVersion"] == importlib.metadata.version("ray")  # the ray the image installs


def test_keys_other_parts_add_are_rendered_once_the_config_has_them(helm: Path, tmp_path: Path) -> None:
    """`pipeline.pvc_name` and `serving.request_log_dir` are set by the chart as soon as the typed Config (so the
    generated schema) has them: simulated here on a copy of the chart whose schema has both."""
    chart = tmp_path / "apparel"
    shutil.copytree(CHART, chart)
    fields = json.loads((chart / "files" / "config-fields.json").read_text())
    fields["pipeline"].append("pvc_name")
    fields["serving"] = ["request_log_dir"]
    (chart / "files" / "config-fields.json").write_text(json.dumps(fields))
    schema = json.loads((chart / "values.schema.json").read_text())
    schema["$defs"]["PipelineConfig"]["properties"]["pvc_name"] = {"type": "string"}
    schema["$defs"]["ServingConfig"] = {"type": "object", "additionalProperties": False,
                                        "properties": {"request_log_dir": {"type": "string"}}}
    schema["properties"]["config"]["properties"]["serving"] = {"$ref": "#/$defs/ServingConfig"}
    (chart / "values.schema.json").write_text(json.dumps(schema))
    done = run_helm(helm, "template", "apparel", chart, "--namespace", NAMESPACE, "--set",
                    "config.pipeline.pvc_name=catalog-share")
    assert done.returncode == 0, done.stderr
    manifests = [m for m in yaml.safe_load_all(done.stdout) if m]
    config = yaml.safe_load(find(manifests, "ConfigMap", "-config")[0]["data"]["config.yaml"])
    assert config["pipeline"]["pvc_name"] == "catalog-share"
    assert config["serving"]["request_log_dir"] == "/data/requests"
    assert [c["metadata"]["name"] for c in find(manifests, "PersistentVolumeClaim")] == ["catalog-share"]
