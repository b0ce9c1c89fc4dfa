"""Runs the pipeline submits use the one ServiceAccount the chart lets create and watch RayJobs."""

from pathlib import Path

import pytest
import yaml
from chartlib import CHART, NAMESPACE, SCENARIOS, find, run_helm, values_file
from test_chart_config import rendered_config


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_rendered_config_names_the_account_bound_to_the_rayjob_role(helm: Path, scenario: str,
                                                                    tmp_path: Path) -> None:
    # A release name other than the chart's, so the account's name is not the config default by chance.
    done = run_helm(helm, "template", "shop", CHART, "--namespace", NAMESPACE, "--values", values_file(scenario))
    assert done.returncode == 0, done.stderr
    manifests = [m for m in yaml.safe_load_all(done.stdout) if m]
    bindings = find(manifests, "RoleBinding", "-pipeline")
    if not bindings:
        pytest.skip(f"{scenario}: pipeline RBAC off")
    role = find(manifests, "Role", "-pipeline")[0]
    assert {r for rule in role["rules"] for r in rule["resources"]} == {"rayjobs"}
    accounts = {s["name"] for s in bindings[0]["subjects"] if s["kind"] == "ServiceAccount"}
    assert rendered_config(manifests, tmp_path).pipeline.service_account in accounts
