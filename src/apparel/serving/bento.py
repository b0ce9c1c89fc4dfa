"""The BentoML 1.4 service: thin HTTP glue over :class:`ServingCore`, which also backs the gRPC
server this process starts. ``serving/service.py`` re-exports it for ``bentoml serve``/``bentoml build``.

Endpoints (POST, OpenAPI at ``/docs.json``): ``/embed``, ``/attributes``, ``/search``, ``/admin/reload``;
BentoML's own ``/livez``, ``/readyz`` (ready once model and index are loaded) and ``/metrics``.
Images travel as multipart files, or as a raw image body (``middleware.py`` rewraps it); the service decodes
them itself (a PIL-typed parameter answers 500 to a non-image) and every error is a JSON ``{"error": ...}``
with a 4xx status. ``/`` is our own page, not BentoML's (``middleware.IndexPage``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bentoml
from pydantic import Field
from starlette.responses import JSONResponse

from apparel.config import Config, config_from_json, load_config
from apparel.serving.errors import ServingError
from apparel.serving.middleware import BodyLimit, IndexPage, RawImageBody

CONFIG_JSON_ENV = "APPAREL_CONFIG_JSON"  # set by `apparel serve`: the exact config the command line resolved
CONFIG_FILE_ENV = "APPAREL_CONFIG"  # or a YAML file (``bentoml serve`` run by hand)


def service_config() -> Config:
    if os.environ.get(CONFIG_JSON_ENV):
        return config_from_json(os.environ[CONFIG_JSON_ENV])
    return load_config(os.environ.get(CONFIG_FILE_ENV) or None)


CONFIG = service_config()
log = logging.getLogger("apparel.serving")


class ClientErrorsAtInfo(logging.Filter):
    """BentoML logs each request it refuses itself (a body that is not JSON, a field of the wrong type; it
    answers 400) as an ERROR with a traceback. A client's mistake is one INFO line; 5xx stay errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and _is_client_error(error):
            record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
            where = record.getMessage().replace("Exception on", "client error on", 1)
            record.msg, record.args = f"{where}: {_one_line(error)}", ()  # no args: a % in it is not a format
            record.exc_info = record.exc_text = None
        return True


def _is_client_error(error: BaseException) -> bool:
    from bentoml.exceptions import BentoMLException
    from pydantic import ValidationError

    return isinstance(error, ValidationError) or (isinstance(error, BentoMLException) and error.error_code < 500)


def _one_line(error: BaseException) -> str:
    from pydantic import ValidationError

    if isinstance(error, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in error.errors())
    return " ".join(str(error).split())


def _answer(call: Callable[[], dict[str, Any]]) -> Any:
    try:
        return call()
    except ServingError as error:
        return JSONResponse({"error": error.message}, status_code=error.status)


NO_FILES = Field(default_factory=list)  # BentoML parses an optional upload as a list (Optional[Path] fails)


def _read(files: list[Path] | None) -> list[bytes]:
    return [Path(f).read_bytes() for f in files or []]


def _one(files: list[Path]) -> bytes | None:
    if len(files) > 1:
        raise ServingError(400, f"search takes one image, got {len(files)}")
    return _read(files)[0] if files else None


# One worker (one model in memory, one gRPC server, one place to swap); many threads, because BentoML runs
# sync endpoints on `threads` threads (default 1) and each waits on the shared batcher, not on the CPU.
@bentoml.service(name="apparel", workers=1, threads=CONFIG.serving.http_threads, traffic={"timeout": 120},
                 logging={"access": {"enabled": CONFIG.serving.access_log,
                                     "skip_paths": ["/livez", "/readyz", "/metrics"]}})
class ApparelService:
    def __init__(self) -> None:
        # Imported here, in the worker: the supervisor process that imports this module stays light.
        from apparel.serving.core import ServingCore
        from apparel.serving.grpc_server import start_grpc_server

        logging.getLogger("bentoml._internal.server.http_app").addFilter(ClientErrorsAtInfo())  # its log_exception
        self.core = ServingCore(CONFIG)
        self.core.start()
        self.grpc = start_grpc_server(self.core, CONFIG.serving.host, CONFIG.serving.grpc_port,
                                      CONFIG.serving.max_body_bytes)
        log.info("gRPC on %s:%d", CONFIG.serving.host, CONFIG.serving.grpc_port)
        self._gauges = _gauges()
        threading.Thread(target=self._export_metrics, name="metrics", daemon=True).start()

    def __is_ready__(self) -> bool:
        return self.core.ready

    @bentoml.on_shutdown
    def shutdown(self) -> None:
        self.grpc.stop(grace=5)
        self.core.stop()

    @bentoml.api(route="/embed")
    def embed(self, images: list[Path]) -> dict[str, Any]:
        """Unit-length embeddings, one per uploaded image, and the model version that made them."""
        return _answer(lambda: self.core.embed(_read(images)))

    @bentoml.api(route="/attributes")
    def attributes(self, images: list[Path], k: int | None = None) -> dict[str, Any]:
        """Per image and attribute: the k most probable labels with probabilities (no k: the configured default)."""
        return _answer(lambda: self.core.attributes(_read(images), k))

    @bentoml.api(route="/search")
    def search(self, image: list[Path] = NO_FILES, product_id: str = "", k: int | None = None, vertical: str = "",
               attributes: dict[str, str] | None = None) -> dict[str, Any]:
        """The k catalog items most similar to an uploaded image or to a catalog product (itself left
        out), optionally only of one vertical and with given attribute labels."""
        return _answer(lambda: self.core.search(_one(image), product_id or None, k, vertical or None,
                                                attributes or {}))

    @bentoml.api(route="/admin/reload")
    def reload(self) -> dict[str, Any]:
        """Loads the version the champion alias points at now (off the request path) and swaps it in."""
        return _answer(self.core.reload)

    def _export_metrics(self) -> None:
        while True:
            for name, value in self.core.metrics().items():
                self._gauges[name].set(value)
            threading.Event().wait(1.0)


def _gauges() -> dict[str, Any]:
    """Prometheus gauges in BentoML's multiprocess registry (so ``/metrics`` shows them); imported late,
    after the worker has set PROMETHEUS_MULTIPROC_DIR."""
    from prometheus_client import Gauge

    names = {"request_log_written": "Request-log samples written", "request_log_dropped":
             "Request-log samples dropped (queue full, disk full)", "model_swaps": "Hot swaps of the served model",
             "failed_reloads": "Reloads refused (no index, mismatched index)", "batches": "Batched forward passes",
             "batched_images": "Images through batched forward passes"}
    return {name: Gauge(f"apparel_{name}", text, multiprocess_mode="livemax") for name, text in names.items()}


# Outermost first: the size limit bounds every body before a raw image is rewrapped as an upload.
ApparelService.add_asgi_middleware(BodyLimit, max_bytes=CONFIG.serving.max_body_bytes)
ApparelService.add_asgi_middleware(RawImageBody)
ApparelService.add_asgi_middleware(IndexPage)
