"""Index stage: the similar-item search index over the catalog."""

from __future__ import annotations

from pathlib import Path

from apparel.config import Config
from apparel.data.manifest import Dataset


def index_stage(config: Config, dataset_root: Path, model_dir: Path, out_dir: Path) -> Path:
    """The similar-item search index over the whole catalog: faiss index + the row each id means."""
    from apparel.evaluation.embeddings import embed_frame
    from apparel.index import build_index, save_index
    from apparel.models.attributes import ApparelNet

    dataset = Dataset.load(dataset_root)
    model = ApparelNet.load(model_dir)
    embeddings = embed_frame(model.base, dataset.manifest)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_index(build_index(embeddings), str(out_dir / "catalog.faiss"))
    dataset.manifest[["image", "product_id", "vertical"]].to_csv(out_dir / "ids.csv", index_label="id")
    return out_dir
