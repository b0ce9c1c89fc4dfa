"""Hot swap under concurrent HTTP and gRPC traffic: the champion alias moves, the server loads the new
version off the request path and swaps it in with zero failed requests; a version without an index is
refused and the old one keeps serving; a mismatched index is refused at start with one line."""

from __future__ import annotations

import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import grpc
import httpx
import pytest
from serving_helpers import Server, Store, apparel_command, make_store, start_server

from apparel.serving.stubs import apparel_pb2, apparel_pb2_grpc

pytestmark = pytest.mark.slow


class Traffic:
    """Clients calling embed over HTTP and gRPC in a loop; counts answers by model version and failures."""

    def __init__(self, server: Server, image: bytes, http_clients: int = 3, grpc_clients: int = 2) -> None:
        self.server, self.image = server, image
        self.versions: Counter[str] = Counter()
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._http) for _ in range(http_clients)]
        self._threads += [threading.Thread(target=self._grpc) for _ in range(grpc_clients)]

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def latest(self) -> str:
        answer = httpx.post(f"{self.server.http}/embed", files=[("images", ("q.jpg", self.image))], timeout=120)
        return answer.json()["model_version"]

    def _http(self) -> None:
        with httpx.Client(timeout=120) as client:
            while not self._stop.is_set():
                try:
                    response = client.post(f"{self.server.http}/embed", files=[("images", ("q.jpg", self.image))])
                    if response.status_code != 200:
                        self.failures.append(f"HTTP {response.status_code}: {response.text[:200]}")
                    else:
                        self.versions[response.json()["model_version"]] += 1
                except httpx.HTTPError as error:
                    self.failures.append(f"HTTP {error!r}")

    def _grpc(self) -> None:
        with grpc.insecure_channel(self.server.grpc) as channel:
            stub = apparel_pb2_grpc.ApparelStub(channel)
            while not self._stop.is_set():
                try:
                    self.versions[stub.Embed(apparel_pb2.ImagesRequest(images=[self.image]), timeout=120)
                                  .model_version] += 1
                except grpc.RpcError as error:
                    self.failures.append(f"gRPC {error.code()}: {error.details()}")


@pytest.fixture(scope="module")
def swap_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = make_store(tmp_path_factory.mktemp("hotswap"), poll_interval_s=1.0)
    store.register(seed=0)
    return store


def wait_for(condition, timeout_s: float = 300.0) -> None:
    deadline = time.time() + timeout_s
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(0.5)


def test_hot_swap_under_traffic_fails_no_request(swap_store: Store) -> None:
    server = start_server(swap_store)
    image = Path(swap_store.dataset.manifest["image"].iloc[0]).read_bytes()
    try:
        with Traffic(server, image) as traffic:
            wait_for(lambda: traffic.versions["1"] >= 10)
            swap_store.register(seed=1)  # v2 with its index becomes champion: the poller swaps it in
            wait_for(lambda: traffic.latest() == "2")
            wait_for(lambda: traffic.versions["2"] >= 10)
            swap_store.register(seed=2, index="none")  # v3 has no index: refused, v2 keeps serving
            reload = httpx.post(f"{server.http}/admin/reload", timeout=300).json()
            assert reload["changed"] is False and "no catalog index" in reload["reason"]
            served_before = traffic.versions["2"]
            wait_for(lambda: traffic.versions["2"] >= served_before + 10)
        assert traffic.failures == []
        assert set(traffic.versions) == {"1", "2"}
        assert traffic.latest() == "2"
        assert "keeping v2" in server.log.read_text()
    finally:
        server.stop()


def test_mismatched_index_is_refused_at_start_in_one_line(swap_store: Store) -> None:
    version = swap_store.register(seed=3, index="other")
    result = subprocess.run(apparel_command(swap_store.root / "config.yaml", "serve", "--port", "1"),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and f"not v{version}" in lines[0], result.stderr


def test_a_champion_without_an_index_is_refused_at_start_naming_the_command_that_builds_it(swap_store: Store
                                                                                            ) -> None:
    """Regression: a champion left without its index stopped every new server with a line naming no fix."""
    version = swap_store.register(seed=4, index="none")  # champion set by hand: a store from before the guard
    config_file = swap_store.root / "config.yaml"
    result = subprocess.run(apparel_command(config_file, "serve", "--port", "1"), capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and f"no catalog index: `apparel index {version}` builds it" in lines[0], result.stderr
    built = subprocess.run(apparel_command(config_file, "index", version, "--catalog", str(swap_store.dataset.root)),
                           capture_output=True, text=True, timeout=600, cwd=swap_store.root)
    assert built.returncode == 0 and built.stdout.startswith("index: "), built.stderr
    from mlflow import MlflowClient

    from apparel.registry.aliases import champion_missing
    from apparel.registry.tracking import configure

    configure(swap_store.config.registry)
    assert champion_missing(MlflowClient(), swap_store.name, version) == []  # index and drift reference
    start_server(swap_store).stop()  # the fix it named is enough: a server starts on that champion
