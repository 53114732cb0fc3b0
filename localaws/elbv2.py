"""ELBv2 target health a test can set: moto's target groups, with the states a real group passes through.

moto answers RegisterTargets, DeregisterTargets, DescribeTargetHealth, DescribeTargetGroups and
DescribeTargetGroupAttributes (botocore validates each call), but a registered instance target is `healthy` at once
and a deregistered one `unused` at once: nothing ever drains, starts `initial` or turns `unhealthy`. localaws wraps
moto's target group so that

- `set_target_health(arn, id, state, reason, reads=None)` makes a target read `state` (for `reads` reads, or until
  `clear_target_health`), whatever its registration: an `unhealthy`, `draining` or `healthy` at a chosen moment;
- `set_transition_reads(draining=n, initial=m)` makes every target deregistered from now on read `draining`
  (Target.DeregistrationInProgress) for its next n reads, and every target registered `initial`
  (Elb.RegistrationInProgress) for its next m, as a group with a deregistration delay and health checks does.

A read is one target in one DescribeTargetHealth answer. Deregistering a target that is not registered raises
InvalidTarget, as moto does.
"""

from __future__ import annotations

from typing import Any

from . import state

REASONS = {"draining": ("Target.DeregistrationInProgress", "Target deregistration is in progress"),
           "initial": ("Elb.RegistrationInProgress", "Target registration is in progress"),
           "unhealthy": ("Target.ResponseCodeMismatch", "Health checks failed with these codes: [502]"),
           "unused": ("Target.NotRegistered", "Target is not registered to the target group")}


def set_target_health(target_group_arn: str, target_id: str, health: str, reason: str | None = None,
                      reads: int | None = None) -> None:
    with state.LOCK:
        state.current().target_health[(target_group_arn, target_id)] = (
            health, reason or REASONS.get(health, ("", ""))[0], reads)


def clear_target_health(target_group_arn: str, target_id: str) -> None:
    with state.LOCK:
        state.current().target_health.pop((target_group_arn, target_id), None)


def set_transition_reads(draining: int = 0, initial: int = 0) -> None:
    with state.LOCK:
        live = state.current()
        live.draining_reads, live.initial_reads = draining, initial


def _set(target_group: Any, health: Any, status: str, reason: str) -> Any:
    from moto.elbv2.models import FakeHealthStatus

    description = REASONS.get(status, (reason, ""))[1] if reason == REASONS.get(status, ("",))[0] else ""
    return FakeHealthStatus(health.instance_id, health.port, target_group.health_check_port, status,
                            reason or None, description or None)


def _health_for(moto_health_for: Any) -> Any:
    def health_for(self: Any, target: dict[str, Any], ec2_backend: Any) -> Any:
        health = moto_health_for(self, target, ec2_backend)
        key = (self.arn, target["Id"])
        with state.LOCK:
            live = state.current()
            if key in live.target_health:
                status, reason, reads = live.target_health[key]
                if reads is not None:
                    if reads <= 1:
                        del live.target_health[key]
                    else:
                        live.target_health[key] = (status, reason, reads - 1)
                return _set(self, health, status, reason)
            if key in live.in_transition:
                status, reads = live.in_transition[key]
                if reads <= 1:
                    del live.in_transition[key]
                else:
                    live.in_transition[key] = (status, reads - 1)
                return _set(self, health, status, REASONS[status][0])
        return health

    return health_for


def _transition(moto_method: Any, status: str) -> Any:
    def method(self: Any, targets: list[dict[str, Any]]) -> None:
        moto_method(self, targets)
        with state.LOCK:
            live = state.current()
            reads = live.draining_reads if status == "draining" else live.initial_reads
            for target in targets:
                if reads > 0:
                    live.in_transition[(self.arn, target["Id"])] = (status, reads)
                else:
                    live.in_transition.pop((self.arn, target["Id"]), None)

    return method


def patch_target_groups() -> None:
    from moto.elbv2.models import FakeTargetGroup

    FakeTargetGroup.health_for = _health_for(FakeTargetGroup.health_for)  # type: ignore[method-assign]
    FakeTargetGroup.register = _transition(FakeTargetGroup.register, "initial")  # type: ignore[method-assign]
    FakeTargetGroup.deregister = _transition(FakeTargetGroup.deregister, "draining")  # type: ignore[method-assign]
