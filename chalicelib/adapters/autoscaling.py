"""EC2 Auto Scaling: completing the launch lifecycle action that holds a new instance in Pending:Wait."""

from __future__ import annotations

from typing import Any

from chalicelib.adapters.errors import aws_call, returning
from chalicelib.domain.instance_launch import LifecycleHook


class LifecycleActions:
    def __init__(self, autoscaling_client: Any) -> None:
        self._autoscaling = autoscaling_client

    def complete(self, hook: LifecycleHook, instance_id: str, result: str) -> bool:
        """CompleteLifecycleAction with `result` (CONTINUE or ABANDON). False when the action is no longer waiting
        (AWS answers ValidationError: completed already, or its heartbeat timeout passed and the default result
        applied), which leaves nothing for berth to do."""
        done = aws_call("Auto Scaling CompleteLifecycleAction", self._autoscaling.complete_lifecycle_action,
                        expected={"ValidationError": returning(None)},
                        AutoScalingGroupName=hook.group, LifecycleHookName=hook.name,
                        LifecycleActionToken=hook.token, InstanceId=instance_id, LifecycleActionResult=result)
        return done is not None
