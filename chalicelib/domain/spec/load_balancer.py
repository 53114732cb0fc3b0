"""The ELBv2 target groups a target's instances serve behind: berth drains each batch out of them before its swap.

An instance is registered by its id and the container's host port (TargetSpec.load_balancer_port): the health check's
port when the spec gives one, otherwise its single TCP host port. domain/rollout.py plans the batches.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from .fields import StrictModel, anchored

# An ELBv2 target group ARN (Elastic Load Balancing API Reference, TargetGroupArn; names: 1 to 32 alphanumerics and
# hyphens, not starting or ending with a hyphen), in any partition.
TARGET_GROUP_ARN = (r"^arn:aws[a-z-]*:elasticloadbalancing:[a-z]{2}(-[a-z]+)+-[0-9]:[0-9]{12}:"
                    r"targetgroup/[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,30}[a-zA-Z0-9])?/[0-9a-f]{16}$")
MAX_TARGET_GROUPS = 5


class LoadBalancerSpec(StrictModel):
    target_group_arns: list[Annotated[str, Field(pattern=anchored(TARGET_GROUP_ARN))]] = Field(
        min_length=1, max_length=MAX_TARGET_GROUPS, description=(
            "ELBv2 target groups (instance targets) the fleet serves behind: each batch is deregistered and drained "
            "before its swap and registered again after it, healthy before the next batch"))

    @field_validator("target_group_arns")
    @classmethod
    def _distinct(cls, arns: list[str]) -> list[str]:
        if len(set(arns)) != len(arns):
            raise ValueError("'target_group_arns' names a target group twice")
        return arns
