"""Index stage: the champion's similar-item search index over the whole catalog, logged with its version."""

from __future__ import annotations

import json
from pathlib import Path

from apparel.config import Config
from apparel.data.manifest import Dataset

OUTCOME_FILE = "outcome.json"


def index_stage(config: Config, dataset_root: Path, model_dir: Path, out_dir: Path, version: str, decision: str,
                log=print) -> dict:
    """Builds the index for ``version`` when the gate made it champion and logs it under ``index/`` of the
    version's MLflow run; a challenger gets none (the champion's index keeps serving). A champion's index
    is normally built by the register step, before the alias moved: then it is only copied. Writes the
    index (when there is one) and ``outcome.json`` (what happened, in one line) to ``out_dir``."""
    from apparel.registry.aliases import CHAMPION

    out_dir.mkdir(parents=True, exist_ok=True)
    if decision != CHAMPION:
        outcome = {"version": version, "decision": decision, "built": False,
                   "message": f"v{version} is {decision}, not champion: no index built"}
    else:
        outcome = _existing_index(config, out_dir, version) or _index_champion(config, dataset_root, model_dir,
                                                                               out_dir, version, log)
    (out_dir / OUTCOME_FILE).write_text(json.dumps(outcome, indent=2, sort_keys=True))
    log(f"index: {outcome['message']}")
    return outcome


def prepare_champion(config: Config, version: str, dataset_root: Path | None = None, model_dir: Path | None = None,
                     log=print) -> dict:
    """Gives ``version`` what the service needs of a champion, unless it has it: its catalog index (built
    with ``model_dir``, else the registered weights of that version, over ``dataset_root``, else the
    newest ingested catalog) and its drift reference. Every path that makes a champion calls it first."""
    from apparel.index import fetch_catalog_index
    from apparel.monitoring.references import load_reference

    try:
        catalog_index = fetch_catalog_index(config, version)
    except FileNotFoundError:
        return _build_for_champion(config, version, dataset_root, model_dir, log)
    if load_reference(config, version) is not None:
        return {"version": version, "built": False, "message": f"v{version} already has its index and drift reference"}
    _log_reference(config, catalog_index, version, log)
    return {"version": version, "built": False,
            "message": f"v{version} already has its index; its drift reference is built now"}


def _build_for_champion(config: Config, version: str, dataset_root: Path | None, model_dir: Path | None,
                        log) -> dict:
    from apparel.registry.aliases import CHAMPION
    from apparel.workspace import newest

    dataset_root = dataset_root or newest(config, "dataset")
    out_dir = Path(config.data.root) / "index" / f"v{version}"
    return index_stage(config, dataset_root, model_dir or _registered_weights(config, version, out_dir / "model"),
                       out_dir, version, CHAMPION, log)


def _registered_weights(config: Config, version: str, folder: Path) -> Path:
    """The version's own registered network (never the champion's: the index must be built by its model)."""
    from apparel.registry.pyfunc import load_registered
    from apparel.registry.tracking import configure

    configure(config.registry)
    load_registered(f"models:/{config.registry.model_name}/{version}").save(folder)
    return folder


def _log_reference(config: Config, catalog_index, version: str, log) -> None:
    from mlflow import MlflowClient

    from apparel.monitoring.champion import reference_for_champion
    from apparel.registry.tracking import retry

    run_id = retry(MlflowClient().get_model_version)(config.registry.model_name, version).tags["run_id"]
    reference_for_champion(config, catalog_index, version, run_id, log)


def _existing_index(config: Config, out_dir: Path, version: str) -> dict | None:
    from apparel.index import fetch_catalog_index

    try:
        catalog_index = fetch_catalog_index(config, version)
    except FileNotFoundError:
        return None
    catalog_index.save(out_dir)
    meta = catalog_index.meta
    return {"version": version, "decision": "champion", "built": False, "factory": meta.factory, "size": meta.size,
            "message": f"v{version} already has its index ({meta.factory} over {meta.size} images, built before "
                       "the champion alias moved)"}


def _index_champion(config: Config, dataset_root: Path, model_dir: Path, out_dir: Path, version: str,
                    log) -> dict:
    from mlflow import MlflowClient

    from apparel.index import log_catalog_index
    from apparel.models.attributes import ApparelNet
    from apparel.monitoring.champion import reference_for_champion
    from apparel.registry.tracking import configure, retry

    name = config.registry.model_name
    catalog_index = catalog_index_of(config, ApparelNet.load(model_dir), Dataset.load(dataset_root), version)
    catalog_index.save(out_dir)
    configure(config.registry)
    run_id = retry(MlflowClient().get_model_version)(name, version).tags["run_id"]
    log_catalog_index(catalog_index, run_id)
    reference_for_champion(config, catalog_index, version, run_id, log)  # drift reference: the same catalog
    meta = catalog_index.meta
    return {"version": version, "decision": "champion", "built": True, "run_id": run_id, "factory": meta.factory,
            "size": meta.size, "message": f"{meta.factory} over {meta.size} images, logged with {name} v{version} "
                                          f"(run {run_id}, artefacts index/)"}


def catalog_index_of(config: Config, model, dataset: Dataset, version: str):
    """``model``'s search index over every image of ``dataset``: what the service searches for that version
    (the index stage logs it; evaluation scores served search on it). Returns an apparel.index.CatalogIndex."""
    from apparel.index import build_catalog_index, catalog_rows
    from apparel.inference import InferenceRuntime

    # The service's runtime: catalog vectors decoded and embedded exactly as served queries are.
    runtime = InferenceRuntime(model, config.data.max_image_pixels)
    embeddings = runtime.predict(dataset.manifest["image"].tolist()).embeddings
    rows = catalog_rows(dataset.manifest, dataset.info.attributes)
    return build_catalog_index(embeddings, rows, config.registry.model_name, version, config.index)
