"""What every benchmark shares: the machine it ran on and where results go."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SHARED_DATA = ROOT.parent / "shared" / "data"


def machine() -> dict[str, object]:
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def summary_over_datasets(results: dict[str, dict]) -> dict[str, float]:
    """Each dataset's summary under `<dataset>.<key>`, and the plain `<key>` as the mean over datasets."""
    summary = {f"{name}.{key}": value for name, result in results.items() for key, value in result["summary"].items()}
    keys = {key for result in results.values() for key in result["summary"]}
    for key in sorted(keys):
        values = [r["summary"][key] for r in results.values() if key in r["summary"]]
        summary[key] = round(sum(values) / len(values), 4)
    return summary


def write_result(name: str, result: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({**result, "machine": machine()}, indent=2, sort_keys=True) + "\n")
    print(json.dumps(result["summary"], indent=2))
    return path
