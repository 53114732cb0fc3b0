"""A new instance at the edge (the two events AWS sends for it) and which target it joins."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.domain.errors import InvalidEvent
from chalicelib.domain.instance_launch import InstanceLaunch, LifecycleHook, parse_instance_launch
from chalicelib.domain.join import matching_targets
from chalicelib.domain.spec import TargetSpec
from tests.events import load_event


def test_the_state_change_to_running_names_the_instance() -> None:
    assert parse_instance_launch(load_event("ec2_instance_running")) == InstanceLaunch(
        "7bf73129-1428-4cd3-a780-95db273d1602", "i-abcd1111", "aws.ec2", account="123456789012", region="us-east-1")


def test_the_launch_lifecycle_action_also_names_its_hook_and_token() -> None:
    launch = parse_instance_launch(load_event("autoscaling_launch_lifecycle_action"))
    assert launch.instance_id == "i-1234567890abcdef0" and launch.source == "aws.autoscaling"
    assert launch.hook == LifecycleHook(AutoScalingGroupName="my-asg", LifecycleHookName="my-lifecycle-hook",
                                        LifecycleActionToken="87654321-4321-4321-4321-210987654321")
    assert "87654321" not in repr(launch)       # the token stays out of what a log line would print


def _hostile(name: str, path: list[str], value: Any) -> dict[str, Any]:
    event = load_event(name)
    node = event
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return event


@pytest.mark.parametrize("event, field", [
    (_hostile("ec2_instance_running", ["detail", "state"], "stopped"), "detail.state"),
    (_hostile("ec2_instance_running", ["detail", "instance-id"], "i-1; curl evil"), "detail.instance-id"),
    (_hostile("ec2_instance_running", ["detail"], "x" * 10000), "detail"),
    (_hostile("autoscaling_launch_lifecycle_action", ["detail", "LifecycleTransition"],
              "autoscaling:EC2_INSTANCE_TERMINATING"), "detail.LifecycleTransition"),
    (_hostile("autoscaling_launch_lifecycle_action", ["detail", "LifecycleActionToken"], "$(reboot)"),
     "detail.LifecycleActionToken"),
    (_hostile("autoscaling_launch_lifecycle_action", ["detail", "AutoScalingGroupName"], "arn:aws:x"),
     "detail.AutoScalingGroupName"),
    (_hostile("autoscaling_launch_lifecycle_action", ["detail", "EC2InstanceId"], None), "detail.EC2InstanceId"),
    (_hostile("ec2_instance_running", ["source"], "aws.s3"), "source"),
])
def test_a_malformed_or_hostile_event_is_invalid_and_names_the_field(event: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidEvent) as raised:
        parse_instance_launch(event)
    assert field in raised.value.message and "curl" not in raised.value.message


def test_a_non_object_is_invalid() -> None:
    with pytest.raises(InvalidEvent, match="not a JSON object"):
        parse_instance_launch(["running"])


def _target(name: str, **instances: Any) -> TargetSpec:
    return TargetSpec.model_validate({"target": name, "instances": instances, "container": {"name": "web"}})


TARGETS = [_target("web", tags={"app": "web"}), _target("web-prod", tags={"app": "web", "env": "prod"}),
           _target("api", tags={"app": "api"}), _target("fixed", ids=["i-0123456789abcdef0"])]


@pytest.mark.parametrize("tags, joins", [
    ({"app": "api", "berth:managed": "true"}, ["api"]),
    ({"app": "web", "env": "dev", "berth:managed": "true"}, ["web"]),
    ({"app": "web", "env": "prod", "berth:managed": "true"}, ["web", "web-prod"]),    # refused by the service
    ({"app": "api"}, []),                                                             # not managed
    ({"app": "api", "berth:managed": "false"}, []),
    ({"berth:managed": "true"}, []),                                                  # id-listed never matches
])
def test_an_instance_joins_the_targets_whose_tags_it_carries_when_managed(tags: dict[str, str],
                                                                          joins: list[str]) -> None:
    assert matching_targets(tags, TARGETS) == joins
