"""What the HTTP service and the gRPC server both call: validation, decoding, the batched forward
pass, search with filters, hot swap of the served version, and the request log.

Every answer names the model version that produced it. A request takes the served model once, at its
start, and uses it to the end, so a swap never mixes two versions in one answer.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from apparel.config import Config
from apparel.data.decode import ImageError, decode_rgb, open_image, to_model_input
from apparel.data.image_stats import image_stats
from apparel.inference import Prediction
from apparel.requestlog import RequestLog
from apparel.serving.errors import ServingError, bad_request, not_found, not_ready
from apparel.serving.model import ModelUnavailable, ServedModel, load_served_model, resolve
from apparel.serving.pixels import PixelBudget

log = logging.getLogger("apparel.serving")

NOT_ATTRIBUTES = {"product_id", "vertical", "image", "split", "sha256", "landmarks"}
SWAP_GRACE_S = 60.0  # requests that took the old model before a swap finish on it within this time


@dataclass
class Decoded:
    """One uploaded image at the model's input size, and its request-log statistics if it was sampled."""

    array: np.ndarray
    stats: dict[str, float] | None


def _image_error(number: int, count: int, error: ImageError) -> ServingError:
    where = f"image {number}: " if count > 1 else ""
    return bad_request(f"{where}{error}")


