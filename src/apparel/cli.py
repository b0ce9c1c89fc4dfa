"""The one command line for everything a user does: ``apparel --help``."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from enum import StrEnum
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
    source: Annotated[Path, typer.Argument(help="Catalog folder.")],
    out: Annotated[Path, typer.Option(help="Folder for manifest.csv, quarantine.csv, dataset.json.")] = Path(
        "runs/dataset"),
    adapter: Annotated[str, typer.Option(help="manifest, fashion-products, deepfashion-inshop, deepfashion-category "
                                              "or folder (any other CSV: apparel.data.adapters.read_csv).")
                       ] = "manifest",
) -> None:
    """Validate a catalog into the manifest schema; bad files go to a quarantine report."""
    from apparel.stages.data import ingest_stage

    dataset, reused = ingest_stage(config(), source, out, adapter)
    info = dataset.info
    state_word = "unchanged, reused" if reused else "ingested"
    typer.echo(f"{state_word}: {info.counts['images']['total']} images, {info.counts['products']['total']} products, "
               f"{info.quarantined} quarantined (see {out / 'quarantine.csv'}), version {info.version}")


DatasetArg = Annotated[Path | None, typer.Argument(
    help="Ingested dataset folder (default: the newest, from `apparel run` or `apparel ingest`).", show_default=False)]


def dataset_or_newest(dataset: Path | None) -> Path:
    from apparel.workspace import newest

    return dataset or newest(config(), "dataset")


@app.command("train-specialists")
def train_specialists(
    dataset: DatasetArg = None,
    out: Annotated[Path, typer.Option(help="Folder for one model per vertical.")] = Path("runs/specialists"),
    vertical: Annotated[list[str] | None, typer.Option(help="Only these verticals (repeatable).")] = None,
) -> None:
    """Train one triplet-loss specialist per vertical on Ray Train (resumes a killed run); with
    train.generalist_share > 0, each from one generalist trained first on every vertical."""
    from apparel.stages.specialists import generalist_stage, specialists_stage

    root = dataset_or_newest(dataset)
    generalist = generalist_stage(config(), root, out)
    if generalist:
        typer.echo(f"generalist (where each specialist starts): {generalist}")
    for name, path in specialists_stage(config(), root, out, vertical, generalist=generalist).items():
        typer.echo(f"specialist {name}: {path}")


@app.command()
def distill(
    dataset: DatasetArg = None,
    specialists: Annotated[Path | None, typer.Option(help="Folder train-specialists wrote (default: the newest "
                                                          "specialists, a pipeline run's or train-specialists').",
                                                     show_default=False)] = None,
    out: Annotated[Path, typer.Option(help="Folder for the unified model.")] = Path("runs/unified"),
) -> None:
    """Train the unified model to regress each image's specialist embedding (L2)."""
    from apparel.stages.distill import distill_stage
    from apparel.stages.specialists import specialists_in
    from apparel.workspace import generalist_beside, newest_specialists

    teachers = specialists_in(specialists) if specialists else newest_specialists(config())
    start = generalist_beside(teachers)
    typer.echo(f"the student starts from {start or 'scratch (no generalist beside the specialists)'}")
    typer.echo(f"unified model: {distill_stage(config(), dataset_or_newest(dataset), teachers, out, generalist=start)}")


@app.command()
def attributes(
    dataset: DatasetArg = None,
    unified: Annotated[Path | None, typer.Option(help="Unified model folder (default: the newest).",
                                                 show_default=False)] = None,
    out: Annotated[Path, typer.Option(help="Folder for the model with attribute branches.")] = Path("runs/attributes"),
    attribute: Annotated[list[str] | None, typer.Option(help="Only these attributes, in this order.")] = None,
) -> None:
    """Add attribute branches one at a time on the unified model (masked losses; resumes)."""
    from apparel.stages.attributes import attributes_stage
    from apparel.workspace import newest

    trained = attributes_stage(config(), dataset_or_newest(dataset), unified or newest(config(), "unified"), out,
                               attribute)
    typer.echo(f"model with attributes: {trained}")


@app.command("add-attribute")
def add_attribute(
    name: Annotated[str, typer.Argument(help="Attribute column of the dataset to add.")],
    dataset: DatasetArg = None,
    model: Annotated[Path | None, typer.Option(help="Model folder with attribute branches (default: the champion, "
                                                    "else the newest).", show_default=False)] = None,
    out: Annotated[Path, typer.Option(help="Folder for the new model.")] = Path("runs/attributes/added"),
    finetune: Annotated[bool, typer.Option(help="Also fine-tune the base (embedding changes; re-checked).")] = False,
) -> None:
    """Train just one new branch on an existing model; its embedding stays identical unless --finetune."""
    from apparel.stages.attributes import add_attribute_stage
    from apparel.workspace import champion_or_newest

    path, check = add_attribute_stage(config(), dataset_or_newest(dataset), model or champion_or_newest(config()),
                                      name, out, finetune)
    typer.echo(f"new model: {path}  val Recall@1 {check['val_recall@1_before']:.3f} -> "
               f"{check['val_recall@1_after']:.3f}")


