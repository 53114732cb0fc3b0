"""A rollout in waves through the pipeline action, on the embedded AWS: canary, bakes watched by CloudWatch alarms,
and automatic rollback. The alarms are moto's; a test puts one into ALARM at a chosen moment with SetAlarmState."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from chalice.test import Client

import localaws
from app import app
from chalicelib.domain.deployment import Deployment
from localaws import InstanceOutcome
from tests.conftest import World
from tests.functional.support import TAGS, invoke, jid, results, spec
from tests.reliability.faults import Clock
from tools import local_pipeline
from tools.local_pipeline import Reply

ALARM = "web-5xx-high"
CANARY = {"max_concurrency": "25%", "max_errors": "0", "canary": {"instances": 1, "bake_seconds": 120},
          "alarms": [ALARM, "web-p99-latency"], "bake_seconds": 60}
ROUND_SECONDS = 30          # berth's clock moves this far between two continuations


def put_alarms(aws: World, *names: str) -> None:
    for name in names:
        aws.client("cloudwatch").put_metric_alarm(
            AlarmName=name, Namespace="web", MetricName=name, Statistic="Sum", Period=60, EvaluationPeriods=1,
            Threshold=10, ComparisonOperator="GreaterThanThreshold")


def fire(aws: World, name: str = ALARM, reason: str = "Threshold Crossed: 1 datapoint [42.0] was > 10") -> None:
    aws.client("cloudwatch").set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason=reason)


def sent(aws: World) -> list[dict[str, Any]]:
    return sorted(aws.client("ssm").list_commands()["Commands"], key=lambda c: c["RequestedDateTime"])


def record(deployment_id: str) -> Deployment:
    from chalicelib.wiring import store

    with Client(app, stage_name="test"):
        return store().get_deployment(deployment_id)  # type: ignore[no-any-return]


def lock_of(target: str = "web-prod") -> Any:
    from chalicelib.wiring import store

    with Client(app, stage_name="test"):
        return store().get_lock(target)


def run(aws: World, clock: Clock, job: str, params: dict[str, Any], on_reply: Callable[[Reply], None] = lambda r: None,
        max_rounds: int = 30) -> list[Reply]:
    bucket, key = aws.put_artifact({})
    return local_pipeline.run_job(invoke, results, json.dumps(params), bucket, key, on_reply=on_reply,
                                  max_rounds=max_rounds, between_rounds=lambda: clock.advance(ROUND_SECONDS),
                                  first_job_id=jid(job))


@pytest.fixture
def fleet(aws: World, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], Clock]:
    """Four instances running v1 (a plain deployment), v2 pushed, and the two alarms, both OK."""
    instances = aws.launch(4, TAGS)
    aws.push_image("web", "v1")
    aws.push_image("web", "v2", content="v2")
    put_alarms(aws, ALARM, "web-p99-latency")
    clock = Clock(monkeypatch)
    first = run(aws, clock, "v1", spec(image=aws.image_uri("web", "v1")))
    assert first[-1].kind == "success"
    return instances, clock


def canary_params(aws: World, **rollout: Any) -> dict[str, Any]:
    return spec(image=aws.image_uri("web", "v2"), rollout={**CANARY, **rollout})


def test_canary_then_the_rest_then_the_final_bake_succeeds(aws: World, fleet: tuple[list[str], Clock]) -> None:
    instances, clock = fleet
    replies = run(aws, clock, "canary-ok", canary_params(aws))

    assert replies[-1].kind == "success", replies[-1].text
    waves = sent(aws)[1:]
    assert [c["InstanceIds"] for c in waves] == [sorted(instances)[:1], sorted(instances)[1:]]
    assert all(c["MaxConcurrency"] == "25%" and c["MaxErrors"] == "0" and not c.get("Targets") for c in waves)
    assert any("baking" in reply.text for reply in replies)
    deployment = record(replies[-1].result["outputVariables"]["deployment_id"])
    assert deployment.status.value == "SUCCEEDED"
    assert [a.wave for a in deployment.attempts] == [1, 2]
    actions = [d.action for d in deployment.history]
    assert actions.count("wave-passed") == 2
    # The bakes were honoured: the canary's 120 s, then the final 60 s, on berth's clock.
    passed = [d.at for d in deployment.history if d.action == "wave-passed"]
    assert (deployment.history[-1].at - passed[-1]).total_seconds() >= 60
    assert (deployment.attempts[1].started_at - passed[0]).total_seconds() >= 120
    assert lock_of() is None
    # The job's continuations refreshed it: no Scheduler look was needed (services/looks.py is for REST rollouts).
    assert aws.client("scheduler").list_schedules()["Schedules"] == []


def test_an_alarm_during_the_bake_rolls_the_canary_back(aws: World, fleet: tuple[list[str], Clock]) -> None:
    instances, clock = fleet

    def alarm_while_baking(reply: Reply) -> None:
        if "baking" in reply.text:
            fire(aws)

    replies = run(aws, clock, "canary-alarm", canary_params(aws), on_reply=alarm_while_baking)

    failure = replies[-1]
    assert failure.kind == "failure"
    assert "rolled back:" in failure.text
    assert f"alarm '{ALARM}' is in ALARM: Threshold Crossed: 1 datapoint [42.0] was > 10" in failure.text
    commands = sent(aws)
    assert len(commands) == 3                       # v1, the canary wave, the rollback: never a second wave
    rollback = commands[-1]
    assert rollback["InstanceIds"] == sorted(instances)[:1]
    v1_pinned = record(commands[0]["Comment"].split()[1]).revision.pinned
    assert v1_pinned in "\n".join(rollback["Parameters"]["commands"])
    deployment = record(failure.result["failureDetails"]["externalExecutionId"])
    assert deployment.status.value == "ROLLED_BACK"
    assert [(a.wave, a.image) for a in deployment.attempts] == [(1, None), (None, v1_pinned)]
    assert [d.action for d in deployment.history][1:] == ["dispatched", "wave-passed", "halted", "rolling-back",
                                                          "dispatched", "rolled_back"]
    assert deployment.message == (f"alarm '{ALARM}' is in ALARM: Threshold Crossed: 1 datapoint [42.0] was > 10. "
                                  f"Rolled back 1 instances to {v1_pinned}")
    assert lock_of() is None


def test_an_alarm_already_in_alarm_refuses_the_start(aws: World, fleet: tuple[list[str], Clock]) -> None:
    _, clock = fleet
    fire(aws, "web-p99-latency", "p99 latency 2.4 s > 1 s")
    before = len(sent(aws))

    replies = run(aws, clock, "canary-refused", canary_params(aws))

    assert [r.kind for r in replies] == ["failure"]
    assert "alarm 'web-p99-latency' is in ALARM: p99 latency 2.4 s > 1 s" in replies[0].text
    assert "nothing was sent" in replies[0].text
    assert len(sent(aws)) == before
    assert lock_of() is None


def test_an_alarm_that_does_not_exist_refuses_the_start(aws: World, fleet: tuple[list[str], Clock]) -> None:
    _, clock = fleet
    replies = run(aws, clock, "canary-typo", canary_params(aws, alarms=["web-5xx-hihg"]))
    assert [r.kind for r in replies] == ["failure"]
    assert "no CloudWatch metric alarm is named 'web-5xx-hihg'" in replies[0].text
    assert replies[0].result["failureDetails"]["type"] == "ConfigurationError"


def test_a_failed_canary_wave_is_rolled_back(aws: World, fleet: tuple[list[str], Clock]) -> None:
    instances, clock = fleet
    canary = sorted(instances)[0]
    v2 = aws.push_image("web", "v2", content="v2")
    broken = InstanceOutcome(status="Failed", response_code=30, stdout="berth-step: health\n",
                             stderr="health check failed")

    def v2_fails_on_the_canary(instance_id: str, command: dict[str, Any]) -> InstanceOutcome | None:
        return broken if instance_id == canary and v2 in "\n".join(command["Parameters"]["commands"]) else None

    localaws.set_outcome_hook(v2_fails_on_the_canary)

    replies = run(aws, clock, "canary-fails", canary_params(aws))

    assert replies[-1].kind == "failure"
    assert "rolled back: wave 1 of 2 failed: 1 of 1 instances failed" in replies[-1].text
    assert canary in replies[-1].text and "health check failed" in replies[-1].text
    commands = sent(aws)
    assert len(commands) == 3 and commands[-1]["InstanceIds"] == [canary]
    assert lock_of() is None


def test_without_auto_rollback_an_alarm_fails_the_deployment_and_sends_nothing_more(
        aws: World, fleet: tuple[list[str], Clock]) -> None:
    _, clock = fleet

    def alarm_while_baking(reply: Reply) -> None:
        if "baking" in reply.text:
            fire(aws)

    replies = run(aws, clock, "canary-no-rollback", canary_params(aws, auto_rollback=False),
                  on_reply=alarm_while_baking)

    assert replies[-1].kind == "failure"
    assert " failed: " in replies[-1].text and "auto_rollback is false" in replies[-1].text
    assert len(sent(aws)) == 2                      # v1 and the canary wave
    assert lock_of() is None


def test_an_alarm_during_a_wave_cancels_its_command_before_the_rollback(
        aws: World, fleet: tuple[list[str], Clock]) -> None:
    instances, clock = fleet
    localaws.set_default_outcome(InstanceOutcome(polls_before_done=3))

    def alarm_during_second_wave(reply: Reply) -> None:
        if "wave 2 of 2:" in reply.text:
            fire(aws)

    replies = run(aws, clock, "wave-alarm", canary_params(aws, canary={"instances": 1, "bake_seconds": 0}),
                  on_reply=alarm_during_second_wave)

    assert replies[-1].kind == "failure" and "rolled back:" in replies[-1].text
    commands = sent(aws)
    assert len(commands) == 4
    assert commands[2]["Status"] == "Cancelled"
    assert commands[3]["InstanceIds"] == sorted(instances)      # the canary and every instance of the halted wave


@contextmanager
def failing(operation: str, times: int) -> Iterator[list[str]]:
    """Once armed (`arm.append(...)`), the next `times` calls of `operation` fail as AWS throttling them would."""
    original = BaseClient._make_api_call
    arm: list[str] = []
    failed: list[int] = []

    def wrapped(self: BaseClient, name: str, params: dict[str, Any]) -> Any:
        if name == operation and arm and len(failed) < times:
            failed.append(1)
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
                               "ResponseMetadata": {"HTTPStatusCode": 400}}, name)
        return original(self, name, params)

    BaseClient._make_api_call = wrapped  # type: ignore[method-assign]
    try:
        yield arm
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]
    assert len(failed) == times, f"{operation} failed {len(failed)} times, not {times}"


@pytest.mark.parametrize("operation", ["DescribeAlarms", "CancelCommand"])
def test_a_failing_alarm_read_or_cancel_still_gives_one_result_per_invocation_and_never_a_second_wave(
        aws: World, fleet: tuple[list[str], Clock], operation: str) -> None:
    instances, clock = fleet
    localaws.set_default_outcome(InstanceOutcome(polls_before_done=2))

    with failing(operation, times=2 if operation == "DescribeAlarms" else 1) as arm:
        def alarm_during_canary(reply: Reply) -> None:
            if not arm and "wave 1 of 2" in reply.text:
                fire(aws)
                arm.append(operation)

        # local_pipeline.run_job asserts exactly one result for every invocation
        replies = run(aws, clock, f"fault-{operation}", canary_params(aws), on_reply=alarm_during_canary)

    assert replies[-1].kind == "failure" and "rolled back:" in replies[-1].text
    assert f"alarm '{ALARM}' is in ALARM" in replies[-1].text
    commands = sent(aws)
    assert len(commands) == 3                       # v1, the canary wave, the rollback: never the second wave
    assert commands[-1]["InstanceIds"] == sorted(instances)[:1]
    assert lock_of() is None


def test_a_rollback_that_fails_too_ends_failed_and_says_so(aws: World, fleet: tuple[list[str], Clock]) -> None:
    instances, clock = fleet
    canary = sorted(instances)[0]
    localaws.set_outcome(canary, InstanceOutcome(status="Failed", response_code=30, stdout="berth-step: health\n",
                                                 stderr="health check failed"))

    replies = run(aws, clock, "rollback-fails", canary_params(aws))

    assert replies[-1].kind == "failure"
    text = replies[-1].result["failureDetails"]["message"]
    assert text.startswith("deployment d-") and " failed: wave 1 of 2 failed: 1 of 1 instances failed." in text
    assert "The rollback to " in text and " failed too: 1 of 1 instances failed." in text
    assert len(sent(aws)) == 3 and lock_of() is None


def test_the_rest_history_and_berth_show_display_the_waves_and_rolled_back(
        aws: World, fleet: tuple[list[str], Clock]) -> None:
    from berth_cli import render
    from tests.api.support import call

    instances, clock = fleet

    def alarm_while_baking(reply: Reply) -> None:
        if "baking" in reply.text:
            fire(aws)

    replies = run(aws, clock, "canary-shown", canary_params(aws), on_reply=alarm_while_baking)
    deployment_id = replies[-1].result["failureDetails"]["externalExecutionId"]

    shown = call("GET", f"/deployments/{deployment_id}")
    assert shown.status == 200
    body = shown.body
    assert (body["status"], body["final"]) == ("ROLLED_BACK", True)
    assert body["rollout"]["waves"] == [sorted(instances)[:1], sorted(instances)[1:]]
    assert (body["rollout"]["phase"], body["rollout"]["wave"]) == ("ROLLING_BACK", 1)
    assert [(a.get("wave"), a.get("image") is not None) for a in body["attempts"]] == [(1, False), (None, True)]
    history = call("GET", "/targets/web-prod/deployments").body["deployments"]
    assert history[0]["deployment_id"] == deployment_id and history[0]["status"] == "ROLLED_BACK"

    text = render.deployment(body)
    assert text.startswith(f"{deployment_id} ROLLED_BACK:")
    assert f"waves    2 (1, 3 instances), at wave 1, rolling back: alarm '{ALARM}' is in ALARM" in text
    assert "attempt 1: wave 1, command " in text and "attempt 2: rollback to " in text
    assert "wave-passed: wave 1 of 2" in text and "rolled_back: alarm" in text


def test_a_persons_rollback_is_one_command_that_a_firing_alarm_neither_refuses_nor_halts(
        aws: World, fleet: tuple[list[str], Clock]) -> None:
    from tests.api.support import call

    _, clock = fleet
    assert run(aws, clock, "canary-before-rollback", canary_params(aws))[-1].kind == "success"
    fire(aws)
    before = len(sent(aws))

    started = call("POST", "/targets/web-prod/rollback", {"reason": "5xx after v2"})
    assert started.status == 202, started.body
    shown = call("GET", f"/deployments/{started.body['deployment_id']}").body
    for _ in range(5):
        if shown["final"]:
            break
        shown = call("GET", f"/deployments/{started.body['deployment_id']}").body

    assert shown["status"] == "SUCCEEDED" and "rollout" not in shown
    (command,) = sent(aws)[before:]
    assert {t["Key"] for t in command["Targets"]} == {"tag:app", "tag:env"} and not command.get("InstanceIds")
