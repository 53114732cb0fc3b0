"""A new instance's join with each of its own AWS calls failing in turn (DescribeInstances, CreateSchedule,
CompleteLifecycleAction): the Lambda fails, EventBridge (or the schedule) delivers again, and the join still ends
with one deployment to the instance and its lifecycle action completed exactly once."""

from __future__ import annotations

from typing import Any

import pytest

import localaws
from localaws import InstanceOutcome
from tests.conftest import World
from tests.functional.test_instance_joins import (  # the fixtures too: a fleet at v1, an Auto Scaling group
    MANAGED,
    announce,
    fire,
    fleet,  # noqa: F401
    follow_all,
    group,  # noqa: F401
    join_commands,
    launching,
)
from tests.reliability.faults import aws_calls

pytestmark = pytest.mark.usefixtures("fleet", "group")


def _survive(call: Any) -> None:
    """One delivery whose handler may fail, as EventBridge makes it: an error means it is delivered again."""
    try:
        call()
    except Exception:   # any failure: the test checks what the redelivery leaves
        pass


def _completions() -> list[str]:
    return [result["LifecycleActionResult"] for result in localaws.lifecycle_results()]


@pytest.mark.parametrize("fault", ["Throttling", "Timeout"])
def test_describe_instances_failing_leaves_the_redelivery_one_join(aws: World, fault: str) -> None:
    new = aws.launch(1, MANAGED)[0]
    event = launching(new, localaws.start_lifecycle_action("web-asg", "berth-launch", new))

    with aws_calls(fail_at=0, fault=fault, only=frozenset({"ec2"})) as log:
        _survive(lambda: announce(event))
    assert log.calls[0] == "ec2.DescribeInstances" and join_commands(aws, new) == []

    announce(event)
    announce(event)
    follow_all(aws)
    assert len(join_commands(aws, new)) == 1 and _completions() == ["CONTINUE"]


def test_create_schedule_failing_is_taken_up_by_the_redelivery(aws: World) -> None:
    from tools.local_scheduler import pending

    new = aws.launch(1, MANAGED)[0]
    localaws.set_outcome(new, InstanceOutcome(skip=True))
    event = launching(new, localaws.start_lifecycle_action("web-asg", "berth-launch", new))

    with aws_calls(fail_at=0, only=frozenset({"scheduler"})) as log:
        _survive(lambda: announce(event))
    assert log.calls == ["scheduler.CreateSchedule"] and pending(aws.client("scheduler")) == []

    announce(event)                     # EventBridge again: the look is scheduled now, once
    announce(event)
    assert len(pending(aws.client("scheduler"))) == 1

    localaws.set_outcome(new, InstanceOutcome())
    fire(aws)
    follow_all(aws)
    assert len(join_commands(aws, new)) == 1 and _completions() == ["CONTINUE"]


@pytest.mark.parametrize("fault", ["Throttling", "InternalError"])
def test_complete_lifecycle_action_failing_is_completed_once_by_a_look(aws: World, fault: str) -> None:
    new = aws.launch(1, MANAGED)[0]
    announce(launching(new, localaws.start_lifecycle_action("web-asg", "berth-launch", new)))

    with aws_calls(fail_at=0, fault=fault, only=frozenset({"autoscaling"})) as log:
        follow_all(aws)                 # the deployment ends; completing its lifecycle action fails
    assert log.calls == ["autoscaling.CompleteLifecycleAction"] and _completions() == []

    fire(aws)                           # the look it scheduled completes it
    follow_all(aws)
    fire(aws)
    assert _completions() == ["CONTINUE"] and len(join_commands(aws, new)) == 1
