"""The promotion gate: a candidate replaces the champion only if nothing regresses.

Pure functions over two evaluation reports on the same frozen set, so the rule is tested alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from apparel.evaluation.report import EvaluationReport


@dataclass
class GateDecision:
    promote: bool
    reasons: list[str] = field(default_factory=list)

    @property
    def alias(self) -> str:
        return "champion" if self.promote else "challenger"

    def summary(self) -> str:
        return "; ".join(self.reasons) or "no regression"


def regressions(candidate: dict[str, float], champion: dict[str, float], tolerance: float, kind: str,
                metric: str) -> list[str]:
    found = []
    for key in sorted(champion):
        if key not in candidate:
            found.append(f"{kind} {key}: missing from the candidate (champion {metric} {champion[key]:.3f})")
        elif candidate[key] < champion[key] - tolerance:
            found.append(f"{kind} {key}: {metric} {candidate[key]:.3f} < champion {champion[key]:.3f} "
                         f"- tolerance {tolerance:g}")
    return found


def decide(candidate: EvaluationReport, champion: EvaluationReport | None, recall_tolerance: float,
           accuracy_tolerance: float, review_mode: bool = False) -> GateDecision:
    if champion is not None and candidate.eval_set != champion.eval_set:
        raise ValueError(f"not comparable: evaluated on {candidate.eval_set} vs {champion.eval_set}")
    reasons = []
    if champion is not None:
        reasons += regressions(candidate.recall_at_1(), champion.recall_at_1(), recall_tolerance, "vertical",
                               "Recall@1")
        reasons += regressions(candidate.accuracy(), champion.accuracy(), accuracy_tolerance, "attribute",
                               "accuracy")
    if reasons:
        return GateDecision(False, reasons)
    if review_mode:
        return GateDecision(False, ["review mode: waiting for `apparel approve`"])
    return GateDecision(True, [] if champion else ["first model: no champion to compare with"])
