"""Helpers shared by the localaws tests (conftest.py holds only fixtures)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore import xform_name

from localaws import autoscaling, codedeploy, codedeploy_instances, codepipeline, ssm

REGION = "eu-west-1"
# moto's AMI catalogue: ami-12c6146b (common in moto examples) is Windows; this one is Ubuntu.
LINUX_AMI = "ami-1e749f67"


_EXTENDED = {
    "codepipeline": set(codepipeline.METHODS),
    "autoscaling": set(autoscaling.METHODS),
    "ssm": set(ssm.METHODS),
    "codedeploy": set(codedeploy.METHODS) | set(codedeploy_instances.METHODS) | {"create_deployment"},
}


def _error_code_is_declared(model: Any, parsed: dict[str, Any] | None, **_: Any) -> None:
    """Errors localaws raises must be ones the operation declares (or the generic ValidationException)."""
    service = model.service_model.service_name
    error = (parsed or {}).get("Error") or {}
    if error and xform_name(model.name) in _EXTENDED.get(service, set()):
        declared = {shape.name for shape in model.error_shapes} | {"ValidationException", "ValidationError"}
        assert error.get("Code") in declared, f"{model.name} answered undeclared error {error.get('Code')}"


def client(service: str, **kwargs: Any) -> Any:
    """A boto3 client that also checks the error codes of the operations localaws provides."""
    made = boto3.client(service, region_name=REGION, **kwargs)
    made.meta.events.register("after-call", _error_code_is_declared)
    return made


def launch(ec2: Any, count: int = 1, tags: dict[str, str] | None = None, ami: str = LINUX_AMI) -> list[str]:
    """Start ``count`` moto EC2 instances carrying ``tags``; return their ids in launch order."""
    spec = [{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()]}]
    reply = ec2.run_instances(ImageId=ami, MinCount=count, MaxCount=count, TagSpecifications=spec if tags else [])
    return [instance["InstanceId"] for instance in reply["Instances"]]


def deployment_group(
    codedeploy: Any,
    name: str,
    ec2_tag_filters: list[dict[str, str]] | None = None,
    ec2_tag_set: dict[str, Any] | None = None,
    application: str = "berth",
) -> None:
    """An EC2/on-premises application (created once) and a deployment group selecting instances by tag."""
    if application not in codedeploy.list_applications()["applications"]:
        codedeploy.create_application(applicationName=application, computePlatform="Server")
    extra: dict[str, Any] = {"ec2TagSet": ec2_tag_set} if ec2_tag_set else {"ec2TagFilters": ec2_tag_filters or []}
    codedeploy.create_deployment_group(
        applicationName=application,
        deploymentGroupName=name,
        serviceRoleArn="arn:aws:iam::123456789012:role/codedeploy",
        **extra,
    )
