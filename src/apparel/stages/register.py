"""Registration stage: log the candidate's evaluation to MLflow, register; the gate picks the alias."""

from __future__ import annotations

from pathlib import Path

from apparel.config import Config


def register_stage(config: Config, model_dir: Path, dataset_root: Path, evaluation_dir: Path | None = None,
                   teachers: dict[str, Path] | None = None, card: Path | None = None, log=print):
    """Register the candidate evaluated in ``evaluation_dir`` (the evaluate stage's folder; evaluated
    here, once, when absent, with ``teachers`` logged beside for comparison). An identical candidate
    (same weights, dataset version, config) registers nothing. A version the gate promotes gets its search
    index and drift reference before the champion alias moves. Returns the Registration."""
    from apparel.registry.register import register_candidate
    from apparel.stages.index import prepare_champion

    if not (model_dir / "spec.json").is_file():
        raise FileNotFoundError(f"no model at {model_dir} (spec.json missing): run `apparel attributes` first")
    result = register_candidate(config, model_dir, dataset_root, evaluation_dir, teachers, log,
                                prepare=lambda version: prepare_champion(config, version, dataset_root, model_dir, log))
    if card is not None:
        card.write_text(result.card)
    return result
