"""Retraining stages: is there new data since the champion, and fine-tune the champion on it."""

from __future__ import annotations

from pathlib import Path

from apparel.config import Config
from apparel.data.manifest import Dataset
from apparel.stages.attributes import train_frame_tensors


def champion_dataset_version(config: Config) -> str | None:
    """The dataset version the current champion was trained on (None without a champion)."""
    from mlflow import MlflowClient

    from apparel.registry import aliases
    from apparel.registry.tracking import configure

    configure(config.registry)
    client = MlflowClient()
    version = aliases.holder(client, config.registry.model_name, aliases.CHAMPION)
    if version is None:
        return None
    return client.get_model_version(config.registry.model_name, version).tags.get("dataset.version")


def download_champion(config: Config, out_dir: Path) -> Path:
    from apparel.registry.pyfunc import load_registered
    from apparel.registry.tracking import configure

    configure(config.registry)
    load_registered(f"models:/{config.registry.model_name}@champion").save(out_dir)
    return out_dir


def finetune_stage(config: Config, dataset_root: Path, champion_dir: Path, out_dir: Path) -> Path:
    """Retraining: continue from the champion on the new data (triplet on the embedding, masked
    attribute losses, an L2 pull towards the champion's embedding so retrieval does not drift)."""
    from apparel.models.attributes import ApparelNet
    from apparel.train.device import training_device
    from apparel.train.finetune import finetune

    device = training_device(config.train.use_gpu)
    dataset = Dataset.load(dataset_root)
    model = ApparelNet.load(champion_dir).to(device)
    frame, images = train_frame_tensors(config, dataset, model.spec.base.image_size)
    finetune(model, frame, images, config)
    model.cpu().save(out_dir)
    return out_dir


def needs_retraining(config: Config, dataset_root: Path) -> bool:
    return champion_dataset_version(config) != Dataset.load(dataset_root).info.version
