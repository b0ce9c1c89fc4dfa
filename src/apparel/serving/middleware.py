"""ASGI middleware in front of BentoML's routes: the body-size limit (BentoML has none), raw image bodies
turned into the multipart upload the endpoints take, and our own page at ``/`` (BentoML's loads Google Tag
Manager, and BentoML 1.4 has no setting to turn its page off)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# Upload field of each endpoint that takes images, and the query parameters a raw-body request may add.
IMAGE_FIELDS = {"/embed": "images", "/attributes": "images", "/search": "image"}
RAW_QUERY_FIELDS = {"/embed": set(), "/attributes": {"k"}, "/search": {"k", "vertical"}}
RAW_IMAGE_TYPES = ("image/", "application/octet-stream")
FORM_TYPES = ("multipart/form-data", "application/json", "application/x-www-form-urlencoded")
ACCEPTED = "multipart/form-data, application/json, or a raw image body (image/jpeg, image/png, ...)"


class BodyTooLarge(Exception):
    pass


async def send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    await _send(send, status, "application/json", json.dumps(body).encode())


async def _send(send: Send, status: int, content_type: str, payload: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type.encode()),
                            (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


def _header(scope: Scope, name: bytes) -> str | None:
    value = dict(scope.get("headers") or []).get(name)
    return value.decode("latin-1") if value is not None else None


async def read_body(receive: Receive, max_bytes: int | None = None) -> bytes | None:
    """The whole body, or ``None`` when the client left before sending it; raises :class:`BodyTooLarge`
    as soon as it grows past ``max_bytes``."""
    body, more = bytearray(), True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return None
        body += message.get("body", b"")
        if max_bytes is not None and len(body) > max_bytes:
            raise BodyTooLarge
        more = message.get("more_body", False)
    return bytes(body)


def replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the app the body read already, then waits on the client (for its disconnect)."""
    sent = False

    async def receive_again() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive_again


class BodyLimit:
    """413 with a JSON error for any body over the limit, declared by ``Content-Length`` or chunked. The body
    is read here, before BentoML sees it: an error raised inside BentoML's own reading became a 500."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def _too_large(self, send: Send) -> None:
        await send_json(send, 413, {"error": f"request body over the limit of {self.max_bytes} bytes "
                                             "(serving.max_body_bytes)"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._too_large(send)
        try:
            body = await read_body(receive, self.max_bytes)
        except BodyTooLarge:
            return await self._too_large(send)
        if body is not None:
            await self.app(scope, replay(body, receive), send)


def multipart(field: str, image: bytes, content_type: str, fields: list[tuple[str, str]]) -> tuple[bytes, str]:
    """A multipart/form-data body holding ``image`` as the file ``field`` plus plain ``fields``, and its
    content type."""
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\ncontent-disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
             for name, value in fields]
    parts.append(f'--{boundary}\r\ncontent-disposition: form-data; name="{field}"; filename="upload"\r\n'
                 f"content-type: {content_type}\r\n\r\n".encode() + image + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


class RawImageBody:
    """A POST of a bare image (``image/*`` or ``application/octet-stream``) to an image endpoint is one
    uploaded image, with ``k``/``vertical`` from the query string; a content type the endpoints cannot read
    answers 415 naming the ones they can. Runs inside :class:`BodyLimit`, which has bounded the body."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        field = IMAGE_FIELDS.get(scope.get("path", "")) if scope["type"] == "http" else None
        content_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
        if field is None or scope.get("method") != "POST" or not content_type or content_type.startswith(FORM_TYPES):
            return await self.app(scope, receive, send)
        if not content_type.startswith(RAW_IMAGE_TYPES):
            return await send_json(send, 415, {"error": f"unsupported content type '{content_type}': send {ACCEPTED}"})
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"))
        known = RAW_QUERY_FIELDS[scope["path"]]
        if unknown := sorted({name for name, _ in query} - known):
            return await send_json(send, 400, {"error": f"unknown query parameter {', '.join(unknown)} with a raw "
                                                        f"image body (known: {', '.join(sorted(known)) or 'none'})"})
        image = await read_body(receive)
        if image is None:
            return None
        body, form_type = multipart(field, image, content_type, query)
        headers = [(n, v) for n, v in scope["headers"] if n not in (b"content-type", b"content-length")]
        headers += [(b"content-type", form_type.encode()), (b"content-length", str(len(body)).encode())]
        await self.app({**scope, "headers": headers}, replay(body, receive), send)


INDEX_PAGE = b"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="UTF-8">
  <title>apparel</title>
  <link rel="stylesheet" type="text/css" href="./static_content/swagger-ui.css">
</head>
<body>
  <p>apparel service: <a href="./docs.json">OpenAPI</a> &middot; <a href="./metrics">metrics</a> &middot;
     <a href="./livez">livez</a> &middot; <a href="./readyz">readyz</a></p>
  <div id="swagger-ui"></div>
  <!-- BentoML's bundled Swagger UI, served by this service; no validator badge (it would call swagger.io). -->
  <script src="./static_content/swagger-ui-bundle.js" charset="UTF-8"></script>
  <script>SwaggerUIBundle({url: "./docs.json", dom_id: "#swagger-ui", validatorUrl: null});</script>
</body>
</html>
"""


class IndexPage:
    """``GET /``: our page (links, and the OpenAPI in BentoML's bundled Swagger UI) instead of BentoML's."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path") == "/" and scope.get("method") in ("GET", "HEAD"):
            return await _send(send, 200, "text/html; charset=utf-8", INDEX_PAGE)
        return await self.app(scope, receive, send)
