"""EC2: which running instances a target resolves to when its command is sent."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.adapters.errors import aws_failure, error_code
from chalicelib.domain.errors import InvalidRevision
from chalicelib.domain.spec import InstancesSpec


class InstanceDirectory:
    def __init__(self, ec2_client: Any) -> None:
        self._ec2 = ec2_client

    def running_instances(self, instances: InstancesSpec) -> list[str]:
        filters = [{"Name": "instance-state-name", "Values": ["running"]}]
        kwargs: dict[str, Any] = {"Filters": filters, "MaxResults": 1000}
        if instances.ids is not None:
            kwargs = {"InstanceIds": list(instances.ids), "Filters": filters}
        else:
            tags = sorted((instances.tags or {}).items())
            filters += [{"Name": f"tag:{key}", "Values": [value]} for key, value in tags]
        found: list[str] = []
        try:
            while True:
                page = self._ec2.describe_instances(**kwargs)
                found += [inst["InstanceId"] for res in page["Reservations"] for inst in res["Instances"]]
                if not page.get("NextToken"):
                    return sorted(found)
                kwargs["NextToken"] = page["NextToken"]
        except ClientError as exc:
            if error_code(exc).startswith("InvalidInstanceID"):
                raise InvalidRevision(f"instances: {exc.response['Error'].get('Message', 'unknown instance id')}") \
                    from None
            raise aws_failure("EC2 DescribeInstances", exc) from exc
        except BotoCoreError as exc:
            raise aws_failure("EC2 DescribeInstances", exc) from exc
