"""Where a model version's reference is found: a local copy under ``<monitoring folder>/references``,
else the MLflow artefact ``monitoring/reference`` of the version's run."""

from __future__ import annotations

from pathlib import Path

from apparel.config import Config
from apparel.monitoring.reference import ARTIFACT_PATH, Reference


def local_copy(config: Config, version: str) -> Path:
    return Path(config.monitoring.folder) / "references" / f"v{version}"


def load_reference(config: Config, version: str) -> Reference | None:
    """The version's reference, or None when it has none (never became champion, or predates monitoring)."""
    folder = local_copy(config, version)
    if (folder / "reference.json").is_file():
        return Reference.load(folder)
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from apparel.registry.tracking import configure

    configure(config.registry)
    import tempfile

    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as download:
        try:
            run_id = MlflowClient().get_model_version(config.registry.model_name, version).tags.get("run_id")
            if not run_id:
                return None
            fetched = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=ARTIFACT_PATH,
                                                          dst_path=download)
        except (MlflowException, OSError):
            return None
        Path(fetched).rename(folder)  # where MLflow put it (not always <dst>/<artifact path>)
    return Reference.load(folder)


def log_reference(config: Config, reference: Reference, run_id: str) -> None:
    """Stores the reference (with its calibration) as an artefact of the version's MLflow run."""
    import tempfile

    import mlflow

    from apparel.registry.tracking import configure, retry

    configure(config.registry)
    with tempfile.TemporaryDirectory() as folder:
        reference.save(Path(folder) / "reference")
        retry(mlflow.MlflowClient().log_artifacts)(run_id, str(Path(folder) / "reference"), ARTIFACT_PATH)
