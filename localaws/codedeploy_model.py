"""What CodeDeploy reports about an EC2/on-premises deployment's instances, built from localaws state.

moto keeps deployments at ``Created`` and knows nothing of their instances. Here a deployment's targets
are the running EC2 instances matching its group's ``ec2TagFilters`` / ``ec2TagSet`` when it is created,
plus any instance named in :func:`localaws.set_deployment_outcome`. An instance's lifecycle events are
derived from its status and the event it stopped at: events before it Succeeded, that one carries the
status and the diagnostics (``errorCode``, ``scriptName``, ``message``, ``logTail``), later ones Skipped.
"""

from __future__ import annotations

import datetime
from typing import Any

from moto.core.utils import get_service_model

# In-place EC2 deployment without a load balancer, in the order the agent runs them.
LIFECYCLE_EVENTS = (
    "ApplicationStop",
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
)
ACTIVE_STATUSES = ("Created", "Queued", "InProgress", "Baking", "Ready")
DONE_STATUSES = ("Succeeded", "Failed", "Stopped")
INSTANCE_KEYS = ("status", "lifecycle_event", "script_name", "error_code", "message", "log_tail")
# What an instance not described in the outcome reports, by deployment status.
_IMPLIED_INSTANCE_STATUS = {
    "Created": "Pending",
    "Queued": "Pending",
    "InProgress": "InProgress",
    "Baking": "Succeeded",
    "Ready": "Ready",
    "Succeeded": "Succeeded",
    "Failed": "Skipped",
    "Stopped": "Skipped",
}


def enum_of(shape_name: str) -> list[str]:
    values: list[str] = getattr(get_service_model("codedeploy").shape_for(shape_name), "enum", [])
    return values


def check_instance_spec(instance_id: str, spec: dict[str, Any]) -> None:
    """Refuse specs AWS could never report, so a test cannot build a world the Lambda will never see."""
    unknown = set(spec) - set(INSTANCE_KEYS)
    if unknown:
        raise ValueError(f"{instance_id}: unknown keys {sorted(unknown)}; use {INSTANCE_KEYS}")
    if spec.get("status", "Succeeded") not in enum_of("InstanceStatus"):
        raise ValueError(f"{instance_id}: status must be one of {enum_of('InstanceStatus')}")
    if spec.get("lifecycle_event", LIFECYCLE_EVENTS[0]) not in LIFECYCLE_EVENTS:
        raise ValueError(f"{instance_id}: lifecycle_event must be one of {LIFECYCLE_EVENTS}")
    if spec.get("error_code", "UnknownError") not in enum_of("LifecycleErrorCode"):
        raise ValueError(f"{instance_id}: error_code must be one of {enum_of('LifecycleErrorCode')}")


def _event(name: str, status: str, moment: datetime.datetime, diagnostics: dict[str, str] | None) -> dict[str, Any]:
    event: dict[str, Any] = {"lifecycleEventName": name, "status": status}
    if status not in ("Pending", "Skipped"):
        event["startTime"] = moment
    if status in ("Succeeded", "Failed"):
        event["endTime"] = moment
    if diagnostics is not None:
        event["diagnostics"] = diagnostics
    return event


def lifecycle_events(spec: dict[str, Any], moment: datetime.datetime) -> list[dict[str, Any]]:
    status = spec["status"]
    if status in ("Pending", "Skipped", "Unknown"):
        return [_event(name, status, moment, None) for name in LIFECYCLE_EVENTS]
    if status in ("Succeeded", "Ready"):
        ok = {"errorCode": "Success", "scriptName": "", "message": "Succeeded", "logTail": ""}
        return [_event(name, "Succeeded", moment, dict(ok)) for name in LIFECYCLE_EVENTS]
    stop_at = LIFECYCLE_EVENTS.index(spec.get("lifecycle_event", LIFECYCLE_EVENTS[0]))
    events = []
    for index, name in enumerate(LIFECYCLE_EVENTS):
        if index < stop_at:
            ok = {"errorCode": "Success", "scriptName": "", "message": "Succeeded", "logTail": ""}
            events.append(_event(name, "Succeeded", moment, ok))
        elif index == stop_at and status == "Failed":
            diagnostics = {
                "errorCode": spec.get("error_code", "ScriptFailed"),
                "scriptName": spec.get("script_name", ""),
                "message": spec.get("message", "Script at specified location returned non-zero exit code"),
                "logTail": spec.get("log_tail", ""),
            }
            events.append(_event(name, "Failed", moment, diagnostics))
        elif index == stop_at:
            events.append(_event(name, "InProgress", moment, None))
        else:
            events.append(_event(name, "Skipped" if status == "Failed" else "Pending", moment, None))
    return events


def instance_spec(deployment_status: str, described: dict[str, Any] | None) -> dict[str, Any]:
    """The instance's full spec: what the outcome said, or what the deployment's status implies."""
    if described is not None:
        return {"status": "Succeeded", **described}
    return {"status": _IMPLIED_INSTANCE_STATUS.get(deployment_status, "Unknown")}


def instance_target(
    deployment_id: str, instance_id: str, arn: str, spec: dict[str, Any], moment: datetime.datetime
) -> dict[str, Any]:
    return {
        "deploymentTargetType": "InstanceTarget",
        "instanceTarget": {
            "deploymentId": deployment_id,
            "targetId": instance_id,
            "targetArn": arn,
            "status": spec["status"],
            "lastUpdatedAt": moment,
            "lifecycleEvents": lifecycle_events(spec, moment),
        },
    }


def overview(statuses: list[str]) -> dict[str, int]:
    """``deploymentOverview`` counts from instance statuses."""
    counts = dict.fromkeys(("Pending", "InProgress", "Succeeded", "Failed", "Skipped", "Ready"), 0)
    for status in statuses:
        if status in counts:
            counts[status] += 1
    return counts
