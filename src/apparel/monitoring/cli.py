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
    for line in summary.notes:
        typer.echo(f"note {line}")
    for line in summary.skipped:
        typer.echo(f"skipped {line}")
    typer.echo(f"scored {summary.windows} new windows, {summary.alarms} alarming, {len(summary.events)} drift events")
    for event in summary.events:
        typer.echo(f"drift event {event.key}: {event.vertical} of v{event.model_version}, {event.cause} "
                   f"({_fired_text(event)}), {len(event.windows)} windows above 1 -> retrain "
                   f"{', '.join(event.drifted) or 'all'}: {_run_text(event.run)}")


def _fired_text(event) -> str:
    """The components that fired in the event's last window, with their p-values."""
    last = event.windows[-1]
    return ", ".join(f"{k} p={last.get('p_values', {}).get(k, float('nan')):.2g}" for k in last.get("fired", []))


def _run_text(run: dict) -> str:
    if "error" in run:
        return f"trigger failed: {run['error']}"
    if run.get("kind") == "kfp-local":
        return f"kfp local runner, log {run['log']}"
    if run.get("kind") == "command":
        return f"command exited {run['exit_code']}: {run['output']}"
    detail = {k: v for k, v in run.items() if k != "kind"}
    return f"{run.get('kind', '?')} " + " ".join(f"{k}={v}" for k, v in detail.items())


def _outcome_text(event) -> str:
    outcome, run = event.outcome, event.run
    if "error" in run or run.get("kind") == "command":
        return _run_text(run)
    if not outcome:
        return f"running (log {run['log']})" if run.get("kind") == "kfp-local" else _run_text(run)
    if outcome["outcome"] == "registered":
        return f"registered v{outcome['version']} ({outcome['decision']})"
    return f"{outcome['outcome']}: {outcome['summary']}"


@app.command("events")
def events() -> None:
    """Every drift event: its windows' times, vertical, cause, scores, the run it started and its outcome."""
    from apparel.monitoring.events import EventStore

    found = EventStore(Path(_config().monitoring.folder) / "events").list()
    if not found:
        typer.echo("no drift events")
    for event in found:
        first, last = event.windows[0], event.windows[-1]
        scores = ", ".join(f"{w['score']:.2f}" for w in event.windows)
        typer.echo(f"{_time(first.get('start', first.get('end', '')))}..{_time(last.get('end', ''))}  "
                   f"v{event.model_version} {event.vertical}: {event.cause} ({_fired_text(event)}), scores [{scores}] "
                   f"> 1 -> retrain {', '.join(event.drifted) or 'all'}: {_outcome_text(event)}")


def _time(stamp: str) -> str:
    """'2026-12-07T22:10:05.123+00:00' -> '2026-12-07 22:10:05' (UTC)."""
    return stamp[:19].replace("T", " ")


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
    """(Re)compute a version's catalog drift reference and calibration and log it with the version."""
    from mlflow import MlflowClient

    from apparel.index import fetch_catalog_index
    from apparel.monitoring.champion import reference_for_champion
    from apparel.registry.tracking import configure

    config = _config()
    configure(config.registry)
    run_id = MlflowClient().get_model_version(config.registry.model_name, version).tags["run_id"]
    reference_for_champion(config, fetch_catalog_index(config, version), version, run_id, log=typer.echo)
