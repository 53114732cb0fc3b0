"""No drift, on the embedded AWS through the REST API: a deployment that succeeds with one instance failing within
max_errors lists it as left behind, `GET /targets/{name}` and the plan show it, and `POST /targets/{name}/sync` sends
the current revision to it alone (SendCommand by InstanceIds), after which nothing is behind."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

import localaws
from localaws import InstanceOutcome
from tests.api.support import call, deploy, hold_lock, identity, push_image, register, settle, store
from tests.conftest import TABLE, World
from tests.functional.support import TAGS, spec
from tests.functional.test_rollout_waves import ALARM, canary_params, fire, put_alarms, run
from tests.reliability.faults import Clock
from tools.local_pipeline import Reply

pytestmark = pytest.mark.filterwarnings("ignore:IAMAuthorizer is not a supported in local mode")
ARN = "arn:aws:iam::123456789012:user/alice"
PULL_FAILED = InstanceOutcome(status="Failed", response_code=30, stdout="berth-step: pull",
                              stderr="error: pull failed: toomanyrequests")


def commands(aws: World) -> list[dict[str, Any]]:
    return sorted(aws.client("ssm").list_commands()["Commands"], key=lambda c: c["RequestedDateTime"])


def one_behind(aws: World) -> tuple[list[str], str, dict[str, Any]]:
    """Three instances, v1 deployed with max_errors 1 while the second fails its pull: it is left behind."""
    instances = sorted(register(aws, instances=3, rollout={"max_concurrency": "100%", "max_errors": "1"}))
    digest = push_image(aws, "web", "v1")
    localaws.set_outcome(instances[1], PULL_FAILED)
    started = deploy(image=aws.image_uri("web", "v1"))
    assert started.status == 202, started
    return instances, digest, settle(started.body["deployment_id"])


def test_an_instance_failing_within_max_errors_is_left_behind_and_a_sync_sends_to_it_alone(
        aws: World, monkeypatch: pytest.MonkeyPatch) -> None:
    instances, digest, first = one_behind(aws)
    behind = instances[1]

    assert first["status"] == "SUCCEEDED" and first["left_behind"] == [behind]
    assert f"1 instances left behind, not on this revision: {behind}; `berth sync web`" in first["message"]
    target = call("GET", "/targets/web").body
    assert target["behind"] == [behind] and target["instances_untracked"] == 0
    assert [(i["instance_id"], i["digest"], i["deployment_id"], i["behind"]) for i in target["instances"]] == [
        (instances[0], digest, first["deployment_id"], False), (behind, None, None, True),
        (instances[2], digest, first["deployment_id"], False)]
    plan = call("POST", "/targets/web/plan").body
    assert [(i["instance_id"], i["digest"], i["behind"]) for i in plan["instances"]] == [
        (instances[0], digest, False), (behind, None, True), (instances[2], digest, False)]

    localaws.set_outcome(behind, InstanceOutcome())          # the registry answers again
    with identity(monkeypatch, user_arn=ARN):
        synced = call("POST", "/targets/web/sync", {"reason": "pull failed on one host"})

    assert synced.status == 202, synced
    assert synced.headers["Location"] == f"/deployments/{synced.body['deployment_id']}"
    assert (synced.body["trigger"], synced.body["caller"]) == ("sync", ARN)
    assert (synced.body["remaining"], synced.body["not_running"]) == (0, [])
    assert synced.body["revision"]["digest"] == digest
    sent = commands(aws)[-1]
    assert sent["InstanceIds"] == [behind] and not sent.get("Targets")
    done = settle(synced.body["deployment_id"])
    assert done["status"] == "SUCCEEDED" and done["left_behind"] == []
    target = call("GET", "/targets/web").body
    assert target["behind"] == [] and target["current_revision"]["digest"] == digest
    assert {i["instance_id"]: i["deployment_id"] for i in target["instances"]}[behind] == done["deployment_id"]
    record = store(aws).get_target("web")
    assert record is not None and record.last_deployment_id == first["deployment_id"]   # the revision is untouched

    again = call("POST", "/targets/web/sync")
    assert again.status == 409 and again.error["code"] == "NothingToSync"
    assert "no running instance is behind" in again.error["message"]
    assert len(commands(aws)) == 2


def test_a_sync_is_refused_while_busy_with_the_breaker_open_or_without_a_revision(aws: World) -> None:
    register(aws, instances=1)
    bare = call("POST", "/targets/web/sync")
    assert bare.status == 409 and bare.error["code"] == "NothingToSync"
    assert "no current revision" in bare.error["message"]
    assert call("POST", "/targets/nope/sync").status == 404

    _, _, first = one_behind(aws)
    hold_lock(aws, "web", "d-20261127000000-busy0000", expires_at=int(datetime.now(UTC).timestamp()) + 600)
    busy = call("POST", "/targets/web/sync")
    assert busy.status == 409 and busy.error["code"] == "TargetBusy"
    aws.client("dynamodb").delete_item(TableName=TABLE, Key={"pk": {"S": "TARGET#web"}, "sk": {"S": "LOCK"}})
    store(aws).record_failure("web", int(datetime.now(UTC).timestamp()), keep_after=0, open_breaker=True)
    opened = call("POST", "/targets/web/sync")
    assert opened.status == 409 and opened.error["code"] == "BreakerOpen"
    too_long = call("POST", "/targets/web/sync", {"reason": "x" * 501})
    assert too_long.status == 400 and too_long.error["field"] == "reason"
    assert len(commands(aws)) == 1 and first["left_behind"]


def test_an_instance_behind_that_stopped_is_named_and_not_sent_to(aws: World) -> None:
    instances, _, _ = one_behind(aws)
    aws.client("ec2").stop_instances(InstanceIds=[instances[1]])

    refused = call("POST", "/targets/web/sync")

    assert refused.status == 409 and refused.error["code"] == "NothingToSync"
    assert f"1 behind are not running: {instances[1]}" in refused.error["message"]
    assert len(commands(aws)) == 1


def test_after_a_rollback_the_canary_runs_the_previous_digest_again_and_nothing_is_behind(
        aws: World, monkeypatch: pytest.MonkeyPatch) -> None:
    instances = sorted(aws.launch(4, TAGS))
    aws.push_image("web", "v1")
    aws.push_image("web", "v2", content="v2")
    put_alarms(aws, ALARM, "web-p99-latency")
    clock = Clock(monkeypatch)
    assert run(aws, clock, "v1", spec(image=aws.image_uri("web", "v1")))[-1].kind == "success"
    v1 = call("GET", "/targets/web-prod").body
    v1_digest = v1["current_revision"]["digest"]

    def alarm_while_baking(reply: Reply) -> None:
        if "baking" in reply.text:
            fire(aws)

    failure = run(aws, clock, "canary-alarm", canary_params(aws), on_reply=alarm_while_baking)[-1]

    assert failure.kind == "failure" and "rolled back:" in failure.text
    rolled_back = failure.result["failureDetails"]["externalExecutionId"]
    target = call("GET", "/targets/web-prod").body
    assert target["current_revision"]["digest"] == v1_digest and target["behind"] == []
    assert {i["instance_id"]: (i["digest"], i["deployment_id"]) for i in target["instances"]} == {
        instances[0]: (v1_digest, rolled_back),          # the canary: v2, then the previous digest again
        **{i: (v1_digest, v1["last_deployment"]["deployment_id"]) for i in instances[1:]}}
