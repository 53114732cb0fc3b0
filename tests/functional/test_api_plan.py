"""POST /targets/{name}/plan on the embedded AWS: what a deployment would do and what would refuse it, while every AWS
call berth makes is recorded to show that a plan only reads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import localaws
from localaws import InstanceOutcome
from tests.api.support import call, deploy, hold_lock, push_image, register, settle
from tests.conftest import TABLE, World

pytestmark = pytest.mark.filterwarnings("ignore:IAMAuthorizer is not a supported in local mode")
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:{tag}"
READS = {"GetItem", "Query", "DescribeImages", "DescribeTags", "DescribeInstances", "DescribeInstanceInformation",
         "DescribeAlarms", "BatchGetImage", "DescribeImageScanFindings"}


@pytest.fixture
def calls(aws: World) -> Iterator[list[str]]:
    """Every AWS operation berth's own clients make from here on (botocore's before-parameter-build event)."""
    from chalicelib import clients

    made: list[str] = []

    def record(model: Any, **_: Any) -> None:
        made.append(model.name)

    session = clients._session()
    session.register("before-parameter-build", record)
    yield made
    session.unregister("before-parameter-build", record)


def put_alarm(aws: World, name: str, state: str = "OK", reason: str = "") -> None:
    cloudwatch = aws.client("cloudwatch")
    cloudwatch.put_metric_alarm(AlarmName=name, Namespace="web", MetricName=name, Statistic="Sum", Period=60,
                                EvaluationPeriods=1, Threshold=10, ComparisonOperator="GreaterThanThreshold")
    if state != "OK":
        cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason=reason)


def test_a_plain_plan_resolves_the_image_lists_the_instances_and_sends_nothing(
        aws: World, calls: list[str]) -> None:
    instances = register(aws, instances=3)
    v1 = push_image(aws, "web", "v1")
    deployment_id = deploy(image=IMAGE.format(tag="v1")).body["deployment_id"]
    assert settle(deployment_id)["status"] == "SUCCEEDED"
    v2 = push_image(aws, "web", "v2")
    commands = len(aws.client("ssm").list_commands()["Commands"])
    calls.clear()

    reply = call("POST", "/targets/web/plan", {"image": IMAGE.format(tag="v2")})

    assert reply.status == 200, reply
    plan = reply.body
    assert plan["revision"]["digest"] == v2 and plan["revision"]["pinned"].endswith(f"@{v2}")
    assert plan["current_revision"]["digest"] == v1
    assert [i["instance_id"] for i in plan["instances"]] == sorted(instances)
    assert all(i["ssm_managed"] and i["online"] and i["ping_status"] == "Online" for i in plan["instances"])
    assert plan["in_waves"] is False and plan["max_concurrency"] == "25%"
    assert plan["waves"] == [{"instances": sorted(instances), "bake_seconds": 0}]
    assert plan["alarms"] == [] and plan["refusals"] == []
    assert "target_groups" not in plan
    assert calls and set(calls) <= READS, calls
    assert len(aws.client("ssm").list_commands()["Commands"]) == commands


def test_per_instance_digests_come_from_the_last_deployments_results_where_recorded(aws: World) -> None:
    """A deployment that passes on SSM's counts alone keeps no per-instance results; a failed one reads them all."""
    instances = sorted(register(aws, instances=2))
    push_image(aws, "web", "v1")
    digest = "sha256:" + "ab" * 32
    localaws.set_default_outcome(InstanceOutcome(stdout=f"berth-digest: {digest}\n"))
    localaws.set_outcome(instances[1], InstanceOutcome(status="Failed", response_code=30, stderr="health failed"))
    deployment_id = deploy(image=IMAGE.format(tag="v1")).body["deployment_id"]
    assert settle(deployment_id)["status"] == "FAILED"

    plan = call("POST", "/targets/web/plan", {"image": IMAGE.format(tag="v1")}).body

    reported = {i["instance_id"]: (i["digest"], i["reported_by"]) for i in plan["instances"]}
    assert reported == {instances[0]: (digest, deployment_id), instances[1]: (None, None)}


