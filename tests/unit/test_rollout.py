"""The rollout in waves, pure: the plan, the bake clock, the alarms' verdict, and which instances to roll back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain.deployment import Attempt, InstanceResult
from chalicelib.domain.rollout import (
    AlarmState,
    Rollout,
    RolloutPhase,
    alarm_message,
    bake_left,
    bake_seconds,
    canary_count,
    firing,
    missing,
    plan_waves,
    received_new_revision,
)
from chalicelib.domain.spec import CanarySpec, RolloutSpec

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
IDS = [f"i-{n:017x}" for n in range(120)]


@pytest.mark.parametrize(("instances", "fleet", "expected"), [
    (1, 10, 1), (3, 10, 3), (20, 10, 10), ("10%", 50, 5), ("10%", 5, 1), ("10%", 19, 1), ("1%", 1, 1),
    ("50%", 3, 1), ("100%", 7, 7), ("99%", 100, 99),
])
def test_canary_count(instances: int | str, fleet: int, expected: int) -> None:
    assert canary_count(instances, fleet) == expected


def test_waves_are_the_canary_then_the_rest_fifty_at_a_time_from_the_sorted_ids() -> None:
    shuffled = list(reversed(IDS))
    assert plan_waves(shuffled, CanarySpec(instances=2)) == [IDS[:2], IDS[2:52], IDS[52:102], IDS[102:]]


def test_without_a_canary_the_waves_are_fifty_at_a_time() -> None:
    assert plan_waves(IDS[:3], None) == [IDS[:3]]
    assert plan_waves(IDS[:51], None) == [IDS[:50], IDS[50:51]]


def test_a_canary_as_large_as_the_fleet_is_the_only_wave_and_duplicates_count_once() -> None:
    assert plan_waves([IDS[1], IDS[0], IDS[1]], CanarySpec(instances="100%")) == [IDS[:2]]
    assert plan_waves([], CanarySpec(instances=1)) == []


def rollout(wave: int, waves: int = 3, since: datetime | None = T0) -> Rollout:
    return Rollout(waves=[[IDS[n]] for n in range(waves)], phase=RolloutPhase.BAKING, wave=wave, baking_since=since)


SPEC = RolloutSpec(canary=CanarySpec(instances=1, bake_seconds=300), bake_seconds=120)


@pytest.mark.parametrize(("wave", "waves", "spec", "expected"), [
    (1, 3, SPEC, 300), (2, 3, SPEC, 0), (3, 3, SPEC, 120), (1, 1, SPEC, 300),
    (1, 1, RolloutSpec(canary=CanarySpec(instances=1, bake_seconds=10), bake_seconds=120), 120),
    (1, 2, RolloutSpec(alarms=["a"], bake_seconds=60), 0), (2, 2, RolloutSpec(alarms=["a"], bake_seconds=60), 60),
])
def test_bake_seconds_after_each_wave(wave: int, waves: int, spec: RolloutSpec, expected: int) -> None:
    assert bake_seconds(spec, rollout(wave, waves)) == expected


def test_the_bake_clock_runs_from_when_the_wave_passed() -> None:
    baking = rollout(1)
    assert [bake_left(SPEC, baking, T0 + timedelta(seconds=s)) for s in (0, 1, 299.5, 300, 3000)] == [300, 299, 1, 0, 0]
    assert bake_left(SPEC, rollout(1, since=None), T0) == 0


def test_only_alarm_stops_a_rollout() -> None:
    states = [AlarmState("b-latency", "ALARM", "p99 over 2 s"), AlarmState("a-5xx", "ALARM", "5xx > 10"),
              AlarmState("c-quiet", "INSUFFICIENT_DATA", "no data"), AlarmState("d-ok", "OK")]
    assert firing(states) == [AlarmState("a-5xx", "ALARM", "5xx > 10"), AlarmState("b-latency", "ALARM",
                                                                                     "p99 over 2 s")]
    assert firing(states[2:]) == []
    assert alarm_message(firing(states)) == ("alarm 'a-5xx' is in ALARM: 5xx > 10; alarm 'b-latency' is in ALARM: "
                                             "p99 over 2 s")
    assert alarm_message([AlarmState("x", "ALARM")]) == "alarm 'x' is in ALARM: (no reason given)"


def test_alarms_that_do_not_exist_are_named() -> None:
    assert missing(["b", "a", "c"], [AlarmState("c", "OK")]) == ["a", "b"]


def result(instance_id: str, status: str) -> InstanceResult:
    return InstanceResult(instance_id=instance_id, status=status, response_code=0 if status == "Success" else None)


def test_the_rollback_covers_every_instance_that_may_have_started_the_new_revision() -> None:
    passed_on_counts = Attempt(number=1, started_at=T0, command_id="c-1", expected_instances=IDS[:2], wave=1,
                               outcome="succeeded")
    stopped = Attempt(number=2, started_at=T0, command_id="c-2", expected_instances=IDS[2:8], wave=2, instances={
        IDS[2]: result(IDS[2], "Success"), IDS[3]: result(IDS[3], "Failed"), IDS[4]: result(IDS[4], "Cancelled"),
        IDS[5]: result(IDS[5], "NeverRan"), IDS[6]: result(IDS[6], "DeliveryTimedOut")})
    earlier_rollback = Attempt(number=3, started_at=T0, command_id="c-3", expected_instances=IDS[9:10],
                               image="web@sha256:" + "a" * 64)
    assert received_new_revision([passed_on_counts, stopped, earlier_rollback]) == [*IDS[:5], IDS[7]]
