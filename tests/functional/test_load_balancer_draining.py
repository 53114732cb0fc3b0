"""A rollout behind an ELBv2 target group, through the pipeline action and the REST API, on the embedded AWS: each
batch deregistered and drained before its SendCommand, registered and healthy after it before the next. The target
group is moto's; localaws lets a test keep a target `draining` or make it `unhealthy` at a chosen moment. Every
SendCommand is checked as it is made: none reaches an instance still registered in the group, unless its batch was
swapped in place."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

import localaws
from localaws import InstanceOutcome
from tests.conftest import ACCOUNT, World
from tests.functional.support import TAGS, invoke, jid, results, spec
from tests.functional.test_rollout_waves import lock_of, record, sent
from tests.reliability.faults import Clock
from tools import local_pipeline
from tools.local_pipeline import Reply

ROUND_SECONDS = 30
PORT = 5000


@dataclass
class Calls:
    """The ELBv2 and SSM calls that change something, in order, and every SendCommand that reached a registered
    instance."""

    made: list[tuple[str, list[str]]] = field(default_factory=list)
    swapped_while_registered: list[str] = field(default_factory=list)

    def of(self, operation: str) -> list[list[str]]:
        return [ids for name, ids in self.made if name == operation]


def registered_now(aws: World, arn: str) -> set[str]:
    from moto.elbv2.models import elbv2_backends

    return set(elbv2_backends[ACCOUNT][aws.region].target_groups[arn].targets)


@contextmanager
def watched(aws: World, arn: str, failing: str | None = None, times: int = 0) -> Iterator[Calls]:
    """Record the calls; make the first `times` calls of `failing` fail as AWS throttling them would."""
    calls = Calls()
    original = BaseClient._make_api_call
    failed: list[int] = []

    def wrapped(self: BaseClient, name: str, params: dict[str, Any]) -> Any:
        if name == failing and len(failed) < times:
            failed.append(1)
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
                               "ResponseMetadata": {"HTTPStatusCode": 400}}, name)
        if name in ("DeregisterTargets", "RegisterTargets"):
            calls.made.append((name, sorted(t["Id"] for t in params["Targets"])))
        if name == "SendCommand":
            ids = sorted(params.get("InstanceIds", []))
            calls.made.append((name, ids))
            calls.swapped_while_registered += sorted(set(ids) & registered_now(aws, arn))
        return original(self, name, params)

    BaseClient._make_api_call = wrapped  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]


def target_group(aws: World, delay: int) -> str:
    elbv2 = aws.client("elbv2")
    vpc = aws.client("ec2").describe_vpcs()["Vpcs"][0]["VpcId"]
    arn = str(elbv2.create_target_group(Name="web", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="instance",
                                        HealthCheckIntervalSeconds=10, HealthyThresholdCount=3)
              ["TargetGroups"][0]["TargetGroupArn"])
    elbv2.modify_target_group_attributes(TargetGroupArn=arn, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": str(delay)}])
    return arn


def health(aws: World, arn: str) -> dict[str, str]:
    answer = aws.client("elbv2").describe_target_health(TargetGroupArn=arn)
    return {d["Target"]["Id"]: d["TargetHealth"]["State"] for d in answer["TargetHealthDescriptions"]}


@dataclass
class Fleet:
    instances: list[str]
    arn: str
    clock: Clock


def make_fleet(aws: World, monkeypatch: pytest.MonkeyPatch, size: int, delay: int = 60) -> Fleet:
    """`size` instances running v1 (a plain deployment), registered in a target group on the container's port; v2
    pushed."""
    instances = sorted(aws.launch(size, TAGS))
    aws.push_image("web", "v1")
    aws.push_image("web", "v2", content="v2")
    arn = target_group(aws, delay)
    aws.client("elbv2").register_targets(TargetGroupArn=arn, Targets=[{"Id": i, "Port": PORT} for i in instances])
    clock = Clock(monkeypatch)
    first = run(aws, clock, "v1", spec(image=aws.image_uri("web", "v1")))
    assert first[-1].kind == "success"
    return Fleet(instances, arn, clock)


@pytest.fixture
def fleet(aws: World, monkeypatch: pytest.MonkeyPatch) -> Fleet:
    return make_fleet(aws, monkeypatch, 4)


def run(aws: World, clock: Clock, job: str, params: dict[str, Any], max_rounds: int = 40,
        on_reply: Any = lambda reply: None) -> list[Reply]:
    bucket, key = aws.put_artifact({})
    # local_pipeline.run_job asserts exactly one result for every invocation
    return local_pipeline.run_job(invoke, results, json.dumps(params), bucket, key, max_rounds=max_rounds,
                                  between_rounds=lambda: clock.advance(ROUND_SECONDS), first_job_id=jid(job),
                                  on_reply=on_reply)


def balanced(aws: World, arn: str, **rollout: Any) -> dict[str, Any]:
    return spec(image=aws.image_uri("web", "v2"), load_balancer={"target_group_arns": [arn]},
                rollout={"max_concurrency": "50%", "max_errors": "0", **rollout})


def test_a_fleet_behind_a_target_group_swaps_in_batches(aws: World, fleet: Fleet) -> None:
    localaws.set_transition_reads(draining=1, initial=1)
    with watched(aws, fleet.arn) as calls:
        replies = run(aws, fleet.clock, "batches", balanced(aws, fleet.arn))

    assert replies[-1].kind == "success", replies[-1].text
    first, second = fleet.instances[:2], fleet.instances[2:]
    assert calls.made == [("DeregisterTargets", first), ("SendCommand", first), ("RegisterTargets", first),
                          ("DeregisterTargets", second), ("SendCommand", second), ("RegisterTargets", second)]
    assert calls.swapped_while_registered == []
    assert health(aws, fleet.arn) == dict.fromkeys(fleet.instances, "healthy")
    deployment = record(replies[-1].result["outputVariables"]["deployment_id"])
    assert deployment.status.value == "SUCCEEDED"
    assert [a.wave for a in deployment.attempts] == [1, 2]
    assert [d.action for d in deployment.history if d.action not in ("dispatched",)][1:] == [
        "draining", "wave-passed", "registered", "healthy", "draining", "wave-passed", "registered", "healthy",
        "succeeded"]
    assert any("draining" in reply.text for reply in replies)
    assert any("registering: 0 of 2 healthy" in reply.text for reply in replies)
    assert lock_of() is None


def test_draining_is_honoured_across_continuations_up_to_the_deregistration_delay(
        aws: World, fleet: Fleet) -> None:
    stuck = fleet.instances[0]
    aws.client("elbv2").modify_target_group_attributes(TargetGroupArn=fleet.arn, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "120"}])
    localaws.set_transition_reads(draining=1)

    def keep_draining(reply: Reply) -> None:
        if len(replies_seen) == 0:          # deregistered by the first invocation: its connections never close
            localaws.set_target_health(fleet.arn, stuck, "draining")
        if "wave 1 of 4: drained" in reply.text:
            localaws.clear_target_health(fleet.arn, stuck)
        replies_seen.append(reply)

    replies_seen: list[Reply] = []

    with watched(aws, fleet.arn) as calls:
        replies = run(aws, fleet.clock, "drain", balanced(aws, fleet.arn, max_concurrency="1"),
                      on_reply=keep_draining)

    assert replies[-1].kind == "success", replies[-1].text
    assert calls.swapped_while_registered == []
    deployment = record(replies[-1].result["outputVariables"]["deployment_id"])
    draining = [d.at for d in deployment.history if d.action == "draining"]
    # The stuck batch waited out the group's 120 s delay; the others went once DescribeTargetHealth showed them
    # drained, a continuation after it still showed them draining.
    assert (deployment.attempts[0].started_at - draining[0]).total_seconds() >= 120
    assert all(ROUND_SECONDS <= (a.started_at - at).total_seconds() < 120
               for a, at in zip(deployment.attempts[1:], draining[1:], strict=True))
    waits = [r for r in replies if "still draining" in r.text]
    assert len(waits) >= 2


def test_an_unhealthy_target_after_registering_halts_and_rolls_back(aws: World, fleet: Fleet) -> None:
    bad = fleet.instances[0]
    localaws.set_target_health(fleet.arn, bad, "unhealthy", "Target.ResponseCodeMismatch")
    with watched(aws, fleet.arn) as calls:
        replies = run(aws, fleet.clock, "unhealthy", balanced(aws, fleet.arn))

    failure = replies[-1]
    assert failure.kind == "failure", failure.text
    assert "rolled back:" in failure.text
    assert f"{bad}: targetgroup/web/" in failure.text and "unhealthy (Target.ResponseCodeMismatch)" in failure.text
    first = fleet.instances[:2]
    # The rollback goes to the batch that got v2 while it stays registered (the on-host swap is gapless); the second
    # batch is never taken out.
    assert calls.made == [("DeregisterTargets", first), ("SendCommand", first), ("RegisterTargets", first),
                          ("SendCommand", first)]
    assert calls.swapped_while_registered == first          # the rollback's, and only it
    deployment = record(failure.result["failureDetails"]["externalExecutionId"])
    assert deployment.status.value == "ROLLED_BACK"
    assert registered_now(aws, fleet.arn) == set(fleet.instances)
    assert lock_of() is None


def test_a_fleet_of_one_swaps_in_place_and_says_so(aws: World, monkeypatch: pytest.MonkeyPatch) -> None:
    one = make_fleet(aws, monkeypatch, 1)
    with watched(aws, one.arn) as calls:
        replies = run(aws, one.clock, "one", balanced(aws, one.arn))

    assert replies[-1].kind == "success", replies[-1].text
    assert calls.made == [("SendCommand", one.instances)]
    deployment = record(replies[-1].result["outputVariables"]["deployment_id"])
    in_place = [d for d in deployment.history if d.action == "in-place"]
    assert len(in_place) == 1 and "would leave a target group with no healthy target" in in_place[0].detail
    assert health(aws, one.arn) == {one.instances[0]: "healthy"}


@pytest.mark.parametrize(("operation", "times"), [("DeregisterTargets", 2), ("DescribeTargetHealth", 3),
                                                  ("RegisterTargets", 2)])
def test_a_failing_elb_call_still_gives_one_result_per_invocation_and_never_swaps_a_registered_batch(
        aws: World, fleet: Fleet, operation: str, times: int) -> None:
    localaws.set_transition_reads(draining=1, initial=1)
    with watched(aws, fleet.arn, failing=operation, times=times) as calls:
        replies = run(aws, fleet.clock, f"fault-{operation}", balanced(aws, fleet.arn))

    assert replies[-1].kind == "success", replies[-1].text
    assert calls.swapped_while_registered == []
    assert [name for name, _ in calls.made if name == "SendCommand"] == ["SendCommand"] * 2
    assert health(aws, fleet.arn) == dict.fromkeys(fleet.instances, "healthy")
    assert lock_of() is None


def test_a_failing_wave_behind_the_load_balancer_is_registered_again_then_rolled_back(
        aws: World, fleet: Fleet) -> None:
    second = fleet.instances[2:]
    failures: list[str] = []

    def first_swap_fails(instance_id: str, command: Any) -> InstanceOutcome | None:
        if instance_id == second[0] and not failures:
            failures.append(instance_id)
            return InstanceOutcome(status="Failed", response_code=4, stderr="health check failed")
        return None

    localaws.set_outcome_hook(first_swap_fails)
    with watched(aws, fleet.arn) as calls:
        replies = run(aws, fleet.clock, "wave-fails", balanced(aws, fleet.arn))

    assert replies[-1].kind == "failure" and "rolled back:" in replies[-1].text
    names = [name for name, _ in calls.made]
    assert names == ["DeregisterTargets", "SendCommand", "RegisterTargets", "DeregisterTargets", "SendCommand",
                     "RegisterTargets", "SendCommand"]
    assert calls.made[5] == ("RegisterTargets", second)       # back in its group before the rollback is sent
    assert calls.made[6] == ("SendCommand", fleet.instances)
    assert registered_now(aws, fleet.arn) == set(fleet.instances)
    assert lock_of() is None
    assert len(sent(aws)) == 4


def test_a_rest_deployment_drains_and_registers_as_each_get_refreshes_it(aws: World, fleet: Fleet) -> None:
    from tests.api.support import call, deploy

    localaws.set_transition_reads(draining=1, initial=1)
    params = balanced(aws, fleet.arn)
    params["target"] = "web-prod"
    assert call("PUT", "/targets/web-prod", {k: v for k, v in params.items() if k != "image"}).status == 200
    with watched(aws, fleet.arn) as calls:
        reply = deploy("web-prod", image=aws.image_uri("web", "v2"))
        assert reply.status == 202, reply
        assert reply.body["rollout"]["phase"] == "DRAINING"
        deployment_id = reply.body["deployment_id"]
        for _ in range(20):
            fleet.clock.advance(ROUND_SECONDS)
            body = call("GET", f"/deployments/{deployment_id}").body
            if body["final"]:
                break

    assert body["status"] == "SUCCEEDED", body["message"]
    assert [name for name, _ in calls.made] == ["DeregisterTargets", "SendCommand", "RegisterTargets"] * 2
    assert calls.swapped_while_registered == []
    assert lock_of() is None


def test_a_cancel_while_a_batch_drains_registers_it_again_first(aws: World, fleet: Fleet) -> None:
    from tests.api.support import call, deploy

    localaws.set_transition_reads(draining=5)
    params = balanced(aws, fleet.arn)
    assert call("PUT", "/targets/web-prod", {k: v for k, v in params.items() if k != "image"}).status == 200
    reply = deploy("web-prod", image=aws.image_uri("web", "v2"))
    assert reply.body["rollout"]["phase"] == "DRAINING"
    assert registered_now(aws, fleet.arn) == set(fleet.instances[2:])

    cancelled = call("POST", f"/deployments/{reply.body['deployment_id']}/cancel", {"reason": "wrong image"})

    assert cancelled.status == 200 and cancelled.body["status"] == "CANCELLED"
    assert registered_now(aws, fleet.arn) == set(fleet.instances)
    assert lock_of() is None
