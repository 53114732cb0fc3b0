"""A plan, pure: the waves with their bakes, the digests the last deployment reported, the alarms and the refusals."""

from __future__ import annotations

from datetime import UTC, datetime

from chalicelib.domain.deployment import Attempt, Deployment, InstanceResult, Revision
from chalicelib.domain.plan import (
    PlannedInstance,
    PlannedWave,
    Refusal,
    alarms_with_missing,
    planned_waves,
    refusals,
    reported_digests,
)
from chalicelib.domain.rollout import AlarmState
from chalicelib.domain.spec import CanarySpec, RolloutSpec, TargetSpec

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
IDS = [f"i-{n:017x}" for n in range(60)]
OLD, NEW = "sha256:" + "a" * 64, "sha256:" + "b" * 64


def online(instance_id: str, status: str | None = "Online") -> PlannedInstance:
    return PlannedInstance(instance_id, status is not None, status, None, None)


def test_a_plain_rollout_is_one_command_over_every_instance() -> None:
    assert planned_waves(RolloutSpec(), reversed(IDS[:3])) == [PlannedWave(IDS[:3], 0)]
    assert planned_waves(RolloutSpec(), []) == []


def test_waves_come_from_the_rollout_planner_with_each_bake() -> None:
    spec = RolloutSpec(canary=CanarySpec(instances=2, bake_seconds=300), bake_seconds=120)
    assert planned_waves(spec, IDS) == [PlannedWave(IDS[:2], 300), PlannedWave(IDS[2:52], 0),
                                        PlannedWave(IDS[52:], 120)]
    # A canary that is the whole fleet bakes for the longer of the canary's and the final bake.
    assert planned_waves(spec, IDS[:2]) == [PlannedWave(IDS[:2], 300)]


def test_alarms_without_a_canary_still_go_in_waves_of_fifty() -> None:
    spec = RolloutSpec(alarms=["web-5xx-high"], bake_seconds=60)
    assert planned_waves(spec, IDS) == [PlannedWave(IDS[:50], 0), PlannedWave(IDS[50:], 60)]


def test_reported_digests_take_the_later_attempt_and_skip_unreported_instances() -> None:
    def attempt(number: int, results: dict[str, str | None]) -> Attempt:
        return Attempt(number=number, started_at=T0, expected_instances=list(results), instances={
            i: InstanceResult(instance_id=i, status="Success", digest=d) for i, d in results.items()})

    deployment = Deployment(
        deployment_id="d-1", target="web", spec=TargetSpec.model_validate(
            {"target": "web", "instances": {"ids": IDS[:3]}, "container": {"name": "web"}}),
        revision=Revision(image="web:v2", digest=NEW), trigger="api", caller="alice", created_at=T0, updated_at=T0,
        attempts=[attempt(1, {IDS[0]: NEW, IDS[1]: NEW, IDS[2]: None}), attempt(2, {IDS[1]: OLD})])
    assert reported_digests(deployment) == {IDS[0]: NEW, IDS[1]: OLD}
    assert reported_digests(None) == {}


def test_alarms_keep_the_specs_order_and_name_the_missing_ones() -> None:
    states = [AlarmState("b", "ALARM", "high"), AlarmState("a", "OK")]
    assert [(alarm.name, alarm.state) for alarm in alarms_with_missing(["a", "c", "b"], states)] == [
        ("a", "OK"), ("c", "MISSING"), ("b", "ALARM")]


def test_nothing_refuses_a_free_target_with_an_online_instance_and_quiet_alarms() -> None:
    assert refusals(busy_with=None, breaker_open=False, image_problem=None,
                    instances=[online(IDS[0]), online(IDS[1], None)], alarm_names=["a"],
                    states=[AlarmState("a", "INSUFFICIENT_DATA")]) == []


def test_every_refusal_is_listed_in_one_answer() -> None:
    found = refusals(busy_with="d-running", breaker_open=True, image_problem="image web:v9 is not in ECR",
                     instances=[online(IDS[0], "ConnectionLost"), online(IDS[1], None)], alarm_names=["a", "b"],
                     states=[AlarmState("a", "ALARM", "5xx at 42")])
    assert [refusal.code for refusal in found] == ["TargetBusy", "BreakerOpen", "ImageUnresolved", "NoOnlineInstance",
                                                   "AlarmMissing", "AlarmFiring"]
    assert found[0] == Refusal("TargetBusy", "the target is locked by running deployment d-running")
    assert found[3].message == "none of the 2 instances matched is managed by SSM and Online"
    assert found[4].message == "no CloudWatch metric alarm is named 'b'"
    assert found[5].message == "alarm 'a' is in ALARM: 5xx at 42"


def test_no_instance_at_all_or_an_unresolvable_fleet_is_a_refusal_saying_why() -> None:
    none = refusals(busy_with=None, breaker_open=False, image_problem=None, instances=[])
    assert none == [Refusal("NoOnlineInstance", "no running instance matches the target's instances; check the tags "
                                                "or ids")]
    unknown = refusals(busy_with=None, breaker_open=False, image_problem=None, instances=[],
                       instances_problem="instances: The instance ID 'i-0' does not exist")
    assert unknown == [Refusal("NoOnlineInstance", "instances: The instance ID 'i-0' does not exist")]


def test_what_each_instance_runs_comes_from_the_instance_map_or_for_an_older_item_the_last_deployment() -> None:
    from chalicelib.domain.fleet import Fleet, InstanceState
    from chalicelib.domain.plan import known_digests

    last = Deployment(
        deployment_id="d-2", target="web", spec=TargetSpec.model_validate(
            {"target": "web", "instances": {"ids": IDS[:2]}, "container": {"name": "web"}}),
        revision=Revision(image="web:v2", digest=NEW), trigger="api", caller="alice", created_at=T0, updated_at=T0,
        attempts=[Attempt(number=1, started_at=T0, expected_instances=IDS[:2], instances={
            IDS[0]: InstanceResult(instance_id=IDS[0], status="Success", digest=NEW)})])
    fleet = Fleet(instances={IDS[0]: InstanceState(digest=OLD, deployment_id="d-1", at=T0),
                             IDS[1]: InstanceState()})
    assert known_digests(fleet, last) == {IDS[0]: (OLD, "d-1")}
    assert known_digests(Fleet(), last) == {IDS[0]: (NEW, "d-2")}
    assert known_digests(Fleet(), None) == {}
