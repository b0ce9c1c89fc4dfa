"""The detached process a local drift event starts: the retraining pipeline on kfp's local runner.

``python -m apparel.monitoring.retrain CONFIG_JSON``
"""

from __future__ import annotations

import sys
from pathlib import Path

from apparel.config import config_from_json


def main(settings: Path) -> None:
    from apparel.registry.register import list_versions
    from apparel.stages.pipeline import pipeline_summary
    from pipelines.run import run_locally

    config = config_from_json(settings.read_text())
    before = len(list_versions(config))
    print("drift event: retraining pipeline on the kfp local runner", flush=True)
    run_locally("retraining", config, source=config.data.source, adapter=config.data.adapter)
    for line in pipeline_summary(config, before):
        print(line, flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
