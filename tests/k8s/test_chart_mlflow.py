"""The MLflow server as the chart starts it (command, arguments, environment; only the address, port, worker
count and dev-default paths changed for a test machine): it accepts clients that reach it by its Service name,
refuses other Host headers, and stores what clients log through it (--serve-artifacts) in its destination."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from chartlib import NAMESPACE, find

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]  # ~30 s CPU (MLflow creates its sqlite schema)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_command(container: dict, port: int) -> list[str]:
    """One worker: on shared CI cores uvicorn's supervisor kills slow-starting workers (seen here at load 20)."""
    args = [a for a in container["args"] if not a.startswith(("--host=", "--port=", "--workers="))]
    assert container["command"][:2] == ["python", "-m"]
    return [sys.executable, *container["command"][1:], *args, "--host=127.0.0.1", f"--port={port}", "--workers=1"]


def server_env(container: dict, tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "HOME": str(tmp_path)}
    for variable in container["env"]:
        env[variable["name"]] = variable.get("value", "")
    # the dev defaults live on the shared volume at /data; here under tmp_path
    env["MLFLOW_BACKEND_STORE_URI"] = env["MLFLOW_BACKEND_STORE_URI"].replace("/data/", f"{tmp_path}/")
    env["MLFLOW_ARTIFACTS_DESTINATION"] = env["MLFLOW_ARTIFACTS_DESTINATION"].replace("/data/", f"{tmp_path}/")
    return env


@pytest.fixture
def mlflow_server(rendered: dict, tmp_path: Path):
    deployment = find(rendered["default"], "Deployment", "-mlflow")[0]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    (tmp_path / "mlflow" / "artifacts").mkdir(parents=True)  # the init container's job
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(server_command(container, port), env=server_env(container, tmp_path), stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        else:
            pytest.fail("MLflow server did not answer /health")
        yield url, deployment, tmp_path
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)
        log.close()


def test_mlflow_as_the_chart_runs_it(mlflow_server) -> None:
    url, deployment, tmp_path = mlflow_server
    service = f"{deployment['metadata']['name']}.{NAMESPACE}.svc:5000"  # the config's tracking_uri host
    search = "/api/2.0/mlflow/experiments/search?max_results=5"
    assert httpx.get(url + search, headers={"Host": service}, timeout=10).status_code == 200
    assert httpx.get(url + search, headers={"Host": "attacker.example:5000"}, timeout=10).status_code in {400, 403}

    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=url)
    experiment = client.create_experiment("chart-check")
    run = client.create_run(experiment)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(url)  # mlflow-artifacts:/ URIs resolve against the global tracking URI
    try:
        client.log_text(run.info.run_id, "stored by the server", "note.txt")
    finally:
        mlflow.set_tracking_uri(previous)
    stored = list((tmp_path / "mlflow" / "artifacts").rglob("note.txt"))
    assert [p.read_text() for p in stored] == ["stored by the server"]
    assert (tmp_path / "mlflow" / "mlflow.db").is_file()
