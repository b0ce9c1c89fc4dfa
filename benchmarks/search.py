"""The configured approximate index (config.index, the one the index stage builds) vs exact search.

Vectors are shaped like the model's real embeddings: a small embedding model (the project's own
training loop, triplet loss on articleType) embeds the fashion-products catalog; each benchmark
vector is one of those real embeddings plus Gaussian noise scaled to that embedding's distance to its
nearest other real embedding, renormalised. Queries are fresh draws of the same kind, never in the
index. Exact search (a flat inner-product index) is the baseline and the ground truth; both run in
this process on the same vectors, timed in alternation. Recall@10 is the share of the exact top 10
the approximate index returns.

    python benchmarks/search.py [--sizes 100000 1000000] [--queries 2000] [--threads 2]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA, write_result  # noqa: E402

from apparel.config import Config, load_config  # noqa: E402
from apparel.evaluation.embeddings import embed_frame  # noqa: E402
from apparel.index import CatalogIndex, build_catalog_index  # noqa: E402
from apparel.stages.data import ingest_stage  # noqa: E402
from apparel.train.embedding_job import fit_in_process, make_job  # noqa: E402

K = 10
BATCH = 256  # queries per search call in the batched measurement (a busy service's batch)


def real_embeddings(config: Config, steps: int) -> np.ndarray:
    """The fashion-products catalog embedded by a briefly trained model of the configured shape."""
    train = config.train.model_copy(update={"epochs": 1, "steps_per_epoch": steps, "batch_p": 8, "batch_k": 4})
    data = config.data.model_copy(update={"label": "articleType"})
    config = config.model_copy(update={"train": train, "data": data})
    with tempfile.TemporaryDirectory() as tmp:
        dataset, _ = ingest_stage(config, SHARED_DATA / "fashion-products", Path(tmp) / "ds", "fashion-products")
        model = fit_in_process(make_job(config, "search-bench", Path(tmp) / "ds", dataset.verticals, "triplet"))
        return embed_frame(model, dataset.manifest)


def centred(real: np.ndarray) -> np.ndarray:
    """A briefly trained model's embeddings share one large offset (pairwise cosine ~0.9999, so float32
    rounding would decide rankings); a trained model spreads them. Subtracting the mean and renormalising
    keeps their principal directions and neighbourhoods."""
    spread = real - real.mean(0)
    return (spread / np.linalg.norm(spread, axis=1, keepdims=True)).astype(np.float32)


def neighbour_scale(real: np.ndarray) -> np.ndarray:
    """Each real embedding's distance to its nearest other (non-identical) real embedding."""
    index = faiss.IndexFlatL2(real.shape[1])
    index.add(real)
    distances, _ = index.search(real, 8)
    distances = np.sqrt(np.maximum(distances, 0))
    distances[distances < 1e-4] = np.inf
    scale = distances.min(1)
    return np.where(np.isfinite(scale), scale, np.median(scale[np.isfinite(scale)]))


