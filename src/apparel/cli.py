"""The one command line for everything a user does: ``apparel --help``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import click
import typer

from apparel.config import Config, load_config

app = typer.Typer(help="Apparel recognition MLOps: data, training, registry, pipelines.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
state: dict[str, Config] = {}

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="YAML overrides (configs/*.yaml).")]


@app.callback()
def main_options(config: ConfigOption = None) -> None:
    """Options every command shares."""
    state["config"] = load_config(config)


def config() -> Config:
    return state.get("config") or load_config()


@app.command()
def generate(
    out: Annotated[Path, typer.Option(help="Folder for images and labels.csv.")] = Path("runs/catalog"),
    products_per_vertical: Annotated[int | None, typer.Option(help="Products per vertical.")] = None,
    views: Annotated[int | None, typer.Option(help="Views per product.")] = None,
    missing_label_rate: Annotated[float | None, typer.Option(help="Fraction of attribute labels blanked.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed (same seed, same catalog).")] = None,
) -> None:
    """Draw the synthetic garment catalog (the embedded default data set)."""
    from apparel.stages.data import generate_stage

    overrides = {"products_per_vertical": products_per_vertical, "views_per_product": views,
                 "missing_label_rate": missing_label_rate, "seed": seed}
    labels = generate_stage(config(), out, {k: v for k, v in overrides.items() if v is not None})
    typer.echo(f"catalog written: {labels}")


@app.command()
def ingest(
    source: Annotated[Path, typer.Argument(help="Catalog folder (or CSV file for --adapter csv).")],
    out: Annotated[Path, typer.Option(help="Folder for manifest.csv, quarantine.csv, dataset.json.")] = Path(
        "runs/dataset"),
    adapter: Annotated[str, typer.Option(help="manifest, csv, fashion-products, deepfashion-inshop, "
                                              "deepfashion-category or folder.")] = "manifest",
) -> None:
    """Validate a catalog into the manifest schema; bad files go to a quarantine report."""
    from apparel.stages.data import ingest_stage

    dataset, reused = ingest_stage(config(), source, out, adapter)
    info = dataset.info
    state_word = "unchanged, reused" if reused else "ingested"
    typer.echo(f"{state_word}: {info.counts['images']['total']} images, {info.counts['products']['total']} products, "
               f"{info.quarantined} quarantined (see {out / 'quarantine.csv'}), version {info.version}")


DatasetArg = Annotated[Path, typer.Argument(help="Ingested dataset folder (from `apparel ingest`).")]


@app.command("train-specialists")
def train_specialists(
    dataset: DatasetArg,
    out: Annotated[Path, typer.Option(help="Folder for one model per vertical.")] = Path("runs/specialists"),
    vertical: Annotated[list[str] | None, typer.Option(help="Only these verticals (repeatable).")] = None,
) -> None:
    """Train one triplet-loss specialist per vertical on Ray Train (resumes a killed run)."""
    from apparel.stages.specialists import train_specialists_stage

    for name, path in train_specialists_stage(config(), dataset, out, vertical).items():
        typer.echo(f"specialist {name}: {path}")


@app.command()
def distill(
    dataset: DatasetArg,
    specialists: Annotated[Path, typer.Option(help="Folder train-specialists wrote.")] = Path("runs/specialists"),
    out: Annotated[Path, typer.Option(help="Folder for the unified model.")] = Path("runs/unified"),
) -> None:
    """Train the unified model to regress each image's specialist embedding (L2)."""
    from apparel.stages.distill import distill_stage

    typer.echo(f"unified model: {distill_stage(config(), dataset, specialists, out)}")


@app.command()
def attributes(
    dataset: DatasetArg,
    unified: Annotated[Path, typer.Option(help="Unified model folder.")] = Path("runs/unified/model"),
    out: Annotated[Path, typer.Option(help="Folder for the model with attribute branches.")] = Path("runs/attributes"),
    attribute: Annotated[list[str] | None, typer.Option(help="Only these attributes, in this order.")] = None,
) -> None:
    """Add attribute branches one at a time on the unified model (masked losses; resumes)."""
    from apparel.stages.attributes import attributes_stage

    typer.echo(f"model with attributes: {attributes_stage(config(), dataset, unified, out, attribute)}")


