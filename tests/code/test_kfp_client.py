"""kfp.Client as the pipeline submit and the drift trigger build it: with the projected ServiceAccount token when
`pipeline.kfp_auth` says so (multi-user Kubeflow), without credentials otherwise. The KFP API is a stand-in on
127.0.0.1 that records the Authorization header of each call (kfp.Client asks /healthz when it is made)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from apparel.config import PipelineConfig
from apparel.kfp_client import kfp_client


class _KfpApi(BaseHTTPRequestHandler):
    seen: list[tuple[str, str | None]]

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.seen.append((self.path, self.headers.get("Authorization")))
        body = json.dumps({"commit_sha": "test", "multi_user": False}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def kfp_api() -> Iterator[tuple[str, list]]:
    seen: list[tuple[str, str | None]] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (_KfpApi,), {"seen": seen}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", seen
    server.shutdown()
    server.server_close()


def test_the_client_sends_the_projected_token_when_kfp_auth_says_so(kfp_api, tmp_path: Path) -> None:
    host, seen = kfp_api
    token = tmp_path / "token"
    token.write_text("eyJ.projected.token\n")
    kfp_client(PipelineConfig(kfp_host=host, kfp_auth="serviceaccount-token"), token)
    assert seen and all(auth == "Bearer eyJ.projected.token" for _, auth in seen), seen


def test_the_client_sends_no_token_by_default(kfp_api, tmp_path: Path) -> None:
    host, seen = kfp_api
    token = tmp_path / "token"
    token.write_text("never-sent")
    kfp_client(PipelineConfig(kfp_host=host), token)
    assert seen and all(auth is None for _, auth in seen), seen
