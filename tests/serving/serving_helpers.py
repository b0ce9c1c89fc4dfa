"""Helpers of the serving tests: a tiny registered champion with its catalog index in a temporary sqlite
MLflow store, and real `apparel serve` processes on free 127.0.0.1 ports."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import mlflow
import numpy as np
import torch
import yaml
from image_bytes import png_declaring  # noqa: F401 - re-exported to the serving tests
from mlflow import MlflowClient
from PIL import Image

from apparel.config import Config, load_config
from apparel.data.manifest import Dataset
from apparel.index import build_catalog_index, catalog_rows, log_catalog_index
from apparel.inference import InferenceRuntime
from apparel.models.attributes import ApparelNet, ApparelSpec
from apparel.models.embedding import EmbeddingSpec
from apparel.registry.pyfunc import log_apparel_model
from apparel.registry.tracking import configure
from apparel.stages.data import generate_stage, ingest_stage
from apparel.train.attributes import attribute_specs

ATTRIBUTES = ["colour", "pattern"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def jpeg_bytes(seed: int = 0, size: int = 64) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@dataclass
class Store:
    """A registry with a catalog, and a way to register more versions."""

    config: Config
    dataset: Dataset
    root: Path

    @property
    def name(self) -> str:
        return self.config.registry.model_name

    def register(self, seed: int, index: str = "own", champion: bool = True) -> str:
        """A random-weight model as a new version; ``index``: 'own', 'none', or 'other' (an index that
        claims another version). Becomes champion unless told otherwise."""
        torch.manual_seed(seed)
        specs = attribute_specs(self.dataset, ATTRIBUTES)
        base = EmbeddingSpec("resnet18", self.config.model.embedding_dim, self.config.model.image_size)
        model = ApparelNet(ApparelSpec(base, specs, branch_width=8)).eval()
        folder = self.root / f"model-{seed}"
        model.save(folder)
        configure(self.config.registry)
        runtime = InferenceRuntime(model)
        manifest = self.dataset.manifest
        with mlflow.start_run(experiment_id=mlflow.get_experiment_by_name(self.config.registry.experiment)
                              .experiment_id) as run:
            info = log_apparel_model(folder, self.name, np.stack([runtime.prepare(manifest["image"].iloc[0])]),
                                     self.config.registry.pip_requirements)
        version = str(info.registered_model_version)
        client = MlflowClient()
        client.set_model_version_tag(self.name, version, "run_id", run.info.run_id)
        if index != "none":
            embeddings = runtime.predict(manifest["image"].tolist()).embeddings
            claimed = version if index == "own" else str(int(version) + 100)
            catalog = build_catalog_index(embeddings, catalog_rows(manifest, ATTRIBUTES), self.name, claimed,
                                          self.config.index)
            log_catalog_index(catalog, run.info.run_id)
        if champion:  # set directly, as an older release or the MLflow UI could: apparel's own alias moves refuse
            # a champion without its index, and the server must still cope with a store that has one
            client.set_registered_model_alias(self.name, "champion", version)
        return version


def make_store(root: Path, products_per_vertical: int = 4, monitoring: dict | None = None, **serving) -> Store:
    """A tiny generated catalog and an empty registry under ``root`` (its config file: root/config.yaml)."""
    overrides = {
        "model": {"image_size": 32, "embedding_dim": 16},
        "registry": {"tracking_uri": f"sqlite:///{root / 'mlflow.db'}", "artifact_root": str(root / "artefacts"),
                     "model_name": "tiny-apparel"},
        "serving": {"poll_interval_s": 1.0, "request_log_dir": str(root / "requests"),
                    "request_log_sample_rate": 1.0, "max_images_per_request": 4, "max_body_bytes": 200_000,
                    "max_k": 20, "max_latency_ms": 5, **serving},
        **({"monitoring": monitoring} if monitoring else {}),
    }
    config_file = root / "config.yaml"
    config_file.write_text(yaml.safe_dump(overrides))
    config = load_config(config_file, environ={})
    labels = generate_stage(config, root / "catalog", {"products_per_vertical": products_per_vertical,
                                                       "views_per_product": 2,
                                                       "image_size": 40})
    dataset, _ = ingest_stage(config, labels.parent, root / "dataset")
    return Store(config, dataset, root)


@dataclass
class Server:
    process: subprocess.Popen
    http: str
    grpc: str
    log: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def apparel_command(config_file: Path, *args: str) -> list[str]:
    return [sys.executable, "-c", "from apparel.cli import main; main()", "--config", str(config_file), *args]


def start_server(store: Store, timeout_s: float = 600.0) -> Server:
    http_port, grpc_port = free_port(), free_port()
    log = store.root / f"server-{http_port}.log"
    env = {**os.environ, "BENTOML_DO_NOT_TRACK": "True"}
    with log.open("w") as out:
        process = subprocess.Popen(apparel_command(store.root / "config.yaml", "serve", "--port", str(http_port),
                                                   "--grpc-port", str(grpc_port)),
                                   stdout=out, stderr=subprocess.STDOUT, env=env)
    server = Server(process, f"http://127.0.0.1:{http_port}", f"127.0.0.1:{grpc_port}", log)
    deadline = time.time() + timeout_s
    while True:
        try:
            if httpx.get(f"{server.http}/readyz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.time() > deadline:
            server.stop()
            raise AssertionError(f"server did not become ready:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


