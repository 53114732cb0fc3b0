"""CompleteLifecycleAction, which moto lacks, and the launch lifecycle actions it completes.

moto keeps Auto Scaling groups and their lifecycle hooks but no lifecycle actions: an instance is never held in
Pending:Wait. A test starts one with :func:`localaws.start_lifecycle_action` (the group and its
autoscaling:EC2_INSTANCE_LAUNCHING hook must exist in moto) and gets the action's token, which the EventBridge event
carries. CompleteLifecycleAction then finishes it once: as AWS does, completing an action that is not waiting (done
already, or unknown) answers ``ValidationError`` "No active Lifecycle Action found ...", and is not recorded.
"""

from __future__ import annotations

import uuid
from typing import Any

from moto.core.responses import ActionResult, BaseResponse, EmptyResult

from . import state
from .errors import AwsError
from .validate import check_request

SERVICE = "autoscaling"
LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"


def _backend(account_id: str, region: str) -> Any:
    from moto.autoscaling.models import autoscaling_backends

    return autoscaling_backends[account_id][region]


def start_action(account_id: str, region: str, group: str, hook: str, instance_id: str) -> str:
    backend = _backend(account_id, region)
    found = backend.lifecycle_hooks.get(f"{group}_{hook}")
    if group not in backend.autoscaling_groups or found is None or found.lifecycle_transition != LAUNCHING:
        raise ValueError(f"no {LAUNCHING} hook {hook!r} on Auto Scaling group {group!r} in moto")
    token = str(uuid.uuid4())
    with state.LOCK:
        state.current().lifecycle_actions[token] = {"AutoScalingGroupName": group, "LifecycleHookName": hook,
                                                    "InstanceId": instance_id}
    return token


def complete_lifecycle_action(self: BaseResponse) -> ActionResult:
    params = {name: self._get_param(name) for name in (
        "AutoScalingGroupName", "LifecycleHookName", "LifecycleActionToken", "InstanceId", "LifecycleActionResult")}
    params = {name: value for name, value in params.items() if value is not None}
    check_request(SERVICE, "CompleteLifecycleAction", params)
    if params["LifecycleActionResult"] not in ("CONTINUE", "ABANDON"):
        raise AwsError("ValidationError", "LifecycleActionResult must be CONTINUE or ABANDON")
    if "LifecycleActionToken" not in params and "InstanceId" not in params:
        raise AwsError("ValidationError", "Either LifecycleActionToken or InstanceId must be specified")
    with state.LOCK:
        live = state.current()
        token = params.get("LifecycleActionToken") or next(
            (known for known, action in live.lifecycle_actions.items()
             if action["InstanceId"] == params["InstanceId"]), "")
        action = live.lifecycle_actions.get(token)
        wanted = {key: params[key] for key in ("AutoScalingGroupName", "LifecycleHookName", "InstanceId")
                  if key in params}
        if action is None or any(action[key] != value for key, value in wanted.items()):
            raise AwsError("ValidationError", f"No active Lifecycle Action found with token {token}")
        del live.lifecycle_actions[token]
        live.lifecycle_results.append({**action, "LifecycleActionToken": token,
                                       "LifecycleActionResult": params["LifecycleActionResult"]})
    return EmptyResult()


METHODS = {"complete_lifecycle_action": complete_lifecycle_action}