@app.command("add-attribute")
def add_attribute(
    name: Annotated[str, typer.Argument(help="Attribute column of the dataset to add.")],
    dataset: DatasetArg,
    model: Annotated[Path, typer.Option(help="Model folder with attribute branches.")] = Path(
        "runs/attributes/model"),
    out: Annotated[Path, typer.Option(help="Folder for the new model.")] = Path("runs/attributes/added"),
    finetune: Annotated[bool, typer.Option(help="Also fine-tune the base (embedding changes; re-checked).")] = False,
) -> None:
    """Train just one new branch on an existing model; its embedding stays identical unless --finetune."""
    from apparel.stages.attributes import add_attribute_stage

    path, check = add_attribute_stage(config(), dataset, model, name, out, finetune)
    typer.echo(f"new model: {path}  val Recall@1 {check['val_recall@1_before']:.3f} -> "
               f"{check['val_recall@1_after']:.3f}")


@app.command()
def retrieval(
    dataset: DatasetArg,
    model: Annotated[Path, typer.Option(help="Model folder (spec.json + weights.pt).")] = Path("runs/unified/model"),
    split: Annotated[str, typer.Option(help="train, val or test.")] = "test",
) -> None:
    """Recall@1/5/10/20 and MAP@R per vertical of one embedding model."""
    from apparel.stages.evaluate import retrieval_stage

    for vertical, scores in retrieval_stage(config(), dataset, model, split).items():
        typer.echo(f"{vertical:>10}  " + "  ".join(f"{k}={v:.3f}" for k, v in scores.items() if k != "queries"))


@app.command()
def register(
    model: Annotated[Path, typer.Argument(help="Model folder with attribute branches.")],
    dataset: DatasetArg,
    specialists: Annotated[Path | None, typer.Option(help="Specialists folder, logged for comparison.")] = None,
) -> None:
    """Evaluate on the frozen set, log to MLflow, register a version; the gate picks champion or challenger."""
    from apparel.stages.register import register_stage

    result = register_stage(config(), model, dataset, specialists)
    typer.echo(f"{result.name} v{result.version}: {result.decision.alias} ({result.decision.summary()})")


@app.command()
def models() -> None:
    """List registered versions with their aliases and gate decisions."""
    from apparel.registry.register import list_versions

    rows = list_versions(config())
    if not rows:
        typer.echo(f"no versions of {config().registry.model_name} yet")
    for row in rows:
        typer.echo(f"v{row['version']:<4} {row['aliases']:<20} {row['decision']:<11} {row['reasons']}")


def _client():
    from mlflow import MlflowClient

    from apparel.registry.tracking import configure

    configure(config().registry)
    return MlflowClient()


@app.command()
def rollback(why: Annotated[str, typer.Option(help="Recorded in the audit trail.")] = "rollback") -> None:
    """Move the champion alias back to the version that held it before."""
    from apparel.registry.aliases import rollback as rollback_alias

    event = rollback_alias(_client(), config().registry.model_name, why)
    typer.echo(f"champion -> v{event.version} (was v{event.previous}) by {event.who}")


@app.command()
def approve(
    version: Annotated[str, typer.Argument(help="Version to promote to champion.")],
    why: Annotated[str, typer.Option(help="Recorded in the audit trail.")] = "approved in review",
) -> None:
    """Review mode: promote a challenger to champion."""
    from apparel.registry.aliases import approve as approve_version

    event = approve_version(_client(), config().registry.model_name, version, why)
    typer.echo(f"champion -> v{event.version} (was v{event.previous}) by {event.who}")


@app.command()
def audit() -> None:
    """Every alias change: when, who, which version, what it replaced and why."""
    from apparel.registry.aliases import history

    for e in history(_client(), config().registry.model_name):
        typer.echo(f"{e.when}  {e.who:<10} {e.alias:<10} v{e.version} (was {e.previous or '-'})  {e.why}")


@app.command("mlflow-ui")
def mlflow_ui(port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 5000) -> None:
    """Start the MLflow UI on the configured store."""
    import subprocess

    from apparel.registry.tracking import tracking_uri

    uri = tracking_uri(config().registry)
    typer.echo(f"MLflow UI: http://127.0.0.1:{port}  (store {uri})")
    subprocess.run([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1",
                    "--port", str(port)], check=False)


pipeline_app = typer.Typer(help="Kubeflow pipelines: compile, run locally, submit to a cluster.",
                            no_args_is_help=True)
app.add_typer(pipeline_app, name="pipeline")
PipelineName = Annotated[str, typer.Argument(help="training or retraining.")]


