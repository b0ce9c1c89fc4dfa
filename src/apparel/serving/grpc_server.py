"""The gRPC front end: the three calls of ``serving/apparel.proto`` on the same :class:`ServingCore`
(and so the same batcher and hot swap) as HTTP, plus the standard health service and reflection."""

from __future__ import annotations

from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from apparel.serving.core import ServingCore
from apparel.serving.errors import ServingError
from apparel.serving.stubs import apparel_pb2, apparel_pb2_grpc

SERVICE = apparel_pb2.DESCRIPTOR.services_by_name["Apparel"].full_name
STATUS_CODES = {400: grpc.StatusCode.INVALID_ARGUMENT, 404: grpc.StatusCode.NOT_FOUND,
                413: grpc.StatusCode.RESOURCE_EXHAUSTED, 503: grpc.StatusCode.UNAVAILABLE}


def _answer(context: grpc.ServicerContext, call: Callable[[], Any]) -> Any:
    try:
        return call()
    except ServingError as error:
        context.abort(STATUS_CODES.get(error.status, grpc.StatusCode.INVALID_ARGUMENT), error.message)


class ApparelServicer(apparel_pb2_grpc.ApparelServicer):
    def __init__(self, core: ServingCore) -> None:
        self.core = core

    def Embed(self, request, context):  # noqa: N802 (names from the .proto)
        answer = _answer(context, lambda: self.core.embed(list(request.images)))
        return apparel_pb2.EmbedResponse(model_name=answer["model_name"], model_version=answer["model_version"],
                                          embeddings=[apparel_pb2.Embedding(values=e) for e in answer["embeddings"]])

    def Attributes(self, request, context):  # noqa: N802
        answer = _answer(context, lambda: self.core.attributes(list(request.images), request.k or None))
        images = [apparel_pb2.ImageAttributes(attributes={
            name: apparel_pb2.AttributeLabels(labels=[apparel_pb2.Label(**label) for label in labels])
            for name, labels in per_image.items()}) for per_image in answer["attributes"]]
        return apparel_pb2.AttributesResponse(model_name=answer["model_name"], model_version=answer["model_version"],
                                              images=images)

    def Search(self, request, context):  # noqa: N802
        query = request.WhichOneof("query")
        answer = _answer(context, lambda: self.core.search(
            image=request.image if query == "image" else None,
            product_id=request.product_id if query == "product_id" else None,
            k=request.k or None, vertical=request.vertical or None, attributes=dict(request.attributes)))
        return apparel_pb2.SearchResponse(model_name=answer["model_name"], model_version=answer["model_version"],
                                          matches=[_match(m) for m in answer["matches"]])


def _match(match: dict[str, Any]) -> apparel_pb2.Match:
    named = ("score", "product_id", "vertical", "image")
    return apparel_pb2.Match(score=match["score"], product_id=str(match["product_id"]),
                             vertical=str(match["vertical"]), image=str(match.get("image") or ""),
                             fields={k: str(v) for k, v in match.items() if k not in named and v is not None})


def start_grpc_server(core: ServingCore, host: str, port: int, max_message_bytes: int,
                      threads: int = 32) -> grpc.Server:
    """Starts serving in background threads; health answers SERVING for the Apparel service once started."""
    options = [("grpc.max_receive_message_length", max_message_bytes), ("grpc.so_reuseport", 0)]
    server = grpc.server(futures.ThreadPoolExecutor(threads, thread_name_prefix="grpc"), options=options)
    apparel_pb2_grpc.add_ApparelServicer_to_server(ApparelServicer(core), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    if server.add_insecure_port(f"{host}:{port}") == 0:
        raise OSError(f"gRPC cannot bind {host}:{port}")
    server.start()
    status = health_pb2.HealthCheckResponse.SERVING if core.ready else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ("", SERVICE):
        health_servicer.set(name, status)
    return server
