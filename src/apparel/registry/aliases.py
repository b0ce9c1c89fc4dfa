"""Champion and challenger aliases, with the history MLflow does not keep.

Every alias change is an audit event stored as a registered-model tag ``audit.NNNN`` (JSON: when,
who, alias, version, previous holder, why), so a reviewer reads the whole history in the MLflow UI
and ``rollback`` knows which version held ``champion`` before.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from apparel.registry.tracking import actor, retry

CHAMPION, CHALLENGER = "champion", "challenger"


@dataclass
class AuditEvent:
    when: str
    who: str
    alias: str
    version: str
    previous: str | None
    why: str


def holder(client: MlflowClient, name: str, alias: str) -> str | None:
    try:
        return str(retry(client.get_model_version_by_alias)(name, alias).version)  # int on sqlite, str on a server
    except MlflowException:
        return None


def history(client: MlflowClient, name: str) -> list[AuditEvent]:
    tags = retry(client.get_registered_model)(name).tags
    return [AuditEvent(**json.loads(tags[key])) for key in sorted(k for k in tags if k.startswith("audit."))]


def move_alias(client: MlflowClient, name: str, alias: str, version: str, why: str) -> AuditEvent:
    """Points ``alias`` at ``version`` and records who did it and why."""
    event = AuditEvent(datetime.now(UTC).isoformat(timespec="seconds"), actor(), alias, str(version),
                       holder(client, name, alias), why)
    retry(client.set_registered_model_alias)(name, alias, str(version))
    sequence = len(history(client, name))
    retry(client.set_registered_model_tag)(name, f"audit.{sequence:04d}", json.dumps(asdict(event)))
    retry(client.set_model_version_tag)(name, str(version), f"alias.{alias}.since", event.when)
    return event


def rollback(client: MlflowClient, name: str, why: str = "rollback") -> AuditEvent:
    """Moves ``champion`` back to the version that held it before the current one."""
    current = holder(client, name, CHAMPION)
    if current is None:
        raise ValueError(f"model '{name}' has no champion to roll back")
    for event in reversed(history(client, name)):
        if event.alias == CHAMPION and event.version == current:
            if event.previous is None:
                break
            return move_alias(client, name, CHAMPION, event.previous, f"{why} (was v{current})")
    raise ValueError(f"model '{name}': no earlier champion than v{current}")


def approve(client: MlflowClient, name: str, version: str, why: str = "approved in review") -> AuditEvent:
    """Review mode: a person promotes a challenger to champion."""
    try:
        retry(client.get_model_version)(name, str(version))
    except MlflowException as error:
        raise ValueError(f"model '{name}' has no version {version}") from error
    if holder(client, name, CHAMPION) == str(version):
        raise ValueError(f"v{version} already is the champion")
    event = move_alias(client, name, CHAMPION, str(version), why)
    retry(client.set_model_version_tag)(name, str(version), "gate.decision", "approved")
    return event