@pipeline_app.command("compile")
def pipeline_compile(
    name: PipelineName = "training",
    out: Annotated[Path | None, typer.Option(help="IR YAML path (default pipelines/compiled/NAME.yaml).")] = None,
) -> None:
    """Compile a pipeline to KFP IR YAML."""
    from pipelines.run import COMPILED, PIPELINES, compile_pipeline

    if name not in PIPELINES:
        raise ValueError(f"unknown pipeline '{name}' (known: {', '.join(PIPELINES)})")
    typer.echo(f"compiled: {compile_pipeline(name, config(), out or COMPILED / f'{name}.yaml')}")


@pipeline_app.command("run")
def pipeline_run(
    name: PipelineName = "training",
    source: Annotated[str, typer.Option(help="'synthetic' or a catalog path.")] = "synthetic",
    adapter: Annotated[str, typer.Option(help="Catalog layout (see `apparel ingest --help`).")] = "manifest",
) -> None:
    """Run a pipeline on kfp's local runner with local Ray and the configured MLflow."""
    from apparel.registry.register import list_versions
    from apparel.stages.pipeline import pipeline_summary
    from pipelines.run import PIPELINES, run_locally

    if name not in PIPELINES:
        raise ValueError(f"unknown pipeline '{name}' (known: {', '.join(PIPELINES)})")
    before = len(list_versions(config()))
    run_locally(name, config(), source=source, adapter=adapter)
    for line in pipeline_summary(config(), before):
        typer.echo(line)


@pipeline_app.command("submit")
def pipeline_submit(
    schedule: Annotated[bool, typer.Option(help="Also create the recurring retraining run (cron from config).")]
    = True,
) -> None:
    """Send the training pipeline to the KFP endpoint in the config; schedule retraining."""
    from pipelines.run import submit

    for key, value in submit(config(), schedule).items():
        typer.echo(f"{key}: {value}")


@app.command()
def run() -> None:
    """The main job: the training pipeline end to end on the synthetic catalog, locally."""
    pipeline_run("training", "synthetic", "manifest")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (serving.host, default 127.0.0.1; "
                                                  "0.0.0.0 in a container).")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port (serving.http_port, default 3000).")] = None,
    grpc_port: Annotated[int | None, typer.Option(help="gRPC port (serving.grpc_port, default 50051).")] = None,
    model_uri: Annotated[str | None, typer.Option(help="Model to serve (default models:/<name>@champion).")] = None,
) -> None:
    """Serve the champion over HTTP and gRPC: embed, attributes, search; hot-swaps when the alias moves."""
    from apparel.serving.launch import serve as serve_model

    overrides = {"host": host, "http_port": port, "grpc_port": grpc_port, "model_uri": model_uri}
    serving = config().serving.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    serve_model(config().model_copy(update={"serving": serving}), log=typer.echo)


@app.command()
def search(
    image: Annotated[Path, typer.Argument(help="Query photo.", exists=True, dir_okay=False)],
    k: Annotated[int, typer.Option("--k", "-k", help="How many similar items.")] = 10,
    vertical: Annotated[str, typer.Option(help="Only items of this vertical.")] = "",
    url: Annotated[str, typer.Option(help="Running service (default http://127.0.0.1:<serving.http_port>).")] = "",
    in_process: Annotated[bool, typer.Option(help="Load the champion here instead of asking a service.")] = False,
) -> None:
    """The catalog items most similar to IMAGE, from the running service or in-process."""
    from apparel.serving.launch import format_matches, search_http, search_in_process

    if in_process:
        answer = search_in_process(config(), image, k, vertical)
    else:
        answer = search_http(url or f"http://127.0.0.1:{config().serving.http_port}", image, k, vertical)
    for line in format_matches(answer):
        typer.echo(line)


def main() -> None:
    """Entry point: a user error is one line on stderr and a non-zero exit, never a traceback."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        app(standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except click.exceptions.Abort:
        sys.exit(130)
    except Exception as error:  # noqa: BLE001 - the CLI's contract: one line, non-zero exit
        if os.environ.get("APPAREL_DEBUG"):
            raise
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        typer.echo(f"error: {message}", err=True)
        sys.exit(1)


from apparel.monitoring.cli import app as monitor_app  # noqa: E402 - sub-apps are added at the end

app.add_typer(monitor_app, name="monitor")
