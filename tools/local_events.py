"""A local stand-in for EventBridge: the events AWS would emit for what happened in the (emulated) account, built
from AWS's own sample events and handed to the berth Lambda whose rule matches."""

from __future__ import annotations

import uuid
from typing import Any

from tests.events import load_event

FINAL_COMMAND_STATUSES = {"Success", "Failed", "TimedOut", "Cancelled"}


def ssm_command_events(ssm: Any, delivered: set[str]) -> list[dict[str, Any]]:
    """"EC2 Command Status-change Notification" for every command that ended since the last call."""
    events = []
    for command in ssm.list_commands()["Commands"]:
        key = f"{command['CommandId']}:{command['Status']}"
        if command["Status"] in FINAL_COMMAND_STATUSES and key not in delivered:
            delivered.add(key)
            event = load_event("ssm_command_success")
            event["id"] = str(uuid.uuid4())
            event["detail"].update({"command-id": command["CommandId"], "status": command["Status"],
                                    "document-name": command["DocumentName"]})
            events.append(event)
    return events


def codedeploy_state_event(deployment_id: str, application: str, group: str, state: str,
                           instance_id: str | None = None) -> dict[str, Any]:
    event = load_event("codedeploy_instance_success" if instance_id else "codedeploy_deployment_success")
    event["id"] = str(uuid.uuid4())
    event["detail"].update({"deploymentId": deployment_id, "application": application, "deploymentGroup": group,
                            "state": state})
    if instance_id:
        event["detail"]["instanceId"] = instance_id
    return event


def instance_running_event(instance_id: str, region: str = "us-east-1") -> dict[str, Any]:
    """"EC2 Instance State-change Notification" for an instance that is now running."""
    event = load_event("ec2_instance_running")
    event["id"] = str(uuid.uuid4())
    event["region"] = region
    event["resources"] = [f"arn:aws:ec2:{region}:123456789012:instance/{instance_id}"]
    event["detail"]["instance-id"] = instance_id
    return event
