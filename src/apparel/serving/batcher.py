"""Adaptive batching of forward passes across concurrent requests (HTTP and gRPC alike).

Requests hand in their prepared images and wait on a future. One thread takes the first waiting
request, lets others join for at most ``max_latency_ms`` or until ``max_batch_size`` images, runs one
forward pass and hands each request its rows. Under load, requests pile up while a pass runs, so
batches grow with traffic; alone, a request waits at most ``max_latency_ms``.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from apparel.inference import Prediction


@dataclass
class _Job:
    images: np.ndarray
    future: Future = field(default_factory=Future)


class Batcher:
    def __init__(self, forward: Callable[[np.ndarray], Prediction], max_batch_size: int, max_latency_ms: float,
                 name: str = "batcher") -> None:
        self.forward, self.max_batch_size = forward, max(1, max_batch_size)
        self.max_latency_s = max_latency_ms / 1000
        self.batches = self.images = 0
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, images: np.ndarray) -> Future:
        """A future of this request's :class:`Prediction`. After :meth:`close` the pass runs in the
        caller's thread, so a request that raced a model swap is still answered."""
        job = _Job(images)
        if self._closed:
            self._run_batch([job])
        else:
            self._queue.put(job)
        return job.future

    def __call__(self, images: np.ndarray) -> Prediction:
        return self.submit(images).result()

    def close(self) -> None:
        """Finishes what is queued, then stops the thread."""
        self._closed = True
        self._queue.put(None)

    def _collect(self, first: _Job) -> tuple[list[_Job], bool]:
        jobs, size = [first], len(first.images)
        deadline = time.monotonic() + self.max_latency_s
        while size < self.max_batch_size:
            try:
                job = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if job is None:
                return jobs, True
            jobs.append(job)
            size += len(job.images)
        return jobs, False

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs, stop = self._collect(first)
            self._run_batch(jobs)
            if stop:
                return

    def _run_batch(self, jobs: list[_Job]) -> None:
        try:
            prediction = self.forward(np.concatenate([j.images for j in jobs]))
        except Exception as error:  # every waiting request learns why; the thread keeps serving
            for job in jobs:
                job.future.set_exception(error)
            return
        self.batches, self.images = self.batches + 1, self.images + sum(len(j.images) for j in jobs)
        start = 0
        for job in jobs:
            job.future.set_result(prediction.rows(start, start + len(job.images)))
            start += len(job.images)
