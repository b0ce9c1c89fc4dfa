"""Search quality as served: test queries through CatalogIndex.search over the whole catalog, own image out."""

import numpy as np
import pandas as pd
import pytest

from apparel.config import IndexConfig
from apparel.evaluation.retrieval import retrieval_metrics
from apparel.evaluation.served import served_retrieval
from apparel.index import build_catalog_index


def catalog(vectors: np.ndarray, images: list[str], config: IndexConfig | None = None):
    rows = pd.DataFrame({"product_id": images, "vertical": "tops", "image": images})
    return build_catalog_index(vectors, rows, "m", "1", config or IndexConfig(), use_gpu=False)


def at_degrees(*angles: float) -> np.ndarray:
    radians = np.deg2rad(angles)
    return np.stack([np.cos(radians), np.sin(radians)], 1).astype(np.float32)


def test_a_catalog_distractor_the_split_lacks_costs_the_top_hit() -> None:
    # Catalog, by angle on the unit circle: product A at 0 and 20 degrees, a product B distractor at 5
    # (in the catalog, not in the test split), C at 90 and 100, D alone at 180 (nothing to find: left out).
    images = ["a1", "b1", "a2", "c1", "c2", "d1"]
    products = ["A", "B", "A", "C", "C", "D"]
    vectors = at_degrees(0, 5, 20, 90, 100, 180)
    test = [0, 2, 3, 4, 5]  # the test split: every image but the distractor

    in_split = retrieval_metrics(vectors[test], np.array(products)[test], ks=(1, 5))
    assert in_split["recall@1"] == 1.0 and in_split["queries"] == 4  # each finds its twin, D is alone

    index = catalog(vectors, images)
    served = served_retrieval(index.search, vectors[test], np.array(images)[test], np.array(products)[test],
                              images, products, ks=(1, 5))
    # a1 and a2 both meet b1 first (5 and 15 degrees away, their twin 20); c1 and c2 find each other.
    # Had a query's own image been kept, every query would find itself first: Recall@1 1.0.
    assert served == {"recall@1": 0.5, "recall@5": 1.0, "map@r": 0.5, "queries": 4, "gallery": 6}


def test_a_query_whose_photo_is_in_the_catalog_twice_finds_neither_copy() -> None:
    # The same photo (same sha256) under two catalog rows is the query's own image both times.
    vectors = at_degrees(0, 0, 30, 40)
    served = served_retrieval(catalog(vectors, ["p", "p-copy", "q", "r"]).search, vectors[:1], ["same"], ["A"],
                              ["same", "same", "other", "third"], ["A", "A", "B", "A"], ks=(1,))
    assert served["recall@1"] == 0.0 and served["map@r"] == 0.0  # q (B) is first; r (A) second


def brute_force(queries: np.ndarray, query_ids: np.ndarray, query_labels: np.ndarray, gallery: np.ndarray,
                gallery_ids: np.ndarray, gallery_labels: np.ndarray, ks: tuple[int, ...]) -> dict[str, float]:
    """The same metrics from the full similarity matrix in numpy, written independently of the module."""
    similarity = queries @ gallery.T
    own = query_ids[:, None] == gallery_ids[None, :]
    relevant_total = ((query_labels[:, None] == gallery_labels[None, :]) & ~own).sum(1)
    recalls, precisions = {k: [] for k in ks}, []
    for i in np.flatnonzero(relevant_total):
        order = [j for j in np.argsort(-similarity[i], kind="stable") if not own[i, j]]
        relevant = gallery_labels[order] == query_labels[i]
        for k in ks:
            recalls[k].append(relevant[:k].any())
        r = relevant_total[i]
        precisions.append(sum(relevant[:n + 1].mean() for n in range(r) if relevant[n]) / r)
    return {**{f"recall@{k}": float(np.mean(v)) for k, v in recalls.items()}, "map@r": float(np.mean(precisions)),
            "queries": len(precisions), "gallery": len(gallery)}


@pytest.mark.parametrize("factory", ["Flat", "HNSW"])
def test_served_metrics_through_the_index_equal_brute_force(factory: str) -> None:
    rng = np.random.default_rng(3)
    products = np.repeat(np.arange(60), 5).astype(str)  # 300 catalog images, 5 per product
    vectors = rng.normal(size=(300, 16)) + 2.0 * rng.normal(size=(60, 16)).repeat(5, 0)
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    ids = np.array([f"sha-{i}" for i in range(300)])
    # 80 catalog images as queries, plus 10 photos not in the catalog (nothing of theirs to leave out)
    picked = rng.choice(300, 80, replace=False)
    outside = vectors[rng.choice(300, 10)] + 0.01
    queries = np.concatenate([vectors[picked], outside / np.linalg.norm(outside, axis=1, keepdims=True)])
    query_ids = np.concatenate([ids[picked], [f"new-{i}" for i in range(10)]])
    query_labels = np.concatenate([products[picked], products[rng.choice(300, 10)]])
    # HNSW with a generous efSearch on 300 points finds the exact neighbours: the comparison holds there too
    config = IndexConfig(exact_max_size=0 if factory == "HNSW" else 10_000, hnsw_search={"efSearch": 512})
    index = catalog(vectors, ids.tolist(), config)
    assert index.meta.factory.startswith(factory)
    served = served_retrieval(index.search, queries, query_ids, query_labels, ids, products)
    expected = brute_force(queries, query_ids, query_labels, vectors, ids, products, (1, 5, 10))
    assert served == pytest.approx(expected)
    assert 0 < served["recall@1"] < 1  # neither trivial end: the comparison has something to compare