def test_a_plan_with_canary_waves_and_their_bakes(aws: World, calls: list[str]) -> None:
    instances = sorted(register(aws, instances=5, rollout={
        "canary": {"instances": "40%", "bake_seconds": 300}, "alarms": ["web-5xx-high"], "bake_seconds": 120}))
    put_alarm(aws, "web-5xx-high")
    push_image(aws, "web", "v2")
    calls.clear()

    plan = call("POST", "/targets/web/plan", {"image": IMAGE.format(tag="v2")}).body

    assert plan["in_waves"] is True
    assert plan["waves"] == [{"instances": instances[:2], "bake_seconds": 300},
                             {"instances": instances[2:], "bake_seconds": 120}]
    assert plan["alarms"] == [{"name": "web-5xx-high", "state": "OK", "reason": "Unchecked: Initial alarm creation"}]
    assert plan["refusals"] == []
    assert set(calls) <= READS and "DescribeAlarms" in calls


def test_an_alarm_in_alarm_and_a_missing_alarm_are_refusals(aws: World) -> None:
    register(aws, instances=2, rollout={"alarms": ["web-5xx-high", "web-p99-latency", "web-typo"]})
    put_alarm(aws, "web-5xx-high", "ALARM", "Threshold Crossed: 1 datapoint [42.0] was > 10")
    put_alarm(aws, "web-p99-latency")
    push_image(aws, "web", "v2")

    plan = call("POST", "/targets/web/plan", {"image": IMAGE.format(tag="v2")}).body

    assert [(a["name"], a["state"]) for a in plan["alarms"]] == [
        ("web-5xx-high", "ALARM"), ("web-p99-latency", "OK"), ("web-typo", "MISSING")]
    assert plan["refusals"] == [
        {"code": "AlarmMissing", "message": "no CloudWatch metric alarm is named 'web-typo'"},
        {"code": "AlarmFiring",
         "message": "alarm 'web-5xx-high' is in ALARM: Threshold Crossed: 1 datapoint [42.0] was > 10"}]


def test_an_image_that_does_not_resolve_and_no_online_instance_are_refusals(aws: World) -> None:
    instances = register(aws, instances=2)
    for instance in instances:
        localaws.set_outcome(instance, InstanceOutcome(skip=True))      # no SSM agent: not a managed node

    reply = call("POST", "/targets/web/plan", {"image": IMAGE.format(tag="never-pushed")})

    assert reply.status == 200, reply
    assert reply.body["revision"] is None
    assert [i["ssm_managed"] for i in reply.body["instances"]] == [False, False]
    codes = {r["code"]: r["message"] for r in reply.body["refusals"]}
    assert set(codes) == {"ImageUnresolved", "NoOnlineInstance"}
    assert "is not in ECR" in codes["ImageUnresolved"]
    assert "none of the 2 instances matched is managed by SSM and Online" in codes["NoOnlineInstance"]


def test_a_locked_target_is_a_refusal_naming_the_deployment_and_the_lock_is_untouched(
        aws: World, calls: list[str]) -> None:
    register(aws, instances=2)
    push_image(aws, "web", "v2")
    hold_lock(aws, "web", "d-20261127-running", expires_at=4_000_000_000)
    key = {"pk": {"S": "TARGET#web"}, "sk": {"S": "LOCK"}}
    before = aws.client("dynamodb").get_item(TableName=TABLE, Key=key)["Item"]
    calls.clear()

    plan = call("POST", "/targets/web/plan", {"image": IMAGE.format(tag="v2")}).body

    assert plan["refusals"] == [{"code": "TargetBusy",
                                 "message": "the target is locked by running deployment d-20261127-running"}]
    assert aws.client("dynamodb").get_item(TableName=TABLE, Key=key)["Item"] == before
    assert set(calls) <= READS, calls


def test_an_unknown_target_is_a_404(aws: World) -> None:
    reply = call("POST", "/targets/nope/plan")
    assert reply.status == 404 and reply.error["code"] == "TargetNotFound"


@pytest.mark.parametrize("body, field", [
    ({"image": "web:latest;rm -rf /"}, "image"),
    ({"image": ""}, "image"),
    ({"image": 42}, "image"),
    ({"image": "web:v1", "force": True}, "force"),
])
def test_a_bad_image_is_a_400_naming_the_field(aws: World, body: dict[str, Any], field: str) -> None:
    register(aws, instances=0)
    reply = call("POST", "/targets/web/plan", body)
    assert reply.status == 400, reply
    assert reply.error["code"] == "InvalidRequest" and reply.error["field"] == field

