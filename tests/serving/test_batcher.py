"""The adaptive batcher: concurrent requests share forward passes and each gets its own rows back."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from apparel.inference import Prediction
from apparel.serving.batcher import Batcher


def forward(calls: list[int]):
    def run(images: np.ndarray) -> Prediction:
        calls.append(len(images))
        time.sleep(0.02)
        if (images == 255).any():
            raise RuntimeError("bad batch")
        values = images.reshape(len(images), -1)[:, :1].astype(np.float32)
        return Prediction(values, {"colour": values * 2})
    return run


def test_concurrent_requests_share_passes_and_get_their_rows() -> None:
    calls: list[int] = []
    batcher = Batcher(forward(calls), max_batch_size=16, max_latency_ms=50)
    results: dict[int, Prediction] = {}

    def request(i: int) -> None:
        results[i] = batcher(np.full((2, 1, 1, 3), i, dtype=np.uint8))

    threads = [threading.Thread(target=request, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    batcher.close()
    assert sum(calls) == 16 and len(calls) < 8  # fewer passes than requests
    for i, prediction in results.items():
        assert prediction.embeddings.ravel().tolist() == [i, i]
        assert prediction.probabilities["colour"].ravel().tolist() == [2 * i, 2 * i]


def test_a_failing_pass_fails_its_requests_only_and_the_batcher_keeps_serving() -> None:
    batcher = Batcher(forward([]), max_batch_size=1, max_latency_ms=0)
    with pytest.raises(RuntimeError, match="bad batch"):
        batcher(np.full((1, 1, 1, 3), 255, dtype=np.uint8))
    assert batcher(np.ones((1, 1, 1, 3), dtype=np.uint8)).embeddings.tolist() == [[1.0]]
    batcher.close()
    assert batcher(np.ones((1, 1, 1, 3), dtype=np.uint8)).embeddings.tolist() == [[1.0]]  # after close: inline
