"""ELBv2 target health as berth reads it: moto's target groups (botocore validates every call), grown by localaws so a
test can make a target `draining`, `initial`, `unhealthy` or `healthy` at a chosen moment. The same assertions hold
berth's TargetGroups adapter to it."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ParamValidationError
from localaws_testkit import client, launch

import localaws
from chalicelib.adapters.elbv2 import TargetGroups
from chalicelib.domain.draining import GroupSettings, TargetHealth
from chalicelib.domain.errors import AwsCallFailed


@pytest.fixture
def elbv2(aws: None) -> Any:
    return client("elbv2")


def target_group(elbv2: Any, name: str = "web", delay: int | None = 30) -> str:
    vpc = client("ec2").describe_vpcs()["Vpcs"][0]["VpcId"]
    arn = str(elbv2.create_target_group(Name=name, Protocol="HTTP", Port=80, VpcId=vpc, TargetType="instance",
                                        HealthCheckIntervalSeconds=10, HealthyThresholdCount=3)
              ["TargetGroups"][0]["TargetGroupArn"])
    if delay is not None:
        elbv2.modify_target_group_attributes(TargetGroupArn=arn, Attributes=[
            {"Key": "deregistration_delay.timeout_seconds", "Value": str(delay)}])
    return arn


def states(groups: TargetGroups, arn: str, ids: list[str]) -> dict[str, str]:
    return {t.instance_id: t.state for t in groups.health([arn], ids, 5000)}


def test_register_deregister_and_the_states_between(elbv2: Any, ec2: Any) -> None:
    arn = target_group(elbv2)
    ids = launch(ec2, 2)
    groups = TargetGroups(elbv2)
    groups.register([arn], ids, 5000)
    assert states(groups, arn, ids) == dict.fromkeys(ids, "healthy")
    assert groups.registered([arn]) == {arn: [TargetHealth(arn, i, 5000, "healthy") for i in ids]}

    localaws.set_transition_reads(draining=2, initial=1)
    groups.deregister(arn, groups.registered([arn])[arn][:1])
    assert states(groups, arn, ids[:1]) == {ids[0]: "draining"}
    assert groups.health([arn], ids[:1], 5000)[0].reason == "Target.DeregistrationInProgress"
    assert states(groups, arn, ids[:1]) == {ids[0]: "unused"}      # two reads later: drained

    groups.register([arn], ids[:1], 5000)
    assert states(groups, arn, ids[:1]) == {ids[0]: "initial"}
    assert states(groups, arn, ids[:1]) == {ids[0]: "healthy"}


def test_a_test_sets_a_targets_health_at_a_chosen_moment(elbv2: Any, ec2: Any) -> None:
    arn = target_group(elbv2)
    ids = launch(ec2, 1)
    groups = TargetGroups(elbv2)
    groups.register([arn], ids, 5000)
    localaws.set_target_health(arn, ids[0], "unhealthy", reads=1)
    assert groups.health([arn], ids, 5000) == [TargetHealth(arn, ids[0], 5000, "unhealthy",
                                                            "Target.ResponseCodeMismatch")]
    assert states(groups, arn, ids) == {ids[0]: "healthy"}
    localaws.set_target_health(arn, ids[0], "draining")
    assert [states(groups, arn, ids) for _ in range(3)] == [{ids[0]: "draining"}] * 3
    localaws.clear_target_health(arn, ids[0])
    assert states(groups, arn, ids) == {ids[0]: "healthy"}


def test_group_settings(elbv2: Any) -> None:
    tuned, default = target_group(elbv2, "web", 30), target_group(elbv2, "api", None)
    assert sorted(TargetGroups(elbv2).settings([tuned, default]), key=lambda g: g.arn != tuned) == [
        GroupSettings(tuned, 30, 10, 3), GroupSettings(default, 300, 10, 3)]


def test_refusals_are_aws_errors_and_bad_parameters_never_reach_it(elbv2: Any, ec2: Any) -> None:
    arn = target_group(elbv2)
    groups = TargetGroups(elbv2)
    ids = launch(ec2, 1)
    with pytest.raises(AwsCallFailed):          # not registered: moto refuses, berth deregisters only what it read
        groups.deregister(arn, [TargetHealth(arn, ids[0], 5000, "healthy")])
    with pytest.raises(AwsCallFailed):
        groups.register([arn.replace("/web/", "/gone/")], ids, 5000)
    with pytest.raises(ParamValidationError):
        elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": ids[0], "Port": "5000"}])
