"""Fixtures of the cluster-path tests: the cluster config on a temporary PVC and a tiny ingested catalog."""

from pathlib import Path

import pytest
from kuberay_fakes import CLUSTER_YAML

from apparel.config import Config, load_config


@pytest.fixture
def cluster_config(tmp_path: Path) -> Config:
    """configs/cluster.yaml with the data root (the PVC's mount path) in a temporary folder."""
    return load_config(CLUSTER_YAML, environ={"APPAREL__DATA__ROOT": str(tmp_path / "pvc")})


@pytest.fixture(scope="session")
def tiny_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ingested catalog outside any data root: where a KFP step finds its input artefact."""
    from apparel.stages.data import ingest_source

    config = load_config(environ={"APPAREL__DATA__SYNTHETIC__PRODUCTS_PER_VERTICAL": "6",
                                  "APPAREL__DATA__SYNTHETIC__VIEWS_PER_PRODUCT": "3",
                                  "APPAREL__DATA__SYNTHETIC__IMAGE_SIZE": "32"})
    dataset = tmp_path_factory.mktemp("kfp-artifacts") / "dataset"
    ingest_source(config, "synthetic", "manifest", dataset)  # the catalog is drawn inside, as the ingest step does
    return dataset
