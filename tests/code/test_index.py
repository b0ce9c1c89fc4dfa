"""The catalog index: exact or approximate by size, filters, predicted vertical, files, MLflow, GPU branching."""

from pathlib import Path

import faiss
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from apparel import index as index_module
from apparel.config import IndexConfig, load_config
from apparel.index import (
    CatalogIndex,
    IndexMismatch,
    build_catalog_index,
    choose_factory,
    fetch_catalog_index,
    log_catalog_index,
    wants_gpu,
)
from apparel.registry.tracking import configure

DIM = 16
VERTICALS = ("tops", "bottoms", "shoes", "bags")
SMALL = IndexConfig(exact_max_size=500, ivfpq_min_size=3000, ivfpq_factory="IVF16,PQ16x4", ivfpq_search={"nprobe": 8},
                    hnsw_search={"efSearch": 64})


@pytest.fixture(autouse=True)
def one_faiss_thread():
    """OpenMP threads spin-wait: on a shared 2-core machine one thread is much faster."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(threads)


def clustered(n: int, seed: int = 0) -> tuple[np.ndarray, pd.DataFrame]:
    """Unit vectors in one cluster per vertical, and catalog rows whose vertical is the cluster."""
    centres = np.random.default_rng(0).normal(size=(len(VERTICALS), DIM))
    rng = np.random.default_rng(seed)
    cluster = rng.integers(len(VERTICALS), size=n)
    vectors = centres[cluster] + 0.5 * rng.normal(size=(n, DIM))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rows = pd.DataFrame({"product_id": [f"p{i}" for i in range(n)], "vertical": np.array(VERTICALS)[cluster],
                         "image": [f"/catalog/{i}.jpg" for i in range(n)],
                         "colour": [None if i % 4 == 0 else ("red", "blue")[i % 2] for i in range(n)]})
    return vectors.astype(np.float32), rows


def exact_neighbours(vectors: np.ndarray, queries: np.ndarray, k: int, allowed: np.ndarray) -> np.ndarray:
    scores = queries @ vectors.T
    scores[:, ~allowed] = -np.inf
    return np.argsort(-scores, axis=1)[:, :k]


@pytest.mark.parametrize(("size", "factory", "kind"), [(400, "Flat", faiss.IndexFlat),
                                                       (1500, "HNSW32", faiss.IndexHNSWFlat),
                                                       (4000, "IVF16,PQ16x4", faiss.IndexIVFPQ)])
def test_exact_below_the_threshold_then_hnsw_then_ivfpq(size: int, factory: str, kind: type) -> None:
    vectors, rows = clustered(size)
    catalog = build_catalog_index(vectors, rows, "m", "7", SMALL)
    assert catalog.meta.factory == factory and isinstance(catalog.index, kind)
    assert catalog.index.metric_type == faiss.METRIC_INNER_PRODUCT
    assert catalog.meta.size == size and catalog.meta.embedding_dim == DIM
    assert catalog.meta.faiss_version == faiss.__version__
    assert catalog.meta.search_params == choose_factory(size, SMALL)[1]
    _, positions = catalog.search(vectors[:50], 10)
    truth = exact_neighbours(vectors, vectors[:50], 10, np.ones(size, bool))
    recall = np.mean([len(set(p) & set(t)) / 10 for p, t in zip(positions, truth, strict=True)])
    assert recall >= (0.999 if factory == "Flat" else 0.5), recall


def test_default_thresholds_keep_small_catalogs_exact() -> None:
    config = IndexConfig()
    assert choose_factory(config.exact_max_size, config)[0] == "Flat"
    assert choose_factory(config.exact_max_size + 1, config) == (config.hnsw_factory, config.hnsw_search)
    assert choose_factory(config.ivfpq_min_size, config) == (config.ivfpq_factory, config.ivfpq_search)


@pytest.mark.parametrize("size", [400, 1500, 4000])
@pytest.mark.parametrize("share", [0.5, 0.03])
def test_filters_return_only_allowed_rows_and_find_the_nearest_of_them(size: int, share: float) -> None:
    vectors, rows = clustered(size)
    catalog = build_catalog_index(vectors, rows, "m", "1", SMALL)
    allowed = np.random.default_rng(1).random(size) < share
    scores, positions = catalog.search(vectors[:40], 10, allowed)
    assert (positions >= 0).all() and allowed[positions].all()
    assert (np.diff(scores, axis=1) <= 1e-6).all()  # best first
    truth = exact_neighbours(vectors, vectors[:40], 10, allowed)
    recall = np.mean([len(set(p) & set(t)) / 10 for p, t in zip(positions, truth, strict=True)])
    exact = size == 400 or (share < 0.1 and size < 4000)  # a small share of HNSW rows is searched exactly
    assert recall >= (0.999 if exact else 0.5), recall


def test_a_filter_by_vertical_and_attribute_from_the_rows() -> None:
    vectors, rows = clustered(1500)
    catalog = build_catalog_index(vectors, rows, "m", "1", SMALL)
    allowed = ((catalog.rows["vertical"] == "shoes") & (catalog.rows["colour"] == "red")).to_numpy()
    _, positions = catalog.search(vectors[:5], 8, allowed)
    hits = catalog.rows.iloc[positions.ravel()]
    assert set(hits["vertical"]) == {"shoes"} and set(hits["colour"]) == {"red"}


def test_filters_still_work_once_faiss_torch_utils_is_imported() -> None:
    """Regression: pytorch-metric-learning imports faiss.contrib.torch_utils, whose Index.search has no
    ``params``; every filtered search then failed with a TypeError (seen in the full test run)."""
    import faiss.contrib.torch_utils  # noqa: F401 - the import is the point: it patches faiss.Index

    vectors, rows = clustered(1500)
    catalog = build_catalog_index(vectors, rows, "m", "1", SMALL)
    allowed = (catalog.rows["vertical"] == "shoes").to_numpy()
    _, positions = catalog.search(vectors[:5], 8, allowed)
    found = positions[positions >= 0]
    assert found.size and allowed[found].all()


def test_an_empty_filter_or_a_short_catalog_pads_with_minus_one() -> None:
    vectors, rows = clustered(30)
    catalog = build_catalog_index(vectors, rows, "m", "1", SMALL)
    scores, positions = catalog.search(vectors[:3], 5, np.zeros(30, bool))
    assert (positions == -1).all() and np.isneginf(scores).all()
    scores, positions = catalog.search(vectors[:3], 40)
    assert (positions[:, 30:] == -1).all() and np.isneginf(scores[:, 30:]).all() and (positions[:, :30] >= 0).all()


def test_bad_queries_and_masks_are_refused() -> None:
    vectors, rows = clustered(30)
    catalog = build_catalog_index(vectors, rows, "m", "1", SMALL)
    with pytest.raises(ValueError, match=r"queries must be \(n, 16\)"):
        catalog.search(np.zeros((2, 8), np.float32), 3)
    with pytest.raises(ValueError, match="k must be at least 1"):
        catalog.search(vectors[:1], 0)
    with pytest.raises(ValueError, match="bool mask of 30 rows"):
        catalog.search(vectors[:1], 3, np.ones(29, bool))
    with pytest.raises(ValueError, match="one embedding per catalog row"):
        build_catalog_index(vectors, rows.iloc[:10], "m", "1", SMALL)


@pytest.mark.parametrize("size", [400, 1500])
def test_predicted_vertical_is_the_majority_of_the_neighbours(size: int) -> None:
    vectors, rows = clustered(size)
    catalog = build_catalog_index(vectors, rows, "m", "1", SMALL.model_copy(update={"vertical_k": 7}))
    queries, truth = clustered(200, seed=5)  # same clusters, new points
    predicted = catalog.predict_vertical(queries)
    assert len(predicted) == 200 and set(predicted) <= set(VERTICALS)
    assert np.mean(np.array(predicted) == truth["vertical"].to_numpy()) >= 0.9
    _, positions = catalog.search(queries, 7)
    majority = [catalog.rows["vertical"].iloc[p].value_counts().max() for p in positions]
    chosen = [(catalog.rows["vertical"].iloc[p] == v).sum() for p, v in zip(positions, predicted, strict=True)]
    assert majority == chosen


def test_ties_go_to_the_nearest_neighbours_vertical() -> None:
    vectors = np.eye(4, DIM, dtype=np.float32)
    rows = pd.DataFrame({"product_id": list("abcd"), "vertical": ["bags", "shoes", "shoes", "bags"],
                         "image": list("abcd")})
    catalog = build_catalog_index(vectors, rows, "m", "1", SMALL.model_copy(update={"vertical_k": 2}))
    query = np.zeros((1, DIM), np.float32)
    query[0, :2] = [0.8, 0.6]
    assert catalog.predict_vertical(query) == ["bags"]


@pytest.mark.parametrize("size", [400, 1500, 4000])
def test_save_and_load_round_trip(size: int, tmp_path: Path) -> None:
    vectors, rows = clustered(size)
    catalog = build_catalog_index(vectors, rows, "apparel-unified", "3", SMALL)
    loaded = CatalogIndex.load(catalog.save(tmp_path / "index"), expect_version="3", expect_dim=DIM)
    assert loaded.meta == catalog.meta
    pd.testing.assert_frame_equal(loaded.rows, catalog.rows)
    for allowed in (None, catalog.rows["colour"].eq("red").to_numpy()):
        for before, after in zip(catalog.search(vectors[:20], 5, allowed), loaded.search(vectors[:20], 5, allowed),
                                 strict=True):
            np.testing.assert_array_equal(before, after)


def test_another_version_or_dimension_is_refused_in_one_line(tmp_path: Path) -> None:
    vectors, rows = clustered(50)
    folder = build_catalog_index(vectors, rows, "apparel-unified", "3", SMALL).save(tmp_path / "index")
    with pytest.raises(IndexMismatch, match="built for apparel-unified v3, not v4") as version:
        CatalogIndex.load(folder, expect_version="4")
    with pytest.raises(IndexMismatch, match="holds 16-d embeddings, the model makes 64-d ones") as dim:
        CatalogIndex.load(folder, expect_dim=64)
    assert "\n" not in str(version.value) and "\n" not in str(dim.value)
    faiss.write_index(faiss.IndexFlatIP(DIM), str(folder / index_module.INDEX_FILE))
    with pytest.raises(IndexMismatch, match="inconsistent: 0 16-d vectors, 50 rows"):
        CatalogIndex.load(folder)
    with pytest.raises(FileNotFoundError, match="meta.json missing"):
        CatalogIndex.load(tmp_path / "empty")


def test_logged_with_a_version_run_and_fetched_back_through_a_real_store(tmp_path: Path) -> None:
    config = load_config(environ={"APPAREL__REGISTRY__TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
                                  "APPAREL__REGISTRY__ARTIFACT_ROOT": str(tmp_path / "artefacts"),
                                  "APPAREL__INDEX__VERTICAL_K": "5"})
    experiment = configure(config.registry)
    client, name = MlflowClient(), config.registry.model_name
    client.create_registered_model(name)
    versions = []
    for _ in range(2):
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.log_param("kind", "test")
        version = client.create_model_version(name, f"runs:/{run.info.run_id}/model", run.info.run_id,
                                              tags={"run_id": run.info.run_id})
        versions.append((str(version.version), run.info.run_id))
    vectors, rows = clustered(300)
    (indexed, run_id), (bare, _) = versions
    catalog = build_catalog_index(vectors, rows, name, indexed, config.index)
    log_catalog_index(catalog, run_id)
    assert sorted(a.path for a in client.list_artifacts(run_id, "index")) == [
        "index/catalog.faiss", "index/meta.json", "index/rows.parquet"]
    fetched = fetch_catalog_index(config, indexed)
    assert fetched.meta == catalog.meta and fetched.vertical_k == 5
    pd.testing.assert_frame_equal(fetched.rows, catalog.rows)
    np.testing.assert_array_equal(fetched.search(vectors[:5], 3)[1], catalog.search(vectors[:5], 3)[1])
    with pytest.raises(FileNotFoundError, match=f"{name} v{bare} has no search index"):
        fetch_catalog_index(config, bare)


def test_gpu_only_where_faiss_has_one_and_the_factory_runs_there() -> None:
    assert not wants_gpu("Flat", None, 0) and wants_gpu("Flat", None, 1) and wants_gpu("IVF16,PQ16x4", True, 2)
    assert not wants_gpu("Flat", False, 1)
    assert not wants_gpu("HNSW32", None, 1) and not wants_gpu("HNSW32", True, 0)  # no GPU HNSW in faiss
    with pytest.raises(RuntimeError, match="faiss sees no GPU"):
        wants_gpu("Flat", True, 0)


def test_the_gpu_path_builds_on_the_device_and_keeps_the_cpu_copy(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    """faiss-gpu is not installed here: a stand-in device (a tagged CPU clone) checks what goes where."""
    moved = []

    def fake_to_gpu(index: faiss.Index) -> faiss.Index:
        moved.append(type(index).__name__)
        return faiss.clone_index(index)

    monkeypatch.setattr(index_module, "gpu_count", lambda: 1)
    monkeypatch.setattr(index_module, "to_gpu", fake_to_gpu)
    monkeypatch.setattr(faiss, "index_gpu_to_cpu", faiss.clone_index, raising=False)
    vectors, rows = clustered(4000)
    ivf = build_catalog_index(vectors, rows, "m", "1", SMALL)
    assert ivf.on_gpu and moved == ["IndexIVFPQ", "IndexIVFPQ"]  # trained and filled there, then searched there
    assert ivf.index.ntotal == 4000 and ivf._searcher is not ivf.index
    _, positions = ivf.search(vectors[:3], 5, ivf.rows["vertical"].eq("bags").to_numpy())  # selectors: CPU copy
    assert (ivf.rows["vertical"].iloc[positions.ravel()] == "bags").all()
    hnsw = build_catalog_index(vectors[:1500], rows.iloc[:1500], "m", "1", SMALL)
    assert not hnsw.on_gpu and len(moved) == 2
    assert not build_catalog_index(vectors[:50], rows.iloc[:50], "m", "1", SMALL, use_gpu=False).on_gpu
    assert CatalogIndex.load(ivf.save(tmp_path / "ivf")).on_gpu
