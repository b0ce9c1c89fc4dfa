"""Evaluation stages: retrieval metrics of one model, and the candidate's one evaluation on the frozen set."""

from __future__ import annotations

from pathlib import Path

from apparel.config import Config
from apparel.data.manifest import Dataset


def retrieval_stage(config: Config, dataset_root: Path, model_dir: Path, split: str = "test"
                    ) -> dict[str, dict[str, float]]:
    """Per-vertical Recall@K and MAP@R of one model (unified, all-in-one, or with attribute branches) on a split."""
    import json

    from apparel.evaluation.embeddings import evaluate_models
    from apparel.models.attributes import ApparelNet
    from apparel.models.embedding import EmbeddingNet

    if not (model_dir / "spec.json").is_file():
        raise FileNotFoundError(f"no model at {model_dir} (spec.json missing)")
    dataset = Dataset.load(dataset_root)
    with_branches = "apparel" in json.loads((model_dir / "spec.json").read_text())
    model = ApparelNet.load(model_dir).base if with_branches else EmbeddingNet.load(model_dir)
    return evaluate_models({v: model for v in dataset.verticals}, dataset.split(split), config.data.label)


def evaluate_stage(config: Config, dataset_root: Path, model_dir: Path, teachers: dict[str, Path],
                   evaluation_dir: Path, report_html: Path) -> dict[str, float]:
    """The candidate's scores on the frozen set beside the specialists' (``evaluation_dir``: what the
    register stage logs and gates on) and an HTML report people read in the KFP UI."""
    from apparel.registry.html import evaluation_html
    from apparel.registry.register import evaluate_candidate, read_evaluation

    report = evaluate_candidate(config, model_dir, dataset_root, evaluation_dir, teachers)
    report_html.write_text(evaluation_html(report, read_evaluation(evaluation_dir)[1]))
    return report.flat_metrics()


def served_search_scores(config: Config, model, dataset_root: Path) -> dict[str, float]:
    """Search quality as served: the test split of the catalog at ``dataset_root`` searched through
    ``model``'s index over that whole catalog, built as the index stage builds it, each query's own image
    left out. The catalog's own test split, not the frozen gate set: after a new drop the gate set's
    products need not be in the catalog the service searches (found by `apparel run loop`, whose
    retraining failed here). ``model`` is an ApparelNet."""
    import pandas as pd

    from apparel.data.manifest import label_values
    from apparel.evaluation.served import served_retrieval
    from apparel.inference import InferenceRuntime
    from apparel.stages.index import catalog_index_of

    dataset = Dataset.load(dataset_root)
    catalog = catalog_index_of(config, model, dataset, "candidate")
    test = dataset.split("test")
    queries = test[pd.notna(label_values(test, config.data.label))]
    embeddings = InferenceRuntime(model, config.data.max_image_pixels).predict(queries["image"].tolist()).embeddings
    return served_retrieval(catalog.search, embeddings, queries["sha256"], label_values(queries, config.data.label),
                            dataset.manifest["sha256"], label_values(dataset.manifest, config.data.label))


def catalog_stage(config: Config, model: str, queries: Path, gallery: Path | None, query_split: str,
                  gallery_split: str, label: str, out: Path | None):
    """`apparel evaluate`: one model (folder or MLflow URI) scored on any ingested catalog(s)."""
    from apparel.evaluation.catalog import CatalogSlice, evaluate_on_catalog, load_model

    if ":/" in model:
        import mlflow

        from apparel.registry.tracking import tracking_uri

        mlflow.set_tracking_uri(tracking_uri(config.registry))
        mlflow.set_registry_uri(tracking_uri(config.registry))
    query_slice = CatalogSlice(queries, query_split)
    gallery_slice = CatalogSlice(gallery or queries, gallery_split)
    scores = evaluate_on_catalog(load_model(model), query_slice, gallery_slice, label, model)
    if out is not None:
        scores.save(out)
    return scores
