"""Load balancer draining: what target health says about a batch, and when a batch must be swapped in place. Pure.

Behind `load_balancer.target_group_arns` each batch (domain/rollout.py: plan_for) goes through three phases:

- DRAINING: the batch is deregistered from every group (instance id and the container's host port). It is drained
  once DescribeTargetHealth shows none of its targets still `draining` (or still serving), or once the groups' longest
  deregistration delay has passed since the deregistration was answered, whichever comes first.
- WAVE: the swap, one SSM command by InstanceIds, as any wave.
- REGISTERING: the batch is registered again; it passes once every target is `healthy` in every group. `unhealthy`
  (or not healthy within `healthy_within` seconds) counts as a failed instance against max_errors.

A batch that would leave a group with no healthy target outside it (a fleet of one; a group whose other targets are
all unhealthy) is swapped in place, never deregistered: the on-host swap is gapless (the old container serves until
the new one is healthy), while a group with no healthy target serves nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

HEALTHY = "healthy"
UNHEALTHY = frozenset({"unhealthy", "unhealthy.draining"})
# Still taking connections, or finishing them: the batch is not drained while a target is in one of these.
SERVING = frozenset({"draining", "unhealthy.draining", "healthy", "initial"})


@dataclass(frozen=True)
class TargetHealth:
    """One target of one group as DescribeTargetHealth reports it."""

    group: str
    instance_id: str
    port: int | None
    state: str
    reason: str = ""


@dataclass(frozen=True)
class GroupSettings:
    """What berth reads of a target group: its deregistration delay and how fast its health checks decide."""

    arn: str
    deregistration_delay: int
    interval_seconds: int
    healthy_threshold: int


@dataclass(frozen=True)
class Registration:
    """Where a registered batch stands: each instance healthy in every group, failed (with why), or still waiting."""

    healthy: list[str]
    failed: dict[str, str]
    waiting: list[str]

    @property
    def decided(self) -> bool:
        return not self.waiting


def in_place_groups(batch: Iterable[str], registered: Mapping[str, Sequence[TargetHealth]]) -> list[str]:
    """The groups that taking `batch` out would leave with no healthy target (from each group's registered targets):
    when any, the batch is swapped in place."""
    leaving = set(batch)
    return sorted(group for group, targets in registered.items()
                  if not any(t.state == HEALTHY and t.instance_id not in leaving for t in targets))


def drain_seconds(groups: Iterable[GroupSettings]) -> int:
    """How long a deregistered batch may take to drain: the longest deregistration delay of its groups."""
    return max((group.deregistration_delay for group in groups), default=0)


def healthy_within(groups: Iterable[GroupSettings], timeout_seconds: int) -> int:
    """How long a registered batch has to become healthy: twice the slowest group's interval x healthy threshold
    (the time its checks need to call a new target healthy), at most the rollout's timeout."""
    needed = max((2 * group.interval_seconds * group.healthy_threshold for group in groups), default=0)
    return max(1, min(needed, timeout_seconds))


def still_draining(health: Iterable[TargetHealth]) -> list[TargetHealth]:
    """The batch's targets not drained yet: still draining, or still (or again) taking connections."""
    return [target for target in health if target.state in SERVING]


def drained(health: Iterable[TargetHealth], deregistered_at: datetime, delay_seconds: int, now: datetime) -> bool:
    """Whether the batch may be swapped: none of its targets is draining, or the delay is over since deregistering."""
    return not still_draining(health) or (now - deregistered_at).total_seconds() >= delay_seconds


def registration(batch: Sequence[str], groups: Sequence[str], health: Iterable[TargetHealth],
                 registered_at: datetime, within_seconds: int, now: datetime) -> Registration:
    """Each instance of a registered batch: healthy once healthy in every group; failed as soon as a group calls it
    unhealthy, or when it is not healthy everywhere within `within_seconds`; otherwise waiting."""
    states: dict[str, dict[str, TargetHealth]] = {instance_id: {} for instance_id in batch}
    for target in health:
        if target.instance_id in states:
            states[target.instance_id][target.group] = target
    late = (now - registered_at).total_seconds() >= within_seconds
    healthy: list[str] = []
    failed: dict[str, str] = {}
    waiting: list[str] = []
    for instance_id in sorted(states):
        seen = states[instance_id]
        bad = [t for t in seen.values() if t.state in UNHEALTHY]
        if bad:
            failed[instance_id] = "; ".join(f"{_group_name(t.group)}: {t.state} ({t.reason or 'no reason given'})"
                                            for t in bad)
        elif all(group in seen and seen[group].state == HEALTHY for group in groups):
            healthy.append(instance_id)
        elif late:
            pending = [f"{_group_name(group)}: {seen[group].state if group in seen else 'not reported'}"
                       for group in groups if group not in seen or seen[group].state != HEALTHY]
            failed[instance_id] = f"not healthy within {within_seconds} s ({'; '.join(pending)})"
        else:
            waiting.append(instance_id)
    return Registration(healthy, failed, waiting)


def error_budget(max_errors: str, total: int) -> int:
    """How many of `total` instances may fail: max_errors as a count, or a percent of them rounded down."""
    return total * int(max_errors[:-1]) // 100 if max_errors.endswith("%") else int(max_errors)


def failure_message(failed: Mapping[str, str]) -> str:
    """The instances that did not become healthy, and why (the first 20)."""
    shown = "; ".join(f"{instance_id}: {why}" for instance_id, why in list(failed.items())[:20])
    return f"{len(failed)} instances not healthy in the load balancer: {shown}" + (" ..." if len(failed) > 20 else "")


def _group_name(arn: str) -> str:
    """`targetgroup/web/0123...` of an ARN: enough to tell the groups apart in a message."""
    return arn.split(":", 5)[-1]
