"""Registered versions with their aliases and gate decisions: what `apparel models` and the pipeline summary
list. Imports only the MLflow client (no torch), so listing stays fast."""

from __future__ import annotations

from pathlib import Path

from apparel.config import Config

COLUMNS = ("version", "aliases", "decision", "dataset", "reasons")


def list_versions(config: Config) -> list[dict[str, str]]:
    """Every version with its aliases and gate decision, newest first (none when there is no store yet)."""
    import mlflow
    from mlflow import MlflowClient

    from apparel.registry import aliases
    from apparel.registry.tracking import retry, tracking_uri

    configured = config.registry.tracking_uri
    if configured.startswith("sqlite:///") and not Path(configured.removeprefix("sqlite:///")).is_file():
        return []  # nothing registered, and listing must not create a store
    uri = tracking_uri(config.registry)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient()
    name = config.registry.model_name
    versions = retry(client.search_model_versions)(f"name='{name}'")
    holders = {a: aliases.holder(client, name, a) for a in (aliases.CHAMPION, aliases.CHALLENGER)} if versions else {}
    return [{"version": str(mv.version),
             "aliases": ",".join(a for a, v in holders.items() if v == str(mv.version)) or "-",
             "decision": mv.tags.get("gate.decision", "-"), "reasons": mv.tags.get("gate.reasons", "-"),
             "dataset": mv.tags.get("dataset.version", "-")}
            for mv in sorted(versions, key=lambda mv: -int(mv.version))]


def versions_table(rows: list[dict[str, str]]) -> list[str]:
    """A header row, then one aligned row per version (reasons last, unpadded)."""
    shown = [{**row, "version": f"v{row['version']}"} for row in rows]
    widths = {c: max([len(c), *(len(r[c]) for r in shown)]) for c in COLUMNS}
    return ["  ".join(f"{r[c]:<{widths[c]}}" for c in COLUMNS[:-1]) + f"  {r['reasons']}"
            for r in [{c: c for c in COLUMNS}, *shown]]
