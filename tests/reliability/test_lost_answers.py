"""Lost answers: the call reaches AWS, AWS carries it out, and the answer never comes back (issue 12, defect 3).

SendCommand and CreateDeployment have no idempotency token, so a client that sends them again after a lost answer
runs them twice. berth's clients for them make one attempt; an unanswered send leaves the attempt unsent until the
command is found by its comment, or proven absent and sent again by a later invocation.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from chalice.test import Client

import localaws
from app import app
from chalicelib.wiring import store
from localaws import InstanceOutcome
from tests.conftest import World
from tests.events import pipeline_job_event
from tests.functional.support import TAGS, invoke, jid, results, spec
from tests.reliability.faults import Clock, aws_calls, lost_answers
from tests.reliability.test_pipeline_faults import follow_to_the_end


def job(aws: World, name: str) -> dict[str, Any]:
    aws.launch(2, TAGS)
    aws.push_image("web", "v1")
    localaws.set_default_outcome(InstanceOutcome(polls_before_done=1))
    return pipeline_job_event(job_id=jid(name), no_artifacts=True,
                              user_parameters=json.dumps(spec(image=aws.image_uri("web", "v1"))))


def commands(aws: World) -> list[dict[str, Any]]:
    return list(aws.client("ssm").list_commands()["Commands"])


def deployment(deployment_id: str) -> Any:
    with Client(app, stage_name="test"):
        return store().get_deployment(deployment_id)


@pytest.mark.parametrize("times", [1, 4])
@pytest.mark.parametrize("closed", [False, True], ids=["read-timeout", "connection-closed"])
def test_lost_sendcommand_answers_leave_one_command_and_the_deployment_succeeds(aws: World, clock: Clock,
                                                                                times: int, closed: bool) -> None:
    event = job(aws, f"lost-send-{times}-{closed}")
    with lost_answers("SendCommand", times=times, closed=closed) as lost:
        invoke(event)
    assert lost.reached == 1, "SendCommand has no idempotency token: berth must never send it again by itself"
    (command,) = commands(aws)

    outcome = follow_to_the_end(event, clock)
    assert outcome["type"] == "success" and "continuationToken" not in outcome, outcome
    record = deployment(outcome["outputVariables"]["deployment_id"])
    assert record.status.value == "SUCCEEDED" and len(record.attempts) == 1
    assert record.attempts[0].command_id == command["CommandId"]
    assert len(commands(aws)) == 1


def test_a_lost_answer_above_the_sdk_is_found_by_the_commands_comment(aws: World, clock: Clock) -> None:
    """What berth sees once botocore gives up: a read timeout, though SSM took the command."""
    event = job(aws, "lost-send-above")
    with aws_calls(fail_at=0, fault="LostAnswer", only=frozenset({"ssm"})) as log:   # the first SSM call
        invoke(event)
    assert log.calls[0] == "ssm.SendCommand"
    (command,) = commands(aws)
    reply = results(event["CodePipeline.job"]["id"])[0]
    assert reply["type"] == "success" and "continuationToken" in reply, reply

    outcome = follow_to_the_end(event, clock)
    assert outcome["type"] == "success" and "continuationToken" not in outcome, outcome
    assert deployment(outcome["outputVariables"]["deployment_id"]).attempts[0].command_id == command["CommandId"]
    assert len(commands(aws)) == 1


def test_an_unanswered_send_that_never_reached_ssm_is_sent_again_later(aws: World, clock: Clock) -> None:
    """A timeout before the request reached SSM: no command by that comment, so once it is old enough to be sure,
    a later continuation sends it (once)."""
    event = job(aws, "never-reached")
    with aws_calls(fail_at=0, fault="Timeout", only=frozenset({"ssm"})) as log:
        invoke(event)
    assert log.calls[0] == "ssm.SendCommand" and commands(aws) == []
    reply = results(event["CodePipeline.job"]["id"])[0]
    assert reply["type"] == "success" and "continuationToken" in reply, reply

    outcome = follow_to_the_end(event, clock)
    assert outcome["type"] == "success", outcome
    (command,) = commands(aws)
    record = deployment(outcome["outputVariables"]["deployment_id"])
    assert record.attempts[0].command_id == command["CommandId"] and len(record.attempts) == 1


def test_a_lost_sendcommand_answer_over_the_rest_api_answers_202_and_ends_right(aws: World, clock: Clock) -> None:
    from tests.api.support import call, deploy, push_image, register, settle

    register(aws)
    push_image(aws, "web", "v1")
    localaws.set_default_outcome(InstanceOutcome(polls_before_done=1))
    with lost_answers("SendCommand", times=4) as lost:
        reply = deploy(image=aws.image_uri("web", "v1"))
    assert lost.reached == 1 and len(commands(aws)) == 1
    assert reply.status == 202 and reply.body["status"] == "IN_PROGRESS", reply
    assert settle(reply.body["deployment_id"])["status"] == "SUCCEEDED"
    assert len(commands(aws)) == 1
    assert call("GET", "/targets/web").body["current_revision"]["digest"]


def test_a_lost_createdeployment_answer_creates_one_retry_deployment(aws: World) -> None:
    from tests.functional.support import deliver
    from tests.functional.test_codedeploy_events import APP, DOCKER_MISSING, GROUP, create, fire, group, state_event

    instances = aws.launch(1, {"app": "web"})
    group(aws, {"app": "web"})
    failed = create(aws)
    transient = {**DOCKER_MISSING, "log_tail": "Error response from daemon: net/http: TLS handshake timeout"}
    localaws.set_deployment_outcome(failed, "Failed", instances={instances[0]: transient})
    deliver(state_event(failed, "FAILURE"))

    with lost_answers("CreateDeployment", times=4) as lost:
        try:
            fire(aws)
        except Exception:
            pass                      # the retry Lambda may fail; Scheduler's own retry then finds it was done
    assert lost.reached == 1
    deployments = aws.client("codedeploy").list_deployments(applicationName=APP, deploymentGroupName=GROUP)
    assert len(deployments["deployments"]) == 2


def test_which_failures_count_as_unanswered() -> None:
    """A refusal proves nothing ran; a network failure or a 5xx after the request may have reached AWS does not."""
    from botocore.exceptions import (
        ClientError,
        ConnectionClosedError,
        EndpointConnectionError,
        ParamValidationError,
        ReadTimeoutError,
    )

    from chalicelib.adapters.errors import unanswered

    def client_error(code: str, status: int) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
                           "SendCommand")

    assert unanswered("SSM SendCommand", ReadTimeoutError(endpoint_url="https://ssm")) is not None
    assert unanswered("SSM SendCommand", ConnectionClosedError(endpoint_url="https://ssm")) is not None
    assert unanswered("SSM SendCommand", EndpointConnectionError(endpoint_url="https://ssm")) is not None
    assert unanswered("SSM SendCommand", client_error("InternalServerError", 500)) is not None
    assert unanswered("SSM SendCommand", client_error("ThrottlingException", 400)) is None
    assert unanswered("SSM SendCommand", client_error("InvalidInstanceId", 400)) is None
    assert unanswered("SSM SendCommand", ParamValidationError(report="bad")) is None
