"""Entry point a KubeRay RayJob runs: the same Ray Train job, its model left on shared storage."""

from __future__ import annotations

import base64
import json
import os
import shutil
import sys
from pathlib import Path

from apparel.config import Config
from apparel.train.embedding_job import EmbeddingJob, run_embedding_job


def main(payload: str) -> None:
    os.environ.setdefault("RAY_ADDRESS", "auto")  # the RayJob's own cluster, whose head runs this driver
    spec = json.loads(base64.b64decode(payload))
    config = Config.model_validate(spec["config"])
    job = EmbeddingJob(**spec["job"])
    storage = Path(spec["storage"])
    model_dir = run_embedding_job(job, config, storage)
    shutil.copytree(model_dir, storage / "models" / job.name, dirs_exist_ok=True)


if __name__ == "__main__":
    main(sys.argv[1])
