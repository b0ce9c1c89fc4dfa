"""What every benchmark shares: the machine it ran on and where results go."""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path

import numpy as np
import provenance
import torch
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SHARED_DATA = ROOT.parent / "shared" / "data"


def settings_key(settings: dict) -> str:
    """A file-name-safe key of benchmark settings, for caches of finished work that runs resume from; past 200
    characters (file names stop at 255, and callers add a prefix and a suffix) the readable head and a digest of
    the whole, so that keys that fit stay what they were."""
    key = "-".join(f"{k}={v}" for k, v in sorted(settings.items())).replace("/", "_").replace(",", "+")
    if len(key) <= 200:
        return key
    return f"{key[:180]}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def load_average() -> list[float]:
    """1-, 5- and 15-minute load averages (what `uptime` shows): above the core count, the machine was
    shared with other work and every absolute time in the result is inflated."""
    return [round(x, 2) for x in os.getloadavg()]


def machine(load_at_start: list[float] | None = None) -> dict[str, object]:
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": load_at_start,
        "load_average_at_end": load_average(),
    }


def paired_ratio(tops: list[float], bottoms: list[float], prefix: str = "", name: str = "ratio"
                 ) -> dict[str, float]:
    """Mean over seeds of top/bottom (both measured on the same seed), with a 95 % t interval over the
    seeds' ratios: ``<prefix><name>``, ``..._ci_low``, ``..._ci_high``."""
    return mean_interval(np.array(tops) / np.array(bottoms), f"{prefix}{name}")


def mean_interval(values: np.ndarray, key: str) -> dict[str, float]:
    """The mean of per-seed values with a 95 % t interval over the seeds: ``key``, ``key_ci_low``, ``key_ci_high``."""
    mean = float(values.mean())
    half = float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))) \
        if len(values) > 1 else float("nan")
    return {key: round(mean, 4), f"{key}_ci_low": round(mean - half, 4), f"{key}_ci_high": round(mean + half, 4)}


def summary_over_datasets(results: dict[str, dict]) -> dict[str, float]:
    """Each dataset's summary under `<dataset>.<key>`, and the plain `<key>` as the mean over datasets."""
    summary = {f"{name}.{key}": value for name, result in results.items() for key, value in result["summary"].items()}
    keys = {key for result in results.values() for key in result["summary"]}
    for key in sorted(keys):
        values = [r["summary"][key] for r in results.values() if key in r["summary"]]
        summary[key] = round(sum(values) / len(values), 4)
    return summary


def write_result(name: str, result: dict, load_at_start: list[float] | None = None, quiet: bool = False) -> Path:
    """Writes the result with its machine and provenance, then logs it to MLflow (after the file is on disk, so
    a tracking store that fails loses no measurement)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    recorded = {**result, "machine": machine(load_at_start), "provenance": provenance.provenance()}
    path.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")
    provenance.log_run(name, path)
    if quiet:
        return path
    print(json.dumps(result["summary"], indent=2))
    return path
