"""What a request costs the server in memory, measured on the real worker process: its peak resident set
(VmHWM, reset just before the request through /proc/<pid>/clear_refs) minus its resident set before.

1-bit PNGs of a large declared size are a few KB on the wire and 5 bytes a pixel once decoded to RGB (1 for
the bitmap, 4 for RGB): the tester's 16 images of 6300×6300 (78 KB) grew the worker by 2.7 GB."""

from __future__ import annotations

import io
import math
import time
from pathlib import Path

import httpx
from PIL import Image
from serving_helpers import Server, Store

MB = 2**20
# A request of exactly serving.max_request_pixels (64 Mpx: 4 images of 16 Mpx here) may raise the worker's
# peak RSS by at most this much: one full-size image at a time, 16 Mpx as a bitmap (16 MB), as RGB (64 MB) and
# the request log's grey copy (16 MB), plus slack for allocator arenas. Measured on 2 cores: 102 MB; decoding
# all four before shrinking any (the old way) measured 367 MB.
PEAK_GROWTH_AT_BUDGET = 160 * MB
PEAK_GROWTH_REFUSED = 20 * MB  # a request refused from its headers decodes nothing


def one_bit_png(side: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("1", (side, side)).save(buffer, "PNG")
    return buffer.getvalue()


def _descendants(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    return children + [d for child in children for d in _descendants(child)]


def _status_bytes(pid: int, field: str) -> int:
    line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith(field))
    return int(line.split()[1]) * 1024


def worker_pid(server: Server) -> int:
    """The process that holds the model: the largest descendant of `apparel serve` (BentoML's supervisor)."""
    return max(_descendants(server.process.pid), key=lambda pid: _status_bytes(pid, "VmRSS:"))


def peak_growth(pid: int, send) -> tuple[httpx.Response, int]:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS now
    before = _status_bytes(pid, "VmRSS:")
    response = send()
    time.sleep(0.2)
    return response, _status_bytes(pid, "VmHWM:") - before


def post_images(server: Server, images: list[bytes]) -> httpx.Response:
    return httpx.post(f"{server.http}/embed", files=[("images", (f"{n}.png", data)) for n, data in enumerate(images)],
                      timeout=120)


def test_a_request_at_the_pixel_budget_decodes_one_image_at_a_time(server: Server, store: Store) -> None:
    limits = store.config.serving
    side = math.isqrt(limits.max_request_pixels // limits.max_images_per_request)
    images = [one_bit_png(side)] * limits.max_images_per_request
    post_images(server, [one_bit_png(64)])  # the worker's first request warms its arenas up
    response, growth = peak_growth(worker_pid(server), lambda: post_images(server, images))
    assert response.status_code == 200, response.text
    print(f"peak RSS growth at the budget ({len(images)} x {side}x{side}): {growth / MB:.0f} MB")
    assert growth <= PEAK_GROWTH_AT_BUDGET, f"{growth / MB:.0f} MB"


def test_a_request_over_the_pixel_budget_is_refused_before_decoding(server: Server, store: Store) -> None:
    """Each image under data.max_image_pixels (40 Mpx), together far over serving.max_request_pixels."""
    images = [one_bit_png(6300)] * store.config.serving.max_images_per_request
    assert sum(map(len, images)) < 100_000
    started = time.monotonic()
    response, growth = peak_growth(worker_pid(server), lambda: post_images(server, images))
    print(f"{len(images)} x 6300x6300: {response.status_code} in {time.monotonic() - started:.2f} s, "
          f"peak RSS growth {growth / MB:.0f} MB")
    assert response.status_code == 413, response.text
    assert "serving.max_request_pixels" in response.json()["error"]
    assert growth <= PEAK_GROWTH_REFUSED, f"{growth / MB:.0f} MB"
