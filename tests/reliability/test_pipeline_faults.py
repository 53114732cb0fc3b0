"""Fault injection over the pipeline job: for every AWS call the handler makes, a run where that call fails.

Every run ends with exactly one result for the job (a failed report makes the Lambda raise, and Lambda's retry of
the same event then reports once), and the record is never left where a later invocation cannot go on: a
continuation leads to the deployment's real outcome, a failure says what happened and frees the target.
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
from tests.reliability.faults import Clock, aws_calls

BERTH_SERVICES = frozenset({"dynamodb", "ssm", "ec2", "ecr", "codepipeline", "s3", "scheduler", "events"})
# First invocation: find the job claim, read the artifact, resolve the image and read its platforms (BatchGetImage),
# read the target's freeze, register the spec, read the target, take the lock and write the record and the claim (one
# transaction), resolve the instances (one DescribeTags per tag key: two here), save the attempt, send the command,
# index it, save it, publish Deployment Started (a failure there fails nothing), report.
FIRST_INVOCATION_CALLS = 16
# AWS refusing a call, failing it with a 500, a timeout before it arrives, and a call AWS carried out whose answer was
# lost on the way back.
FAULTS = ["Throttling", "InternalError", "AccessDenied", "Timeout", "LostAnswer"]


def prepare(aws: World) -> dict[str, Any]:
    aws.launch(2, TAGS)
    aws.push_image("web", "v1")
    localaws.set_default_outcome(InstanceOutcome(polls_before_done=1))
    bucket, key = aws.put_artifact({"image.txt": aws.image_uri("web", "v1")})
    return pipeline_job_event(job_id=jid("pipeline-faults"), user_parameters=json.dumps(spec()), bucket=bucket,
                              key=key)


def invoke_with_fault(event: dict[str, Any], index: int, fault: str) -> str:
    """Invoke the job with AWS call `index` failing; returns that call. Only a failed report may escape the handler:
    Lambda then retries the same event, which must report once."""
    with aws_calls(fail_at=index, fault=fault, only=BERTH_SERVICES) as log:
        try:
            invoke(event)
            raised = False
        except Exception:
            raised = True
    failed_call = log.calls[index]
    if raised:
        assert failed_call.startswith("codepipeline.PutJob"), failed_call
        if fault != "LostAnswer":       # a lost answer's result was taken: the next report is InvalidJobState
            assert results(event["CodePipeline.job"]["id"]) == []
        invoke(event)
    return failed_call


def follow_to_the_end(event: dict[str, Any], clock: Clock, reply: dict[str, Any] | None = None) -> dict[str, Any]:
    """Continuations from `reply` (by default the first invocation's), a minute apart as CodePipeline makes them,
    until the job succeeds or fails."""
    reply = reply or results(event["CodePipeline.job"]["id"])[-1]
    for round_number in range(20):
        if reply["type"] == "failure" or "continuationToken" not in reply:
            return reply
        clock.advance(60)
        job_id = jid(f"{event['CodePipeline.job']['id']}-{round_number}")
        invoke(pipeline_job_event("codepipeline_job_continuation", job_id=job_id, token=reply["continuationToken"],
                                  user_parameters=event["CodePipeline.job"]["data"]["actionConfiguration"][
                                      "configuration"]["UserParameters"], no_artifacts=True))
        assert len(results(job_id)) == 1
        reply = results(job_id)[0]
    raise AssertionError("no outcome after 20 continuations")


def test_first_invocation_call_count(aws: World) -> None:
    event = prepare(aws)
    with aws_calls(only=BERTH_SERVICES) as log:
        invoke(event)
    assert len(log.calls) == FIRST_INVOCATION_CALLS, log.calls
    assert log.calls[-1] == "codepipeline.PutJobSuccessResult"


@pytest.mark.parametrize("index", range(FIRST_INVOCATION_CALLS))
@pytest.mark.parametrize("fault", FAULTS)
def test_each_call_failing_still_ends_in_one_result_and_a_usable_record(aws: World, clock: Clock, index: int,
                                                                        fault: str) -> None:
    event = prepare(aws)
    failed_call = invoke_with_fault(event, index, fault)
    replies = results(event["CodePipeline.job"]["id"])
    assert len(replies) == 1, (failed_call, replies)

    outcome = follow_to_the_end(event, clock)
    commands = aws.client("ssm").list_commands()["Commands"]
    if outcome["type"] == "failure":
        message = outcome["failureDetails"]["message"]
        assert len(message) > 20 and ("failed" in message or "cannot" in message), (failed_call, message)
        assert len(commands) <= 1
        lock_free_check(aws, failed_call)
    else:
        assert outcome["outputVariables"]["deployment_id"]
        assert len(commands) == 1, failed_call


def lock_free_check(aws: World, failed_call: str) -> None:
    """After a failure, the target takes a new deployment: nothing is left holding it."""
    localaws.set_default_outcome(InstanceOutcome())
    again = pipeline_job_event(job_id=jid("pipeline-faults-again"), no_artifacts=True,
                               user_parameters=json.dumps(spec(image=aws.image_uri("web", "v1"))))
    invoke(again)
    reply = results(jid("pipeline-faults-again"))[0]
    assert reply["type"] == "success" and "waiting" not in reply["executionDetails"]["summary"], (failed_call, reply)


# Continuations. A running poll: read the record, the command's counts (ListCommands), save the record, report. The
# final invocation of a clean success: the same up to the counts, then the target read (its instance map, to take the
# deployment's end into it) and settled (its current revision, instance map and lock, one transaction), the record
# finished, its end published (Deployment Succeeded), report. With a tagged instance stopped, SSM targets one instance
# less than berth expected, so the final invocation also reads the results (one page) and asks EC2 about the instance
# that never ran the command. The spec's 25% of 2 targets sends one at a time: two polls see the command running.
RUNNING_POLL_CALLS = 4
CLEAN_FINAL_CALLS = 7
READ_FINAL_CALLS = 9
PHASES = {"running poll": (1, RUNNING_POLL_CALLS), "clean final": (3, CLEAN_FINAL_CALLS),
          "final read": (3, READ_FINAL_CALLS)}


def continuation(event: dict[str, Any], reply: dict[str, Any], name: str) -> dict[str, Any]:
    return pipeline_job_event("codepipeline_job_continuation", job_id=jid(name), token=reply["continuationToken"],
                              user_parameters=event["CodePipeline.job"]["data"]["actionConfiguration"][
                                  "configuration"]["UserParameters"], no_artifacts=True)


def to_phase(aws: World, phase: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The first invocation and any continuations before `phase`, without faults; returns (first event, last reply)."""
    event = prepare(aws)
    if phase == "final read":
        (stopped,) = aws.launch(1, TAGS)
        aws.client("ec2").stop_instances(InstanceIds=[stopped])
    invoke(event)
    reply = results(event["CodePipeline.job"]["id"])[0]
    for number in range(PHASES[phase][0] - 1):
        before = continuation(event, reply, f"before-{number}")
        invoke(before)
        reply = results(before["CodePipeline.job"]["id"])[0]
    return event, reply


@pytest.mark.parametrize("phase", PHASES)
def test_continuation_call_counts(aws: World, phase: str) -> None:
    event, reply = to_phase(aws, phase)
    polled = continuation(event, reply, f"counted-{phase}")
    with aws_calls(only=BERTH_SERVICES) as log:
        invoke(polled)
    assert len(log.calls) == PHASES[phase][1], log.calls
    assert ("ssm.ListCommandInvocations" in log.calls) == (phase == "final read")
    assert log.calls[-1] == "codepipeline.PutJobSuccessResult"


@pytest.mark.parametrize("phase, index", [(phase, index) for phase, (_, calls) in PHASES.items()
                                          for index in range(calls)])
@pytest.mark.parametrize("fault", ["Throttling", "InternalError", "Timeout", "LostAnswer"])
def test_each_continuation_call_failing_still_ends_in_one_result_and_the_deployment_done(
        aws: World, clock: Clock, phase: str, index: int, fault: str) -> None:
    """A fault while following a deployment never fails it and never loses a step of finishing it: the job still
    succeeds, the target records the revision, and its lock is free."""
    event, reply = to_phase(aws, phase)
    polled = continuation(event, reply, f"faulted-{phase}-{index}")
    failed_call = invoke_with_fault(polled, index, fault)
    replies = results(polled["CodePipeline.job"]["id"])
    assert len(replies) == 1, (failed_call, replies)

    outcome = follow_to_the_end(event, clock, replies[0])
    assert outcome["type"] == "success", (failed_call, outcome)
    assert len(aws.client("ssm").list_commands()["Commands"]) == 1, failed_call
    with Client(app, stage_name="test"):
        target = store().get_target("web-prod")
        record = store().get_deployment(outcome["outputVariables"]["deployment_id"])
    assert record.status.value == "SUCCEEDED", failed_call
    assert target is not None and target.current_revision == record.revision, failed_call
    lock_free_check(aws, failed_call)
