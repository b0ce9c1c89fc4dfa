"""Champion and challenger aliases, with the history MLflow does not keep.

Every alias change is an audit event stored as a registered-model tag ``audit.<time ns>-<random>``
(JSON: when, who, alias, version, previous holder, why, whether it was a rollback), so a reviewer
reads the whole history in the MLflow UI and ``rollback`` knows which versions held ``champion``
before. Keys are unique per event, so concurrent registrations never overwrite each other's entry.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST, ErrorCode

from apparel.registry.tracking import actor, retry

CHAMPION, CHALLENGER = "champion", "challenger"
AUDIT_PREFIX = "audit."
# What the service needs of a champion, as artefacts of the version's run: its catalog search index
# (apparel.index.ARTIFACT_PATH) and its drift reference (apparel.monitoring.reference.ARTIFACT_PATH).
CHAMPION_ARTEFACTS = {"index": "search index", "monitoring/reference": "drift reference"}
Prepare = Callable[[str], object]  # builds what a version lacks to be champion, before the alias moves


class NotReady(ValueError):
    """A version that would be champion without its search index or drift reference; one line."""


@dataclass
class AuditEvent:
    when: str
    who: str
    alias: str
    version: str
    previous: str | None
    why: str
    rollback: bool = False  # entries written before this field existed read as ordinary moves


def not_found(error: MlflowException) -> bool:
    return error.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST)


def alias_missing(error: MlflowException, alias: str) -> bool:
    """True only for "no such alias" (or no such model yet); a server or store failure is not."""
    if not_found(error):
        return True
    return (error.error_code == ErrorCode.Name(INVALID_PARAMETER_VALUE)
            and f"alias {alias} not found" in error.message.lower())


def holder(client: MlflowClient, name: str, alias: str) -> str | None:
    """The version holding ``alias``; None when nothing holds it. Any other failure propagates:
    reading a broken store as "no champion" would promote a candidate without comparison."""
    try:
        return str(retry(client.get_model_version_by_alias)(name, alias).version)  # int on sqlite, str on a server
    except MlflowException as error:
        if alias_missing(error, alias):
            return None
        raise


def history(client: MlflowClient, name: str) -> list[AuditEvent]:
    tags = retry(client.get_registered_model)(name).tags
    return [AuditEvent(**json.loads(tags[key])) for key in sorted(k for k in tags if k.startswith(AUDIT_PREFIX))]


def audit_key() -> str:
    """Sorts in time order; the random suffix keeps two writers in the same nanosecond apart."""
    return f"{AUDIT_PREFIX}{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"


def champion_missing(client: MlflowClient, name: str, version: str) -> list[str]:
    """What ``version`` lacks to be served as champion (empty when it has all of it)."""
    run_id = retry(client.get_model_version)(name, str(version)).tags.get("run_id")
    if not run_id:
        return list(CHAMPION_ARTEFACTS.values())
    return [what for path, what in CHAMPION_ARTEFACTS.items() if not retry(client.list_artifacts)(run_id, path)]


def require_champion_ready(client: MlflowClient, name: str, version: str) -> None:
    """Refuses (:class:`NotReady`) a champion the service could not start on: no new server starts on a
    champion without an index, so the alias never points at one."""
    missing = champion_missing(client, name, version)
    if missing:
        current = holder(client, name, CHAMPION)
        raise NotReady(f"v{version} has no {' and no '.join(missing)}, so it cannot be champion (champion stays "
                       f"{f'v{current}' if current else 'unset'}): `apparel index {version}` builds them")


def move_alias(client: MlflowClient, name: str, alias: str, version: str, why: str,
               rollback: bool = False) -> AuditEvent:
    """Points ``alias`` at ``version`` and records who did it and why; ``champion`` only moves to a
    version with its search index and drift reference."""
    if alias == CHAMPION:
        require_champion_ready(client, name, version)
    event = AuditEvent(datetime.now(UTC).isoformat(timespec="seconds"), actor(), alias, str(version),
                       holder(client, name, alias), why, rollback)
    retry(client.set_registered_model_alias)(name, alias, str(version))
    retry(client.set_registered_model_tag)(name, audit_key(), json.dumps(asdict(event)))
    retry(client.set_model_version_tag)(name, str(version), f"alias.{alias}.since", event.when)
    return event


def champion_lineage(events: list[AuditEvent]) -> list[str]:
    """The champions still standing, oldest first: each promotion stacks a version, each rollback
    unstacks down to the version it restored (so rolled-back versions are never restored again)."""
    stack: list[str] = []
    for event in events:
        if event.alias != CHAMPION:
            continue
        if event.rollback and event.version in stack:
            del stack[stack.index(event.version) + 1:]
        elif not stack or stack[-1] != event.version:
            stack.append(event.version)
    return stack


def rollback(client: MlflowClient, name: str, why: str = "rollback", prepare: Prepare | None = None) -> AuditEvent:
    """Moves ``champion`` back to the version that held it before the current one; a second rollback
    goes further back. ``prepare`` first gives that version what it lacks to be champion."""
    current = holder(client, name, CHAMPION)
    if current is None:
        raise ValueError(f"model '{name}' has no champion to roll back")
    lineage = champion_lineage(history(client, name))
    if current in lineage:
        del lineage[lineage.index(current):]
    if not lineage:
        raise ValueError(f"model '{name}': no earlier champion than v{current}")
    if prepare is not None:
        prepare(lineage[-1])
    return move_alias(client, name, CHAMPION, lineage[-1], f"{why} (was v{current})", rollback=True)


def approve(client: MlflowClient, name: str, version: str, why: str = "approved in review",
            prepare: Prepare | None = None) -> AuditEvent:
    """Review mode: a person promotes a challenger to champion; ``prepare`` first gives it what it lacks."""
    try:
        retry(client.get_model_version)(name, str(version))
    except MlflowException as error:
        raise ValueError(f"model '{name}' has no version {version}") from error
    if holder(client, name, CHAMPION) == str(version):
        raise ValueError(f"v{version} already is the champion")
    if prepare is not None:
        prepare(str(version))
    event = move_alias(client, name, CHAMPION, str(version), why)
    retry(client.set_model_version_tag)(name, str(version), "gate.decision", "approved")
    return event
