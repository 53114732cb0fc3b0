"""Every extension, called through a real boto3 client, answers in the shape botocore's model expects,
and botocore's own parameter validation still runs in front of it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ParamValidationError
from localaws_shape_check import assert_matches_output
from localaws_testkit import REGION, client, deployment_group, launch

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


def _deployment(clients: dict[str, Any], status: str | None = "Failed") -> str:
    broken, _ = launch(clients["ec2"], 2, {"app": "web"})
    deployment_group(clients["codedeploy"], "web", [{"Key": "app", "Value": "web", "Type": "KEY_AND_VALUE"}])
    revision = {"revisionType": "S3", "s3Location": {"bucket": "b", "key": "k", "bundleType": "zip"}}
    reply = clients["codedeploy"].create_deployment(
        applicationName="berth", deploymentGroupName="web", revision=revision
    )
    failed = {"status": "Failed", "lifecycle_event": "ApplicationStart", "script_name": "s.sh", "log_tail": "x"}
    if status:
        localaws.set_deployment_outcome(reply["deploymentId"], status, instances={broken: failed})
    return str(reply["deploymentId"])


def _hooked_deployment(clients: dict[str, Any]) -> str:
    codedeploy = clients["codedeploy"]
    codedeploy.create_application(applicationName="fn", computePlatform="Lambda")
    codedeploy.create_deployment_group(
        applicationName="fn", deploymentGroupName="fn", serviceRoleArn="arn:aws:iam::123456789012:role/x"
    )
    revision = {"revisionType": "AppSpecContent", "appSpecContent": {"content": "{}"}}
    return str(
        codedeploy.create_deployment(applicationName="fn", deploymentGroupName="fn", revision=revision)["deploymentId"]
    )


def _first_target(clients: dict[str, Any], deployment_id: str) -> list[str]:
    return list(clients["codedeploy"].list_deployment_targets(deploymentId=deployment_id)["targetIds"][:1])


def _lifecycle_action(clients: dict[str, Any]) -> dict[str, str]:
    """A launch lifecycle action waiting on a moto Auto Scaling group's hook: CompleteLifecycleAction's parameters."""
    scaling = clients["autoscaling"]
    subnet = clients["ec2"].describe_subnets()["Subnets"][0]["SubnetId"]
    scaling.create_launch_configuration(LaunchConfigurationName="web", ImageId="ami-1e749f67", InstanceType="t3.micro")
    scaling.create_auto_scaling_group(AutoScalingGroupName="web", LaunchConfigurationName="web", MinSize=0,
                                      MaxSize=1, VPCZoneIdentifier=subnet)
    scaling.put_lifecycle_hook(AutoScalingGroupName="web", LifecycleHookName="launch",
                               LifecycleTransition="autoscaling:EC2_INSTANCE_LAUNCHING")
    token = localaws.start_lifecycle_action("web", "launch", "i-0123456789abcdef0", region=REGION)
    return {"AutoScalingGroupName": "web", "LifecycleHookName": "launch", "LifecycleActionToken": token,
            "InstanceId": "i-0123456789abcdef0"}


CASES: dict[tuple[str, str], Call] = {
    ("autoscaling", "CompleteLifecycleAction"): lambda c: c["autoscaling"].complete_lifecycle_action(
        **_lifecycle_action(c), LifecycleActionResult="CONTINUE"
    ),
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
    ("codedeploy", "GetDeployment"): lambda c: c["codedeploy"].get_deployment(deploymentId=_deployment(c)),
    ("codedeploy", "StopDeployment"): lambda c: c["codedeploy"].stop_deployment(deploymentId=_deployment(c, None)),
    ("codedeploy", "ContinueDeployment"): lambda c: c["codedeploy"].continue_deployment(
        deploymentId=_deployment(c, "Ready"), deploymentWaitType="READY_WAIT"
    ),
    ("codedeploy", "ListDeploymentTargets"): lambda c: c["codedeploy"].list_deployment_targets(
        deploymentId=_deployment(c)
    ),
    ("codedeploy", "ListDeploymentInstances"): lambda c: c["codedeploy"].list_deployment_instances(
        deploymentId=_deployment(c)
    ),
    ("codedeploy", "BatchGetDeploymentTargets"): lambda c: (
        lambda d: c["codedeploy"].batch_get_deployment_targets(deploymentId=d, targetIds=_first_target(c, d))
    )(_deployment(c)),
    ("codedeploy", "GetDeploymentTarget"): lambda c: (
        lambda d: c["codedeploy"].get_deployment_target(deploymentId=d, targetId=_first_target(c, d)[0])
    )(_deployment(c)),
    ("codedeploy", "PutLifecycleEventHookExecutionStatus"): lambda c: c[
        "codedeploy"
    ].put_lifecycle_event_hook_execution_status(
        deploymentId=_hooked_deployment(c), lifecycleEventHookExecutionId="h-1", status="Succeeded"
    ),
    ("codedeploy", "GetDeploymentInstance"): lambda c: (
        lambda d: c["codedeploy"].get_deployment_instance(deploymentId=d, instanceId=_first_target(c, d)[0])
    )(_deployment(c)),
    ("codedeploy", "BatchGetDeploymentInstances"): lambda c: (
        lambda d: c["codedeploy"].batch_get_deployment_instances(
            deploymentId=d, instanceIds=[*_first_target(c, d), "i-0ffffffffffffffff"]
        )
    )(_deployment(c)),
}

INVALID: dict[tuple[str, str], Call] = {
    ("autoscaling", "CompleteLifecycleAction"): lambda c: c["autoscaling"].complete_lifecycle_action(
        LifecycleHookName="launch", LifecycleActionResult="CONTINUE"
    ),
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
    ("codedeploy", "GetDeployment"): lambda c: c["codedeploy"].get_deployment(deploymentId=5),
    ("codedeploy", "StopDeployment"): lambda c: c["codedeploy"].stop_deployment(
        deploymentId="d-1", autoRollbackEnabled="x"
    ),
    ("codedeploy", "ContinueDeployment"): lambda c: c["codedeploy"].continue_deployment(deploymentId=["d-1"]),
    ("codedeploy", "ListDeploymentTargets"): lambda c: c["codedeploy"].list_deployment_targets(targetFilters=[]),
    ("codedeploy", "ListDeploymentInstances"): lambda c: c["codedeploy"].list_deployment_instances(
        deploymentId="d-1", instanceStatusFilter="Failed"
    ),
    ("codedeploy", "BatchGetDeploymentTargets"): lambda c: c["codedeploy"].batch_get_deployment_targets(
        deploymentId="d-1", targetIds="i-1"
    ),
    ("codedeploy", "GetDeploymentTarget"): lambda c: c["codedeploy"].get_deployment_target(deploymentId="d-1"),
    ("codedeploy", "PutLifecycleEventHookExecutionStatus"): lambda c: c[
        "codedeploy"
    ].put_lifecycle_event_hook_execution_status(deploymentId="d-1", status=1),
    ("codedeploy", "GetDeploymentInstance"): lambda c: c["codedeploy"].get_deployment_instance(deploymentId="d-1"),
    ("codedeploy", "BatchGetDeploymentInstances"): lambda c: c["codedeploy"].batch_get_deployment_instances(
        deploymentId="d-1", instanceIds=[1]
    ),
}


@pytest.fixture
def clients(aws: None) -> dict[str, Any]:
    return {name: client(name) for name in ("codepipeline", "ssm", "ec2", "codedeploy", "autoscaling")}


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
