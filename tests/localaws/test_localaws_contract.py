"""Every extension, called through a real boto3 client, answers in the shape botocore's model expects,
and botocore's own parameter validation still runs in front of it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ParamValidationError
from localaws_shape_check import assert_matches_output
from localaws_testkit import REGION, launch

import localaws

JOB_ID = "0f0e0d0c-0b0a-4908-8706-050403020100"
Call = Callable[[dict[str, Any]], dict[str, Any]]


def _send(clients: dict[str, Any]) -> str:
    ids = launch(clients["ec2"], 2, {"app": "web"})
    localaws.set_outcome(
        ids[1], localaws.InstanceOutcome(status="Failed", response_code=2, stderr="no", polls_before_done=1)
    )
    command = clients["ssm"].send_command(
        DocumentName="AWS-RunShellScript",
        Targets=[{"Key": "tag:app", "Values": ["web"]}],
        Parameters={"commands": ["true"]},
    )
    return str(command["Command"]["CommandId"])


def _first_instance(clients: dict[str, Any], command_id: str) -> str:
    return str(clients["ssm"].list_command_invocations(CommandId=command_id)["CommandInvocations"][0]["InstanceId"])


def _get_first_invocation(clients: dict[str, Any]) -> dict[str, Any]:
    command_id = _send(clients)
    return dict(
        clients["ssm"].get_command_invocation(CommandId=command_id, InstanceId=_first_instance(clients, command_id))
    )


CASES: dict[tuple[str, str], Call] = {
    ("codepipeline", "PutJobSuccessResult"): lambda c: c["codepipeline"].put_job_success_result(
        jobId=JOB_ID, executionDetails={"summary": "ok", "percentComplete": 100}, outputVariables={"image": "x"}
    ),
    ("codepipeline", "PutJobFailureResult"): lambda c: c["codepipeline"].put_job_failure_result(
        jobId=JOB_ID, failureDetails={"type": "JobFailed", "message": "broken"}
    ),
    ("ssm", "SendCommand"): lambda c: c["ssm"].send_command(
        DocumentName="AWS-RunShellScript", InstanceIds=launch(c["ec2"]), Parameters={"commands": ["true"]}
    ),
    ("ssm", "ListCommands"): lambda c: (_send(c), c["ssm"].list_commands())[1],
    ("ssm", "ListCommandInvocations"): lambda c: c["ssm"].list_command_invocations(CommandId=_send(c), Details=True),
    ("ssm", "GetCommandInvocation"): lambda c: _get_first_invocation(c),
    ("ssm", "CancelCommand"): lambda c: c["ssm"].cancel_command(CommandId=_send(c)),
    ("ssm", "DescribeInstanceInformation"): lambda c: (launch(c["ec2"], 2), c["ssm"].describe_instance_information())[
        1
    ],
}

INVALID: dict[tuple[str, str], Call] = {
    ("codepipeline", "PutJobSuccessResult"): lambda c: c["codepipeline"].put_job_success_result(),
    ("codepipeline", "PutJobFailureResult"): lambda c: c["codepipeline"].put_job_failure_result(
        jobId=JOB_ID, failureDetails={"type": "JobFailed"}
    ),
    ("ssm", "SendCommand"): lambda c: c["ssm"].send_command(InstanceIds=["i-0123456789abcdef0"]),
    ("ssm", "ListCommands"): lambda c: c["ssm"].list_commands(MaxResults="ten"),
    ("ssm", "ListCommandInvocations"): lambda c: c["ssm"].list_command_invocations(MaxResults=0),
    ("ssm", "GetCommandInvocation"): lambda c: c["ssm"].get_command_invocation(CommandId="x" * 36),
    ("ssm", "CancelCommand"): lambda c: c["ssm"].cancel_command(CommandId="short"),
    ("ssm", "DescribeInstanceInformation"): lambda c: c["ssm"].describe_instance_information(MaxResults=4),
}


@pytest.fixture
def clients(aws: None) -> dict[str, Any]:
    return {name: boto3.client(name, region_name=REGION) for name in ("codepipeline", "ssm", "ec2", "codedeploy")}


@pytest.mark.parametrize(("service", "operation"), sorted(CASES))
def test_output_matches_botocore_model(clients: dict[str, Any], service: str, operation: str) -> None:
    response = CASES[(service, operation)](clients)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert_matches_output(service, operation, response)


@pytest.mark.parametrize(("service", "operation"), sorted(INVALID))
def test_invalid_parameters_still_rejected_by_botocore(clients: dict[str, Any], service: str, operation: str) -> None:
    with pytest.raises(ParamValidationError):
        INVALID[(service, operation)](clients)


def test_every_case_has_an_invalid_twin() -> None:
    assert set(CASES) == set(INVALID)