def _clean(value: Any) -> Any:
    if isinstance(value, float | np.floating) and np.isnan(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


class ServingCore:
    def __init__(self, config: Config, loader: Callable[[Config, str, str], ServedModel] = load_served_model) -> None:
        self.config, self.limits, self.loader = config, config.serving, loader
        self.served: ServedModel | None = None
        self.swaps = self.failed_reloads = 0
        self.last_reload_error = ""
        self.request_log = RequestLog(self.limits.request_log_dir, self.limits.request_log_sample_rate)
        self.decoding = PixelBudget(self.limits.max_request_pixels)  # full-size pixels in memory, all requests
        self._reload_lock = threading.Lock()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------------------
    def start(self, poll: bool = True) -> ServedModel:
        """Loads the configured model; raises :class:`ModelUnavailable` (one line) when it cannot serve."""
        name, version = resolve(self.config)
        self.served = self.loader(self.config, name, version)
        log.info("serving %s v%s", name, version)
        if poll and self.limits.poll_interval_s > 0:
            self._poller = threading.Thread(target=self._poll, name="champion-poll", daemon=True)
            self._poller.start()
        return self.served

    @property
    def ready(self) -> bool:
        return self.served is not None

    def stop(self) -> None:
        self._stop.set()
        if self.served is not None:
            self.served.batcher.close()
        self.request_log.close()

    def reload(self) -> dict[str, Any]:
        """Loads the version the alias points at now, if it changed, and swaps it in. A version that
        cannot be served (no index, mismatched index) leaves the current one serving; the log says why."""
        with self._reload_lock:
            current = self.served.version if self.served else None
            try:
                name, version = resolve(self.config)
                if version == current:
                    return {"model_version": current, "changed": False}
                fresh = self.loader(self.config, name, version)
            except ModelUnavailable as error:
                self.failed_reloads += 1
                self.last_reload_error = str(error)
                log.warning("keeping v%s: %s", current, error)
                return {"model_version": current, "changed": False, "reason": str(error)}
            old, self.served = self.served, fresh  # one assignment: every later request sees the new model
            self.swaps += 1
            self.last_reload_error = ""
            log.info("swapped v%s -> v%s", current, version)
            if old is not None:
                threading.Timer(SWAP_GRACE_S, old.batcher.close).start()
            return {"model_version": version, "changed": True, "previous_version": current}

    def _poll(self) -> None:
        while not self._stop.wait(self.limits.poll_interval_s):
            try:
                self.reload()
            except Exception:  # a registry hiccup must not end polling
                log.exception("champion poll failed")

    # ---- requests --------------------------------------------------------------------------------
    def _model(self) -> ServedModel:
        served = self.served
        if served is None:
            raise not_ready()
        return served

    def _check_count(self, images: Sequence[bytes]) -> None:
        if not images:
            raise bad_request("no image in the request")
        if len(images) > self.limits.max_images_per_request:
            raise bad_request(f"{len(images)} images in one request; the limit is "
                              f"{self.limits.max_images_per_request}")

    def _check_k(self, k: int | None, default: int) -> int:
        """``None`` (not given) is the default; 0 is out of range (gRPC passes its proto3 0 as ``None``)."""
        k = default if k is None else k
        if not 1 <= k <= self.limits.max_k:
            raise bad_request(f"k must be between 1 and {self.limits.max_k}, got {k}")
        return k

    def _decode(self, served: ServedModel, images: Sequence[bytes]) -> list[Decoded]:
        """Every header read first, and the request refused (413) if their pixels add up to more than
        ``serving.max_request_pixels``; then one image at a time decoded at full size and shrunk to the
        model's input, so only one full-size image of the request is in memory at once."""
        opened = [self._open(served, number, data, len(images)) for number, data in enumerate(images)]
        declared = sum(image.width * image.height for image in opened)
        if declared > self.limits.max_request_pixels:
            raise ServingError(413, f"{len(opened)} image(s) declare {declared:,} pixels in all, over "
                                    f"serving.max_request_pixels {self.limits.max_request_pixels:,}")
        return [self._shrink(served, number, image, len(images)) for number, image in enumerate(opened)]

    @staticmethod
    def _open(served: ServedModel, number: int, data: bytes, count: int) -> Image.Image:
        try:
            return open_image(data, served.runtime.max_pixels)
        except ImageError as error:
            raise _image_error(number, count, error) from error

    def _shrink(self, served: ServedModel, number: int, image: Image.Image, count: int) -> Decoded:
        with self.decoding.hold(image.width * image.height):
            try:
                rgb = decode_rgb(image, served.runtime.max_pixels)
                return Decoded(to_model_input(rgb, served.runtime.image_size), self._sampled_stats(rgb))
            except ImageError as error:
                raise _image_error(number, count, error) from error
            finally:  # frees the full-size pixels now: the request still holds the opened image
                image.close()

    def _sampled_stats(self, image: Image.Image) -> dict[str, float] | None:
        """The request log's statistics of the full-size image, when the log samples it (else None)."""
        if not self.request_log.sample():
            return None
        try:
            return image_stats(image)
        except Exception:  # the request log never fails a request
            log.exception("request log sample lost")
            return None

    @staticmethod
    def _predict(served: ServedModel, decoded: list[Decoded]) -> Prediction:
        return served.batcher(np.stack([image.array for image in decoded]))

    def _log(self, served: ServedModel, endpoint: str, decoded: list[Decoded], prediction: Prediction) -> None:
        """Never blocks or fails the request: the neighbour search for the vertical runs on the writer thread."""
        try:
            top = served.runtime.top_labels(prediction, 1)
            for row, image in enumerate(decoded):
                if image.stats is None:
                    continue
                stats, embedding = image.stats, prediction.embeddings[row]
                attributes = json.dumps({a: labels[0]["label"] for a, labels in top[row].items()})

                def record(embedding=embedding, stats=stats, attributes=attributes) -> dict[str, Any]:
                    vertical = served.index.predict_vertical(embedding[None])[0]
                    return {"model_version": served.version, "endpoint": endpoint, "vertical": vertical,
                            "attributes": attributes, "embedding": embedding, **stats}

                self.request_log.put(record)
        except Exception:
            log.exception("request log sample lost")

    def embed(self, images: Sequence[bytes]) -> dict[str, Any]:
        served = self._model()
        self._check_count(images)
        decoded = self._decode(served, images)
        prediction = self._predict(served, decoded)
        self._log(served, "embed", decoded, prediction)
        return {"model_name": served.name, "model_version": served.version,
                "embeddings": prediction.embeddings.tolist()}

    def attributes(self, images: Sequence[bytes], k: int | None = None) -> dict[str, Any]:
        served = self._model()
        self._check_count(images)
        k = self._check_k(k, self.limits.top_labels)
        decoded = self._decode(served, images)
        prediction = self._predict(served, decoded)
        self._log(served, "attributes", decoded, prediction)
        return {"model_name": served.name, "model_version": served.version,
                "attributes": served.runtime.top_labels(prediction, k)}

    def search(self, image: bytes | None = None, product_id: str | None = None, k: int | None = None,
               vertical: str | None = None, attributes: dict[str, str] | None = None) -> dict[str, Any]:
        served = self._model()
        if (image is None) == (not product_id):
            raise bad_request("give either an image or a product_id")
        k = self._check_k(k, self.limits.default_k)
        rows = served.index.rows
        allowed = self._filter(rows, vertical, attributes or {})
        if product_id:
            query, own = self._catalog_vector(served, product_id)
            allowed = ~own if allowed is None else allowed & ~own
        else:
            decoded = self._decode(served, [image])
            prediction = self._predict(served, decoded)
            self._log(served, "search", decoded, prediction)
            query = prediction.embeddings[0]
        scores, positions = served.index.search(np.asarray(query, dtype=np.float32)[None], k, allowed)
        matches = [{"score": float(score), **{c: _clean(v) for c, v in rows.iloc[int(p)].items()}}
                   for score, p in zip(scores[0], positions[0], strict=True) if p >= 0]
        return {"model_name": served.name, "model_version": served.version, "matches": matches}

    @staticmethod
    def _filter(rows: pd.DataFrame, vertical: str | None, attributes: dict[str, str]) -> np.ndarray | None:
        mask = np.ones(len(rows), dtype=bool)
        if vertical:
            known = sorted(rows["vertical"].dropna().unique())
            if vertical not in known:
                raise bad_request(f"unknown vertical '{vertical}' (known: {', '.join(known)})")
            mask &= (rows["vertical"] == vertical).to_numpy()
        names = sorted(c for c in rows.columns if c not in NOT_ATTRIBUTES)
        for attribute, value in attributes.items():
            if attribute not in names:
                raise bad_request(f"unknown attribute '{attribute}' (known: {', '.join(names)})")
            column = rows[attribute].astype("string")
            if not (column == value).any():
                raise bad_request(f"unknown value '{value}' of attribute '{attribute}'")
            mask &= (column == value).fillna(False).to_numpy(dtype=bool)
        return None if mask.all() else mask

    @staticmethod
    def _catalog_vector(served: ServedModel, product_id: str) -> tuple[np.ndarray, np.ndarray]:
        """The catalog's own vector of the product (its first image) and the mask of its rows, which the
        search leaves out: the query item is not its own most similar item."""
        own = (served.index.rows["product_id"].astype(str) == str(product_id)).to_numpy()
        if not own.any():
            raise not_found(f"unknown product id '{product_id}'")
        return served.index.index.reconstruct(int(np.flatnonzero(own)[0])), own

    def metrics(self) -> dict[str, float]:
        served = self.served
        return {"request_log_written": self.request_log.written, "request_log_dropped": self.request_log.dropped,
                "model_swaps": self.swaps, "failed_reloads": self.failed_reloads,
                "batches": served.batcher.batches if served else 0,
                "batched_images": served.batcher.images if served else 0}


__all__ = ["ServingCore", "ServingError"]
