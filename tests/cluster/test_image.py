"""The one container image: its Dockerfile (parsed), its build context, its lock, and hadolint's verdict."""

import fnmatch
import re
import shlex
import shutil
import subprocess
import tomllib

import pytest
from kuberay_fakes import ROOT

from apparel.config import PipelineConfig

DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_multi_stage_on_a_pinned_base_running_as_a_non_root_user_with_entrypoint_apparel() -> None:
    steps = instructions()
    base = dict(arg.split("=", 1) for kind, arg in steps if kind == "ARG" and "=" in arg)["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base), base  # exact Python, exact Debian
    stages = [arg for kind, arg in steps if kind == "FROM"]
    assert len(stages) == 2 and all(s.startswith("${PYTHON_IMAGE} AS ") for s in stages)
    runtime = steps[max(i for i, (kind, _) in enumerate(steps) if kind == "FROM"):]
    user = [arg for kind, arg in runtime if kind == "USER"][-1]
    assert user.split(":")[0].isdigit() and int(user.split(":")[0]) >= 1000  # numeric: runAsNonRoot can check
    assert [arg for kind, arg in runtime if kind == "ENTRYPOINT"] == ['["apparel"]']
    assert any(kind == "COPY" and arg.startswith("--from=build /opt/apparel") for kind, arg in runtime)


def test_the_install_step_is_the_projects_own_under_the_lock_for_both_variants() -> None:
    steps = instructions()
    installs = [arg for kind, arg in steps if kind == "RUN" and "pip install" in arg]
    assert len(installs) == 1, "one pip install: the project's"
    command = shlex.split(installs[0].split("&&")[-1])
    assert command[:2] == ["pip", "install"]
    packages = [word for word in command[2:] if not word.startswith("-") and "constraints" not in word]
    assert packages == [".[${VARIANT},cluster]"]
    assert "--constraint" in command and "constraints.txt" in command  # the one lock (tests/code/test_lock.py)
    assert "ARG VARIANT=cpu" in DOCKERFILE.read_text()
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {"cpu", "gpu", "cluster"} <= set(extras)


def matches(path: str, pattern: str) -> bool:
    """A .dockerignore pattern matches a path when it matches the path or a folder above it."""
    parts = path.split("/")
    if pattern.startswith("**/"):
        return any(fnmatch.fnmatch(part, pattern.removeprefix("**/")) for part in parts)
    return any(fnmatch.fnmatch("/".join(parts[: i + 1]), pattern) for i in range(len(parts)))


def excluded(path: str) -> bool:
    """Docker's rule: the last matching .dockerignore line decides; '!' lines re-include."""
    verdict = False
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = line.strip()
        if pattern and not pattern.startswith("#") and matches(path, pattern.lstrip("!")):
            verdict = not pattern.startswith("!")
    return verdict


def test_the_build_context_is_the_project_and_nothing_else() -> None:
    for kept in ("pyproject.toml", "README.md", "src/apparel/config.py", "src/apparel/data/manifest.py",
                 "components/ingest.py", "pipelines/training.py", "constraints.txt"):
        assert not excluded(kept), kept
    for dropped in ("runs/mlflow.db", ".venv/bin/python", "data/catalog/1.jpg", ".tools/hadolint/bin/hadolint",
                    "src/apparel/__pycache__/config.cpython-311.pyc", "src/apparel.egg-info/PKG-INFO",
                    "tests/conftest.py", ".git/HEAD", "scripts/lock.py"):
        assert excluded(dropped), dropped


def test_pipeline_base_image_default_is_this_images_pinned_name() -> None:
    image = PipelineConfig().base_image
    assert re.fullmatch(r"ghcr\.io/apparel-mlops/apparel:\d+\.\d+\.\d+", image)
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert image.endswith(f":{version}")
    assert image in DOCKERFILE.read_text()  # the build command the Dockerfile documents tags it so


def test_hadolint_finds_nothing() -> None:
    hadolint = ROOT / ".tools" / "hadolint" / "bin" / "hadolint"
    binary = str(hadolint) if hadolint.is_file() else shutil.which("hadolint")
    if binary is None:
        pytest.skip("hadolint is absent: `make tools` installs it into .tools/hadolint")
    result = subprocess.run([binary, "--failure-threshold", "style", str(DOCKERFILE)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
