"""The one lock (constraints.txt, scripts/lock.py) agrees with pyproject.toml, and every install uses it."""

import importlib.util
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def lock_module(tmp_path: Path | None = None):
    spec = importlib.util.spec_from_file_location("lock", ROOT / "scripts" / "lock.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if tmp_path is not None:  # a copy of the project's two files, to break on purpose
        for name in ("pyproject.toml", "constraints.txt"):
            shutil.copy(ROOT / name, tmp_path / name)
        module.ROOT, module.LOCK = tmp_path, tmp_path / "constraints.txt"
    return module


def test_the_committed_lock_agrees_with_pyproject() -> None:
    assert lock_module().disagreements() == []


def test_a_dependency_missing_from_the_lock_is_named(tmp_path: Path) -> None:
    lock = lock_module(tmp_path)
    text = lock.LOCK.read_text()
    lock.LOCK.write_text(re.sub(r"^mlflow==.*\n", "", text, flags=re.M))
    assert lock.disagreements() == ["mlflow: not in constraints.txt: run `make lock`"]


def test_a_pin_outside_its_range_is_named(tmp_path: Path) -> None:
    lock = lock_module(tmp_path)
    lock.LOCK.write_text(re.sub(r"^bentoml==.*$", "bentoml==1.5.0", lock.LOCK.read_text(), flags=re.M))
    assert lock.disagreements() == [
        "bentoml: constraints.txt pins 1.5.0, outside pyproject.toml's '<1.5,>=1.4': run `make lock`"]


@pytest.mark.parametrize("edit", [("\"httpx\",\n", ""), ("\"httpx\",\n", "\"httpx\",\n  \"orjson\",\n"),
                                  ("\"mlflow>=3,<4\"", "\"mlflow>=3.1,<4\"")],
                         ids=["dependency dropped", "dependency added", "range moved"])
def test_any_edit_to_pyprojects_requirements_asks_for_a_new_lock(tmp_path: Path, edit: tuple[str, str]) -> None:
    lock = lock_module(tmp_path)
    pyproject = tmp_path / "pyproject.toml"
    assert edit[0] in pyproject.read_text()
    pyproject.write_text(pyproject.read_text().replace(edit[0], edit[1], 1))
    problems = lock.disagreements()
    assert "pyproject.toml's requirements changed since constraints.txt was made: run `make lock`" in problems


def test_every_install_takes_the_lock() -> None:
    makefile = (ROOT / "Makefile").read_text()
    installs = [line.strip() for line in makefile.splitlines() if "$(VENV)/bin/pip install" in line]
    assert installs and all("--constraint $(LOCK)" in line for line in installs), installs
    assert "LOCK := constraints.txt" in makefile
    assert "make test" in (ROOT / ".ci" / "run").read_text()  # CI installs through `make test` -> `make setup`
    assert '--constraint constraints.txt ".[${VARIANT},cluster]"' in (ROOT / "Dockerfile").read_text()
