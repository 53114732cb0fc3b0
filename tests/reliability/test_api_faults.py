"""Fault injection over a REST redeploy (issue 12, defect 6): whichever AWS call fails, and however (AWS refuses it,
answers 500, times out before it arrives, or carries it out and loses the answer), the caller is told the truth.

Until the deploy command may have reached SSM, a failure leaves nothing behind: an error answer, no lock, no record,
no command. From then on the deployment has started: 202 with its id, and it reaches its real outcome with one
command. SSM refusing SendCommand outright (a 4xx) proves nothing ran, so that too leaves nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

import localaws
from localaws import InstanceOutcome
from tests.api.support import call, deploy, push_image, register, store
from tests.conftest import World
from tests.reliability.faults import Clock, aws_calls

pytestmark = pytest.mark.filterwarnings("ignore:IAMAuthorizer is not a supported in local mode")
API_SERVICES = frozenset({"dynamodb", "ssm", "ec2", "ecr", "scheduler"})
# A redeploy: read the target, and its lock (a busy target answers 409 before anything else), resolve the image's
# digest and read its platforms (BatchGetImage), read the target again, take the lock and write the record (one
# transaction), resolve the instances (one DescribeTags per tag key: two), save the attempt, send the command, index it,
# save its id.
REDEPLOY_CALLS = 12
SEND = 9


def prepare(aws: World) -> str:
    register(aws)
    push_image(aws, "web", "v1")
    localaws.set_default_outcome(InstanceOutcome(polls_before_done=1))
    return aws.image_uri("web", "v1")


def settle(deployment_id: str, clock: Clock, rounds: int = 10) -> dict[str, Any]:
    """GET the deployment a minute apart until it is final."""
    for _ in range(rounds):
        clock.advance(60)
        body = call("GET", f"/deployments/{deployment_id}").body
        if body["final"]:
            return dict(body)
    raise AssertionError(f"deployment {deployment_id} did not finish: {body}")


def test_redeploy_call_count(aws: World) -> None:
    image = prepare(aws)
    with aws_calls(only=API_SERVICES) as log:
        assert deploy(image=image).status == 202
    assert len(log.calls) == REDEPLOY_CALLS, log.calls
    assert log.calls[SEND] == "ssm.SendCommand"


@pytest.mark.parametrize("index", range(REDEPLOY_CALLS))
@pytest.mark.parametrize("fault", ["Throttling", "InternalError", "Timeout", "LostAnswer"])
def test_a_redeploy_either_started_and_says_so_or_left_nothing(aws: World, clock: Clock, index: int,
                                                               fault: str) -> None:
    image = prepare(aws)
    with aws_calls(fail_at=index, fault=fault, only=API_SERVICES) as log:
        reply = deploy(image=image)
    failed_call = log.calls[index]
    commands = aws.client("ssm").list_commands()["Commands"]
    may_have_sent = index > SEND or (index == SEND and fault != "Throttling")

    if may_have_sent:
        assert reply.status == 202, (failed_call, fault, reply)
        final = settle(reply.body["deployment_id"], clock)
        assert final["status"] == "SUCCEEDED", (failed_call, fault, final)
        (command,) = aws.client("ssm").list_commands()["Commands"]
        assert final["attempts"][-1]["command_id"] == command["CommandId"]
    else:
        assert reply.status == 502, (failed_call, fault, reply)
        assert commands == [], (failed_call, fault)
        assert store(aws).get_lock("web") is None, (failed_call, fault)
        assert store(aws).list_deployments("web")[0] == [], (failed_call, fault)
    again = deploy(image=image)
    assert again.status == 202, (failed_call, fault, again)
