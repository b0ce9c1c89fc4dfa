"""How many pixels the service decodes at once, across all requests: full-size pixels are what a request
costs in memory (4 bytes each once RGB), whatever its few bytes on the wire."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class PixelBudget:
    """At most ``capacity`` pixels being decoded at a time; a decode waits until its pixels fit. One image
    larger than the whole budget waits for the budget to be empty instead of forever."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._in_use = 0
        self._changed = threading.Condition()

    @contextmanager
    def hold(self, pixels: int) -> Iterator[None]:
        pixels = min(pixels, self.capacity)
        with self._changed:
            self._changed.wait_for(lambda: self._in_use + pixels <= self.capacity)
            self._in_use += pixels
        try:
            yield
        finally:
            with self._changed:
                self._in_use -= pixels
                self._changed.notify_all()
