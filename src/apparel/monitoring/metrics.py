"""Prometheus gauges: the latest drift score, threshold and decision per model version and vertical.

`apparel monitor ui` (the long-running Deployment) serves them on ``monitoring.metrics_port`` at
``/metrics``; the CronJob (`apparel monitor run`) is too short-lived to be scraped, so it writes the
latest results to ``<monitoring folder>/latest.json`` and the collector reads that file on every
scrape. An alert rule can fire on ``apparel_drift_alarm == 1`` or on ``increase(apparel_drift_events_total[1h])``;
``apparel_retraining_outcomes_total`` counts what the triggered runs ended with (``no-new-data`` among them).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

LABELS = ["model_version", "vertical"]


class DriftCollector(Collector):
    def __init__(self, folder: Path) -> None:
        self.latest, self.events = Path(folder) / "latest.json", Path(folder) / "events"

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        latest = json.loads(self.latest.read_text()) if self.latest.is_file() else {}
        families = {
            "score": GaugeMetricFamily("apparel_drift_score", "Latest window's drift score (alarms above 1).",
                                       labels=LABELS),
            "threshold": GaugeMetricFamily("apparel_drift_threshold", "Calibrated threshold of that score.",
                                           labels=LABELS),
            "alarm": GaugeMetricFamily("apparel_drift_alarm", "1 if the latest window alarmed.", labels=LABELS),
            "end": GaugeMetricFamily("apparel_drift_window_end_seconds", "End of the latest scored window (unix s).",
                                     labels=LABELS),
        }
        for entry in latest.values():
            labels = [entry["model_version"], entry["stream"]]
            for name, family in families.items():
                family.add_metric(labels, float(entry[name]))
        yield from [*families.values(), *self._counters()]

    def _counters(self) -> list[CounterMetricFamily]:
        from apparel.monitoring.events import EventStore

        found = EventStore(self.events).list() if self.events.is_dir() else []
        events = CounterMetricFamily("apparel_drift_events", "Drift events declared.", labels=[*LABELS, "cause"])
        outcomes = CounterMetricFamily("apparel_retraining_outcomes", "What the retraining runs that drift events "
                                       "started ended with.", labels=["outcome"])
        for key, count in Counter((e.model_version, e.vertical, e.cause) for e in found).items():
            events.add_metric(list(key), count)
        for outcome, count in Counter(e.outcome["outcome"] for e in found if e.outcome).items():
            outcomes.add_metric([outcome], count)
        return [events, outcomes]


def serve_metrics(folder: Path, host: str, port: int):
    """Starts the /metrics server in a thread; returns (server, thread)."""
    registry = CollectorRegistry()
    registry.register(DriftCollector(folder))
    return start_http_server(port, addr=host, registry=registry)
