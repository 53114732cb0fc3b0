"""DescribeInstanceInformation built from moto's running EC2 instances.

Every managed node (see ``ssm_fleet``) is reported Online with a Linux agent unless its AMI says
Windows. Both filter styles are supported: ``InstanceInformationFilterList`` (fixed keys) and
``Filters`` (which also accepts ``tag:<key>`` and ``tag-key``); naming an instance id that is not a
managed node is an ``InvalidInstanceId`` error and tag filters cannot be mixed with other filters, as the
API reference says. The default page size (10) is not documented; it is small so callers must paginate.
"""

from __future__ import annotations

import datetime
from typing import Any

from moto.core.responses import ActionResult

from . import ssm_fleet
from .errors import AwsError
from .paging import page
from .params import request_params
from .shapes import shaped

_STRING_FILTER_KEYS = (
    "InstanceIds",
    "AgentVersion",
    "PingStatus",
    "PlatformTypes",
    "ActivationIds",
    "IamRole",
    "ResourceType",
    "AssociationStatus",
    "tag-key",
)
DEFAULT_MAX_RESULTS = 10


def _info(instance: Any, now: datetime.datetime) -> dict[str, Any]:
    windows = ssm_fleet.platform_of(instance) == "Windows"
    return {
        "InstanceId": instance.id,
        "PingStatus": "Online",
        "LastPingDateTime": now,
        "AgentVersion": "3.3.1142.0",
        "IsLatestVersion": True,
        "PlatformType": "Windows" if windows else "Linux",
        "PlatformName": "Microsoft Windows Server 2022 Datacenter" if windows else "Amazon Linux",
        "PlatformVersion": "10.0.20348" if windows else "2023",
        "ResourceType": "EC2Instance",
        "IPAddress": instance.private_ip or "",
        "ComputerName": instance.private_dns_name,
        "SourceId": instance.id,
        "SourceType": "AWS::EC2::Instance",
    }


def _field_for(key: str) -> str:
    return {"InstanceIds": "InstanceId", "PlatformTypes": "PlatformType"}.get(key, key)


def _keep(info: dict[str, Any], tags: dict[str, str], key: str, values: list[str]) -> bool:
    if key == "tag-key":
        return any(value in tags for value in values)
    if key.startswith("tag:"):
        return tags.get(key[len("tag:") :]) in values
    return str(info.get(_field_for(key), "")) in values


def describe_instance_information(self: Any) -> ActionResult:
    params = request_params(self, "ssm", "DescribeInstanceInformation")
    wanted = [(f["key"], f["valueSet"]) for f in params.get("InstanceInformationFilterList", [])]
    for item in params.get("Filters", []):
        if item["Key"] not in _STRING_FILTER_KEYS and not item["Key"].startswith("tag:"):
            raise AwsError("InvalidFilterKey", f"The filter key {item['Key']} is not valid.")
        wanted.append((item["Key"], item["Values"]))
    tagged = [key for key, _ in wanted if key == "tag-key" or key.startswith("tag:")]
    if tagged and len(tagged) < len(wanted):
        raise AwsError(
            "InvalidInstanceInformationFilterValue", "Tag filters can't be combined with other filter types."
        )
    now = datetime.datetime.now(datetime.UTC)
    managed = ssm_fleet.managed_instances(self.current_account, self.region)
    known = {instance.id for instance in managed}
    for key, values in wanted:
        if key == "InstanceIds" and any(value not in known for value in values):
            raise AwsError("InvalidInstanceId", "One or more instance ids are not valid managed nodes.")
    listed = [
        info
        for instance in managed
        for info in [_info(instance, now)]
        if all(_keep(info, ssm_fleet.tags_of(instance), key, values) for key, values in wanted)
    ]
    chosen, token = page(
        listed, "DescribeInstanceInformation", params.get("MaxResults", DEFAULT_MAX_RESULTS), params.get("NextToken")
    )
    result: dict[str, Any] = {"InstanceInformationList": chosen}
    if token:
        result["NextToken"] = token
    return shaped("ssm", "DescribeInstanceInformation", result)
