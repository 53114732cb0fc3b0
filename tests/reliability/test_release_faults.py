"""Fault injection over a pipeline job whose spec has a release task: for every AWS call the first invocation and the
continuation that sees the task pass make, a run where that call fails.

On top of test_pipeline_faults.py's rules (one result per invocation, a record a later invocation can go on from), the
release task runs at most once whatever fails (its SendCommand has no idempotency token: an unanswered send is looked
for by its comment), no swap is sent before it passed, and a job that succeeds ran it exactly once. A spec without a
release keeps test_pipeline_faults.py's call counts unchanged.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import localaws
from localaws import InstanceOutcome
from tests.conftest import World
from tests.events import pipeline_job_event
from tests.functional.support import TAGS, invoke, jid, results, spec
from tests.reliability.faults import Clock, aws_calls
from tests.reliability.test_pipeline_faults import (
    BERTH_SERVICES,
    FIRST_INVOCATION_CALLS,
    continuation,
    follow_to_the_end,
    invoke_with_fault,
)

# The first invocation of test_pipeline_faults.py, with the release task in place of the swap: after the instances
# are resolved, the target's newest deployments are read (Query: did the task already pass for this digest?) and SSM's
# managed instances (DescribeInstanceInformation: the first Online one runs it); then the task is claimed, sent,
# indexed and its command saved, as an attempt would be.
RELEASE_FIRST_INVOCATION_CALLS = FIRST_INVOCATION_CALLS + 2
# The continuation that sees the task pass: read the record, the task's invocation (GetCommandInvocation), save it
# passed; then the first attempt as a first invocation sends it: hold the target, resolve the instances (two tag keys),
# save the attempt, send, index, save; report.
RELEASE_PASSED_CALLS = 11
FAULTS = ["Throttling", "InternalError", "Timeout", "LostAnswer"]


def prepare(aws: World) -> dict[str, Any]:
    aws.launch(2, TAGS)
    aws.push_image("web", "v1")
    localaws.set_default_outcome(InstanceOutcome(polls_before_done=1))
    localaws.set_one_off_run("migrated\n", 0)
    bucket, key = aws.put_artifact({"image.txt": aws.image_uri("web", "v1")})
    params = spec(release={"command": ["bin/rails", "db:migrate"], "timeout_seconds": 300})
    return pipeline_job_event(job_id=jid("release-faults"), user_parameters=json.dumps(params), bucket=bucket,
                              key=key)


def sent(aws: World) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(release commands, swap commands) SSM holds."""
    commands = aws.client("ssm").list_commands()["Commands"]
    releases = [c for c in commands if c["Comment"].split(" ")[2:3] == ["release"]]
    return releases, [c for c in commands if c not in releases]


def test_first_invocation_call_count(aws: World) -> None:
    event = prepare(aws)
    with aws_calls(only=BERTH_SERVICES) as log:
        invoke(event)
    assert len(log.calls) == RELEASE_FIRST_INVOCATION_CALLS, log.calls
    assert log.calls.count("ssm.SendCommand") == 1 and "ssm.DescribeInstanceInformation" in log.calls
    assert log.calls[-1] == "codepipeline.PutJobSuccessResult"
    releases, swaps = sent(aws)
    assert len(releases) == 1 and swaps == []


def test_the_continuation_that_sees_the_task_pass_sends_the_swap(aws: World) -> None:
    event = prepare(aws)
    invoke(event)
    polled = continuation(event, results(event["CodePipeline.job"]["id"])[0], "release-passed")
    with aws_calls(only=BERTH_SERVICES) as log:
        invoke(polled)
    assert len(log.calls) == RELEASE_PASSED_CALLS, log.calls
    assert log.calls[1] == "ssm.GetCommandInvocation" and log.calls.count("ssm.SendCommand") == 1
    releases, swaps = sent(aws)
    assert len(releases) == 1 and len(swaps) == 1


def check_outcome(aws: World, failed_call: str, outcome: dict[str, Any]) -> None:
    releases, swaps = sent(aws)
    assert len(releases) <= 1, (failed_call, "the release task was sent twice")
    runs = [argv for _, argv in localaws.docker_calls() if argv[0] == "start_container.sh"]
    if outcome["type"] == "failure":
        message = outcome["failureDetails"]["message"]
        assert len(message) > 20 and swaps == [], (failed_call, message)
        assert len(runs) == len(releases), (failed_call, "a task that ran failed the job although it passed")
    else:
        assert len(releases) == 1 and len(runs) == 1 and len(swaps) == 1, failed_call


@pytest.mark.parametrize("index", range(RELEASE_FIRST_INVOCATION_CALLS))
@pytest.mark.parametrize("fault", FAULTS)
def test_each_first_invocation_call_failing_never_runs_the_task_twice(aws: World, clock: Clock, index: int,
                                                                      fault: str) -> None:
    event = prepare(aws)
    failed_call = invoke_with_fault(event, index, fault)
    replies = results(event["CodePipeline.job"]["id"])
    assert len(replies) == 1, (failed_call, replies)
    check_outcome(aws, failed_call, follow_to_the_end(event, clock))


@pytest.mark.parametrize("index", range(RELEASE_PASSED_CALLS))
@pytest.mark.parametrize("fault", FAULTS)
def test_each_call_failing_as_the_task_passes_still_ends_in_the_deployment_done(aws: World, clock: Clock, index: int,
                                                                                 fault: str) -> None:
    event = prepare(aws)
    invoke(event)
    polled = continuation(event, results(event["CodePipeline.job"]["id"])[0], f"release-passed-{index}")
    failed_call = invoke_with_fault(polled, index, fault)
    replies = results(polled["CodePipeline.job"]["id"])
    assert len(replies) == 1, (failed_call, replies)
    outcome = follow_to_the_end(event, clock, replies[0])
    if failed_call == "ssm.SendCommand" and fault == "Throttling":
        # SSM refused the swap's command, as it may a first invocation's without a release task: nothing was swapped,
        # the job fails saying so, and the task is not run again by it.
        assert outcome["type"] == "failure" and "nothing ran" in outcome["failureDetails"]["message"], outcome
    else:
        assert outcome["type"] == "success", (failed_call, outcome)
    check_outcome(aws, failed_call, outcome)
