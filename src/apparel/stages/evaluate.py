"""Evaluation stages: retrieval metrics of one model, and the candidate's scores on the frozen set."""

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
                   report_html: Path, baselines_json: Path) -> dict[str, float]:
    """Scores on the frozen set, an HTML report people read in the KFP UI, and the specialists'
    scores for the registry to log beside the candidate's."""
    import json
    from dataclasses import asdict

    from apparel.evaluation.embeddings import evaluate_models
    from apparel.evaluation.report import EvaluationReport, evaluate_apparel_model
    from apparel.models.attributes import ApparelNet
    from apparel.models.embedding import EmbeddingNet
    from apparel.registry.html import evaluation_html
    from apparel.registry.register import frozen_eval_set

    frame, eval_set = frozen_eval_set(config, Dataset.load(dataset_root))
    report, _ = evaluate_apparel_model(ApparelNet.load(model_dir), frame, config.data.label, eval_set)
    specialists = EvaluationReport(evaluate_models({v: EmbeddingNet.load(p) for v, p in teachers.items()}, frame,
                                                   config.data.label), {}, eval_set)
    baselines_json.write_text(json.dumps({"specialists": asdict(specialists)}))
    report_html.write_text(evaluation_html(report, {"specialists": specialists}))
    return report.flat_metrics()
