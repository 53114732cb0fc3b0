"""A rollout in waves started through the REST API advances on its own, on the embedded AWS: no pipeline job refreshes
it, SSM's command events end its waves, and EventBridge Scheduler one-time schedules (services/looks.py) end its bakes.
Scheduler is driven as in test_retries: tools/local_scheduler fires every pending schedule into retry_deployment."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.domain.deployment import Deployment
from tests.api.support import call, deploy, push_image, register, settle
from tests.conftest import World
from tests.events import load_event
from tests.functional.support import deliver, invoke
from tests.functional.test_rollout_waves import ALARM, fire, put_alarms, sent
from tests.reliability.faults import Clock, aws_calls
from tools.local_scheduler import fire_all, pending

pytestmark = pytest.mark.filterwarnings("ignore:IAMAuthorizer is not a supported in local mode")
CANARY = {"max_concurrency": "25%", "max_errors": "0", "canary": {"instances": 1, "bake_seconds": 180},
          "bake_seconds": 60}


def record(deployment_id: str) -> Deployment:
    from chalice.test import Client

    from app import app
    from chalicelib.wiring import store

    with Client(app, stage_name="test"):
        return store().get_deployment(deployment_id)  # type: ignore[no-any-return]


def command_over(deployment_id: str) -> None:
    """SSM's event for the last attempt's command, as EventBridge delivers it once the command is over."""
    event = load_event("ssm_command_failed")
    event["detail"]["command-id"] = record(deployment_id).attempts[-1].command_id
    event["detail"]["status"] = "Success"
    deliver(event)


def looks(aws: World) -> list[dict[str, Any]]:
    return [payload for _, payload in pending(aws.client("scheduler"))]


def fire_looks(aws: World) -> list[Any]:
    answers: list[Any] = []
    fire_all(aws.client("scheduler"), lambda payload: answers.append(invoke(payload, "retry_deployment")))
    return answers


@pytest.fixture
def fleet(aws: World, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], Clock]:
    """Four instances running v1 (a plain REST deployment), then the target's rollout turned into a canary."""
    instances = register(aws, instances=4)
    push_image(aws, "web", "v1")
    push_image(aws, "web", "v2")
    put_alarms(aws, ALARM)
    assert settle(deploy(image=aws.image_uri("web", "v1")).body["deployment_id"])["status"] == "SUCCEEDED"
    clock = Clock(monkeypatch)
    return instances, clock


def canary(aws: World, **rollout: Any) -> str:
    register(aws, instances=0, rollout={**CANARY, **rollout})
    started = deploy(image=aws.image_uri("web", "v2"))
    assert started.status == 202, started.body
    return str(started.body["deployment_id"])


def test_a_rest_canary_finishes_on_its_own_through_scheduled_looks(
        aws: World, fleet: tuple[list[str], Clock]) -> None:
    instances, clock = fleet
    deployment_id = canary(aws)
    assert looks(aws) == []                      # the canary wave is out: SSM's event comes, no look is needed

    command_over(deployment_id)                  # the canary passed: it bakes, and one look waits for its end
    baking = record(deployment_id)
    assert baking.rollout is not None and baking.rollout.phase.value == "BAKING"
    assert baking.rollout.baking_since is not None
    end = int(baking.rollout.baking_since.timestamp()) + 180
    assert looks(aws) == [{"kind": "look", "deployment_id": deployment_id, "wave": 1, "phase": "BAKING", "at": end}]
    (schedule,) = aws.client("scheduler").list_schedules()["Schedules"]
    detail = aws.client("scheduler").get_schedule(Name=schedule["Name"])
    assert detail["ActionAfterCompletion"] == "DELETE" and detail["ScheduleExpression"].startswith("at(")
    assert schedule["Name"].startswith("berth-retry-look-")           # inside the IAM policy's schedule/berth-retry-*

    clock.advance(180)
    assert fire_looks(aws) == [{"action": "looked", "detail": f"deployment {deployment_id} is IN_PROGRESS, "
                                                              "wave 2 of 2"}]
    assert [c["InstanceIds"] for c in sent(aws)[1:]] == [sorted(instances)[:1], sorted(instances)[1:]]
    assert looks(aws) == []

    command_over(deployment_id)                  # the last wave passed: the final bake's look
    assert [payload["phase"] for payload in looks(aws)] == ["BAKING"]
    clock.advance(60)
    fire_looks(aws)

    done = record(deployment_id)
    assert done.status.value == "SUCCEEDED", done.message
    assert [d.action for d in done.history].count("wave-passed") == 2
    assert looks(aws) == [] and call("GET", "/targets/web").body["lock"] is None


