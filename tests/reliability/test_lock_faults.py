"""A target's lock when time passes (issue 12, defect 2): an expired lock, in every state its deployment can be in,
and a retry firing after the target moved on, whatever the newer deployment did.

The rule under test: never two commands on one target at once, and no deployment acts on a target it no longer
holds. Each scenario counts the commands SSM holds and which of them could still be running.
"""

from __future__ import annotations

from typing import Any

import pytest
from chalice.test import Client

import localaws
from app import app
from chalicelib.wiring import store
from localaws import InstanceOutcome
from tests.api.support import call, deploy, push_image, register
from tests.conftest import World
from tests.events import load_event
from tests.functional.support import deliver, invoke
from tests.reliability.faults import Clock, aws_calls
from tools.local_scheduler import fire_all

pytestmark = pytest.mark.filterwarnings("ignore:IAMAuthorizer is not a supported in local mode")
HOURS = 3600


def commands(aws: World) -> list[dict[str, Any]]:
    return list(aws.client("ssm").list_commands()["Commands"])


def record(deployment_id: str) -> Any:
    with Client(app, stage_name="test"):
        return store().get_deployment(deployment_id)


def fail_attempt(aws: World, deployment_id: str) -> None:
    """SSM's event for the deployment's command, saying it failed (the instance's pull failed: transient)."""
    event = load_event("ssm_command_failed")
    event["detail"]["command-id"] = record(deployment_id).attempts[-1].command_id
    deliver(event)


def fire(aws: World) -> list[str]:
    return fire_all(aws.client("scheduler"), lambda payload: invoke(payload, "retry_deployment"))


@pytest.fixture
def target(aws: World) -> str:
    register(aws, instances=1)
    push_image(aws, "web", "v1")
    push_image(aws, "web", "v2")
    return aws.image_uri("web", "v1")


# An expired lock -----------------------------------------------------------------------------------------------
def holder_running(aws: World, clock: Clock, image: str) -> str:
    localaws.set_default_outcome(InstanceOutcome(polls_before_done=1000))
    return str(deploy(image=image).body["deployment_id"])


def holder_over_unpolled(aws: World, clock: Clock, image: str) -> str:
    localaws.set_default_outcome(InstanceOutcome())
    return str(deploy(image=image).body["deployment_id"])


def holder_retrying(aws: World, clock: Clock, image: str) -> str:
    localaws.set_default_outcome(InstanceOutcome(status="Failed", response_code=21))
    holder = str(deploy(image=image).body["deployment_id"])
    fail_attempt(aws, holder)
    assert record(holder).status.value == "RETRYING"
    return holder


def holder_never_sent(aws: World, clock: Clock, image: str) -> str:
    """SendCommand timed out before it reached SSM: an unanswered send that left no command."""
    localaws.set_default_outcome(InstanceOutcome(polls_before_done=1000))
    with aws_calls(fail_at=0, fault="Timeout", only=frozenset({"ssm"})):
        holder = str(deploy(image=image).body["deployment_id"])
    assert record(holder).attempts[-1].command_id is None and commands(aws) == []
    return holder


def holder_sent_unrecorded(aws: World, clock: Clock, image: str) -> str:
    """The command went out, but neither its index nor the record's save did: only its comment says whose it is."""
    localaws.set_default_outcome(InstanceOutcome(polls_before_done=1000))
    with aws_calls(fail_at=5, fault="Throttling", only=frozenset({"dynamodb"})) as log:
        holder = str(deploy(image=image).body["deployment_id"])
    assert log.params[5]["Item"]["sk"]["S"] == "INDEX"
    assert record(holder).attempts[-1].command_id is None and len(commands(aws)) == 1
    return holder


# (how the holder got where it is, whether a second deployment may take the target 3 hours later)
EXPIRED = {
    "command still running": (holder_running, False),
    "command running, its id never recorded": (holder_sent_unrecorded, False),
    "command over, nobody looked": (holder_over_unpolled, True),
    "retry long overdue": (holder_retrying, True),
    "send never reached SSM": (holder_never_sent, True),
}


