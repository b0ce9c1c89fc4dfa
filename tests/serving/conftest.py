"""Session fixtures: one registry and one server shared by the HTTP and gRPC tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from serving_helpers import Store, make_store, start_server


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = make_store(tmp_path_factory.mktemp("serving"))
    store.register(seed=0)
    return store


@pytest.fixture(scope="session")
def server(store: Store):
    server = start_server(store)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def catalog_images(store: Store) -> list[Path]:
    return [Path(p) for p in store.dataset.manifest["image"].tolist()[:3]]