def test_an_alarm_during_a_rest_bake_halts_it_through_a_look(aws: World, fleet: tuple[list[str], Clock]) -> None:
    instances, clock = fleet
    deployment_id = canary(aws, alarms=[ALARM], canary={"instances": 1, "bake_seconds": 600})
    command_over(deployment_id)
    # With alarms, a bake is looked at every minute, not only at its end.
    (first,) = looks(aws)
    assert first["at"] % 60 == 0 and first["at"] < int(record(deployment_id).updated_at.timestamp()) + 61

    clock.advance(60)
    fire_looks(aws)                              # no alarm: still baking, the next minute's look is scheduled
    (second,) = looks(aws)
    assert second["at"] == first["at"] + 60

    fire(aws)
    clock.advance(60)
    fire_looks(aws)                              # the alarm is seen: halted, the rollback goes out to the canary

    halted = record(deployment_id)
    assert halted.rollout is not None and halted.rollout.phase.value == "ROLLING_BACK"
    assert f"alarm '{ALARM}' is in ALARM" in (halted.rollout.stop_reason or "")
    assert sent(aws)[-1]["InstanceIds"] == sorted(instances)[:1]
    assert looks(aws) == []                      # the rollback's command is out: SSM's event ends it
    command_over(deployment_id)
    assert record(deployment_id).status.value == "ROLLED_BACK"


def test_a_duplicate_or_late_look_does_nothing(aws: World, fleet: tuple[list[str], Clock]) -> None:
    _, clock = fleet
    deployment_id = canary(aws)
    command_over(deployment_id)
    # Refreshes during the bake (GETs, a duplicate event) ask for the same look: still one schedule.
    call("GET", f"/deployments/{deployment_id}")
    command_over(deployment_id)
    (look,) = looks(aws)

    clock.advance(180)
    fire_looks(aws)
    after = record(deployment_id)
    assert after.rollout is not None and after.rollout.wave == 2
    commands = len(sent(aws))

    # The same look delivered again (Scheduler and Lambda deliver at least once) finds wave 2 out: nothing is sent.
    assert invoke(look, "retry_deployment") == {"action": "ignored", "detail": (
        f"deployment {deployment_id} is IN_PROGRESS, wave 2 of 2: the look for wave 1 BAKING is not due")}
    assert invoke({**look, "deployment_id": "d-gone"}, "retry_deployment")["action"] == "ignored"
    assert len(sent(aws)) == commands and record(deployment_id).version == after.version


@pytest.mark.parametrize("fault", ["InternalError", "Throttling", "Timeout", "LostAnswer"])
def test_a_failing_create_schedule_does_not_fail_the_refresh(
        aws: World, fleet: tuple[list[str], Clock], fault: str) -> None:
    _, clock = fleet
    deployment_id = canary(aws)

    with aws_calls(fail_at=0, fault=fault, only=frozenset({"scheduler"})) as log:
        command_over(deployment_id)              # the event is handled: the wave passed and its bake began
    assert log.calls[0] == "scheduler.CreateSchedule"
    baking = record(deployment_id)
    assert baking.rollout is not None and baking.rollout.phase.value == "BAKING"
    # A lost answer left the schedule in AWS: the look fires all the same. Otherwise there is none.
    assert len(looks(aws)) == (1 if fault == "LostAnswer" else 0)

    # A refresh during the bake (a GET) schedules the look it could not before, or finds it scheduled already.
    call("GET", f"/deployments/{deployment_id}")
    assert [payload["phase"] for payload in looks(aws)] == ["BAKING"]
    clock.advance(180)
    fire_looks(aws)
    assert record(deployment_id).rollout.wave == 2  # type: ignore[union-attr]
