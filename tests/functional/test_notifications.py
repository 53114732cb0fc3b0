"""berth's own events on EventBridge, captured as a consumer would: a rule on the default bus sends every `berth` event
to an SQS queue on the embedded AWS (moto delivers to rule targets and validates PutEvents' entries)."""

from __future__ import annotations

import json
from typing import Any

import pytest

import localaws
from localaws import InstanceOutcome
from tests.conftest import World
from tests.functional.support import TAGS, deliver, spec
from tests.functional.test_retries import command_event, fire, start, store_deployment
from tests.functional.test_rollout_waves import canary_params, fleet, run
from tests.functional.test_rollout_waves import fire as fire_alarm
from tests.reliability.faults import Clock
from tools.local_pipeline import Reply

__all__ = ["fleet"]     # the fixture, shared with the rollout tests


@pytest.fixture
def events(aws: World) -> Any:
    """A function that returns the berth events published since it was last called, oldest first."""
    sqs = aws.client("sqs")
    queue = sqs.create_queue(QueueName="berth-notifications")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws.client("events").put_rule(Name="berth-notifications", EventPattern=json.dumps({"source": ["berth"]}))
    aws.client("events").put_targets(Rule="berth-notifications", Targets=[{"Id": "queue", "Arn": arn}])

    def received() -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
            got += [json.loads(message["Body"]) for message in batch]
            sqs.delete_message_batch(QueueUrl=queue, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)])
        return sorted(got, key=lambda e: e["detail"]["at"])
    return received


def kinds(received: list[dict[str, Any]]) -> list[str]:
    return [event["detail-type"] for event in received]


def test_a_deployment_that_succeeds_says_started_then_succeeded(aws: World, events: Any) -> None:
    aws.launch(2, TAGS)
    deployment_id = start(aws, "notify-ok")
    command = store_deployment(deployment_id).attempts[0].command_id
    deliver(command_event(str(command), "Success"))

    started, succeeded = events()
    assert (started["detail-type"], succeeded["detail-type"]) == ("Deployment Started", "Deployment Succeeded")
    detail = succeeded["detail"]
    record = store_deployment(deployment_id)
    assert detail["deployment_id"] == deployment_id and detail["target"] == "web-prod"
    assert detail["digest"] == record.revision.digest is not None and detail["previous_digest"] is None
    assert detail["trigger"] == "pipeline" and detail["caller"].startswith("codepipeline-job:")
    assert detail["status"] == "SUCCEEDED" and detail["command_id"] == command
    assert detail["console_link"] == f"https://{aws.region}.console.aws.amazon.com/systems-manager/run-command/{command}"
    assert started["source"] == "berth" and started["detail"]["status"] == "IN_PROGRESS"


def test_a_transient_failure_says_retry_scheduled_and_a_permanent_one_retries_exhausted(aws: World,
                                                                                          events: Any) -> None:
    instances = aws.launch(1, TAGS)
    localaws.set_outcome(instances[0], InstanceOutcome(status="Failed", response_code=21, stdout="berth-step: pull\n",
                                                       stderr="net/http: TLS handshake timeout"))
    deployment_id = start(aws, "notify-retry")
    deliver(command_event(str(store_deployment(deployment_id).attempts[0].command_id)))

    assert kinds(events()) == ["Deployment Started", "Retry Scheduled"]

    localaws.set_outcome(instances[0], InstanceOutcome(status="Failed", response_code=40,
                                                       stdout="berth-step: health\n", stderr="health check failed"))
    fire(aws)
    second = store_deployment(deployment_id).attempts[1].command_id
    deliver(command_event(str(second)))

    received = events()
    assert kinds(received) == ["Deployment Failed", "Retries Exhausted"]
    failed, exhausted = received
    assert "permanent" in exhausted["detail"]["reason"] and exhausted["detail"]["deployment_id"] == deployment_id
    assert failed["detail"]["command_id"] == second and failed["detail"]["status"] == "FAILED"
    assert failed["detail"]["reason"] == store_deployment(deployment_id).message


def test_a_rollout_rolled_back_says_so(aws: World, fleet: tuple[list[str], Clock], events: Any) -> None:
    _, clock = fleet
    events()        # the fleet's first deployment

    def alarm_while_baking(reply: Reply) -> None:
        if "baking" in reply.text:
            fire_alarm(aws)

    replies = run(aws, clock, "notify-rollback", canary_params(aws), on_reply=alarm_while_baking)

    received = events()
    assert kinds(received) == ["Deployment Started", "Deployment Rolled Back"]
    rolled_back = received[-1]["detail"]
    assert rolled_back["deployment_id"] == replies[-1].result["failureDetails"]["externalExecutionId"]
    assert rolled_back["previous_digest"] is not None and rolled_back["previous_digest"] != rolled_back["digest"]
    assert "alarm 'web-5xx-high' is in ALARM" in rolled_back["reason"]


def test_a_putevents_failure_fails_no_deployment(aws: World, events: Any, monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("BERTH_EVENT_BUS", "no-such-bus")    # PutEvents answers ResourceNotFoundException
    aws.launch(1, TAGS)
    deployment_id = start(aws, "notify-broken-bus")
    deliver(command_event(str(store_deployment(deployment_id).attempts[0].command_id), "Success"))

    assert store_deployment(deployment_id).status.value == "SUCCEEDED"
    assert events() == []
    failures = [r for r in caplog.records if r.getMessage() == "could not publish berth's events"]
    assert [r.detail_types for r in failures] == [["Deployment Started"], ["Deployment Succeeded"]]  # type: ignore[attr-defined]
    assert "no-such-bus" in failures[0].error  # type: ignore[attr-defined]


def test_a_freeze_and_its_end_are_announced(aws: World, events: Any) -> None:
    from tests.api.support import call

    assert call("PUT", "/targets/web-prod", spec()).status == 200
    assert call("POST", "/targets/web-prod/freeze", {"reason": "release week"}).status == 200
    assert call("POST", "/targets/web-prod/unfreeze").status == 200
    assert call("POST", "/targets/web-prod/unfreeze").status == 200      # nothing to lift: nothing said

    frozen, unfrozen = events()
    assert (frozen["detail-type"], unfrozen["detail-type"]) == ("Target Frozen", "Target Unfrozen")
    assert frozen["detail"]["target"] == "web-prod" and frozen["detail"]["reason"] == "release week"
    assert frozen["detail"]["deployment_id"] is None
