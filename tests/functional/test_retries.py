"""Automatic retries of SSM deployments: scheduled through EventBridge Scheduler, exactly once per failure."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

import localaws
from chalicelib.domain.deployment import Deployment
from chalicelib.domain.retry import schedule_name
from localaws import InstanceOutcome
from tests.conftest import World
from tests.events import load_event, pipeline_job_event
from tests.functional.support import TAGS, deliver, invoke, jid, results, spec
from tools.local_scheduler import fire_all, pending


def store_deployment(deployment_id: str) -> Deployment:
    from chalice.test import Client

    from app import app
    from chalicelib.wiring import store

    with Client(app, stage_name="test"):
        return store().get_deployment(deployment_id)  # type: ignore[no-any-return]


def start(aws: World, name: str, **overrides: Any) -> str:
    aws.push_image("web", "v1")
    bucket, key = aws.put_artifact({"image.txt": aws.image_uri("web", "v1")})
    invoke(pipeline_job_event(job_id=jid(name), user_parameters=json.dumps(spec(**overrides)), bucket=bucket, key=key))
    reply = results(jid(name))[0]
    assert reply["type"] == "success", reply
    return str(reply["executionDetails"]["externalExecutionId"])


def command_event(command_id: str, status: str = "Failed") -> dict[str, Any]:
    event = load_event("ssm_command_failed")
    event["detail"]["command-id"] = command_id
    event["detail"]["status"] = status
    return event


def fire(aws: World) -> list[str]:
    return fire_all(aws.client("scheduler"), lambda payload: invoke(payload, "retry_deployment"))


def test_transient_failure_is_retried_once_and_the_retry_succeeds(aws: World) -> None:
    instances = aws.launch(2, TAGS)
    localaws.set_outcome(instances[0], InstanceOutcome(status="Failed", response_code=21, stdout="berth-step: pull\n",
                                                       stderr="net/http: TLS handshake timeout"))
    deployment_id = start(aws, "retry-ok")
    first = store_deployment(deployment_id).attempts[0].command_id
    assert first is not None

    deliver(command_event(first))

    record = store_deployment(deployment_id)
    assert record.status.value == "RETRYING"
    decision = record.history[-1]
    assert decision.action == "retry-scheduled" and "transient" in decision.cause and "exit 21" in decision.cause
    schedules = pending(aws.client("scheduler"))
    assert [name for name, _ in schedules] == [schedule_name(deployment_id, 2)]
    assert schedules[0][1] == {"kind": "ssm", "deployment_id": deployment_id, "attempt": 2}
    schedule = aws.client("scheduler").get_schedule(Name=schedules[0][0])
    assert schedule["ScheduleExpression"].startswith("at(") and schedule["ActionAfterCompletion"] == "DELETE"
    assert schedule["Target"]["DeadLetterConfig"]["Arn"].endswith(":berth-test-dead-letters")

    localaws.set_outcome(instances[0], InstanceOutcome())
    assert fire(aws) == [schedule_name(deployment_id, 2)]
    retried = store_deployment(deployment_id)
    assert len(retried.attempts) == 2 and retried.status.value == "IN_PROGRESS"
    second = retried.attempts[1].command_id
    assert second not in (None, first)
    script = "\n".join(aws.client("ssm").list_commands(CommandId=second)["Commands"][0]["Parameters"]["commands"])
    assert retried.revision.digest is not None and retried.revision.digest in script

    deliver(command_event(str(second), "Success"))
    assert store_deployment(deployment_id).status.value == "SUCCEEDED"
    assert fire(aws) == []


def test_pipeline_job_stays_open_while_retrying_and_reports_only_the_outcome(aws: World) -> None:
    instances = aws.launch(1, TAGS)
    localaws.set_outcome(instances[0], InstanceOutcome(status="TimedOut", response_code=-1))
    deployment_id = start(aws, "retry-pipeline")
    token = results(jid("retry-pipeline"))[0]["continuationToken"]

    for round_number in range(2):
        invoke(pipeline_job_event("codepipeline_job_continuation", job_id=jid(f"retry-pipeline-{round_number}"),
                                  user_parameters=json.dumps(spec()), token=token, no_artifacts=True))
        reply = results(jid(f"retry-pipeline-{round_number}"))[0]
        assert reply["type"] == "success" and "continuationToken" in reply
    assert "attempt 2 scheduled" in reply["executionDetails"]["summary"]

    localaws.set_outcome(instances[0], InstanceOutcome())
    fire(aws)
    invoke(pipeline_job_event("codepipeline_job_continuation", job_id=jid("retry-pipeline-end"), token=token,
                              user_parameters=json.dumps(spec()), no_artifacts=True))
    final = results(jid("retry-pipeline-end"))[0]
    assert final["type"] == "success" and "continuationToken" not in final
    assert final["outputVariables"]["deployment_id"] == deployment_id


@pytest.mark.parametrize("code, stdout", [(40, "berth-step: health\n"), (2, ""), (30, "berth-step: start\n"),
                                          (22, "berth-step: secrets\n")])
def test_permanent_failure_is_never_retried(aws: World, code: int, stdout: str) -> None:
    instances = aws.launch(1, TAGS)
    localaws.set_outcome(instances[0], InstanceOutcome(status="Failed", response_code=code, stdout=stdout))
    deployment_id = start(aws, f"permanent-{code}")
    deliver(command_event(str(store_deployment(deployment_id).attempts[0].command_id)))

    record = store_deployment(deployment_id)
    assert record.status.value == "FAILED"
    assert [d.action for d in record.history][-2:] == ["gave-up", "failed"]
    assert "permanent" in record.history[-2].detail
    assert pending(aws.client("scheduler")) == []


def test_docker_missing_is_remediable_and_retried(aws: World) -> None:
    instances = aws.launch(1, TAGS)
    localaws.set_outcome(instances[0], InstanceOutcome(status="Failed", response_code=127,
                                                       stderr="bash: line 1: docker: command not found"))
    deployment_id = start(aws, "docker-missing")
    deliver(command_event(str(store_deployment(deployment_id).attempts[0].command_id)))
    record = store_deployment(deployment_id)
    assert record.status.value == "RETRYING" and "remediable" in record.history[-1].cause


def test_duplicate_and_concurrent_failure_events_schedule_exactly_one_retry(aws: World) -> None:
    instances = aws.launch(1, TAGS)
    localaws.set_outcome(instances[0], InstanceOutcome(status="Failed", response_code=21))
    deployment_id = start(aws, "dup-events")
    event = command_event(str(store_deployment(deployment_id).attempts[0].command_id))

    for _ in range(5):
        deliver(event)
    errors: list[BaseException] = []

    def deliver_quietly() -> None:
        try:
            deliver(event)
        except BaseException as exc:  # a Conflict is EventBridge's cue to deliver again; it must not double-retry
            errors.append(exc)

    threads = [threading.Thread(target=deliver_quietly) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(pending(aws.client("scheduler"))) == 1
    record = store_deployment(deployment_id)
    assert [d.action for d in record.history].count("retry-scheduled") == 1
    assert fire(aws) and len(store_deployment(deployment_id).attempts) == 2
    for _ in range(3):      # the same schedule firing again (Scheduler is at-least-once too) sends nothing
        invoke({"kind": "ssm", "deployment_id": deployment_id, "attempt": 2}, "retry_deployment")
    assert len(store_deployment(deployment_id).attempts) == 2
    assert all("Conflict" in type(error).__name__ or "kept changing" in str(error) for error in errors)


def test_retries_stop_at_max_attempts(aws: World) -> None:
    instances = aws.launch(1, TAGS)
    localaws.set_outcome(instances[0], InstanceOutcome(status="Failed", response_code=21))
    deployment_id = start(aws, "budget", retry={"max_attempts": 2, "base_seconds": 1, "cap_seconds": 5})
    for _ in range(2):
        command_id = store_deployment(deployment_id).attempts[-1].command_id
        deliver(command_event(str(command_id)))
        fire(aws)
    record = store_deployment(deployment_id)
    assert record.status.value == "FAILED" and len(record.attempts) == 2
    assert "retry budget spent: 2 of 2" in record.message


def test_circuit_breaker_opens_after_repeated_failures(aws: World) -> None:
    instances = aws.launch(1, TAGS)
    localaws.set_default_outcome(InstanceOutcome(status="Failed", response_code=21))
    localaws.set_outcome(instances[0], InstanceOutcome(status="Failed", response_code=21))
    for n in range(5):
        deployment_id = start(aws, f"breaker-{n}", retry={"max_attempts": 1})
        deliver(command_event(str(store_deployment(deployment_id).attempts[-1].command_id)))
    record = store_deployment(deployment_id)
    assert "circuit breaker open" in record.message

    from chalice.test import Client

    from app import app
    from chalicelib.wiring import store

    with Client(app, stage_name="test"):
        target = store().get_target("web-prod")
    assert target is not None and target.breaker_open_since is not None


def test_rollback_deployment_is_never_retried(aws: World) -> None:
    from chalice.test import Client

    from app import app
    from chalicelib import wiring
    from chalicelib.domain.spec import TargetSpec

    instances = aws.launch(1, TAGS)
    digest = aws.push_image("web", "v1")
    localaws.set_outcome(instances[0], InstanceOutcome(status="Failed", response_code=21))
    with Client(app, stage_name="test"):
        service = wiring.deployment_service()
        target_spec = TargetSpec.model_validate(spec())
        revision = service.resolve_revision(target_spec, aws.image_uri("web", "v1"))
        assert revision.digest == digest
        deployment = service.start(target_spec, revision, "rollback", "arn:aws:iam::123456789012:user/alice")
    deliver(command_event(str(deployment.attempts[0].command_id)))
    record = store_deployment(deployment.deployment_id)
    assert record.status.value == "FAILED" and "never retries a rollback" in record.message
    assert pending(aws.client("scheduler")) == []


# A retry and the target's lock (issue 12, defect 2) ---------------------------------------------------------------
def clock_moved(monkeypatch: pytest.MonkeyPatch, **delta: float) -> None:
    """berth's clock `delta` ahead of the real one from now on (AWS's own clock is not moved)."""
    from datetime import UTC, datetime, timedelta

    from chalicelib import wiring

    ahead = timedelta(**delta)
    monkeypatch.setattr(wiring, "utc_now", lambda: datetime.now(UTC) + ahead)


def target_state(name: str = "web-prod") -> Any:
    from chalice.test import Client

    from app import app
    from chalicelib.wiring import store

    with Client(app, stage_name="test"):
        return store().get_target(name), store().get_lock(name)


def all_commands(aws: World) -> list[dict[str, Any]]:
    return list(aws.client("ssm").list_commands()["Commands"])


def api_deploy(image: str) -> Any:
    from tests.api.support import call

    return call("POST", "/targets/web-prod/deployments", {"image": image})


def test_a_retry_gives_up_when_a_newer_deployment_took_the_target_since(aws: World,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The retry fires after its lock expired and another deployment shipped a newer digest: it must not send the
    old image again, nor record the old deployment as the target's revision."""
    from tests.api.support import settle

    instances = aws.launch(1, TAGS)
    localaws.set_outcome(instances[0], InstanceOutcome(status="Failed", response_code=21))
    old = start(aws, "superseded")
    deliver(command_event(str(store_deployment(old).attempts[0].command_id)))
    assert store_deployment(old).status.value == "RETRYING"

    clock_moved(monkeypatch, hours=3)               # past any retry delay and any lock berth took for it
    localaws.set_outcome(instances[0], InstanceOutcome())
    newer_digest = aws.push_image("web", "v2")
    newer = api_deploy(aws.image_uri("web", "v2"))
    assert newer.status == 202, newer
    assert settle(newer.body["deployment_id"])["status"] == "SUCCEEDED"

    assert len(fire(aws)) == 1
    record = store_deployment(old)
    assert record.status.value == "FAILED" and len(record.attempts) == 1, record.message
    assert "gave-up" in [d.action for d in record.history]
    assert newer.body["deployment_id"] in record.message
    assert len(all_commands(aws)) == 2
    target, lock = target_state()
    assert target.current_revision.digest == newer_digest and lock is None


