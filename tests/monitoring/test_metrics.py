"""Prometheus gauges: latest score, threshold and decision per vertical; events and retraining outcomes
as counters."""

import json
import socket
from dataclasses import asdict

import httpx

from apparel.monitoring.events import DriftEvent
from apparel.monitoring.metrics import serve_metrics


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_gauges_follow_the_latest_results_file(tmp_path):
    latest = {"v2/overall": {"model_version": "2", "stream": "overall", "score": 3.5, "threshold": 1.25,
                             "alarm": 1, "end": 1700000000.0},
              "v2/tops": {"model_version": "2", "stream": "tops", "score": 0.4, "threshold": 1.5, "alarm": 0,
                          "end": 1700000000.0}}
    (tmp_path / "latest.json").write_text(json.dumps(latest))
    (tmp_path / "events").mkdir()
    outcome = tmp_path / "runs" / "v2_overall_4.outcome.json"
    outcome.parent.mkdir()
    outcome.write_text(json.dumps({"outcome": "no-new-data", "summary": "nothing registered"}))
    event = DriftEvent("v2/overall/4", "2", "overall", [{"key": "v2/overall/4", "score": 3.5}], 1.0, "size",
                       run={"kind": "kfp-local", "outcome": str(outcome)})
    (tmp_path / "events" / "v2_overall_4.json").write_text(json.dumps(asdict(event)))
    port = free_port()
    server, thread = serve_metrics(tmp_path, "127.0.0.1", port)
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert 'apparel_drift_score{model_version="2",vertical="overall"} 3.5' in text
        assert 'apparel_drift_alarm{model_version="2",vertical="tops"} 0.0' in text
        assert 'apparel_drift_threshold{model_version="2",vertical="tops"} 1.5' in text
        assert 'apparel_drift_events_total{cause="size",model_version="2",vertical="overall"} 1.0' in text
        assert "# TYPE apparel_drift_events_total counter" in text
        assert 'apparel_retraining_outcomes_total{outcome="no-new-data"} 1.0' in text
        latest["v2/tops"]["alarm"] = 1  # the next job run wrote new results: the next scrape shows them
        (tmp_path / "latest.json").write_text(json.dumps(latest))
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert 'apparel_drift_alarm{model_version="2",vertical="tops"} 1.0' in text
    finally:
        server.shutdown()
