import os
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


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def run_with(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("APPAREL")}
    return subprocess.run([*APPAREL, *args], capture_output=True, text=True, cwd=cwd, stdin=subprocess.DEVNULL,
                          timeout=300, env={**clean, **env})


def test_ingest_help_offers_only_adapters_it_accepts(tmp_path: Path) -> None:
    """Regression: main's help listed `csv`, which ingest then rejected."""
    shown = apparel("ingest", "--help").stdout
    assert "fashion-products" in shown and "manifest, csv" not in shown and "--adapter csv" not in shown
    assert "unknown adapter 'csv'" in one_line_error(apparel("ingest", "--adapter", "csv", ".", cwd=tmp_path))


def test_a_catalog_read_with_the_wrong_adapter_names_the_right_one(tmp_path: Path) -> None:
    """Regression: a fashion-products folder without --adapter said only 'missing columns'."""
    (tmp_path / "fp").mkdir()
    (tmp_path / "fp" / "labels.csv").write_text("id,filename,subCategory,articleType,baseColour\n"
                                                "1,images/1.jpg,Topwear,Tshirts,Blue\n")
    message = one_line_error(apparel("ingest", "fp", cwd=tmp_path))
    assert "missing columns" in message and "try --adapter fashion-products" in message


def test_a_config_error_names_field_value_and_origin(tmp_path: Path) -> None:
    """Regression: main said '1 validation error for Config' and nothing about which field."""
    message = one_line_error(run_with({"APPAREL__TRAIN__EPOCHS": "many"}, "generate", cwd=tmp_path))
    assert message.startswith("error: config: train.epochs = 'many' (from APPAREL__TRAIN__EPOCHS): ")
    (tmp_path / "bad.yaml").write_text("data:\n  synthetic:\n    seed: [1]\n")
    message = one_line_error(run_with({"APPAREL_CONFIG": "bad.yaml"}, "generate", cwd=tmp_path))
    assert "data.synthetic.seed = [1] (in bad.yaml)" in message


def test_the_decompression_bomb_message_quotes_the_configured_limit(tmp_path: Path) -> None:
    """Regression: main quoted Pillow's own limit (178956970 pixels), not data.max_image_pixels."""
    from PIL import Image

    (tmp_path / "cat" / "images").mkdir(parents=True)
    Image.new("RGB", (64, 64)).save(tmp_path / "cat" / "images" / "big.png")
    (tmp_path / "cat" / "labels.csv").write_text("image,product_id,vertical\nimages/big.png,p1,tops\n")
    message = one_line_error(run_with({"APPAREL__DATA__MAX_IMAGE_PIXELS": "1000"}, "ingest", "cat", cwd=tmp_path))
    assert "big.png: decompression bomb: declared 64x64 = 4,096 pixels > data.max_image_pixels 1,000" in message


def test_models_lists_with_a_header_and_imports_no_torch(tmp_path: Path) -> None:
    """Regression: `apparel models` took 8 s (it imported torch through the registration module) and printed
    rows without a header."""
    from apparel.registry.versions import versions_table

    rows = [{"version": "2", "aliases": "champion", "decision": "champion", "dataset": "abc", "reasons": "passed"}]
    header, row = versions_table(rows)
    assert header.split() == ["version", "aliases", "decision", "dataset", "reasons"] and row.split()[0] == "v2"
    probe = ("import sys; from typer.testing import CliRunner; from apparel.cli import app\n"
             "print(CliRunner().invoke(app, ['models']).output.strip()); print('torch' in sys.modules)")
    listed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert listed.stdout.splitlines() == ["no versions of apparel-unified yet", "False"], listed.stdout + listed.stderr
    assert not (tmp_path / "runs").exists()  # listing creates no store
