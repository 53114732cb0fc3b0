"""A new instance joins its target at the target's current revision: driven by the events AWS sends for it (EC2's
state change to running, Auto Scaling's launch lifecycle action), on the embedded AWS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import localaws
from localaws import InstanceOutcome
from tests.conftest import World
from tests.events import load_event, pipeline_job_event
from tests.functional.support import TAGS, deliver, invoke, jid, results, spec
from tools.local_scheduler import fire_all, pending

MANAGED = {**TAGS, "berth:managed": "true"}
GROUP, HOOK = "web-asg", "berth-launch"


def running(instance_id: str, event_id: str = "7bf73129-1428-4cd3-a780-95db273d1602") -> dict[str, Any]:
    event = load_event("ec2_instance_running")
    event["id"] = event_id
    event["detail"]["instance-id"] = instance_id
    event["resources"] = [f"arn:aws:ec2:us-east-1:123456789012:instance/{instance_id}"]
    return event


def launching(instance_id: str, token: str) -> dict[str, Any]:
    event = load_event("autoscaling_launch_lifecycle_action")
    event["detail"].update({"EC2InstanceId": instance_id, "LifecycleActionToken": token,
                            "AutoScalingGroupName": GROUP, "LifecycleHookName": HOOK})
    return event


def announce(event: dict[str, Any]) -> dict[str, str]:
    return dict(invoke(event, "instance_launches"))


def command_event(command_id: str, status: str = "Success") -> dict[str, Any]:
    event = load_event("ssm_command_success")
    event["detail"].update({"command-id": command_id, "status": status, "document-name": "AWS-RunShellScript"})
    return event


def commands(aws: World) -> list[dict[str, Any]]:
    return sorted(aws.client("ssm").list_commands()["Commands"], key=lambda c: c["RequestedDateTime"])


def follow_all(aws: World) -> None:
    """What EventBridge delivers once SSM's commands are over: their status changes."""
    for command in commands(aws):
        deliver(command_event(command["CommandId"], "Success" if command["Status"] == "Success" else "Failed"))


def fire(aws: World) -> list[str]:
    return fire_all(aws.client("scheduler"), lambda payload: invoke(payload, "retry_deployment"))


def join_record(instance_id: str) -> Any:
    from chalice.test import Client

    from app import app
    from chalicelib.wiring import store

    with Client(app, stage_name="test"):
        return store().get_join(instance_id)


def deployment(deployment_id: str) -> Any:
    from chalice.test import Client

    from app import app
    from chalicelib.wiring import store

    with Client(app, stage_name="test"):
        return store().get_deployment(deployment_id)


@pytest.fixture
def fleet(aws: World) -> Iterator[str]:
    """Target web-prod running v1 on one instance (deployed through the pipeline); yields v1's digest."""
    aws.launch(1, MANAGED)
    digest = aws.push_image("web", "v1")
    bucket, key = aws.put_artifact({"image.txt": aws.image_uri("web", "v1")})
    invoke(pipeline_job_event(job_id=jid("first"), user_parameters=json.dumps(spec()), bucket=bucket, key=key))
    assert results(jid("first"))[0]["type"] == "success"
    follow_all(aws)
    yield digest


@pytest.fixture
def group(aws: World) -> None:
    ec2, scaling = aws.client("ec2"), aws.client("autoscaling")
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    scaling.create_launch_configuration(LaunchConfigurationName="web", ImageId="ami-1e749f67",
                                        InstanceType="t3.micro")
    scaling.create_auto_scaling_group(AutoScalingGroupName=GROUP, LaunchConfigurationName="web", MinSize=0,
                                      MaxSize=4, VPCZoneIdentifier=subnet)
    scaling.put_lifecycle_hook(AutoScalingGroupName=GROUP, LifecycleHookName=HOOK, HeartbeatTimeout=3600,
                               LifecycleTransition="autoscaling:EC2_INSTANCE_LAUNCHING", DefaultResult="ABANDON")


def join_commands(aws: World, instance_id: str) -> list[dict[str, Any]]:
    return [c for c in commands(aws) if c.get("InstanceIds") == [instance_id]]


