"""The BentoML service over real HTTP: every endpoint, served outputs equal to the registered pyfunc's,
every bad input answered 4xx with a JSON message while the server keeps answering."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pytest
from serving_helpers import Server, Store, apparel_command, free_port, jpeg_bytes, png_declaring, start_server

from apparel.inference import InferenceRuntime
from apparel.registry.tracking import configure
from apparel.requestlog import read_requests


def files(*images: tuple[str, bytes]) -> list[tuple[str, tuple[str, bytes]]]:
    return [("images", image) for image in images]


def upload(path: Path) -> tuple[str, bytes]:
    return path.name, path.read_bytes()


@pytest.fixture(scope="module")
def pyfunc_outputs(store: Store, catalog_images: list[Path]) -> dict[str, np.ndarray]:
    """What the registered pyfunc answers for the same files (decoded by the one runtime)."""
    configure(store.config.registry)
    model = mlflow.pyfunc.load_model(f"models:/{store.name}/1")
    runtime = InferenceRuntime(model.unwrap_python_model().model)
    return model.predict(np.stack([runtime.prepare(p) for p in catalog_images]))


def test_probes_metrics_and_openapi(server: Server) -> None:
    assert httpx.get(f"{server.http}/livez").status_code == 200
    assert httpx.get(f"{server.http}/readyz").status_code == 200
    metrics = httpx.get(f"{server.http}/metrics").text
    assert "apparel_request_log_written" in metrics and "apparel_request_log_dropped" in metrics
    paths = httpx.get(f"{server.http}/docs.json").json()["paths"]
    assert {"/embed", "/attributes", "/search", "/admin/reload"} <= set(paths)


def test_embeddings_equal_the_registered_pyfunc(server: Server, catalog_images: list[Path],
                                                pyfunc_outputs: dict[str, np.ndarray]) -> None:
    answer = httpx.post(f"{server.http}/embed", files=files(*map(upload, catalog_images)), timeout=60).json()
    assert answer["model_version"] == "1" and answer["model_name"] == "tiny-apparel"
    served = np.asarray(answer["embeddings"], dtype=np.float32)
    np.testing.assert_allclose(served, pyfunc_outputs["embedding"], atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(served, axis=1), 1.0, atol=1e-5)


def test_attributes_are_named_and_equal_the_pyfunc(server: Server, store: Store, catalog_images: list[Path],
                                                   pyfunc_outputs: dict[str, np.ndarray]) -> None:
    response = httpx.post(f"{server.http}/attributes", files=files(*map(upload, catalog_images)), data={"k": "2"},
                          timeout=60)
    answer = response.json()
    assert response.status_code == 200 and answer["model_version"] == "1"
    classes = {a: store.dataset.attribute_values(a) for a in ("colour", "pattern")}
    for row, per_image in enumerate(answer["attributes"]):
        assert set(per_image) == {"colour", "pattern"}
        for attribute, labels in per_image.items():
            assert len(labels) == 2 and labels[0]["probability"] >= labels[1]["probability"]
            probabilities = pyfunc_outputs[attribute][row]
            for label in labels:
                expected = probabilities[classes[attribute].index(label["label"])]
                assert abs(label["probability"] - expected) <= 1e-5


def test_search_by_image_with_filters(server: Server, store: Store, catalog_images: list[Path]) -> None:
    image = catalog_images[0]
    own = store.dataset.manifest.set_index("image").loc[str(image)]
    response = httpx.post(f"{server.http}/search", files=[("image", upload(image))], data={"k": "5"}, timeout=60)
    matches = response.json()["matches"]
    assert response.status_code == 200 and len(matches) == 5
    assert matches[0]["image"] == str(image) and matches[0]["score"] == pytest.approx(1.0, abs=1e-4)
    assert [m["score"] for m in matches] == sorted((m["score"] for m in matches), reverse=True)
    other = next(v for v in store.dataset.verticals if v != own["vertical"])
    filtered = httpx.post(f"{server.http}/search", files=[("image", upload(image))],
                          data={"k": "3", "vertical": other}, timeout=60).json()["matches"]
    assert filtered and all(m["vertical"] == other for m in filtered)


def test_search_by_product_id_leaves_the_product_out(server: Server, store: Store) -> None:
    manifest = store.dataset.manifest
    product = str(manifest["product_id"].iloc[0])
    colour = str(manifest.loc[manifest["product_id"].astype(str) != product, "colour"].dropna().iloc[0])
    answer = httpx.post(f"{server.http}/search", json={"product_id": product, "k": 4}, timeout=60).json()
    assert answer["model_version"] == "1" and len(answer["matches"]) == 4
    assert all(str(m["product_id"]) != product for m in answer["matches"])
    filtered = httpx.post(f"{server.http}/search", json={"product_id": product, "k": 20,
                                                         "attributes": {"colour": colour}}, timeout=60).json()
    assert filtered["matches"] and all(m["colour"] == colour for m in filtered["matches"])


TRUNCATED = jpeg_bytes(1)[:300]
BAD_UPLOADS = {
    "not an image": (files(("a.jpg", b"this is not an image")), 400, "not an image"),
    "truncated jpeg": (files(("a.jpg", TRUNCATED)), 400, "unreadable"),
    "zero bytes": (files(("a.jpg", b"")), 400, "empty"),
    "decompression bomb": (files(("a.png", png_declaring(100_000, 100_000))), 400, "decompression bomb"),
    "too many images": (files(*[("a.jpg", jpeg_bytes(i)) for i in range(5)]), 400, "limit is 4"),
    "body over the limit": (files(("a.jpg", b"\xff" * 300_000)), 413, "over the limit"),
}


@pytest.mark.parametrize("case", BAD_UPLOADS)
def test_bad_uploads_answer_4xx_and_the_server_keeps_serving(server: Server, case: str,
                                                             catalog_images: list[Path]) -> None:
    uploads, status, message = BAD_UPLOADS[case]
    response = httpx.post(f"{server.http}/embed", files=uploads, timeout=60)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    good = httpx.post(f"{server.http}/embed", files=files(upload(catalog_images[0])), timeout=60)
    assert good.status_code == 200


def test_an_unreadable_content_type_is_415_naming_the_accepted_ones(server: Server) -> None:
    response = httpx.post(f"{server.http}/embed", content=b"hello", headers={"content-type": "text/plain"},
                          timeout=60)
    assert response.status_code == 415, response.text
    assert "multipart/form-data" in response.json()["error"] and "image/jpeg" in response.json()["error"]


def test_a_raw_image_body_is_one_uploaded_image(server: Server, catalog_images: list[Path]) -> None:
    """curl --data-binary @photo.jpg -H 'content-type: image/jpeg': the same answer as the multipart upload."""
    photo = catalog_images[0].read_bytes()
    uploaded = httpx.post(f"{server.http}/embed", files=files(upload(catalog_images[0])), timeout=60).json()
    raw = httpx.post(f"{server.http}/embed", content=photo, headers={"content-type": "image/jpeg"}, timeout=60)
    assert raw.status_code == 200, raw.text
    np.testing.assert_allclose(raw.json()["embeddings"], uploaded["embeddings"], atol=1e-6)
    labels = httpx.post(f"{server.http}/attributes", params={"k": 2}, content=photo,
                        headers={"content-type": "application/octet-stream"}, timeout=60)
    assert labels.status_code == 200 and len(labels.json()["attributes"][0]["colour"]) == 2, labels.text
    found = httpx.post(f"{server.http}/search", params={"k": 3}, content=photo,
                       headers={"content-type": "image/jpeg"}, timeout=60)
    assert found.status_code == 200, found.text
    assert len(found.json()["matches"]) == 3 and found.json()["matches"][0]["image"] == str(catalog_images[0])
    not_an_image = httpx.post(f"{server.http}/embed", content=b"\x89PNG....", headers={"content-type": "image/png"},
                              timeout=60)
    assert not_an_image.status_code == 400 and "not an image" in not_an_image.json()["error"]
    misplaced = httpx.post(f"{server.http}/embed", params={"k": 2}, content=photo,
                           headers={"content-type": "image/jpeg"}, timeout=60)
    assert misplaced.status_code == 400 and "unknown query parameter k" in misplaced.json()["error"]


def _chunks(data: bytes, size: int = 16_384) -> Iterator[bytes]:
    yield from (data[start:start + size] for start in range(0, len(data), size))


def test_a_chunked_body_over_the_limit_is_413(server: Server, catalog_images: list[Path]) -> None:
    """No Content-Length (httpx sends a generator chunked): the limit is found while reading, still a 413."""
    response = httpx.post(f"{server.http}/embed", content=_chunks(b"\xff" * 300_000),
                          headers={"content-type": "image/jpeg"}, timeout=60)
    assert response.status_code == 413, response.text
    assert "over the limit of 200000 bytes" in response.json()["error"]
    under = httpx.post(f"{server.http}/embed", content=_chunks(catalog_images[0].read_bytes(), 256),
                       headers={"content-type": "image/jpeg"}, timeout=60)
    assert under.status_code == 200, under.text


def test_the_pages_served_load_no_third_party_script(server: Server) -> None:
    page = httpx.get(f"{server.http}/", timeout=60)
    assert page.status_code == 200 and "/docs.json" in page.text and "/metrics" in page.text
    assert "googletagmanager" not in page.text
    sources = re.findall(r"""<script[^>]*\bsrc\s*=\s*["']?([^"' >]+)""", page.text, flags=re.I)
    assert sources and all(not re.match(r"^([a-z][a-z0-9+.-]*:|//)", src, flags=re.I) for src in sources), sources
    for src in sources:  # the scripts it loads are served here
        assert httpx.get(f"{server.http}/{src.removeprefix('./')}", timeout=60).status_code == 200


BAD_SEARCHES = {
    "unknown product": ({"product_id": "no-such-product"}, 404, "unknown product id"),
    "k too large": ({"product_id": "{product}", "k": 21}, 400, "k must be between 1 and 20"),
    "k negative": ({"product_id": "{product}", "k": -1}, 400, "k must be between"),
    "k zero": ({"product_id": "{product}", "k": 0}, 400, "k must be between 1 and 20, got 0"),
    "unknown vertical": ({"product_id": "{product}", "vertical": "hats"}, 400, "unknown vertical 'hats'"),
    "unknown attribute": ({"product_id": "{product}", "attributes": {"fabric": "silk"}}, 400,
                          "unknown attribute 'fabric'"),
    "unknown attribute value": ({"product_id": "{product}", "attributes": {"colour": "ultraviolet"}}, 400,
                                "unknown value 'ultraviolet'"),
    "neither image nor product": ({"k": 3}, 400, "either an image or a product_id"),
}


@pytest.mark.parametrize("case", BAD_SEARCHES)
def test_bad_searches_answer_4xx(server: Server, store: Store, case: str) -> None:
    body, status, message = BAD_SEARCHES[case]
    product = str(store.dataset.manifest["product_id"].iloc[0])
    body = {k: (v.format(product=product) if isinstance(v, str) else v) for k, v in body.items()}
    response = httpx.post(f"{server.http}/search", json=body, timeout=60)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    assert httpx.post(f"{server.http}/search", json={"product_id": product, "k": 2}, timeout=60).status_code == 200


def test_attributes_k_zero_is_400_like_any_k_out_of_range(server: Server, catalog_images: list[Path]) -> None:
    response = httpx.post(f"{server.http}/attributes", files=files(upload(catalog_images[0])), data={"k": "0"},
                          timeout=60)
    assert response.status_code == 400 and "k must be between 1 and 20, got 0" in response.json()["error"]


def test_sampled_requests_reach_the_request_log(server: Server, store: Store) -> None:
    """Sample rate 1 in the test config: every served image is logged, with its predicted vertical."""
    folder = store.config.serving.request_log_dir
    deadline = time.time() + 60
    while (frame := read_requests(folder)).empty and time.time() < deadline:
        time.sleep(1)
    assert not frame.empty
    assert set(frame["endpoint"]) <= {"embed", "attributes", "search"}
    assert set(frame["vertical"]) <= set(store.dataset.verticals)
    assert (frame["model_version"] == "1").all() and len(frame["embedding"].iloc[0]) == 16
    # The file is renamed into place before the counter moves, and the gauge is exported once a second.
    assert _wait_for_request_log_written(server, deadline + 10) > 0


def test_a_second_server_on_the_machine_leaves_this_ones_metrics(server: Server, store: Store,
                                                                 catalog_images: list[Path]) -> None:
    """BentoML empties its Prometheus folder whenever a server starts: each server needs its own, or
    starting a second one (another model, another port) zeroes the first one's /metrics for good."""
    answer = httpx.post(f"{server.http}/embed", files=files(upload(catalog_images[0])), timeout=60)
    assert answer.status_code == 200
    before = _wait_for_request_log_written(server, time.time() + 60)
    assert before > 0
    second = start_server(store)
    try:
        assert httpx.get(f"{second.http}/readyz", timeout=10).status_code == 200
        time.sleep(2)  # the first server's gauges are exported once a second
        assert _request_log_written(server) >= before
    finally:
        second.stop()


def _wait_for_request_log_written(server: Server, deadline: float) -> float:
    """The request-log gauge once it leaves 0, or 0 at ``deadline``."""
    while (written := _request_log_written(server)) == 0 and time.time() < deadline:
        time.sleep(0.5)
    return written


def _request_log_written(server: Server) -> float:
    lines = [line for line in httpx.get(f"{server.http}/metrics", timeout=60).text.splitlines()
             if line.startswith("apparel_request_log_written")]
    assert lines, "apparel_request_log_written missing from /metrics"
    return float(lines[0].split()[-1])


def test_search_command_asks_the_running_service(server: Server, store: Store, catalog_images: list[Path]) -> None:
    result = subprocess.run(apparel_command(store.root / "config.yaml", "search", str(catalog_images[0]), "-k", "3",
                                            "--url", server.http), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "tiny-apparel v1:" and len(lines) == 4 and str(catalog_images[0]) in lines[1]


def test_search_command_without_a_service_says_where_it_looked(tmp_path: Path) -> None:
    photo, config_file = tmp_path / "photo.jpg", tmp_path / "config.yaml"
    photo.write_bytes(jpeg_bytes())
    config_file.write_text("{}\n")
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = subprocess.run(apparel_command(config_file, "search", str(photo), "--url", url), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 1, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and url in lines[0] and "apparel serve" in lines[0], result.stderr


def test_in_process_search_answers_like_the_service(server: Server, store: Store, catalog_images: list[Path]) -> None:
    from apparel.serving.launch import search_in_process

    local = search_in_process(store.config, catalog_images[1], 4)
    served = httpx.post(f"{server.http}/search", files=[("image", upload(catalog_images[1]))], data={"k": "4"},
                        timeout=60).json()
    assert [m["image"] for m in local["matches"]] == [m["image"] for m in served["matches"]]
    np.testing.assert_allclose([m["score"] for m in local["matches"]], [m["score"] for m in served["matches"]],
                               atol=1e-5)


def test_client_errors_are_one_info_line_without_traceback(server: Server, store: Store) -> None:
    """Requests BentoML itself refuses (a body that is not JSON, a k that is not a number) used to log an
    ERROR with a traceback each."""
    start = server.log.stat().st_size
    bad = [httpx.post(f"{server.http}/search", content=b"{not json", headers={"content-type": "application/json"},
                      timeout=60),
           httpx.post(f"{server.http}/search", json={"product_id": "x", "k": "many"}, timeout=60)]
    assert [r.status_code for r in bad] == [400, 400], [r.text for r in bad]
    deadline = time.time() + 30
    while (logged := server.log.read_text()[start:]).count("/search") < 2 and time.time() < deadline:
        time.sleep(0.5)
    lines = [line for line in logged.splitlines() if "/search" in line]
    assert len(lines) == 2 and all("INFO" in line and "ERROR" not in line for line in lines), logged
    assert "Traceback" not in logged, logged
