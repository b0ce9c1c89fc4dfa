"""Every benchmark result says where it came from: the commit, the command line, the machine and the date."""

import json
from pathlib import Path

import pytest

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
REQUIRED = ("commit", "command", "machine", "date")


@pytest.mark.parametrize("path", sorted(RESULTS.glob("*.json")), ids=lambda path: path.name)
def test_every_result_records_its_provenance(path: Path) -> None:
    provenance = json.loads(path.read_text()).get("provenance", {})
    missing = [key for key in REQUIRED if not str(provenance.get(key) or "").strip()]
    assert not missing, f"{path.name}: provenance lacks {missing}"


def test_there_are_results_to_check() -> None:
    assert len(list(RESULTS.glob("*.json"))) >= 30