def test_a_launched_instance_with_the_tags_joins_and_gets_the_current_digest(aws: World, fleet: str,
                                                                           group: None) -> None:
    new = aws.launch(1, MANAGED)[0]
    token = localaws.start_lifecycle_action(GROUP, HOOK, new)

    answer = announce(launching(new, token))

    assert answer["action"] == "deploying", answer
    sent = join_commands(aws, new)
    assert len(sent) == 1 and fleet in "\n".join(sent[0]["Parameters"]["commands"])
    record = join_record(new)
    assert record.target == "web-prod" and record.result is None
    joined = deployment(record.deployment_id)
    assert joined.trigger == "join" and joined.caller == "aws.autoscaling" and joined.rollout is None
    assert localaws.lifecycle_results() == []          # not before its container is swapped

    follow_all(aws)

    assert deployment(record.deployment_id).status.value == "SUCCEEDED"
    assert [(r["InstanceId"], r["LifecycleActionResult"], r["LifecycleActionToken"])
            for r in localaws.lifecycle_results()] == [(new, "CONTINUE", token)]
    follow_all(aws)                                     # SSM's events again: nothing completes twice
    assert len(localaws.lifecycle_results()) == 1


def test_a_failing_swap_abandons_the_launch(aws: World, fleet: str, group: None) -> None:
    new = aws.launch(1, MANAGED)[0]
    localaws.set_outcome(new, InstanceOutcome(status="Failed", response_code=40, stdout="berth-step: health\n"))
    token = localaws.start_lifecycle_action(GROUP, HOOK, new)

    announce(launching(new, token))
    follow_all(aws)

    assert deployment(join_record(new).deployment_id).status.value == "FAILED"
    assert [r["LifecycleActionResult"] for r in localaws.lifecycle_results()] == ["ABANDON"]


def test_a_stranger_is_ignored_and_its_lifecycle_action_continues(aws: World, fleet: str, group: None) -> None:
    stranger = aws.launch(1, TAGS)[0]                   # the target's tags, but not berth:managed
    token = localaws.start_lifecycle_action(GROUP, HOOK, stranger)
    before = len(commands(aws))

    assert announce(launching(stranger, token))["action"] == "ignored"
    assert announce(running(aws.launch(1, {"app": "other", "berth:managed": "true"})[0]))["action"] == "ignored"

    assert len(commands(aws)) == before and join_record(stranger) is None
    assert [r["LifecycleActionResult"] for r in localaws.lifecycle_results()] == ["CONTINUE"]


def test_an_instance_not_yet_online_is_looked_at_again_then_deployed(aws: World, fleet: str) -> None:
    new = aws.launch(1, MANAGED)[0]
    localaws.set_outcome(new, InstanceOutcome(skip=True))       # its SSM agent has not registered yet

    assert announce(running(new))["action"] == "waiting"
    assert join_commands(aws, new) == []
    [(name, payload)] = pending(aws.client("scheduler"))
    assert payload["kind"] == "join" and payload["instance_id"] == new and payload["attempt"] == 1

    localaws.set_outcome(new, InstanceOutcome())
    assert fire(aws) == [name]

    assert len(join_commands(aws, new)) == 1
    follow_all(aws)
    assert deployment(join_record(new).deployment_id).status.value == "SUCCEEDED"


