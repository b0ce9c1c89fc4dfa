"""Drift monitoring: the champion's reference, calibrated window scores, debounced retraining events,
Evidently's workspace and UI, Prometheus gauges. ``apparel monitor --help``."""
