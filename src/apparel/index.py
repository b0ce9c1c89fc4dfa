"""Nearest-neighbour search with faiss: exact inner product on unit embeddings, GPU when present."""

from __future__ import annotations

import faiss
import numpy as np


def gpu_count() -> int:
    """faiss-cpu and faiss-gpu share one import; only the GPU build can report a GPU."""
    return faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0


def build_index(embeddings: np.ndarray, use_gpu: bool | None = None) -> faiss.Index:
    vectors = np.ascontiguousarray(embeddings, dtype=np.float32)
    index = faiss.IndexFlatIP(vectors.shape[1])
    if use_gpu is None:
        use_gpu = gpu_count() > 0
    if use_gpu:
        index = faiss.index_cpu_to_all_gpus(index)
    index.add(vectors)
    return index


def search(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(similarities, ids) of the k nearest, best first."""
    return index.search(np.ascontiguousarray(queries, dtype=np.float32), k)


def save_index(index: faiss.Index, path: str) -> None:
    if gpu_count() > 0 and not isinstance(index, faiss.IndexFlat):
        index = faiss.index_gpu_to_cpu(index)
    faiss.write_index(index, path)


def load_index(path: str) -> faiss.Index:
    return faiss.read_index(path)
