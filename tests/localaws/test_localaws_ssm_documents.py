"""SendCommand refuses documents, parameters and platforms AWS refuses."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from localaws_testkit import launch

GUARDED = {
    "schemaVersion": "2.2",
    "description": "Start a container",
    "parameters": {
        "image": {"type": "String", "allowedPattern": "^[a-z0-9./:-]+$"},
        "mode": {"type": "String", "default": "blue", "allowedValues": ["blue", "green"]},
    },
    "mainSteps": [
        {"action": "aws:runShellScript", "name": "start", "inputs": {"runCommand": ["docker run '{{ image }}'"]}}
    ],
}


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


@pytest.mark.parametrize(
    ("document", "parameters", "code"),
    [
        ("AWS-NoSuchDocument", {"commands": ["true"]}, "InvalidDocument"),
        ("AWS-RunShellScript", {"command": ["true"]}, "InvalidParameters"),
        ("AWS-RunShellScript", {}, "InvalidParameters"),
        ("AWS-RunShellScript", {"commands": ["true"], "executionTimeout": ["1h"]}, "InvalidParameters"),
        ("AWS-RunShellScript", {"commands": ["true"], "executionTimeout": ["172801"]}, "InvalidParameters"),
        ("AWS-RunShellScript", {"commands": ["true"], "workingDirectory": ["/a", "/b"]}, "InvalidParameters"),
    ],
)
def test_refused(ssm: Any, ec2: Any, document: str, parameters: dict[str, list[str]], code: str) -> None:
    ids = launch(ec2)
    with pytest.raises(ClientError) as error:
        ssm.send_command(DocumentName=document, InstanceIds=ids, Parameters=parameters)
    assert _code(error) == code


def test_shell_parameters_that_aws_accepts(ssm: Any, ec2: Any) -> None:
    ids = launch(ec2)
    ssm.send_command(
        DocumentName="AWS-RunShellScript",
        InstanceIds=ids,
        Parameters={"commands": ["true"], "executionTimeout": ["172800"], "workingDirectory": ["/srv"]},
    )


def test_customer_document_parameters_are_checked(ssm: Any, ec2: Any) -> None:
    ids = launch(ec2)
    ssm.create_document(Content=json.dumps(GUARDED), Name="berth-start", DocumentType="Command")
    ssm.send_command(DocumentName="berth-start", InstanceIds=ids, Parameters={"image": ["repo/app:1"]})
    for parameters in ({"image": ["x; rm -rf /"]}, {"image": ["a"], "mode": ["red"]}, {"mode": ["blue"]}):
        with pytest.raises(ClientError) as error:
            ssm.send_command(DocumentName="berth-start", InstanceIds=ids, Parameters=parameters)
        assert _code(error) == "InvalidParameters"


def test_linux_document_to_a_windows_instance(ssm: Any, ec2: Any) -> None:
    windows = launch(ec2, ami="ami-12c6146b")
    with pytest.raises(ClientError) as error:
        ssm.send_command(DocumentName="AWS-RunShellScript", InstanceIds=windows, Parameters={"commands": ["true"]})
    assert _code(error) == "UnsupportedPlatformType"
    ssm.send_command(DocumentName="AWS-RunPowerShellScript", InstanceIds=windows, Parameters={"commands": ["dir"]})