@app.command()
def retrieval(
    dataset: DatasetArg = None,
    model: Annotated[Path | None, typer.Option(help="Model folder (spec.json + weights.pt; default: the champion, "
                                                    "else the newest).", show_default=False)] = None,
    split: Annotated[str, typer.Option(help="train, val or test.")] = "test",
) -> None:
    """Recall@1/5/10/20 and MAP@R per vertical of one embedding model."""
    from apparel.stages.evaluate import retrieval_stage
    from apparel.workspace import champion_or_newest

    model = model or champion_or_newest(config())
    typer.echo(f"model {model}")
    for vertical, scores in retrieval_stage(config(), dataset_or_newest(dataset), model, split).items():
        typer.echo(f"{vertical:>10}  " + "  ".join(f"{k}={v:.3f}" for k, v in scores.items() if k != "queries"))


@app.command()
def register(
    model: Annotated[Path | None, typer.Argument(help="Model folder with attribute branches (default: the newest).",
                                                 show_default=False)] = None,
    dataset: DatasetArg = None,
    specialists: Annotated[Path | None, typer.Option(help="Specialists folder, logged for comparison.")] = None,
) -> None:
    """Evaluate on the frozen set, log to MLflow, register a version; the gate picks champion or challenger."""
    from apparel.stages.register import register_stage
    from apparel.stages.specialists import specialists_in
    from apparel.workspace import newest

    register_stage(config(), model or newest(config(), "model"), dataset_or_newest(dataset),
                   teachers=specialists_in(specialists) if specialists else None, log=typer.echo)


@app.command()
def models() -> None:
    """List registered versions with their aliases and gate decisions."""
    from apparel.registry.versions import list_versions, versions_table

    rows = list_versions(config())
    if not rows:
        typer.echo(f"no versions of {config().registry.model_name} yet")
        return
    for line in versions_table(rows):
        typer.echo(line)


def _client():
    from mlflow import MlflowClient

    from apparel.registry.tracking import configure

    configure(config().registry)
    return MlflowClient()


CatalogOption = Annotated[Path | None, typer.Option(
    help="Ingested catalog to index when the version has no index yet (default: the newest).", show_default=False)]


def _prepare(catalog: Path | None) -> Callable[[str], None]:
    """What every command that makes a champion runs first: the version's index and drift reference,
    built when missing (the service starts only on a champion with an index)."""
    from apparel.stages.index import prepare_champion

    def prepare(version: str) -> None:
        typer.echo(f"index: {prepare_champion(config(), version, catalog, log=lambda _: None)['message']}")
    return prepare


@app.command()
def rollback(
    why: Annotated[str, typer.Option(help="Recorded in the audit trail.")] = "rollback",
    catalog: CatalogOption = None,
) -> None:
    """Move the champion alias back to the version that held it before (after giving that version its
    search index and drift reference, if it lacks them)."""
    from apparel.registry.aliases import rollback as rollback_alias

    event = rollback_alias(_client(), config().registry.model_name, why, prepare=_prepare(catalog))
    typer.echo(f"champion -> v{event.version} (was v{event.previous}) by {event.who}")


@app.command()
def approve(
    version: Annotated[str, typer.Argument(help="Version to promote to champion.")],
    why: Annotated[str, typer.Option(help="Recorded in the audit trail.")] = "approved in review",
    catalog: CatalogOption = None,
) -> None:
    """Review mode: promote a challenger to champion, after giving it the search index and drift reference
    that the gate gives a champion it promotes itself (the alias never points at a version without them)."""
    from apparel.registry.aliases import approve as approve_version

    event = approve_version(_client(), config().registry.model_name, version, why, prepare=_prepare(catalog))
    typer.echo(f"champion -> v{event.version} (was v{event.previous}) by {event.who}")


