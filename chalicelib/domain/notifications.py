"""berth's own events, as it publishes them to EventBridge (source `berth`): what happened, to which target, and
where to look. Pure: the service decides when an event happens, this module what it says, and the adapter
(chalicelib/adapters/events.py) sends the entries.

Every event's `detail` has the same keys (`DETAIL_KEYS`, documented in docs/notifications.md, which a test holds to
this module); a key that does not apply is null, never missing, so a rule's pattern or an input transformer can rely
on it. The console link opens the SSM command of the deployment's latest attempt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .deployment import Deployment, DeploymentStatus

SOURCE = "berth"
BATCH_SIZE = 10                 # PutEvents takes at most 10 entries per call
MAX_MESSAGE = 2000              # an entry is at most 256 KB; a message is a summary, the record has the rest

DEPLOYMENT_STARTED = "Deployment Started"
DEPLOYMENT_SUCCEEDED = "Deployment Succeeded"
DEPLOYMENT_FAILED = "Deployment Failed"
DEPLOYMENT_ROLLED_BACK = "Deployment Rolled Back"
RETRY_SCHEDULED = "Retry Scheduled"
RETRIES_EXHAUSTED = "Retries Exhausted"
BREAKER_OPENED = "Breaker Opened"
INSTANCE_JOINED = "Instance Joined"
TARGET_FROZEN = "Target Frozen"
TARGET_UNFROZEN = "Target Unfrozen"

DETAIL_TYPES = (DEPLOYMENT_STARTED, DEPLOYMENT_SUCCEEDED, DEPLOYMENT_FAILED, DEPLOYMENT_ROLLED_BACK, RETRY_SCHEDULED,
                RETRIES_EXHAUSTED, BREAKER_OPENED, INSTANCE_JOINED, TARGET_FROZEN, TARGET_UNFROZEN)
DETAIL_KEYS = ("target", "deployment_id", "status", "digest", "image", "previous_digest", "trigger", "caller",
               "reason", "command_id", "console_link", "at")

_ENDED = {DeploymentStatus.SUCCEEDED: DEPLOYMENT_SUCCEEDED, DeploymentStatus.FAILED: DEPLOYMENT_FAILED,
          DeploymentStatus.ROLLED_BACK: DEPLOYMENT_ROLLED_BACK}


@dataclass(frozen=True)
class Notification:
    detail_type: str
    at: datetime
    detail: dict[str, Any] = field(default_factory=dict)


def console_link(region: str, command_id: str | None) -> str | None:
    if not command_id:
        return None
    return f"https://{region}.console.aws.amazon.com/systems-manager/run-command/{command_id}"


def _detail(region: str, at: datetime, target: str, deployment: Deployment | None = None, reason: str = "",
            caller: str | None = None) -> dict[str, Any]:
    command_id = next((a.command_id for a in reversed(deployment.attempts) if a.command_id), None) if deployment \
        else None
    previous = deployment.previous_revision if deployment else None
    return {
        "target": target,
        "deployment_id": deployment.deployment_id if deployment else None,
        "status": deployment.status.value if deployment else None,
        "digest": deployment.revision.digest if deployment else None,
        "image": deployment.revision.pinned if deployment else None,
        "previous_digest": previous.digest if previous else None,
        "trigger": deployment.trigger if deployment else None,
        "caller": caller if caller is not None else deployment.caller if deployment else None,
        "reason": reason[:MAX_MESSAGE] or None,
        "command_id": command_id,
        "console_link": console_link(region, command_id),
        "at": at.isoformat(),
    }


def _last_word(deployment: Deployment) -> str:
    """The message a deployment ended with (its latest decision's detail)."""
    return deployment.history[-1].detail if deployment.history else ""


def deployment_started(deployment: Deployment, region: str) -> Notification:
    return Notification(DEPLOYMENT_STARTED, deployment.created_at, _detail(
        region, deployment.created_at, deployment.target, deployment, f"{deployment.trigger} by {deployment.caller}"))


def deployment_ended(deployment: Deployment, region: str) -> list[Notification]:
    """A final deployment's events: its end (none for a cancel: a person did it and knows), and a new instance's
    join when the deployment was one."""
    kind = _ENDED.get(deployment.status)
    if kind is None:
        return []
    at = deployment.updated_at
    ended = [Notification(kind, at, _detail(region, at, deployment.target, deployment, _last_word(deployment)))]
    if deployment.trigger == "join":
        ids = ", ".join(deployment.spec.instances.ids or [])
        joined = "joined" if kind == DEPLOYMENT_SUCCEEDED else "did not join"
        ended.append(Notification(INSTANCE_JOINED, at, _detail(
            region, at, deployment.target, deployment, f"instance {ids} {joined}: {_last_word(deployment)}")))
    return ended


def retry_scheduled(target: str | None, lineage: str, attempt: int, due: datetime, reason: str, now: datetime,
                    region: str, deployment: Deployment | None = None) -> Notification:
    detail = _detail(region, now, target or "", deployment, f"attempt {attempt} at {due.isoformat()}: {reason}")
    detail["deployment_id"] = detail["deployment_id"] or lineage
    return Notification(RETRY_SCHEDULED, now, detail)


def retries_exhausted(target: str | None, lineage: str, reason: str, now: datetime, region: str,
                      deployment: Deployment | None = None) -> Notification:
    detail = _detail(region, now, target or "", deployment, reason)
    detail["deployment_id"] = detail["deployment_id"] or lineage
    return Notification(RETRIES_EXHAUSTED, now, detail)


def breaker_opened(target: str, reason: str, now: datetime, region: str,
                   deployment: Deployment | None = None) -> Notification:
    return Notification(BREAKER_OPENED, now, _detail(region, now, target, deployment, reason))


def target_frozen(target: str, reason: str, caller: str, until: datetime | None, now: datetime,
                  region: str) -> Notification:
    said = f"{reason} (until {until.isoformat()})" if until else reason
    return Notification(TARGET_FROZEN, now, _detail(region, now, target, reason=said, caller=caller))


def target_unfrozen(target: str, caller: str, now: datetime, region: str) -> Notification:
    return Notification(TARGET_UNFROZEN, now, _detail(region, now, target, reason=f"unfrozen by {caller}",
                                                      caller=caller))


def entries(notifications: list[Notification], bus: str) -> list[dict[str, Any]]:
    """PutEvents entries, in order."""
    return [{"Source": SOURCE, "DetailType": n.detail_type, "Detail": json.dumps(n.detail, sort_keys=True),
             "EventBusName": bus, "Time": n.at} for n in notifications]


def batches(items: list[dict[str, Any]], size: int = BATCH_SIZE) -> list[list[dict[str, Any]]]:
    return [items[i:i + size] for i in range(0, len(items), size)]
