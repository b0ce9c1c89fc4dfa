from kfp.dsl import Dataset, Markdown, Output


def ingest(source: str, adapter: str, verticals: list, config_json: str, dataset: Output[Dataset],
           report: Output[Markdown]) -> list:
    """Synthetic catalog or a real one → validated manifest; returns the verticals to train.

    A single list output on purpose: kfp's local runner cannot loop over a named output of a
    multi-output component; the dataset version travels in the Dataset's metadata."""
    from pathlib import Path

    from apparel.config import config_from_json
    from apparel.stages.data import ingest_source

    config = config_from_json(config_json)
    ingested = ingest_source(config, source, adapter, Path(dataset.path))
    found = ingested.verticals
    chosen = [v for v in found if not verticals or v in verticals]
    if not chosen:
        raise ValueError(f"none of {verticals} in the dataset (has {found})")
    dataset.metadata.update({"version": ingested.info.version, "images": len(ingested.manifest)})
    Path(report.path).write_text(f"# Dataset {ingested.info.version}\n\n```json\n{ingested.info.counts}\n```\n")
    return chosen