@app.command()
def index(
    version: Annotated[str, typer.Argument(help="Registered version to give its search index.")],
    catalog: CatalogOption = None,
) -> None:
    """Build a version's catalog search index and drift reference, unless it has them (what a champion
    needs before the service can start on it)."""
    _prepare(catalog)(version)


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
    from datetime import datetime

    from apparel.runlog import pipeline_log
    from apparel.stages.pipeline import pipeline_summary, recorded_runs
    from pipelines.run import PIPELINES, run_locally, step_names

    if name not in PIPELINES:
        raise ValueError(f"unknown pipeline '{name}' (known: {', '.join(PIPELINES)})")
    log = config().pipeline.log_dir / f"{name}-{datetime.now():%Y%m%d-%H%M%S}.log"
    typer.echo(f"pipeline {name}: full log in {log}")
    try:
        with pipeline_log(log, step_names(name, config())):
            before = len(recorded_runs(config()))
            run_locally(name, config(), source=source, adapter=adapter)
            this_run = recorded_runs(config())[before:][-1]["run"]  # the exit handler's record of this run
            summary = pipeline_summary(config(), this_run)
    except Exception as error:
        raise RuntimeError(f"{str(error).splitlines()[0] if str(error) else type(error).__name__} "
                           f"(full log: {log})") from error
    for line in summary:
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


class MainJob(StrEnum):
    training = "training"
    loop = "loop"


@app.command()
def run(job: Annotated[MainJob, typer.Argument(help="training: train, gate, register and index a champion. "
                                               "loop: on that champion, serve → drift → retrain → swap.")]
        = MainJob.training) -> None:
    """The main jobs, locally: the training pipeline end to end on the synthetic catalog, or the closed loop."""
    if job is MainJob.training:
        pipeline_run("training", "synthetic", "manifest")
        return
    from apparel.stages.loop import run_loop

    run_loop(config(), log=typer.echo)


@app.command()
def clean(
    yes: Annotated[bool, typer.Option("--yes", help="Delete; without it, only show what would go.")] = False,
    keep_runs: Annotated[int, typer.Option(help="Newest pipeline runs kept per pipeline.", min=0)] = 1,
    mlflow: Annotated[bool, typer.Option("--mlflow", help="Also the MLflow store: registered models and their "
                                                          "audit trail (never without this flag).")] = False,
) -> None:
    """Free disk under runs/: older pipeline runs, Ray checkpoints, distillation work, old logs."""
    from apparel.clean import cleanup_targets, delete, human
    from apparel.runlog import shown_path

    targets = cleanup_targets(config(), keep_runs, mlflow)
    for target in targets:
        typer.echo(f"{human(target.size):>10}  {shown_path(target.path)}  ({target.why})")
    total = human(sum(t.size for t in targets))
    if not yes:
        typer.echo(f"would free {total} in {len(targets)} paths; `apparel clean --yes` deletes them"
                   + ("" if mlflow else " (the MLflow store stays: --mlflow)"))
        return
    delete(targets)
    typer.echo(f"freed {total} in {len(targets)} paths")


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
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a bar per fetched artefact, even tiny ones
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


@app.command()
def evaluate(
    model: Annotated[str, typer.Argument(help="Model folder, or an MLflow URI: models:/<name>@champion, "
                                              "models:/<name>/<version>, runs:/<run id>/model.")],
    queries: Annotated[Path, typer.Option(help="Ingested catalog the queries come from.")],
    gallery: Annotated[Path | None, typer.Option(help="Ingested catalog searched (default: the query catalog, "
                                                      "leave one out).")] = None,
    query_split: Annotated[str, typer.Option(help="all, train, val or test.")] = "all",
    gallery_split: Annotated[str, typer.Option(help="all, train, val or test (same catalog and split as "
                                                    "the queries: leave one out).")] = "all",
    label: Annotated[str | None, typer.Option(help="What counts as a match: a column or '+'-joined columns "
                                                   "(default: data.label).")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the scores as JSON here.")] = None,
) -> None:
    """Recall@K and MAP@R per vertical, and attribute accuracy, of any model on any catalog."""
    from apparel.stages.evaluate import catalog_stage

    scores = catalog_stage(config(), model, queries, gallery, query_split, gallery_split, label or config().data.label,
                           out)
    for vertical, metrics in {**scores.retrieval, "all (pooled)": scores.pooled}.items():
        typer.echo(f"{vertical:>14}  " + "  ".join(f"{k}={v:.3f}" for k, v in metrics.items() if k != "queries")
                   + f"  queries={metrics['queries']}")
    for attribute, metrics in scores.attributes.items():
        typer.echo(f"{attribute:>14}  accuracy={metrics['accuracy']:.3f}  n={metrics['n']}")
    if out is not None:
        typer.echo(f"scores written: {out}")


from apparel.monitoring.cli import app as monitor_app  # noqa: E402 - sub-apps are added at the end

app.add_typer(monitor_app, name="monitor")
