"""Where step commands find their inputs when none is given: the newest output of that kind, whether the
last pipeline run wrote it (``runs/pipeline/<run>/<step>/…``) or a step command did (``runs/dataset`` …),
and the registered champion for the commands that evaluate "the model". So ``apparel retrieval`` works
right after ``make run``."""

from __future__ import annotations

import json
from pathlib import Path

from apparel.config import Config
from apparel.stages.specialists import GENERALIST

# kind: (pipeline outputs under pipeline_root/<run>/, the step command's own output, the file that marks it done)
OUTPUTS: dict[str, tuple[tuple[str, ...], Path, str]] = {
    "dataset": (("ingest/dataset",), Path("runs/dataset"), "dataset.json"),
    "unified": (("distill/model",), Path("runs/unified/model"), "spec.json"),
    "model": (("add-attribute-branches/model", "finetune-champion/model"), Path("runs/attributes/model"), "spec.json"),
}
HINTS = {"dataset": "`apparel run` or `apparel ingest`", "unified": "`apparel run` or `apparel distill`",
         "model": "`apparel run` or `apparel attributes`",
         "specialists": "`apparel run` or `apparel train-specialists`"}


def newest(config: Config, kind: str) -> Path:
    """The most recently written output of ``kind`` (dataset, unified, model)."""
    in_pipelines, by_command, marker = OUTPUTS[kind]
    root = Path(config.pipeline.pipeline_root)
    found = [p for pattern in in_pipelines for p in root.glob(f"*/{pattern}") if (p / marker).is_file()]
    found += [by_command] if (by_command / marker).is_file() else []
    if not found:
        raise FileNotFoundError(f"no {kind} yet: run {HINTS[kind]} first, or name one")
    return max(found, key=lambda path: (path / marker).stat().st_mtime)


def newest_specialists(config: Config) -> dict[str, Path]:
    """{vertical: model folder} of the newest specialists: `train-specialists`' folder or a pipeline run's
    ParallelFor outputs (the vertical is in each artefact's metadata)."""
    runs: list[tuple[float, dict[str, Path]]] = []
    command = Path("runs/specialists")
    mine = {p.parent.name: p.parent for p in command.glob("*/spec.json")
            if "+" not in p.parent.name and p.parent.name != GENERALIST}
    if mine:
        runs.append((max((p / "spec.json").stat().st_mtime for p in mine.values()), mine))
    for run in Path(config.pipeline.pipeline_root).glob("*"):
        models = {}
        for output in run.glob("for-loop-*/train-specialist/executor_output.json"):
            for artifact in json.loads(output.read_text())["artifacts"]["model"]["artifacts"]:
                models[artifact["metadata"]["vertical"]] = output.parent / "model"
        if models:
            runs.append((max((p / "spec.json").stat().st_mtime for p in models.values()), models))
    if not runs:
        raise FileNotFoundError(f"no specialists yet: run {HINTS['specialists']} first, or name a folder")
    return max(runs, key=lambda run: run[0])[1]


def generalist_beside(specialists: dict[str, Path]) -> Path | None:
    """The generalist the specialists started from: ``_generalist`` in train-specialists' folder, or the
    ``train-generalist`` output of the pipeline run that trained them; None when they had none."""
    first = next(iter(specialists.values()))
    for candidate in (first.parent / GENERALIST, first.parent.parent.parent / "train-generalist" / "model"):
        if (candidate / "weights.pt").is_file():
            return candidate
    return None


def champion_or_newest(config: Config) -> Path:
    """The registered champion (downloaded once per version under data.root/champion/), else the newest model."""
    from mlflow import MlflowClient

    from apparel.registry import aliases
    from apparel.registry.tracking import configure
    from apparel.stages.retrain import download_champion

    uri = config.registry.tracking_uri
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        return newest(config, "model")  # no store yet: nothing registered (and don't create one here)
    configure(config.registry)
    version = aliases.holder(MlflowClient(), config.registry.model_name, aliases.CHAMPION)
    if version is None:
        return newest(config, "model")
    folder = Path(config.data.root) / "champion" / f"v{version}"
    if not (folder / "spec.json").is_file():
        download_champion(config, folder)
    return folder
