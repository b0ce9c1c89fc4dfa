"""Serving throughput and latency: the service with adaptive batching vs the same service with batching
off (max_batch_size 1), the gRPC path of the batched service, the batched service running the eager
model instead of its frozen graph (``serving.frozen_graph`` off), and the in-process runtime (decode +
one batched forward pass of the frozen graph, the limit), at concurrency 1, 8 and 32, same model and
images, one run.

Each setting runs ``--repeats`` windows of ``--seconds``; throughput is images answered per second
(one image per request), reported as the mean with a 95% interval over the windows. The load
generator runs on the same machine as the server (threads in this process), so absolute numbers
include its cost; the ratios compare like with like.

    python benchmarks/serving.py [--seconds 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA, write_result  # noqa: E402

CONCURRENCY = (1, 8, 32)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def query_images(limit: int = 64) -> tuple[list[bytes], str]:
    folder = SHARED_DATA / "fashion-products" / "images"
    if folder.is_dir():
        return [p.read_bytes() for p in sorted(folder.glob("*.jpg"))[:limit]], "fashion-products (real photos)"
    return [], "synthetic catalog"


def registered_champion(root: Path) -> tuple[Path, list[bytes], str]:
    """A default-size model (resnet18, the configured input size and dimension; weights do not change speed)
    registered as champion with its catalog index, in a temporary store; returns its config file."""
    import mlflow
    import yaml
    from mlflow import MlflowClient

    from apparel.config import load_config
    from apparel.index import build_catalog_index, catalog_rows, log_catalog_index
    from apparel.inference import InferenceRuntime
    from apparel.models.attributes import ApparelNet, ApparelSpec
    from apparel.models.embedding import EmbeddingSpec
    from apparel.registry.aliases import move_alias
    from apparel.registry.pyfunc import log_apparel_model
    from apparel.registry.tracking import configure
    from apparel.stages.data import generate_stage, ingest_stage
    from apparel.train.attributes import attribute_specs

    overrides = {"registry": {"tracking_uri": f"sqlite:///{root / 'mlflow.db'}",
                              "artifact_root": str(root / "artefacts")},
                 "serving": {"request_log_dir": str(root / "requests"), "poll_interval_s": 0,
                             "max_body_bytes": 16 * 1024 * 1024}}
    (root / "config.yaml").write_text(yaml.safe_dump(overrides))
    config = load_config(root / "config.yaml", environ={})
    labels = generate_stage(config, root / "catalog", {"products_per_vertical": 40, "views_per_product": 2})
    dataset, _ = ingest_stage(config, labels.parent, root / "dataset")
    torch.manual_seed(0)
    specs = attribute_specs(dataset, ["colour", "pattern"])
    model = ApparelNet(ApparelSpec(EmbeddingSpec("resnet18", config.model.embedding_dim, config.model.image_size),
                                   specs)).eval()
    model.save(root / "model")
    runtime = InferenceRuntime(model)
    configure(config.registry)
    experiment = mlflow.get_experiment_by_name(config.registry.experiment).experiment_id
    images = dataset.manifest["image"].tolist()
    with mlflow.start_run(experiment_id=experiment) as run:
        info = log_apparel_model(root / "model", config.registry.model_name, np.stack([runtime.prepare(images[0])]),
                                 config.registry.pip_requirements)
    version, name = str(info.registered_model_version), config.registry.model_name
    client = MlflowClient()
    client.set_model_version_tag(name, version, "run_id", run.info.run_id)
    catalog = build_catalog_index(runtime.predict(images).embeddings, catalog_rows(dataset.manifest, ["colour",
                                  "pattern"]), name, version, config.index)
    log_catalog_index(catalog, run.info.run_id)
    move_alias(client, name, "champion", version, "benchmark")
    queries, source = query_images()
    if not queries:
        queries = [Path(p).read_bytes() for p in images[:64]]
    return root / "config.yaml", queries, source


class Server:
    def __init__(self, config_file: Path, max_batch_size: int, frozen_graph: bool = True) -> None:
        import httpx

        self.http_port, self.grpc_port = free_port(), free_port()
        env = {**os.environ, "APPAREL__SERVING__MAX_BATCH_SIZE": str(max_batch_size), "BENTOML_DO_NOT_TRACK": "True",
               "APPAREL__SERVING__FROZEN_GRAPH": str(frozen_graph).lower()}
        self.log = config_file.parent / f"server-{max_batch_size}-{frozen_graph}.log"
        command = [sys.executable, "-c", "from apparel.cli import main; main()", "--config", str(config_file), "serve",
                   "--port", str(self.http_port), "--grpc-port", str(self.grpc_port)]
        with self.log.open("w") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        self.url = f"http://127.0.0.1:{self.http_port}"
        deadline = time.time() + 600
        while True:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"server did not start:\n{self.log.read_text()[-2000:]}")
            time.sleep(0.5)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def http_caller(url: str):
    import httpx

    local = threading.local()

    def call(image: bytes) -> bool:
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=120)  # one connection per client thread
        try:
            return local.client.post(f"{url}/embed", files=[("images", ("q.jpg", image))]).status_code == 200
        except httpx.HTTPError:
            return False
    return call


def grpc_caller(target: str):
    import grpc

    from apparel.serving.stubs import apparel_pb2, apparel_pb2_grpc

    channel = grpc.insecure_channel(target)
    stub = apparel_pb2_grpc.ApparelStub(channel)

    def call(image: bytes) -> bool:
        try:
            return len(stub.Embed(apparel_pb2.ImagesRequest(images=[image]), timeout=120).embeddings) == 1
        except grpc.RpcError:
            return False
    return call


def load(call, images: list[bytes], concurrency: int, seconds: float) -> dict[str, float]:
    """``concurrency`` closed-loop clients for ``seconds``: images/s, p50/p99 latency (ms), errors."""
    latencies: list[float] = []
    errors = [0]
    stop = time.monotonic() + seconds

    def client(offset: int) -> None:
        i = offset
        while time.monotonic() < stop:
            start = time.perf_counter()
            ok = call(images[i % len(images)])
            latencies.append(time.perf_counter() - start)
            errors[0] += not ok
            i += concurrency

    threads = [threading.Thread(target=client, args=(n,)) for n in range(concurrency)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    ms = np.asarray(latencies) * 1000
    return {"throughput": len(ms) / elapsed, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "errors": errors[0], "requests": len(ms)}


def served_runtime(config_file: Path):
    from apparel.config import load_config
    from apparel.serving.model import load_served_model, resolve

    config = load_config(config_file, environ={})
    served = load_served_model(config, *resolve(config))
    served.batcher.close()
    return served.runtime


def raw_runtime(runtime, images: list[bytes], batch: int, seconds: float) -> dict[str, float]:
    """In-process: decode ``batch`` images and run them through one forward pass, back to back."""
    runtime.predict(images[:batch])  # warm-up: the first pass of a new batch size builds oneDNN kernels
    done, stop, began = 0, time.monotonic() + seconds, time.monotonic()
    latencies = []
    while time.monotonic() < stop:
        start = time.perf_counter()
        chunk = [images[(done + j) % len(images)] for j in range(batch)]
        runtime.predict(chunk)
        latencies.append(time.perf_counter() - start)
        done += batch
    ms = np.asarray(latencies) * 1000
    return {"throughput": done / (time.monotonic() - began), "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "errors": 0, "requests": len(ms)}


def repeated(run, repeats: int) -> dict[str, float]:
    windows = [run() for _ in range(repeats)]
    throughput = np.asarray([w["throughput"] for w in windows])
    half = 1.96 * throughput.std(ddof=1) / np.sqrt(len(throughput)) if len(throughput) > 1 else 0.0
    return {"throughput": float(throughput.mean()), "throughput_ci95": float(half),
            "p50_ms": float(np.median([w["p50_ms"] for w in windows])),
            "p99_ms": float(np.max([w["p99_ms"] for w in windows])),
            "errors": int(sum(w["errors"] for w in windows)), "requests": int(sum(w["requests"] for w in windows))}


def batch_counters(url: str) -> tuple[float, float]:
    """(forward passes, images through them) from the service's /metrics."""
    import httpx

    values = {line.split()[0]: float(line.split()[-1]) for line in httpx.get(f"{url}/metrics").text.splitlines()
              if line.startswith(("apparel_batches ", "apparel_batched_images "))}
    return values.get("apparel_batches", 0.0), values.get("apparel_batched_images", 0.0)


