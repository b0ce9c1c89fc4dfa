"""The gRPC server over a real channel with the generated client: the same calls and answers as HTTP,
the standard health service, reflection, and error codes."""

from __future__ import annotations

import io
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from PIL import Image
from serving_helpers import Server, Store, png_declaring

from apparel.serving.stubs import apparel_pb2, apparel_pb2_grpc


@pytest.fixture(scope="module")
def channel(server: Server):
    with grpc.insecure_channel(server.grpc) as channel:
        grpc.channel_ready_future(channel).result(timeout=60)
        yield channel


def test_health_and_reflection(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "apparel.v1.Apparel"):
        status = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=30).status
        assert status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    answer = next(reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
    names = {s.name for s in answer.list_services_response.service}
    assert {"apparel.v1.Apparel", "grpc.health.v1.Health"} <= names


def test_embed_and_attributes_equal_http(channel: grpc.Channel, server: Server, catalog_images: list[Path]) -> None:
    stub = apparel_pb2_grpc.ApparelStub(channel)
    images = [p.read_bytes() for p in catalog_images]
    answer = stub.Embed(apparel_pb2.ImagesRequest(images=images), timeout=60)
    assert answer.model_version == "1"
    http = httpx.post(f"{server.http}/embed", files=[("images", (p.name, p.read_bytes())) for p in catalog_images],
                      timeout=60).json()
    np.testing.assert_allclose([list(e.values) for e in answer.embeddings], http["embeddings"], atol=1e-6)
    attributes = stub.Attributes(apparel_pb2.ImagesRequest(images=images, k=2), timeout=60)
    assert len(attributes.images) == 3
    assert set(attributes.images[0].attributes) == {"colour", "pattern"}
    assert len(attributes.images[0].attributes["colour"].labels) == 2


def test_search_by_image_and_by_product(channel: grpc.Channel, store: Store, catalog_images: list[Path]) -> None:
    stub = apparel_pb2_grpc.ApparelStub(channel)
    by_image = stub.Search(apparel_pb2.SearchRequest(image=catalog_images[0].read_bytes(), k=3), timeout=60)
    assert len(by_image.matches) == 3 and by_image.matches[0].image == str(catalog_images[0])
    assert "colour" in by_image.matches[0].fields
    product = str(store.dataset.manifest["product_id"].iloc[0])
    vertical = str(store.dataset.manifest["vertical"].iloc[0])
    by_product = stub.Search(apparel_pb2.SearchRequest(product_id=product, k=3, vertical=vertical), timeout=60)
    assert by_product.model_version == "1" and len(by_product.matches) == 3
    assert all(m.product_id != product and m.vertical == vertical for m in by_product.matches)


@pytest.mark.parametrize(("request_", "code", "message"), [
    (apparel_pb2.ImagesRequest(images=[b"not an image"]), grpc.StatusCode.INVALID_ARGUMENT, "not an image"),
    (apparel_pb2.ImagesRequest(images=[png_declaring(100_000, 100_000)]), grpc.StatusCode.INVALID_ARGUMENT,
     "decompression bomb"),
    (apparel_pb2.ImagesRequest(images=[]), grpc.StatusCode.INVALID_ARGUMENT, "no image"),
    (apparel_pb2.ImagesRequest(images=[b"\xff" * 300_000]), grpc.StatusCode.RESOURCE_EXHAUSTED, ""),
])
def test_bad_images_get_error_codes(channel: grpc.Channel, request_, code, message: str,
                                    catalog_images: list[Path]) -> None:
    stub = apparel_pb2_grpc.ApparelStub(channel)
    with pytest.raises(grpc.RpcError) as error:
        stub.Embed(request_, timeout=60)
    assert error.value.code() == code and message in error.value.details()
    assert stub.Embed(apparel_pb2.ImagesRequest(images=[catalog_images[0].read_bytes()]), timeout=60).embeddings


def test_unknown_product_is_not_found(channel: grpc.Channel) -> None:
    stub = apparel_pb2_grpc.ApparelStub(channel)
    with pytest.raises(grpc.RpcError) as error:
        stub.Search(apparel_pb2.SearchRequest(product_id="no-such-product"), timeout=60)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


def test_images_over_the_pixel_budget_are_resource_exhausted(channel: grpc.Channel, store: Store) -> None:
    """Declared sizes are read from the headers: 4 images of 39.7 Mpx (each under data.max_image_pixels)."""
    buffer = io.BytesIO()
    Image.new("1", (6300, 6300)).save(buffer, "PNG")
    images = [buffer.getvalue()] * store.config.serving.max_images_per_request
    with pytest.raises(grpc.RpcError) as error:
        apparel_pb2_grpc.ApparelStub(channel).Embed(apparel_pb2.ImagesRequest(images=images), timeout=60)
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "serving.max_request_pixels" in error.value.details()
