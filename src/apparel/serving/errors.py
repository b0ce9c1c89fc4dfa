"""Errors a client caused (or the server's state), each with the HTTP status and message it answers."""

from __future__ import annotations


class ServingError(Exception):
    """Answered as ``{"error": message}`` with ``status`` over HTTP, and the matching code over gRPC."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def bad_request(message: str) -> ServingError:
    return ServingError(400, message)


def not_found(message: str) -> ServingError:
    return ServingError(404, message)


def not_ready(message: str = "no model loaded yet") -> ServingError:
    return ServingError(503, message)