def sweep(caller, images: list[bytes], seconds: float, repeats: int, url: str) -> dict[str, dict[str, float]]:
    """Each concurrency's windows, with the mean images per forward pass the server actually ran."""
    results = {}
    for c in CONCURRENCY:
        caller(images[0])  # warm-up
        time.sleep(1.5)  # the service exports its counters every second
        passes, done = batch_counters(url)
        results[f"c{c}"] = repeated(lambda c=c: load(caller, images, c, seconds), repeats)
        time.sleep(1.5)
        passes_after, done_after = batch_counters(url)
        results[f"c{c}"]["mean_batch_size"] = (done_after - done) / max(passes_after - passes, 1)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(2)
    load_before = os.getloadavg()
    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        config_file, images, source = registered_champion(Path(folder))
        for name, batch_size, frozen in (("http_batched", 32, True), ("http_naive", 1, True),
                                         ("http_batched_eager", 32, False)):
            server = Server(config_file, batch_size, frozen)
            try:
                results[name] = sweep(http_caller(server.url), images, args.seconds, args.repeats, server.url)
                if name == "http_batched":
                    results["grpc_batched"] = sweep(grpc_caller(f"127.0.0.1:{server.grpc_port}"), images,
                                                    args.seconds, args.repeats, server.url)
            finally:
                server.stop()
        runtime = served_runtime(config_file)
        results["raw_in_process"] = {f"c{c}": repeated(lambda c=c: raw_runtime(runtime, images, c, args.seconds),
                                                       args.repeats) for c in CONCURRENCY}
    c32 = {name: setting["c32"] for name, setting in results.items()}
    summary = {
        "batched_over_naive_throughput": round(c32["http_batched"]["throughput"] / c32["http_naive"]["throughput"], 3),
        "served_over_raw_throughput": round(c32["http_batched"]["throughput"] / c32["raw_in_process"]["throughput"],
                                            3),
        "grpc_over_http_throughput": round(c32["grpc_batched"]["throughput"] / c32["http_batched"]["throughput"], 3),
        "frozen_over_eager_throughput": round(c32["http_batched"]["throughput"]
                                              / c32["http_batched_eager"]["throughput"], 3),
        "p99_ms_c32": round(c32["http_batched"]["p99_ms"], 1),
        "errors": int(sum(s["errors"] for setting in results.values() for s in setting.values())),
    }
    write_result("serving", {"summary": summary, "results": results, "queries": source,
                             "setup": {"seconds_per_window": args.seconds, "repeats": args.repeats,
                                       "images_per_request": 1, "max_batch_size": {"batched": 32, "naive": 1},
                                       "raw": "in-process decode + one frozen-graph pass of c images (batch = c)",
                                       "load_average_before": load_before, "load_average_after": os.getloadavg()}})


if __name__ == "__main__":
    main()
