"""The README's claims about the registry and re-runs quote what the code says and does."""

import json
import re
from pathlib import Path

from apparel.evaluation.report import EvaluationReport
from apparel.registry.gate import GateDecision
from apparel.registry.register import Registration
from apparel.stages.retrain import NO_CHAMPION

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_readme_quotes_the_messages_the_registry_and_pipelines_print() -> None:
    unchanged = Registration("m", "1", "", GateDecision(False), EvaluationReport(), unchanged=True, champion="1")
    assert unchanged.summary().startswith("unchanged: champion stays v1") and "`unchanged: champion stays vN`" in README
    assert NO_CHAMPION.startswith("nothing to fine-tune: there is no champion yet")
    assert "`nothing to fine-tune: there is no champion yet`" in README
    assert "`record-run-status`" in README and "`no index: challenger`" in README
    assert "audit.<time>-<random>" in README and "`tenacity`" in README and "eval_set/frozen.csv" in README


def test_readme_names_the_exit_step_the_pipelines_compile() -> None:
    compiled = (ROOT / "pipelines" / "compiled" / "training.yaml").read_text()
    assert "record-run-status" in compiled and "record-failure" not in compiled


def test_readme_quotes_every_line_the_timed_main_job_printed() -> None:
    """The main job's output in the README is the run pipeline.json timed, not an older run's lines."""
    printed = json.loads((ROOT / "benchmarks" / "results" / "pipeline.json").read_text())["printed"]
    quoted = re.search(r"<!-- main-job-output:[^>]*-->\n```\n(.*?)\n```\n", README, re.S)
    assert quoted, "README has no main-job-output block"
    assert quoted.group(1).splitlines() == printed
    assert len(printed) > 15 and "[attributes] end-to-end: embedding val_recall@1" in quoted.group(1)
