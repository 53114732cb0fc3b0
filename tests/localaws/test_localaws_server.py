"""``python -m localaws serve`` as a separate process, driven through boto3 and the control client."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from localaws_testkit import LINUX_AMI, client

from localaws import InstanceOutcome
from localaws.control import Control, ControlError

REPO = Path(__file__).resolve().parents[2]


def _start(*extra: str) -> tuple[subprocess.Popen[str], str]:
    """Start the server; stderr is a pipe nobody reads, which only works because the server is quiet."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("AWS_ENDPOINT_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "localaws", "serve", "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    failure = process.stderr.read() if process.stderr and process.poll() is not None else ""
    assert line.startswith("endpoint=http://127.0.0.1:"), (line, failure)
    return process, line.removeprefix("endpoint=")


def _stop(process: subprocess.Popen[str], how: int = signal.SIGTERM) -> int:
    process.send_signal(how)
    try:
        return process.wait(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _refuses_connections(endpoint: str) -> bool:
    host, port = endpoint.removeprefix("http://").split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return False
    except OSError:
        return True


@pytest.fixture
def server() -> Iterator[str]:
    process, endpoint = _start()
    yield endpoint
    assert _stop(process) == 0
    assert _refuses_connections(endpoint)


def _client(service: str, endpoint: str) -> Any:
    return client(
        service,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_outcomes_and_job_results_across_processes(server: str) -> None:
    control = Control(server)
    ec2, ssm, codepipeline = (_client(name, server) for name in ("ec2", "ssm", "codepipeline"))
    (instance,) = [i["InstanceId"] for i in ec2.run_instances(ImageId=LINUX_AMI, MinCount=1, MaxCount=1)["Instances"]]
    control.set_outcome(instance, InstanceOutcome(status="Failed", response_code=4, stderr="docker: not found"))
    command_id = ssm.send_command(
        DocumentName="AWS-RunShellScript", InstanceIds=[instance], Parameters={"commands": ["docker ps"]}
    )["Command"]["CommandId"]
    reply = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance)
    assert (reply["Status"], reply["ResponseCode"], reply["StandardErrorContent"]) == ("Failed", 4, "docker: not found")

    job_id = str(uuid.uuid4())
    codepipeline.put_job_failure_result(jobId=job_id, failureDetails={"type": "JobFailed", "message": "exit 4"})
    assert control.job_results(job_id) == [
        {"type": "failure", "failureDetails": {"type": "JobFailed", "message": "exit 4"}}
    ]
    with pytest.raises(ClientError) as error:
        codepipeline.put_job_success_result(jobId=job_id)
    assert error.value.response["Error"]["Code"] == "InvalidJobStateException"

    control.reset()
    assert control.job_results(job_id) == []

    codepipeline.put_job_success_result(jobId=job_id)
    urllib.request.urlopen(urllib.request.Request(f"{server}/moto-api/reset", method="POST"), timeout=5)
    assert control.job_results(job_id) == []  # moto's own reset clears localaws state too


def test_control_of_deployments_and_errors(server: str) -> None:
    control = Control(server)
    ec2, codedeploy = _client("ec2", server), _client("codedeploy", server)
    spec = [{"ResourceType": "instance", "Tags": [{"Key": "app", "Value": "web"}]}]
    (instance,) = [
        i["InstanceId"]
        for i in ec2.run_instances(ImageId=LINUX_AMI, MinCount=1, MaxCount=1, TagSpecifications=spec)["Instances"]
    ]
    codedeploy.create_application(applicationName="berth", computePlatform="Server")
    codedeploy.create_deployment_group(
        applicationName="berth",
        deploymentGroupName="web",
        serviceRoleArn="arn:aws:iam::123456789012:role/codedeploy",
        ec2TagFilters=[{"Key": "app", "Value": "web", "Type": "KEY_AND_VALUE"}],
    )
    revision = {"revisionType": "S3", "s3Location": {"bucket": "b", "key": "k", "bundleType": "zip"}}
    deployment_id = codedeploy.create_deployment(applicationName="berth", deploymentGroupName="web", revision=revision)[
        "deploymentId"
    ]
    assert control.deployment_targets(deployment_id) == [instance]
    control.set_deployment_outcome(
        deployment_id, "Failed", instances={instance: {"status": "Failed", "lifecycle_event": "ValidateService"}}
    )
    assert codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]["status"] == "Failed"
    assert control.hook_statuses() == {}
    with pytest.raises(ControlError, match="404"):
        control.deployment_targets("d-NOPE00000")
    with pytest.raises(ControlError, match="400"):
        control.set_deployment_outcome(deployment_id, "Done")
    for body in (b'{"status": "Bogus"}', b'{"colour": "red"}', b"not json"):
        request = urllib.request.Request(f"{server}/_localaws/default-outcome", data=body, method="PUT")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code == 400


def test_run_commands_mode_runs_the_script_here() -> None:
    process, endpoint = _start("--run-commands")
    try:
        ec2, ssm = _client("ec2", endpoint), _client("ssm", endpoint)
        (instance,) = [
            i["InstanceId"] for i in ec2.run_instances(ImageId=LINUX_AMI, MinCount=1, MaxCount=1)["Instances"]
        ]
        script = ["echo hello from $LOCALAWS_INSTANCE_ID", "echo oops >&2", "exit 3"]
        command_id = ssm.send_command(
            DocumentName="AWS-RunShellScript", InstanceIds=[instance], Parameters={"commands": script}
        )["Command"]["CommandId"]
        reply = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance)
        assert (reply["Status"], reply["ResponseCode"]) == ("Failed", 3)
        assert reply["StandardOutputContent"] == f"hello from {instance}\n"
        assert reply["StandardErrorContent"] == "oops\n"
        Control(endpoint).reset()  # the hook survives resets
        command_id = ssm.send_command(
            DocumentName="AWS-RunShellScript", InstanceIds=[instance], Parameters={"commands": ["true"]}
        )["Command"]["CommandId"]
        assert ssm.get_command_invocation(CommandId=command_id, InstanceId=instance)["Status"] == "Success"
    finally:
        assert _stop(process, signal.SIGINT) == 0
    assert _refuses_connections(endpoint)


def test_control_needs_an_http_endpoint() -> None:
    with pytest.raises(ValueError, match="http"):
        Control("file:///etc/passwd")


def test_many_requests_do_not_fill_an_unread_stderr_pipe(server: str) -> None:
    ssm = _client("ssm", server)
    for _ in range(800):
        ssm.list_commands()


def test_target_health_across_processes(server: str) -> None:
    control = Control(server)
    ec2, elbv2 = _client("ec2", server), _client("elbv2", server)
    (instance,) = [i["InstanceId"] for i in ec2.run_instances(ImageId=LINUX_AMI, MinCount=1, MaxCount=1)["Instances"]]
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    arn = elbv2.create_target_group(Name="web", Protocol="HTTP", Port=80, VpcId=vpc)["TargetGroups"][0][
        "TargetGroupArn"]

    def state() -> str:
        answer = elbv2.describe_target_health(TargetGroupArn=arn, Targets=[{"Id": instance, "Port": 5000}])
        return str(answer["TargetHealthDescriptions"][0]["TargetHealth"]["State"])

    control.set_transition_reads(initial=1)
    elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": instance, "Port": 5000}])
    assert [state(), state()] == ["initial", "healthy"]
    control.set_target_health(arn, instance, "unhealthy", reads=1)
    assert [state(), state()] == ["unhealthy", "healthy"]
