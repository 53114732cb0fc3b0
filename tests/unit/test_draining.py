"""Load balancer draining as pure decisions: batches, drained or not, healthy or failed, and the in-place rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain.draining import (
    GroupSettings,
    Registration,
    TargetHealth,
    drain_seconds,
    drained,
    error_budget,
    failure_message,
    healthy_within,
    in_place_groups,
    registration,
    still_draining,
)
from chalicelib.domain.rollout import batch_size, plan_for, plan_waves
from chalicelib.domain.spec import TargetSpec
from tests.unit.conftest import EXAMPLE_SPEC

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
A = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"
B = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/api/fedcba9876543210"
IDS = [f"i-{n:017x}" for n in range(10)]


def spec(**rollout: object) -> TargetSpec:
    return TargetSpec.model_validate({**EXAMPLE_SPEC, "rollout": {**EXAMPLE_SPEC["rollout"], **rollout},
                                      "load_balancer": {"target_group_arns": [A]}})


def health(group: str, instance_id: str, state: str, reason: str = "") -> TargetHealth:
    return TargetHealth(group, instance_id, 5000, state, reason)


@pytest.mark.parametrize(("max_concurrency", "fleet", "size"), [
    ("25%", 8, 2), ("25%", 3, 1), ("1", 8, 1), ("3", 8, 3), ("100%", 80, 50), ("200", 300, 50), ("50%", 1, 1)])
def test_batch_size_resolves_max_concurrency_against_the_fleet(max_concurrency: str, fleet: int, size: int) -> None:
    assert batch_size(max_concurrency, fleet) == size


def test_batches_behind_a_load_balancer_follow_the_canary() -> None:
    assert plan_for(spec(canary={"instances": 1}), reversed(IDS[:8])) == [
        IDS[:1], IDS[1:3], IDS[3:5], IDS[5:7], IDS[7:8]]
    assert plan_for(spec(), IDS[:8]) == [IDS[0:2], IDS[2:4], IDS[4:6], IDS[6:8]]
    assert plan_for(spec(), IDS[:1]) == [IDS[:1]]
    without = TargetSpec.model_validate({**EXAMPLE_SPEC, "rollout": {"canary": {"instances": 1}}})
    assert plan_for(without, IDS[:8]) == [IDS[:1], IDS[1:8]]
    assert plan_waves(IDS[:3], None, batch=0) == [[IDS[0]], [IDS[1]], [IDS[2]]]


def test_a_batch_that_would_empty_a_group_is_swapped_in_place() -> None:
    one = {A: [health(A, IDS[0], "healthy")]}
    assert in_place_groups([IDS[0]], one) == [A]
    two = {A: [health(A, IDS[0], "healthy"), health(A, IDS[1], "healthy")],
           B: [health(B, IDS[0], "healthy"), health(B, IDS[1], "unhealthy")]}
    assert in_place_groups([IDS[0]], two) == [B]
    assert in_place_groups([IDS[1]], two) == []
    assert in_place_groups([IDS[0]], {A: []}) == [A]


def test_drained_when_no_target_serves_or_the_delay_is_over() -> None:
    targets = [health(A, IDS[0], "draining"), health(A, IDS[1], "unused")]
    assert still_draining(targets) == [targets[0]]
    assert not drained(targets, T0, 300, T0 + timedelta(seconds=299))
    assert drained(targets, T0, 300, T0 + timedelta(seconds=300))
    assert drained([health(A, IDS[0], "unused")], T0, 300, T0)
    assert not drained([health(A, IDS[0], "healthy")], T0, 300, T0 + timedelta(seconds=10))


def test_the_groups_settings_bound_the_waits() -> None:
    groups = [GroupSettings(A, 300, 30, 5), GroupSettings(B, 20, 10, 3)]
    assert (drain_seconds(groups), drain_seconds([])) == (300, 0)
    assert healthy_within(groups, 3600) == 300
    assert healthy_within(groups, 120) == 120


def test_registration_healthy_everywhere_failed_at_once_or_late() -> None:
    targets = [health(A, IDS[0], "healthy"), health(B, IDS[0], "healthy"),
               health(A, IDS[1], "healthy"), health(B, IDS[1], "initial", "Elb.RegistrationInProgress"),
               health(A, IDS[2], "unhealthy", "Target.ResponseCodeMismatch"), health(B, IDS[2], "healthy")]
    batch, groups = IDS[:3], [A, B]
    assert registration(batch, groups, targets, T0, 60, T0 + timedelta(seconds=30)) == Registration(
        healthy=[IDS[0]], failed={IDS[2]: "targetgroup/web/0123456789abcdef: unhealthy (Target.ResponseCodeMismatch)"},
        waiting=[IDS[1]])
    late = registration(batch, groups, targets, T0, 60, T0 + timedelta(seconds=60))
    assert late.decided
    assert late.failed[IDS[1]] == "not healthy within 60 s (targetgroup/api/fedcba9876543210: initial)"
    missing = registration([IDS[3]], [A], [], T0, 60, T0 + timedelta(seconds=61))
    assert missing.failed == {IDS[3]: "not healthy within 60 s (targetgroup/web/0123456789abcdef: not reported)"}


def test_the_error_budget_and_the_message() -> None:
    assert (error_budget("0", 4), error_budget("1", 4), error_budget("50%", 5)) == (0, 1, 2)
    assert failure_message({IDS[0]: "unhealthy"}) == (
        f"1 instances not healthy in the load balancer: {IDS[0]}: unhealthy")