def test_a_retry_firing_while_a_newer_deployment_runs_sends_nothing(aws: World,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    instances = aws.launch(1, TAGS)
    localaws.set_outcome(instances[0], InstanceOutcome(status="Failed", response_code=21))
    old = start(aws, "superseded-running")
    deliver(command_event(str(store_deployment(old).attempts[0].command_id)))

    clock_moved(monkeypatch, hours=3)
    localaws.set_outcome(instances[0], InstanceOutcome(polls_before_done=100))
    aws.push_image("web", "v2")
    newer = api_deploy(aws.image_uri("web", "v2"))
    assert newer.status == 202, newer

    fire(aws)
    record = store_deployment(old)
    assert record.status.value == "FAILED" and len(record.attempts) == 1, record.message
    assert newer.body["deployment_id"] in record.message
    assert len(all_commands(aws)) == 2
    _, lock = target_state()
    assert lock is not None and lock.deployment_id == newer.body["deployment_id"]


def test_a_scheduled_retry_keeps_the_target_until_it_fires(aws: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A retry may be scheduled up to the policy's cap ahead, longer than the lock's command timeout + slack: the
    lock is kept until the retry has fired, so nobody deploys on top of a deployment that is not over."""
    from chalicelib import wiring

    monkeypatch.setattr(wiring, "jitter", lambda low, high: high)
    instances = aws.launch(1, TAGS)
    localaws.set_outcome(instances[0], InstanceOutcome(status="Failed", response_code=21))
    old = start(aws, "long-backoff", retry={"max_attempts": 3, "base_seconds": 3600, "cap_seconds": 7200},
                rollout={"max_concurrency": "1", "max_errors": "0", "timeout_seconds": 600})
    deliver(command_event(str(store_deployment(old).attempts[0].command_id)))
    assert store_deployment(old).status.value == "RETRYING"
    _, lock = target_state()
    assert lock is not None and lock.deployment_id == old

    clock_moved(monkeypatch, minutes=50)     # the lock taken at the start (600 s + 900 s) lapsed; the retry is ahead
    aws.push_image("web", "v2")
    busy = api_deploy(aws.image_uri("web", "v2"))
    assert busy.status == 409 and old in busy.error["message"], busy
    assert len(all_commands(aws)) == 1
