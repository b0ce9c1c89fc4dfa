"""The detached process a local drift event starts: the retraining pipeline on kfp's local runner.

``python -m apparel.monitoring.retrain CONFIG_JSON OUTCOME_JSON``

It ends by writing what the run did to OUTCOME_JSON (registered vN and the gate's decision, no new
data since the champion, or the error), which `apparel monitor events` and the drift metrics read.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from apparel.config import config_from_json
from apparel.monitoring.events import write_atomically


def retrain(settings: Path) -> dict:
    """Runs the retraining pipeline; returns what that run did (see ``run_outcome``)."""
    from apparel.stages.pipeline import recorded_runs, run_outcome
    from pipelines.run import run_locally

    config = config_from_json(settings.read_text())
    before = len(recorded_runs(config))
    print(f"drift event: retraining pipeline on the kfp local runner, catalog {config.data.source}", flush=True)
    run_locally("retraining", config, source=config.data.source, adapter=config.data.adapter)
    return run_outcome(config, recorded_runs(config)[before:][-1]["run"])  # the exit handler's record of this run


def main(settings: Path, outcome_file: Path) -> int:
    try:
        outcome = retrain(settings)
    except Exception as error:  # noqa: BLE001 - the outcome records any failure; the exit code says it too
        outcome = {"outcome": "failed", "summary": f"{type(error).__name__}: {str(error).splitlines()[0]}"}
    outcome["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    write_atomically(outcome_file, json.dumps(outcome, indent=1))
    print(f"retraining outcome: {outcome['outcome']}: {outcome['summary']}", flush=True)
    return 1 if outcome["outcome"] == "failed" else 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1]), Path(sys.argv[2])))