@pytest.mark.parametrize("state", EXPIRED)
def test_an_expired_lock_is_taken_over_only_when_nothing_of_its_deployment_runs(aws: World, clock: Clock,
                                                                                target: str, state: str) -> None:
    make_holder, free = EXPIRED[state]
    holder = make_holder(aws, clock, target)
    before = {c["CommandId"] for c in commands(aws)}

    clock.advance(3 * HOURS)
    localaws.set_default_outcome(InstanceOutcome())
    second = deploy(image=target.replace(":v1", ":v2"))

    if not free:
        assert second.status == 409 and holder in second.error["message"], (state, second)
        assert {c["CommandId"] for c in commands(aws)} == before
        lock = call("GET", "/targets/web").body["lock"]
        assert lock is not None and lock["deployment_id"] == holder
        return
    assert second.status == 202, (state, second)
    newer = second.body["deployment_id"]
    # Whatever the old deployment does next (its refresh, its retry firing), it sends nothing more.
    clock.advance(60)
    call("GET", f"/deployments/{holder}")
    fire(aws)
    call("GET", f"/deployments/{holder}")
    assert len(commands(aws)) == len(before) + 1, state
    assert len(record(holder).attempts) <= 1
    if record(holder).status.value == "FAILED" and "moved on" in record(holder).message:
        assert newer in record(holder).message


# A retry whose target moved on ---------------------------------------------------------------------------------
NEWER_OUTCOMES = {
    "running": InstanceOutcome(polls_before_done=1000),
    "succeeded": InstanceOutcome(),
    "failed": InstanceOutcome(status="Failed", response_code=40, stdout="berth-step: health\n"),
}


@pytest.mark.parametrize("newer_outcome", [*NEWER_OUTCOMES, "cancelled"])
def test_a_retry_never_acts_after_a_newer_deployment_started(aws: World, clock: Clock, target: str,
                                                             newer_outcome: str) -> None:
    old = holder_retrying(aws, clock, target)
    clock.advance(3 * HOURS)
    localaws.set_default_outcome(NEWER_OUTCOMES.get(newer_outcome, InstanceOutcome(polls_before_done=1000)))
    newer = deploy(image=target.replace(":v1", ":v2"))
    assert newer.status == 202, newer
    newer_id = newer.body["deployment_id"]
    if newer_outcome == "cancelled":
        assert call("POST", f"/deployments/{newer_id}/cancel").status == 200
    else:
        for _ in range(3):
            call("GET", f"/deployments/{newer_id}")

    localaws.set_default_outcome(InstanceOutcome())
    assert len(fire(aws)) == 1
    retried = record(old)
    assert retried.status.value == "FAILED" and len(retried.attempts) == 1, retried.message
    assert newer_id in retried.message and retried.history[-2].action == "gave-up"
    assert len(commands(aws)) == 2
    lock = store_lock()
    if newer_outcome == "running":
        assert lock is not None and lock.deployment_id == newer_id
    else:
        assert lock is None


def store_lock() -> Any:
    with Client(app, stage_name="test"):
        return store().get_lock("web")


def test_a_retry_whose_lock_lapsed_with_nobody_deploying_since_still_runs(aws: World, clock: Clock,
                                                                          target: str) -> None:
    old = holder_retrying(aws, clock, target)
    clock.advance(3 * HOURS)              # the lock lapsed (the schedule was late), but nobody took the target
    localaws.set_default_outcome(InstanceOutcome())
    assert len(fire(aws)) == 1
    retried = record(old)
    assert retried.status.value == "IN_PROGRESS" and len(retried.attempts) == 2
    lock = store_lock()
    assert lock is not None and lock.deployment_id == old
    assert call("GET", f"/deployments/{old}").body["status"] == "SUCCEEDED"
