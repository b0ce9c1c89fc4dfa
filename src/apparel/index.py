"""The catalog search index of one registered model version, and the exact search evaluation uses.

A :class:`CatalogIndex` is a faiss index over the unit embeddings of every catalog image, the catalog
row each position stands for, and what it was built with (model name and version, embedding
dimension, faiss version, factory string, search parameters). Small catalogs are searched exactly;
larger ones through HNSW, the largest through IVF-PQ (``config.index``). Saved, it is a folder of
three files, logged under ``index/`` of its model version's MLflow run.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from apparel.config import Config, IndexConfig
from apparel.extras import import_faiss

faiss = import_faiss()

INDEX_FILE, ROWS_FILE, META_FILE = "catalog.faiss", "rows.parquet", "meta.json"
ARTIFACT_PATH = "index"
ROW_COLUMNS = ("product_id", "vertical", "image")
# Below this share of allowed rows a filtered approximate search misses too many neighbours
# (the graph walk or the probed lists hold too few allowed rows): those rows are searched exactly.
SELECTOR_MIN_FRACTION = 0.1


class IndexMismatch(ValueError):
    """An index that does not belong to the model it is asked to serve."""


@dataclass
class IndexMeta:
    model_name: str
    model_version: str
    embedding_dim: int
    faiss_version: str
    factory: str
    search_params: dict
    size: int

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True))

    @classmethod
    def load(cls, path: Path) -> IndexMeta:
        return cls(**json.loads(path.read_text()))


def gpu_count() -> int:
    """faiss-cpu and faiss-gpu share one import; only the GPU build can report a GPU."""
    return faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0


def gpu_capable(factory: str) -> bool:
    """faiss has GPU versions of flat and IVF indexes, none of HNSW."""
    return not factory.startswith("HNSW")


def wants_gpu(factory: str, use_gpu: bool | None, gpus: int) -> bool:
    """Whether an index of ``factory`` goes on GPU: ``use_gpu`` None means where one is seen."""
    if use_gpu is False or not gpu_capable(factory):
        return False
    if use_gpu and gpus == 0:
        raise RuntimeError("index.use_gpu is true but faiss sees no GPU (is faiss-gpu installed?)")
    return gpus > 0


def to_gpu(index: faiss.Index) -> faiss.Index:
    resources = faiss.StandardGpuResources()
    gpu_index = faiss.index_cpu_to_gpu(resources, 0, index)
    gpu_index.referenced_objects = [resources]  # the resources must live as long as the index
    return gpu_index


def choose_factory(size: int, config: IndexConfig) -> tuple[str, dict]:
    """Exact search for small catalogs, HNSW above ``exact_max_size``, IVF-PQ from ``ivfpq_min_size``."""
    if size <= config.exact_max_size:
        return "Flat", {}
    if size < config.ivfpq_min_size:
        return config.hnsw_factory, dict(config.hnsw_search)
    return config.ivfpq_factory, dict(config.ivfpq_search)


def catalog_rows(manifest: pd.DataFrame, attributes: list[str]) -> pd.DataFrame:
    """What a search result shows of each catalog image: product, vertical, image and attribute labels."""
    return manifest[[*ROW_COLUMNS, *attributes]].reset_index(drop=True)


def _vectors(embeddings: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(embeddings, dtype=np.float32)


def _apply_search_params(index: faiss.Index, params: dict) -> None:
    space = faiss.GpuParameterSpace() if hasattr(faiss, "GpuIndex") and isinstance(index, faiss.GpuIndex) \
        else faiss.ParameterSpace()
    for name, value in params.items():
        space.set_index_parameter(index, name, value)


def _train_and_add(index: faiss.Index, vectors: np.ndarray, train_sample: int) -> None:
    if not index.is_trained:
        rng = np.random.default_rng(0)
        sample = vectors if len(vectors) <= train_sample else vectors[rng.choice(len(vectors), train_sample, False)]
        index.train(sample)
    index.add(vectors)


@dataclass
class CatalogIndex:
    """A faiss index (always the CPU copy: what is saved), the catalog row of each position, its metadata."""

    index: faiss.Index
    rows: pd.DataFrame
    meta: IndexMeta
    vertical_k: int = 10
    on_gpu: bool = False
    _searcher: faiss.Index = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if hasattr(self.index, "make_direct_map"):
            self.index.make_direct_map()  # IVF: rows can be reconstructed for filtered exact search
        _apply_search_params(self.index, self.meta.search_params)
        self._searcher = self.index
        if self.on_gpu:
            self._searcher = to_gpu(self.index)
            _apply_search_params(self._searcher, self.meta.search_params)

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """(similarities, positions) of the k nearest rows, best first, positions -1 past the last hit.
        ``allowed`` (a bool per row) keeps only those rows: vertical and attribute filters."""
        queries = _vectors(queries)
        if queries.ndim != 2 or queries.shape[1] != self.meta.embedding_dim:
            raise ValueError(f"queries must be (n, {self.meta.embedding_dim}) embeddings, got {queries.shape}")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if allowed is None:
            scores, positions = self._searcher.search(queries, k)
        else:
            scores, positions = self._filtered_search(queries, k, self._allowed_mask(allowed))
        scores[positions < 0] = -np.inf
        return scores, positions

    def _allowed_mask(self, allowed: np.ndarray) -> np.ndarray:
        allowed = np.asarray(allowed)
        if allowed.dtype != bool or allowed.shape != (self.meta.size,):
            raise ValueError(f"allowed must be a bool mask of {self.meta.size} rows, got {allowed.dtype} "
                             f"{allowed.shape}")
        return allowed

    def _filtered_search(self, queries: np.ndarray, k: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """faiss's ID selector (CPU only) where enough rows are allowed; exact search over a small subset."""
        fraction = allowed.mean()
        if fraction == 0:
            return np.full((len(queries), k), -np.inf, np.float32), np.full((len(queries), k), -1, np.int64)
        if self.meta.factory != "Flat" and fraction < SELECTOR_MIN_FRACTION:
            return self._subset_search(queries, k, np.flatnonzero(allowed))
        bitmap = np.packbits(allowed, bitorder="little")
        selector = faiss.IDSelectorBitmap(self.meta.size, faiss.swig_ptr(bitmap))
        # pytorch-metric-learning imports faiss.contrib.torch_utils, which swaps Index.search for a version
        # without ``params``; it keeps faiss's own as ``search_numpy``.
        search = getattr(self.index, "search_numpy", self.index.search)
        return search(queries, k, params=self._selector_params(selector, fraction))

    def _selector_params(self, selector: faiss.IDSelector, fraction: float) -> faiss.SearchParameters:
        """The configured search parameters widened by 1/fraction: as many allowed candidates as unfiltered."""
        widened = {name: int(np.ceil(value / fraction)) for name, value in self.meta.search_params.items()}
        if "nprobe" in widened:
            widened["nprobe"] = min(widened["nprobe"], faiss.extract_index_ivf(self.index).nlist)
            return faiss.SearchParametersIVF(sel=selector, **widened)
        if "efSearch" in widened:
            return faiss.SearchParametersHNSW(sel=selector, **widened)
        return faiss.SearchParameters(sel=selector)

    def _subset_search(self, queries: np.ndarray, k: int, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        subset = faiss.IndexFlatIP(self.meta.embedding_dim)
        subset.add(self.index.reconstruct_batch(ids))
        scores, local = subset.search(queries, k)
        return scores, np.where(local >= 0, ids[np.maximum(local, 0)], -1)

    def vectors(self) -> np.ndarray:
        """Every catalog vector in row order, as the index stores it (exact for flat and HNSW indexes)."""
        return self.index.reconstruct_n(0, self.index.ntotal)

    def predict_vertical(self, embeddings: np.ndarray) -> list[str]:
        """The majority vertical of each embedding's ``vertical_k`` nearest catalog images (ties: the nearest)."""
        _, positions = self.search(embeddings, self.vertical_k)
        verticals = self.rows["vertical"].to_numpy()
        return [Counter(verticals[hits[hits >= 0]]).most_common(1)[0][0] for hits in positions]

    def save(self, folder: Path | str) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.index, str(folder / INDEX_FILE))
        self.rows.to_parquet(folder / ROWS_FILE, index=False)
        self.meta.save(folder / META_FILE)
        return folder

    @classmethod
    def load(cls, folder: Path | str, expect_version: str | None = None, expect_dim: int | None = None,
             vertical_k: int = 10, use_gpu: bool | None = None) -> CatalogIndex:
        """Refuses (:class:`IndexMismatch`, one line) an index of another model version or dimension."""
        folder = Path(folder)
        missing = [name for name in (INDEX_FILE, ROWS_FILE, META_FILE) if not (folder / name).is_file()]
        if missing:
            raise FileNotFoundError(f"no search index at {folder} ({', '.join(missing)} missing)")
        meta = IndexMeta.load(folder / META_FILE)
        if expect_version is not None and str(expect_version) != meta.model_version:
            raise IndexMismatch(f"search index at {folder} was built for {meta.model_name} v{meta.model_version}, "
                                f"not v{expect_version}")
        if expect_dim is not None and expect_dim != meta.embedding_dim:
            raise IndexMismatch(f"search index at {folder} holds {meta.embedding_dim}-d embeddings, the model "
                                f"makes {expect_dim}-d ones")
        index, rows = faiss.read_index(str(folder / INDEX_FILE)), pd.read_parquet(folder / ROWS_FILE)
        if index.d != meta.embedding_dim or index.ntotal != meta.size or len(rows) != meta.size:
            raise IndexMismatch(f"search index at {folder} is inconsistent: {index.ntotal} {index.d}-d vectors, "
                                f"{len(rows)} rows, metadata says {meta.size} {meta.embedding_dim}-d")
        return cls(index, rows, meta, vertical_k, wants_gpu(meta.factory, use_gpu, gpu_count()))


