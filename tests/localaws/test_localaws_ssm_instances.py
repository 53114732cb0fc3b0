"""DescribeInstanceInformation from moto EC2 instances."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from localaws_testkit import launch

import localaws
from localaws import InstanceOutcome


def _ids(reply: dict[str, Any]) -> set[str]:
    return {i["InstanceId"] for i in reply["InstanceInformationList"]}


def _all(ssm: Any, **kwargs: Any) -> list[dict[str, Any]]:
    paginator = ssm.get_paginator("describe_instance_information")
    return [i for page in paginator.paginate(**kwargs) for i in page["InstanceInformationList"]]


def test_running_managed_instances_are_online_linux(ssm: Any, ec2: Any) -> None:
    live, stopped, unmanaged = launch(ec2, 3)
    ec2.stop_instances(InstanceIds=[stopped])
    localaws.set_outcome(unmanaged, InstanceOutcome(skip=True))
    [info] = _all(ssm)
    assert info["InstanceId"] == live
    assert (info["PingStatus"], info["PlatformType"], info["ResourceType"]) == ("Online", "Linux", "EC2Instance")
    assert info["IPAddress"] and info["ComputerName"]


def test_windows_ami_reports_windows(ssm: Any, ec2: Any) -> None:
    launch(ec2, ami="ami-12c6146b")
    assert _all(ssm)[0]["PlatformType"] == "Windows"


def test_filter_by_instance_ids_both_styles(ssm: Any, ec2: Any) -> None:
    first, second, _ = launch(ec2, 3)
    old = ssm.describe_instance_information(InstanceInformationFilterList=[{"key": "InstanceIds", "valueSet": [first]}])
    new = ssm.describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": [first, second]}])
    assert _ids(old) == {first}
    assert _ids(new) == {first, second}


def test_filter_by_tags(ssm: Any, ec2: Any) -> None:
    web = launch(ec2, 2, {"app": "web", "env": "prod"})
    launch(ec2, 1, {"app": "db", "env": "prod"})
    plain = launch(ec2, 1)
    assert _ids(ssm.describe_instance_information(Filters=[{"Key": "tag:app", "Values": ["web"]}])) == set(web)
    both = [{"Key": "tag:app", "Values": ["web", "db"]}, {"Key": "tag:env", "Values": ["dev"]}]
    assert _ids(ssm.describe_instance_information(Filters=both)) == set()
    everyone = {i["InstanceId"] for i in _all(ssm, Filters=[{"Key": "tag-key", "Values": ["app"]}])}
    assert plain[0] not in everyone and len(everyone) == 3
    by_platform = ssm.describe_instance_information(Filters=[{"Key": "PlatformTypes", "Values": ["Linux"]}])
    assert len(by_platform["InstanceInformationList"]) == 4


def test_pagination(ssm: Any, ec2: Any) -> None:
    ids = launch(ec2, 12)
    first = ssm.describe_instance_information(MaxResults=5)
    assert len(first["InstanceInformationList"]) == 5 and first["NextToken"]
    assert len(ssm.describe_instance_information()["InstanceInformationList"]) == 10
    assert {i["InstanceId"] for i in _all(ssm, PaginationConfig={"PageSize": 5})} == set(ids)


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"Filters": [{"Key": "Colour", "Values": ["red"]}]}, "InvalidFilterKey"),
        ({"Filters": [{"Key": "InstanceIds", "Values": ["i-0123456789abcdef0"]}]}, "InvalidInstanceId"),
        ({"InstanceInformationFilterList": [{"key": "Colour", "valueSet": ["red"]}]}, "ValidationException"),
        ({"MaxResults": 51}, "ValidationException"),
        (
            {"Filters": [{"Key": "tag:app", "Values": ["web"]}, {"Key": "PingStatus", "Values": ["Online"]}]},
            "InvalidInstanceInformationFilterValue",
        ),
        ({"NextToken": "nope"}, "InvalidNextToken"),
    ],
)
def test_refused_requests(ssm: Any, ec2: Any, kwargs: dict[str, Any], code: str) -> None:
    launch(ec2, 1)
    with pytest.raises(ClientError) as error:
        ssm.describe_instance_information(**kwargs)
    assert error.value.response["Error"]["Code"] == code
