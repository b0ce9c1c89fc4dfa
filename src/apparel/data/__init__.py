"""Data: the synthetic catalog, catalog adapters, ingest and the tensors training reads."""
