import subprocess
import sys
from pathlib import Path

import pytest

APPAREL = [sys.executable, "-c", "from apparel.cli import main; main()"]


def apparel(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*APPAREL, *args], capture_output=True, text=True, cwd=cwd, stdin=subprocess.DEVNULL,
                          timeout=300)


def commands() -> list[list[str]]:
    from typer.main import get_command

    from apparel.cli import app

    group = get_command(app)
    found = []
    for name, command in group.commands.items():
        found.append([name])
        found.extend([name, sub] for sub in getattr(command, "commands", {}))
    return found


@pytest.mark.parametrize("command", [[]] + commands(), ids=lambda c: " ".join(c) or "top")
def test_every_command_has_help(command: list[str]) -> None:
    result = apparel(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ingest", "/definitely/not/here"], "catalog not found"),
        (["ingest", "--adapter", "bogus", "."], "unknown adapter"),
        (["generate", "--products-per-vertical", "1"], "at least 2 products"),
        (["--config", "/no/such.yaml", "generate"], "config file not found"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(args: list[str], message: str, tmp_path: Path) -> None:
    result = apparel(*args, cwd=tmp_path)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_generate_then_ingest(tmp_path: Path) -> None:
    made = apparel("generate", "--out", "cat", "--products-per-vertical", "3", "--views", "2", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    first = apparel("ingest", "cat", "--out", "ds", cwd=tmp_path)
    assert first.returncode == 0 and "ingested: 30 images, 15 products, 0 quarantined" in first.stdout
    again = apparel("ingest", "cat", "--out", "ds", cwd=tmp_path)
    assert "unchanged, reused" in again.stdout
