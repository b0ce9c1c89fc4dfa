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
    version's MLflow run; a challenger gets none (the champion's index keeps serving). Writes the index
    (when built) and ``outcome.json`` (what happened, in one line) to ``out_dir``."""
    from apparel.registry.aliases import CHAMPION

    out_dir.mkdir(parents=True, exist_ok=True)
    if decision != CHAMPION:
        outcome = {"version": version, "decision": decision, "built": False,
                   "message": f"v{version} is {decision}, not champion: no index built"}
    else:
        outcome = _index_champion(config, dataset_root, model_dir, out_dir, version)
    (out_dir / OUTCOME_FILE).write_text(json.dumps(outcome, indent=2, sort_keys=True))
    log(f"index: {outcome['message']}")
    return outcome


def index_approved(config: Config, version: str, dataset_root: Path) -> dict:
    """A version promoted by hand (review mode): its index and drift reference, unless it has them."""
    from apparel.index import fetch_catalog_index
    from apparel.registry.aliases import CHAMPION
    from apparel.workspace import champion_or_newest

    try:
        fetch_catalog_index(config, version)
        return {"version": version, "built": False, "message": f"v{version} already has its index"}
    except FileNotFoundError:
        pass
    out_dir = Path(config.data.root) / "index" / f"v{version}"
    return index_stage(config, dataset_root, champion_or_newest(config), out_dir, version, CHAMPION,
                       log=lambda line: None)


def _index_champion(config: Config, dataset_root: Path, model_dir: Path, out_dir: Path, version: str) -> dict:
    from mlflow import MlflowClient

    from apparel.index import build_catalog_index, catalog_rows, log_catalog_index
    from apparel.inference import InferenceRuntime
    from apparel.models.attributes import ApparelNet
    from apparel.monitoring.champion import reference_for_champion
    from apparel.registry.tracking import configure, retry

    dataset = Dataset.load(dataset_root)
    model = ApparelNet.load(model_dir)
    # The service's runtime: catalog vectors decoded and embedded exactly as served queries are.
    runtime = InferenceRuntime(model, config.data.max_image_pixels)
    embeddings = runtime.predict(dataset.manifest["image"].tolist()).embeddings
    rows = catalog_rows(dataset.manifest, dataset.info.attributes)
    name = config.registry.model_name
    catalog_index = build_catalog_index(embeddings, rows, name, version, config.index)
    catalog_index.save(out_dir)
    configure(config.registry)
    run_id = retry(MlflowClient().get_model_version)(name, version).tags["run_id"]
    log_catalog_index(catalog_index, run_id)
    reference_for_champion(config, catalog_index, version, run_id)  # drift reference: the same catalog
    meta = catalog_index.meta
    return {"version": version, "decision": "champion", "built": True, "run_id": run_id, "factory": meta.factory,
            "size": meta.size, "message": f"{meta.factory} over {meta.size} images, logged with {name} v{version} "
                                          f"(run {run_id}, artefacts index/)"}
