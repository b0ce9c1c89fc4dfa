"""The chart rendered by the real helm binary, once per scenario (ci/*-values.yaml) and test session.

The tools come from `make tools` (a prerequisite of `make test`): helm unpacked under .tools/bin, checkov in its
own venv under .tools/checkov, kubernetes-validate in the project venv. A test skips only when its tool is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from chartlib import ROOT, SCENARIOS, template, tool, values_file


@pytest.fixture(scope="session")
def helm() -> Path:
    path = tool("helm", ROOT / ".tools" / "bin" / "helm")
    if path is None:
        pytest.skip("helm is absent (run `make tools`)")
    return path


@pytest.fixture(scope="session")
def checkov() -> Path:
    path = tool("checkov", ROOT / ".tools" / "checkov" / "bin" / "checkov")
    if path is None:
        pytest.skip("checkov is absent (run `make tools`)")
    return path


@pytest.fixture(scope="session")
def rendered(helm: Path) -> dict[str, list[dict]]:
    """Every scenario's manifests, rendered once per session."""
    return {scenario: template(helm, values_file(scenario)) for scenario in SCENARIOS}