def test_the_wait_for_ssm_is_bounded_then_the_launch_is_abandoned(aws: World, fleet: str, group: None,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib import wiring

    new = aws.launch(1, MANAGED)[0]
    localaws.set_outcome(new, InstanceOutcome(skip=True))
    token = localaws.start_lifecycle_action(GROUP, HOOK, new)
    assert announce(launching(new, token))["action"] == "waiting"

    later = datetime.now(UTC) + timedelta(minutes=11)
    monkeypatch.setattr(wiring, "utc_now", lambda: later)
    fire(aws)

    record = join_record(new)
    assert record.result == "ABANDON" and "Online" in record.detail and join_commands(aws, new) == []
    assert [r["LifecycleActionResult"] for r in localaws.lifecycle_results()] == ["ABANDON"]
    assert pending(aws.client("scheduler")) == []


def test_a_duplicate_event_and_the_second_event_of_one_launch_make_one_deployment(aws: World, fleet: str,
                                                                                 group: None) -> None:
    new = aws.launch(1, MANAGED)[0]
    token = localaws.start_lifecycle_action(GROUP, HOOK, new)

    first = announce(running(new))
    assert first["action"] == "deploying", first
    assert announce(running(new))["action"] == "duplicate"
    assert announce(launching(new, token))["action"] == "recorded"      # the hook is kept for the join's end
    assert announce(launching(new, token))["action"] == "duplicate"

    assert len(join_commands(aws, new)) == 1
    follow_all(aws)
    assert [r["LifecycleActionResult"] for r in localaws.lifecycle_results()] == ["CONTINUE"]


def test_a_malformed_event_is_refused_and_nothing_is_done(aws: World, fleet: str) -> None:
    event = running("i-0123456789abcdef0")
    event["detail"]["instance-id"] = "i-1; reboot"
    before = len(commands(aws))

    answer = announce(event)

    assert answer["action"] == "refused" and "detail.instance-id" in answer["detail"]
    assert len(commands(aws)) == before


def test_a_target_without_a_revision_has_nothing_to_deploy_and_the_launch_continues(aws: World,
                                                                                   group: None) -> None:
    from tests.api.support import call

    assert call("PUT", "/targets/web-prod", spec()).status == 200
    new = aws.launch(1, MANAGED)[0]
    token = localaws.start_lifecycle_action(GROUP, HOOK, new)

    answer = announce(launching(new, token))

    assert answer["action"] == "joined" and "nothing to deploy" in answer["detail"]
    assert join_commands(aws, new) == []
    assert [r["LifecycleActionResult"] for r in localaws.lifecycle_results()] == ["CONTINUE"]


def test_an_instance_matching_two_targets_is_refused_naming_both(aws: World, fleet: str, group: None) -> None:
    from tests.api.support import call

    assert call("PUT", "/targets/web-all", spec(target="web-all", instances={"tags": {"app": "web"}})).status == 200
    new = aws.launch(1, MANAGED)[0]
    token = localaws.start_lifecycle_action(GROUP, HOOK, new)

    answer = announce(launching(new, token))

    assert answer["action"] == "refused" and "web-all, web-prod" in answer["detail"]
    assert join_commands(aws, new) == []
    assert [r["LifecycleActionResult"] for r in localaws.lifecycle_results()] == ["ABANDON"]


def redeploy_running(aws: World, fleet_instance: str) -> str:
    """A person's redeploy of web-prod (by its tags) whose command is still running on `fleet_instance`."""
    from tests.api.support import call

    localaws.set_default_outcome(InstanceOutcome(polls_before_done=3))
    reply = call("POST", "/targets/web-prod/deployments", {"reason": "redeploy"})
    assert reply.status == 202, reply.body
    return str(reply.body["deployment_id"])


def settle(aws: World, deployment_id: str) -> None:
    for _ in range(8):
        follow_all(aws)
        if deployment(deployment_id).status.is_final:
            return
    raise AssertionError(f"{deployment_id} did not end")


def test_a_busy_target_is_looked_at_again_and_then_the_instance_joins(aws: World, fleet: str) -> None:
    running_on = aws.client("ec2").describe_instances()["Reservations"][0]["Instances"][0]["InstanceId"]
    redeploy = redeploy_running(aws, running_on)
    new = aws.launch(1, MANAGED)[0]                  # after the redeploy was sent: it does not reach the new one

    answer = announce(running(new))

    assert answer["action"] == "waiting" and f"busy with {redeploy}" in answer["detail"]
    assert join_commands(aws, new) == []
    settle(aws, redeploy)
    localaws.set_default_outcome(InstanceOutcome())
    fire(aws)
    assert len(join_commands(aws, new)) == 1
    follow_all(aws)
    assert deployment(join_record(new).deployment_id).status.value == "SUCCEEDED"


def test_a_deployment_by_tags_sent_after_the_launch_covers_the_instance(aws: World, fleet: str,
                                                                        group: None) -> None:
    new = aws.launch(1, MANAGED)[0]
    token = localaws.start_lifecycle_action(GROUP, HOOK, new)
    redeploy = redeploy_running(aws, new)             # sent after the launch, by tags: it reaches the new one too
    assert new in deployment(redeploy).attempts[0].expected_instances

    answer = announce(launching(new, token))

    assert answer["action"] == "waiting" and f"{redeploy} covers it" in answer["detail"]
    settle(aws, redeploy)
    fire(aws)
    assert join_commands(aws, new) == []              # nothing sent twice
    assert [r["LifecycleActionResult"] for r in localaws.lifecycle_results()] == ["CONTINUE"]
    assert join_record(new).deployment_id == redeploy


def test_an_instance_ec2_does_not_describe_yet_fails_the_handler_so_it_is_delivered_again(aws: World,
                                                                                          fleet: str) -> None:
    from chalicelib.domain.join import InstanceNotVisible

    before = len(commands(aws))
    with pytest.raises(InstanceNotVisible, match="i-0123456789abcdef0"):
        announce(running("i-0123456789abcdef0"))
    assert len(commands(aws)) == before and localaws.lifecycle_results() == []
