"""Registration stage: evaluate, log to MLflow, register; the gate picks the alias."""

from __future__ import annotations

from pathlib import Path

from apparel.config import Config
from apparel.data.manifest import Dataset
from apparel.stages.specialists import specialists_in


def register_stage(config: Config, model_dir: Path, dataset_root: Path, specialists_dir: Path | None = None):
    """Evaluate, log, register, gate. Specialists (when given) are logged beside for comparison."""
    from apparel.evaluation.embeddings import evaluate_models
    from apparel.evaluation.report import EvaluationReport
    from apparel.models.embedding import EmbeddingNet
    from apparel.registry.register import frozen_eval_set, register_candidate

    if not (model_dir / "spec.json").is_file():
        raise FileNotFoundError(f"no model at {model_dir} (spec.json missing): run `apparel attributes` first")
    baselines = {}
    if specialists_dir is not None:
        frame, eval_set = frozen_eval_set(config, Dataset.load(dataset_root))
        models = {v: EmbeddingNet.load(p) for v, p in specialists_in(specialists_dir).items()}
        baselines["specialists"] = EvaluationReport(evaluate_models(models, frame, config.data.label), {}, eval_set)
    return register_candidate(config, model_dir, dataset_root, baselines)


def register_from(config: Config, model_dir: Path, dataset_root: Path, baselines_json: Path | None, card: Path):
    import json

    from apparel.evaluation.report import EvaluationReport
    from apparel.registry.register import register_candidate

    baselines = {}
    if baselines_json is not None and baselines_json.is_file():
        baselines = {k: EvaluationReport(**v) for k, v in json.loads(baselines_json.read_text()).items()}
    result = register_candidate(config, model_dir, dataset_root, baselines)
    card.write_text(result.card)
    return result
