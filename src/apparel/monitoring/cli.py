"""`apparel monitor ...`: the drift job, its events, Evidently's UI with the Prometheus gauges, and a
version's reference on demand."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Drift monitoring: score request-log windows, trigger retraining, dashboard.",
                  no_args_is_help=True)


def _config():
    from apparel.cli import config

    return config()


@app.command("run")
def run() -> None:
    """Score every new window of the request log; a debounced drift event triggers retraining once."""
    from apparel.monitoring.runner import run_monitor

    summary = run_monitor(_config())
    for line in summary.skipped:
        typer.echo(f"skipped {line}")
    typer.echo(f"scored {summary.windows} new windows, {summary.alarms} alarming, {len(summary.events)} drift events")
    for event in summary.events:
        typer.echo(f"drift event {event.key}: {event.vertical} of v{event.model_version}, {len(event.windows)} windows "
                   f"above {event.threshold:.3f} -> {_run_text(event.run)}")


def _run_text(run: dict) -> str:
    if "error" in run:
        return f"trigger failed: {run['error']}"
    detail = {k: v for k, v in run.items() if k != "kind"}
    return f"{run.get('kind', '?')} " + " ".join(f"{k}={v}" for k, v in detail.items())


@app.command("events")
def events() -> None:
    """Every drift event: when, which vertical and model version, the windows, threshold, run started."""
    from apparel.monitoring.events import EventStore

    found = EventStore(Path(_config().monitoring.folder) / "events").list()
    if not found:
        typer.echo("no drift events")
    for event in found:
        scores = ", ".join(f"{w['score']:.2f}" for w in event.windows)
        typer.echo(f"{event.declared}  v{event.model_version:<4} {event.vertical:<10} windows {event.windows[0]['key']}"
                   f"..{event.windows[-1]['key']} scores [{scores}] > {event.threshold:.2f}  {_run_text(event.run)}")


@app.command("ui")
def ui(
    host: Annotated[str, typer.Option(help="Address to bind (0.0.0.0 in the cluster's Deployment).")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="UI port (default monitoring.ui_port).")] = None,
    metrics_port: Annotated[int | None, typer.Option(help="Prometheus port (default monitoring.metrics_port).")]
    = None,
) -> None:
    """Evidently's UI over the monitoring workspace, and the Prometheus gauges on /metrics."""
    from evidently.ui.service.app import get_config
    from evidently.ui.service.app import run as run_ui

    import apparel.monitoring.snapshot_metrics  # noqa: F401 - registers the snapshot metric type
    from apparel.monitoring.metrics import serve_metrics

    settings = _config().monitoring
    workspace = Path(settings.folder) / "workspace"
    workspace.mkdir(parents=True, exist_ok=True)
    ui_port, gauges_port = port or settings.ui_port, metrics_port or settings.metrics_port
    serve_metrics(Path(settings.folder), host, gauges_port)
    typer.echo(f"Evidently UI: http://{host}:{ui_port}  (workspace {workspace}); "
               f"Prometheus: http://{host}:{gauges_port}/metrics")
    run_ui(get_config(host=host, port=ui_port, workspace=str(workspace)))


@app.command("reference")
def reference(version: Annotated[str, typer.Argument(help="Model version (it needs its search index).")]) -> None:
    """(Re)compute a version's drift reference and calibration and log it with the version."""
    import tempfile

    from mlflow import MlflowClient

    from apparel.index import fetch_catalog_index
    from apparel.monitoring.champion import reference_for_champion
    from apparel.registry.pyfunc import load_registered
    from apparel.registry.tracking import configure

    config = _config()
    configure(config.registry)
    run_id = MlflowClient().get_model_version(config.registry.model_name, version).tags["run_id"]
    with tempfile.TemporaryDirectory() as folder:
        load_registered(f"models:/{config.registry.model_name}/{version}").save(Path(folder))
        reference_for_champion(config, Path(folder), fetch_catalog_index(config, version), version, run_id,
                               log=typer.echo)