def build_catalog_index(embeddings: np.ndarray, rows: pd.DataFrame, model_name: str, model_version: str,
                        config: IndexConfig, use_gpu: bool | None = None) -> CatalogIndex:
    """The index of one model version over its catalog: ``rows[i]`` is the image of ``embeddings[i]``.
    ``use_gpu`` None follows ``config.use_gpu``."""
    vectors = _vectors(embeddings)
    if vectors.ndim != 2 or len(vectors) == 0 or len(vectors) != len(rows):
        raise ValueError(f"need one embedding per catalog row: {vectors.shape} embeddings, {len(rows)} rows")
    factory, search_params = choose_factory(len(vectors), config)
    index = faiss.index_factory(vectors.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
    if factory.startswith("HNSW"):
        faiss.downcast_index(index).hnsw.efConstruction = config.hnsw_build.get("efConstruction", 40)
    if use_gpu is None and config.use_gpu != "auto":
        use_gpu = config.use_gpu
    on_gpu = wants_gpu(factory, use_gpu, gpu_count())
    if on_gpu:  # train and add on GPU, keep the CPU copy (what is written)
        gpu_index = to_gpu(index)
        _train_and_add(gpu_index, vectors, config.train_sample)
        index = faiss.index_gpu_to_cpu(gpu_index)
    else:
        _train_and_add(index, vectors, config.train_sample)
    meta = IndexMeta(model_name, str(model_version), vectors.shape[1], faiss.__version__, factory, search_params,
                     len(vectors))
    return CatalogIndex(index, rows.reset_index(drop=True), meta, config.vertical_k, on_gpu)


def log_catalog_index(catalog_index: CatalogIndex, run_id: str) -> None:
    """Logs the index under ``index/`` of ``run_id`` (the model version's run) in the configured MLflow store."""
    from mlflow import MlflowClient

    from apparel.registry.tracking import retry

    with tempfile.TemporaryDirectory() as folder:
        catalog_index.save(folder)
        retry(MlflowClient().log_artifacts)(run_id, folder, ARTIFACT_PATH)


def fetch_catalog_index(config: Config, model_version: str) -> CatalogIndex:
    """The index logged with ``model_version``'s run; FileNotFoundError when that version has none."""
    import mlflow
    from mlflow import MlflowClient

    from apparel.registry.tracking import configure, tracking_uri

    configure(config.registry)
    client, name = MlflowClient(), config.registry.model_name
    version = client.get_model_version(name, str(model_version))
    run_id = version.tags.get("run_id") or version.run_id
    if not run_id or not client.list_artifacts(run_id, ARTIFACT_PATH):
        raise FileNotFoundError(f"{name} v{model_version} has no search index (only a champion gets one)")
    with tempfile.TemporaryDirectory() as folder:
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=ARTIFACT_PATH, dst_path=folder,
                                                   tracking_uri=tracking_uri(config.registry))
        catalog_index = CatalogIndex.load(path, str(model_version), vertical_k=config.index.vertical_k,
                                          use_gpu=None if config.index.use_gpu == "auto" else config.index.use_gpu)
    if catalog_index.meta.model_name != name:
        raise IndexMismatch(f"search index of {name} v{model_version} was built for {catalog_index.meta.model_name}")
    return catalog_index


def build_index(embeddings: np.ndarray, use_gpu: bool | None = None) -> faiss.Index:
    """A bare exact inner-product index (what evaluation scores retrieval with)."""
    vectors = _vectors(embeddings)
    index = faiss.IndexFlatIP(vectors.shape[1])
    if wants_gpu("Flat", use_gpu, gpu_count()):
        index = to_gpu(index)
    index.add(vectors)
    return index


def search(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(similarities, ids) of the k nearest, best first."""
    return index.search(_vectors(queries), k)
