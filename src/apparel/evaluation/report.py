"""One evaluation of one model on one frozen set: what the gate, MLflow and the pipeline read."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from apparel.data.manifest import label_values
from apparel.evaluation.attributes import evaluate_attributes
from apparel.evaluation.retrieval import per_vertical_retrieval
from apparel.inference import InferenceRuntime
from apparel.models.attributes import ApparelNet


@dataclass
class EvaluationReport:
    retrieval: dict[str, dict[str, float]] = field(default_factory=dict)  # vertical → Recall@K, MAP@R
    attributes: dict[str, dict[str, float]] = field(default_factory=dict)  # attribute → accuracy, F1, AUC …
    eval_set: str = ""
    # Recall@K, MAP@R, queries, gallery: test queries against the whole catalog index (as served); empty for
    # reports that predate it or were not scored that way (the champion's, on the gate's side)
    served: dict[str, float] = field(default_factory=dict)

    def recall_at_1(self) -> dict[str, float]:
        return {v: s["recall@1"] for v, s in self.retrieval.items()}

    def accuracy(self) -> dict[str, float]:
        return {a: s["accuracy"] for a, s in self.attributes.items()}

    def flat_metrics(self) -> dict[str, float]:
        """MLflow-ready names: ``retrieval.tops.recall_at_1``, ``attribute.colour.accuracy``,
        ``served.recall_at_1``."""
        flat = {}
        for kind, table in (("retrieval", self.retrieval), ("attribute", self.attributes)):
            for key, scores in table.items():
                for metric, value in scores.items():
                    if value == value:  # NaN AUCs are not metrics
                        flat[f"{kind}.{key}.{metric.replace('@', '_at_')}"] = float(value)
        flat.update({f"served.{metric.replace('@', '_at_')}": float(value) for metric, value in self.served.items()})
        if self.retrieval:
            flat["retrieval.mean.recall_at_1"] = float(np.mean(list(self.recall_at_1().values())))
        if self.attributes:
            flat["attribute.mean.accuracy"] = float(np.mean(list(self.accuracy().values())))
        return flat

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True))

    @classmethod
    def load(cls, path: Path) -> EvaluationReport:
        return cls(**json.loads(Path(path).read_text()))


def served_line(served: dict[str, float]) -> str:
    """'search as served: Recall@1 0.620, ...' from served metrics (keys recall@1 or recall_at_1)."""
    get = {k.replace("_at_", "@"): v for k, v in served.items()}.__getitem__
    return (f"search as served: Recall@1 {get('recall@1'):.3f}, Recall@5 {get('recall@5'):.3f}, Recall@10 "
            f"{get('recall@10'):.3f}, MAP@R {get('map@r'):.3f} ({int(get('queries'))} test queries against the "
            f"{int(get('gallery'))}-image catalog index)")


def evaluate_apparel_model(model: ApparelNet, frame: pd.DataFrame, label: str, eval_set: str = ""
                           ) -> tuple[EvaluationReport, np.ndarray]:
    """Retrieval per vertical and every attribute the model predicts; also returns the embeddings."""
    frame = frame.reset_index(drop=True)
    embeddings = InferenceRuntime(model).predict(frame["image"].tolist()).embeddings  # as served
    labelled = pd.notna(label_values(frame, label))
    retrieval = per_vertical_retrieval(embeddings[labelled], label_values(frame, label)[labelled],
                                       frame["vertical"][labelled])
    specs = [s for s in model.spec.attributes if s.name in frame.columns]
    attributes = evaluate_attributes({s.name: model for s in specs}, frame, specs, model.spec.base.image_size)
    return EvaluationReport(retrieval, attributes, eval_set), embeddings