def draw(real: np.ndarray, scale: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n vectors around real embeddings: base + noise of norm ≈ the base's nearest-neighbour distance."""
    out = np.empty((n, real.shape[1]), np.float32)
    for start in range(0, n, 200_000):
        rows = rng.integers(len(real), size=min(200_000, n - start))
        noise = rng.standard_normal((len(rows), real.shape[1]), dtype=np.float32)
        chunk = real[rows] + noise * (scale[rows] / np.sqrt(real.shape[1]))[:, None]
        out[start : start + len(rows)] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    return out


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed_search(search, queries: np.ndarray, batch: int) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    results = [search(queries[i : i + batch]) for i in range(0, len(queries), batch)]
    return time.perf_counter() - start, np.concatenate(results)


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per query: the share of the exact top k found."""
    return np.array([len(set(f) & set(t)) / truth.shape[1] for f, t in zip(found, truth, strict=True)])


def bootstrap_ci(values: np.ndarray, rng: np.random.Generator, draws: int = 1000) -> list[float]:
    means = [values[rng.integers(len(values), size=len(values))].mean() for _ in range(draws)]
    return [round(float(np.percentile(means, 2.5)), 4), round(float(np.percentile(means, 97.5)), 4)]


def measure(exact: faiss.Index, catalog: CatalogIndex, queries: np.ndarray, repeats: int) -> dict:
    """Queries/s of both (batched and one query at a time), timed in alternation; the median of repeats."""
    systems = {"exact": lambda q: exact.search(q, K)[1], "ann": lambda q: catalog.search(q, K)[1]}
    single = queries[: max(20, len(queries) // 10)]
    times: dict[str, dict[str, list[float]]] = {name: {"batched": [], "single": []} for name in systems}
    found = {}
    for _ in range(repeats):
        for name, search in systems.items():
            seconds, found[name] = timed_search(search, queries, BATCH)
            times[name]["batched"].append(len(queries) / seconds)
            times[name]["single"].append(len(single) / timed_search(search, single, 1)[0])
    return {"found": found, **{f"{name}_qps_{mode}": round(float(np.median(rates)), 1)
                               for name, modes in times.items() for mode, rates in modes.items()}}


def ef_sweep(catalog: CatalogIndex, queries: np.ndarray, truth: np.ndarray, exact_qps: float) -> list[dict]:
    """Recall and speed of other efSearch values on the same graph: what the default was tuned on."""
    if "efSearch" not in catalog.meta.search_params:
        return []
    rows = []
    for ef in (16, 32, 48, 64, 96, 128):
        faiss.ParameterSpace().set_index_parameter(catalog.index, "efSearch", ef)
        seconds, found = timed_search(lambda q: catalog.index.search(q, K)[1], queries, BATCH)
        qps = len(queries) / seconds
        rows.append({"efSearch": ef, "recall_at_10": round(float(recall_at_k(found, truth).mean()), 4),
                     "qps_batched": round(qps, 1), "speedup_over_exact": round(qps / exact_qps, 2)})
    faiss.ParameterSpace().set_index_parameter(catalog.index, "efSearch", catalog.meta.search_params["efSearch"])
    return rows


def benchmark_size(config: Config, real: np.ndarray, scale: np.ndarray, n: int, n_queries: int, seed: int,
                   repeats: int) -> dict:
    rng = np.random.default_rng(seed)
    vectors, queries = draw(real, scale, n, rng), draw(real, scale, n_queries, rng)
    rows = pd.DataFrame({"product_id": np.arange(n).astype(str), "vertical": "tops", "image": ""})
    before = rss_mb()
    start = time.perf_counter()
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    exact_build = time.perf_counter() - start
    start = time.perf_counter()
    catalog = build_catalog_index(vectors, rows, "benchmark", "0", config.index, use_gpu=False)
    ann_build = time.perf_counter() - start
    grown = rss_mb() - before
    timing = measure(exact, catalog, queries, repeats)
    found = timing.pop("found")
    truth = found["exact"]  # exact search is the ground truth
    per_query = recall_at_k(found["ann"], truth)
    result = {
        "vectors": n, "queries": n_queries, "seed": seed, "factory": catalog.meta.factory,
        "search_params": catalog.meta.search_params, "build_params": config.index.hnsw_build,
        "recall_at_10": round(float(per_query.mean()), 4), "recall_at_10_ci95": bootstrap_ci(per_query, rng),
        "queries_all_found": round(float((per_query == 1.0).mean()), 4),
        **timing,
        "speedup_batched": round(timing["ann_qps_batched"] / timing["exact_qps_batched"], 2),
        "speedup_single": round(timing["ann_qps_single"] / timing["exact_qps_single"], 2),
        "exact_build_s": round(exact_build, 2), "ann_build_s": round(ann_build, 2),
        "exact_index_mb": round(faiss.serialize_index(exact).nbytes / 2**20, 1),
        "ann_index_mb": round(faiss.serialize_index(catalog.index).nbytes / 2**20, 1),
        "peak_rss_growth_mb": round(grown, 1),
        "ef_sweep": ef_sweep(catalog, queries, truth, timing["exact_qps_batched"]),
    }
    print(f"{n:>9,} vectors seed {seed}: recall@10 {result['recall_at_10']:.4f}, "
          f"{result['speedup_batched']}x exact batched ({result['ann_qps_batched']:.0f} vs "
          f"{result['exact_qps_batched']:.0f} q/s), {result['speedup_single']}x single, "
          f"build {ann_build:.0f} s", flush=True)
    return result


def load_average() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    torch.set_num_threads(ARGS.threads)
    faiss.omp_set_num_threads(ARGS.threads)
    config = load_config(environ={})
    load_before = load_average()
    start = time.perf_counter()
    if ARGS.reuse and ARGS.reuse.is_file():
        real = np.load(ARGS.reuse)
    else:
        real = real_embeddings(config, ARGS.train_steps)
        if ARGS.reuse:
            ARGS.reuse.parent.mkdir(parents=True, exist_ok=True)
            np.save(ARGS.reuse, real)
    embed_s = time.perf_counter() - start
    median_cosine = float(np.median((real @ real.T)[np.triu_indices(len(real), 1)]))
    real = centred(real)
    scale = neighbour_scale(real)
    runs = []
    for n in ARGS.sizes:
        seeds = range(ARGS.seeds) if n < 1_000_000 else range(ARGS.seeds_1m)
        queries = ARGS.queries if n < 1_000_000 else ARGS.queries_1m
        runs += [benchmark_size(config, real, scale, n, queries, seed, ARGS.repeats) for seed in seeds]
    largest = [r for r in runs if r["vectors"] == max(ARGS.sizes)]
    summary = {"ann_recall_at_10": round(float(np.mean([r["recall_at_10"] for r in largest])), 4),
               "ann_speedup_over_exact": round(float(np.mean([r["speedup_batched"] for r in largest])), 2),
               "ann_speedup_over_exact_single_query": round(float(np.mean([r["speedup_single"] for r in largest])), 2),
               "vectors": max(ARGS.sizes), "factory": largest[0]["factory"],
               "search_params": largest[0]["search_params"]}
    write_result("search", {
        "summary": summary, "runs": runs,
        "data": {"real_embeddings": int(len(real)), "embedding_dim": int(real.shape[1]),
                 "source": "fashion-products embedded by a model trained "
                           f"{ARGS.train_steps} triplet steps (articleType, 8x4 batches), then centred",
                 "noise": "per vector: a real embedding + N(0, (d_nn / sqrt(dim))^2) per dimension, d_nn its "
                          "distance to the nearest other real embedding; renormalised",
                 "median_nn_distance": round(float(np.median(scale)), 4),
                 "median_pairwise_cosine_before_centring": round(median_cosine, 6),
                 "median_pairwise_cosine_after_centring": round(float(np.median(
                     (real @ real.T)[np.triu_indices(len(real), 1)])), 4), "embed_and_train_s": round(embed_s, 1)},
        "settings": {"k": K, "batch": BATCH, "threads": ARGS.threads, "repeats": ARGS.repeats,
                     "timing": "median queries/s over repeats, exact and ANN timed in alternation; "
                               "'single' sends one query per call",
                     "headline": "ann_speedup_over_exact is the batched ratio (the smaller one)"},
        "load": {"before": load_before, "after": load_average()},
    })


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--queries-1m", type=int, default=500, help="queries at 1M (exact search is slow there)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds below 1M vectors")
    parser.add_argument("--seeds-1m", type=int, default=1, help="seeds at 1M vectors (each build takes minutes)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-steps", type=int, default=60)
    parser.add_argument("--reuse", type=Path, help="keep the real embeddings in this .npy between runs (tuning)")
    ARGS = parser.parse_args()
    main()
