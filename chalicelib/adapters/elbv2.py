"""Elastic Load Balancing v2: taking a batch of instances out of its target groups and putting it back.

Targets are instance ids with the container's host port (TargetSpec.load_balancer_port). Every call goes through
aws_call; the answers become domain.draining values. DescribeTargetHealth is asked by targets (the batch's, one call a
group) while a batch drains or registers, and for the whole group (its registered targets) once before a batch is
taken out, for the in-place rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chalicelib.adapters.errors import aws_call
from chalicelib.domain.draining import GroupSettings, TargetHealth

DEREGISTRATION_DELAY = "deregistration_delay.timeout_seconds"
DEFAULT_DEREGISTRATION_DELAY = 300      # ELBv2's default (Target group attributes, Elastic Load Balancing guide)


class TargetGroups:
    def __init__(self, elbv2_client: Any) -> None:
        self._elbv2 = elbv2_client

    def registered(self, arns: Sequence[str]) -> dict[str, list[TargetHealth]]:
        """Every target registered in each group, with its health (one DescribeTargetHealth a group)."""
        return {arn: self._health(arn, None) for arn in arns}

    def health(self, arns: Sequence[str], instance_ids: Sequence[str], port: int) -> list[TargetHealth]:
        """The health of these instances' targets in every group (one DescribeTargetHealth a group)."""
        targets = [{"Id": instance_id, "Port": port} for instance_id in instance_ids]
        return [target for arn in arns for target in self._health(arn, targets)]

    def deregister(self, arn: str, targets: Sequence[TargetHealth]) -> None:
        """Take these registered targets out of the group (by id and the port they are registered with)."""
        if targets:
            aws_call("ELBv2 DeregisterTargets", self._elbv2.deregister_targets, TargetGroupArn=arn,
                     Targets=[_target(t.instance_id, t.port) for t in targets])

    def register(self, arns: Sequence[str], instance_ids: Sequence[str], port: int) -> None:
        """Put these instances in every group on `port` (registering a registered target again changes nothing)."""
        for arn in arns:
            aws_call("ELBv2 RegisterTargets", self._elbv2.register_targets, TargetGroupArn=arn,
                     Targets=[{"Id": instance_id, "Port": port} for instance_id in instance_ids])

    def settings(self, arns: Sequence[str]) -> list[GroupSettings]:
        """Each group's deregistration delay and health check pace (DescribeTargetGroups once, and
        DescribeTargetGroupAttributes a group)."""
        groups = aws_call("ELBv2 DescribeTargetGroups", self._elbv2.describe_target_groups,
                          TargetGroupArns=list(arns)).get("TargetGroups", [])
        found: list[GroupSettings] = []
        for group in groups:
            arn = str(group["TargetGroupArn"])
            attributes = aws_call("ELBv2 DescribeTargetGroupAttributes",
                                  self._elbv2.describe_target_group_attributes, TargetGroupArn=arn)
            delay = next((int(a["Value"]) for a in attributes.get("Attributes", [])
                          if a["Key"] == DEREGISTRATION_DELAY), DEFAULT_DEREGISTRATION_DELAY)
            found.append(GroupSettings(arn=arn, deregistration_delay=delay,
                                       interval_seconds=int(group.get("HealthCheckIntervalSeconds", 30)),
                                       healthy_threshold=int(group.get("HealthyThresholdCount", 5))))
        return found

    def _health(self, arn: str, targets: list[dict[str, Any]] | None) -> list[TargetHealth]:
        kwargs: dict[str, Any] = {"TargetGroupArn": arn}
        if targets is not None:
            kwargs["Targets"] = targets
        answer = aws_call("ELBv2 DescribeTargetHealth", self._elbv2.describe_target_health, **kwargs)
        return [TargetHealth(group=arn, instance_id=str(d["Target"]["Id"]),
                             port=int(d["Target"]["Port"]) if "Port" in d["Target"] else None,
                             state=str(d.get("TargetHealth", {}).get("State", "")),
                             reason=str(d.get("TargetHealth", {}).get("Reason", "")))
                for d in answer.get("TargetHealthDescriptions", [])]


def _target(instance_id: str, port: int | None) -> dict[str, Any]:
    return {"Id": instance_id} if port is None else {"Id": instance_id, "Port": port}
