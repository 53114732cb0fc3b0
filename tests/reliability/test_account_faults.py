"""Fault injection over a target in another account: STS AssumeRole and every call made with the role's credentials
(EC2, SSM in the member account) fail in turn, as do berth's own calls around them.

Whatever fails, the job gets exactly one result per invocation and ends in the deployment's real outcome: a
refused AssumeRole fails it naming the role and its account (never the external id), a throttled or lost one is
looked at again, and no member account ever gets two commands. A target without a location makes no STS call, so
the counts of tests/reliability/test_pipeline_faults.py hold for it unchanged.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

import localaws
from localaws import InstanceOutcome
from tests.conftest import World
from tests.events import pipeline_job_event
from tests.functional.support import TAGS, invoke, jid, results, spec
from tests.reliability.faults import Clock, aws_calls
from tests.reliability.test_pipeline_faults import BERTH_SERVICES, FIRST_INVOCATION_CALLS, follow_to_the_end
from tools import emulated

ACCOUNT_A, REGION_A = "210987654321", "eu-west-1"
ROLE = f"arn:aws:iam::{ACCOUNT_A}:role/berth-target"
EXTERNAL_ID = "berth-ext-7c41d5e09b"
SERVICES = BERTH_SERVICES | {"sts"}
# A home target's first invocation plus one AssumeRole, made when the first call about the target is.
LOCATED_FIRST_INVOCATION_CALLS = FIRST_INVOCATION_CALLS + 1
# The calls about the target: AssumeRole, then with its credentials in the member account DescribeTags (one per tag
# key) and SendCommand. berth's own calls around them fail in turn in test_pipeline_faults.py already.
TARGET_SERVICES = frozenset({"sts", "ec2", "ssm"})
TARGET_CALLS = ["sts.AssumeRole", "ec2.DescribeTags", "ec2.DescribeTags", "ssm.SendCommand"]
FAULTS = ["Throttling", "InternalError", "AccessDenied", "Timeout", "LostAnswer"]


def member_client(world: World, service: str) -> Any:
    credentials = world.client("sts").assume_role(RoleArn=ROLE, RoleSessionName="test")["Credentials"]
    return boto3.client(service, region_name=REGION_A, aws_access_key_id=credentials["AccessKeyId"],
                        aws_secret_access_key=credentials["SecretAccessKey"],
                        aws_session_token=credentials["SessionToken"])


def prepare(aws: World) -> dict[str, Any]:
    emulated.launch(member_client(aws, "ec2"), 2, TAGS)
    aws.push_image("web", "v1")
    localaws.set_default_outcome(InstanceOutcome(polls_before_done=1))
    bucket, key = aws.put_artifact({"image.txt": aws.image_uri("web", "v1")})
    params = spec(location={"role_arn": ROLE, "external_id": EXTERNAL_ID, "region": REGION_A})
    return pipeline_job_event(job_id=jid("account-faults"), user_parameters=json.dumps(params), bucket=bucket,
                              key=key)


def test_a_located_targets_first_invocation_makes_one_assume_role_and_its_calls_in_the_member_account(
        aws: World) -> None:
    event = prepare(aws)
    with aws_calls(only=SERVICES) as log:
        invoke(event)
    assert len(log.calls) == LOCATED_FIRST_INVOCATION_CALLS, log.calls
    assert log.calls.count("sts.AssumeRole") == 1
    assumed = log.params[log.calls.index("sts.AssumeRole")]
    assert assumed["RoleArn"] == ROLE and assumed["ExternalId"] == EXTERNAL_ID
    assert assumed["RoleSessionName"].startswith("berth-d-") and len(assumed["RoleSessionName"]) <= 64
    assert assumed["DurationSeconds"] == 900
    # the role is assumed just before the first call about the target, which then goes to the member account
    assert log.calls[log.calls.index("sts.AssumeRole") + 1].startswith("ec2.")
    assert [call for call in log.calls if call.split(".")[0] in TARGET_SERVICES] == TARGET_CALLS
    assert len(member_client(aws, "ssm").list_commands()["Commands"]) == 1
    assert aws.client("ssm").list_commands()["Commands"] == []


@pytest.mark.parametrize("index", range(len(TARGET_CALLS)))
@pytest.mark.parametrize("fault", FAULTS)
def test_each_call_failing_ends_in_one_result_and_the_deployments_outcome(
        aws: World, clock: Clock, index: int, fault: str, capsys: pytest.CaptureFixture[str]) -> None:
    event = prepare(aws)
    failed_call = invoke_with_fault_of(event, index, fault)
    assert len(results(event["CodePipeline.job"]["id"])) == 1, failed_call

    outcome = follow_to_the_end(event, clock)
    member_commands = member_client(aws, "ssm").list_commands()["Commands"]
    assert aws.client("ssm").list_commands()["Commands"] == []        # never in berth's own account
    assert len(member_commands) <= 1, failed_call
    if outcome["type"] == "failure":
        message = outcome["failureDetails"]["message"]
        if failed_call == "sts.AssumeRole" and fault == "AccessDenied":
            assert ROLE in message and f"account {ACCOUNT_A}" in message, message
        assert member_commands == [] or "failed" in message, (failed_call, message)
    else:
        assert outcome["outputVariables"]["deployment_id"], failed_call
        assert len(member_commands) == 1, failed_call
    printed = capsys.readouterr()
    assert EXTERNAL_ID not in json.dumps(outcome) + printed.out + printed.err


def invoke_with_fault_of(event: dict[str, Any], index: int, fault: str) -> str:
    """Invoke the job with call `index` about the target failing; returns that call. Nothing escapes the handler:
    berth reports a result whatever the calls about a target do."""
    with aws_calls(fail_at=index, fault=fault, only=TARGET_SERVICES) as log:
        try:
            invoke(event)
            raised = False
        except Exception:
            raised = True
    assert log.calls[:index + 1] == TARGET_CALLS[:index + 1]
    assert not raised
    return log.calls[index]


@pytest.mark.parametrize("fault", FAULTS)
def test_a_continuations_calls_in_the_member_account_failing_still_lead_to_the_outcome(
        aws: World, clock: Clock, fault: str) -> None:
    """A continuation assumes the role again (a new invocation keeps nothing), then reads the command in the member
    account: each of the two failing, the job goes on and succeeds with one command."""
    event = prepare(aws)
    invoke(event)
    first = results(event["CodePipeline.job"]["id"])[0]
    for index in range(2):
        clock.advance(60)
        job_id = jid(f"account-faults-continued-{fault}-{index}")
        continued = pipeline_job_event("codepipeline_job_continuation", job_id=job_id,
                                       token=first["continuationToken"], no_artifacts=True,
                                       user_parameters=event["CodePipeline.job"]["data"]["actionConfiguration"][
                                           "configuration"]["UserParameters"])
        with aws_calls(fail_at=index, fault=fault, only=TARGET_SERVICES) as log:
            invoke(continued)
        assert log.calls[:2] == ["sts.AssumeRole", "ssm.ListCommands"][:len(log.calls[:2])], log.calls
        reply = results(job_id)
        assert len(reply) == 1, reply
        if index == 0 and fault == "AccessDenied":
            # STS refusing the role is a configuration to fix: the job fails saying so. The deployment's record
            # stays as it was (its command runs on), for its events or `berth status` once the role is mended.
            message = reply[0]["failureDetails"]["message"]
            assert reply[0]["type"] == "failure" and ROLE in message and f"account {ACCOUNT_A}" in message
            assert EXTERNAL_ID not in message
            return
        assert reply[0]["type"] == "success" and "continuationToken" in reply[0], reply
    outcome = follow_to_the_end(event, clock, first)
    assert outcome["type"] == "success", outcome
    assert len(member_client(aws, "ssm").list_commands()["Commands"]) == 1
