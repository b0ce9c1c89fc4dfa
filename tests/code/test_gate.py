import pytest

from apparel.evaluation.report import EvaluationReport
from apparel.registry.gate import decide


def report(tops: float, shoes: float, colour: float, eval_set: str = "frozen@v1") -> EvaluationReport:
    return EvaluationReport({"tops": {"recall@1": tops}, "shoes": {"recall@1": shoes}},
                            {"colour": {"accuracy": colour}}, eval_set)


def test_first_model_is_promoted() -> None:
    assert decide(report(0.5, 0.5, 0.5), None, 0.02, 0.02).alias == "champion"


def test_equal_or_within_tolerance_is_promoted() -> None:
    assert decide(report(0.80, 0.70, 0.90), report(0.80, 0.70, 0.90), 0.02, 0.02).promote
    assert decide(report(0.79, 0.71, 0.89), report(0.80, 0.70, 0.90), 0.02, 0.02).promote


def test_any_regression_beyond_tolerance_blocks_and_is_named() -> None:
    decision = decide(report(0.60, 0.71, 0.80), report(0.80, 0.70, 0.90), 0.02, 0.02)
    assert decision.alias == "challenger"
    assert len(decision.reasons) == 2
    assert decision.reasons[0].startswith("vertical tops: Recall@1 0.600 < champion 0.800")
    assert decision.reasons[1].startswith("attribute colour: accuracy 0.800 < champion 0.900")


def test_a_vertical_the_candidate_lost_is_a_regression() -> None:
    candidate = EvaluationReport({"tops": {"recall@1": 0.9}}, {}, "frozen@v1")
    decision = decide(candidate, report(0.8, 0.7, 0.9), 0.02, 0.02)
    assert any("shoes: missing" in r for r in decision.reasons)


def test_review_mode_holds_even_a_better_candidate() -> None:
    decision = decide(report(0.9, 0.9, 0.9), report(0.8, 0.7, 0.9), 0.02, 0.02, review_mode=True)
    assert decision.alias == "challenger" and "review mode" in decision.reasons[0]


def test_reports_on_different_sets_are_not_compared() -> None:
    with pytest.raises(ValueError, match="not comparable"):
        decide(report(0.9, 0.9, 0.9, "a"), report(0.9, 0.9, 0.9, "b"), 0.02, 0.02)
