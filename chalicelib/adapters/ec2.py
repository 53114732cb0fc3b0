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
        """The instances a target resolves to when its command is sent.

        By ids: the running ones among them (DescribeInstances). By tags: every instance carrying all the tags, from
        DescribeTags, whose small entries cost a fraction of DescribeInstances' to read on a large fleet; whether
        those are running is asked only about the few that never ran the command (`running_among`).
        """
        if instances.ids is not None:
            return sorted(self._described({"InstanceIds": list(instances.ids), "Filters": [_RUNNING]}))
        matching: set[str] | None = None
        for key, value in sorted((instances.tags or {}).items()):
            tagged = self._tagged(key, value)
            matching = tagged if matching is None else matching & tagged
        return sorted(matching or set())

    def running_among(self, instance_ids: list[str]) -> set[str]:
        """Which of these instances are running now (at most a few hundred: those that never ran a command)."""
        running: set[str] = set()
        for start in range(0, len(instance_ids), 200):
            batch = instance_ids[start:start + 200]
            running |= self._described({"Filters": [_RUNNING, {"Name": "instance-id", "Values": batch}]})
        return running

    def _tagged(self, key: str, value: str) -> set[str]:
        kwargs: dict[str, Any] = {"MaxResults": 1000, "Filters": [
            {"Name": "resource-type", "Values": ["instance"]}, {"Name": "key", "Values": [key]},
            {"Name": "value", "Values": [value]}]}
        found: set[str] = set()
        try:
            while True:
                page = self._ec2.describe_tags(**kwargs)
                found |= {tag["ResourceId"] for tag in page.get("Tags", [])}
                if not page.get("NextToken"):
                    return found
                kwargs["NextToken"] = page["NextToken"]
        except (ClientError, BotoCoreError) as exc:
            raise aws_failure("EC2 DescribeTags", exc) from exc

    def _described(self, kwargs: dict[str, Any]) -> set[str]:
        found: set[str] = set()
        try:
            while True:
                page = self._ec2.describe_instances(**kwargs)
                found |= {inst["InstanceId"] for res in page["Reservations"] for inst in res["Instances"]}
                if not page.get("NextToken"):
                    return found
                kwargs = {**kwargs, "NextToken": page["NextToken"]}
        except ClientError as exc:
            if error_code(exc).startswith("InvalidInstanceID"):
                raise InvalidRevision(f"instances: {exc.response['Error'].get('Message', 'unknown instance id')}") \
                    from None
            raise aws_failure("EC2 DescribeInstances", exc) from exc
        except BotoCoreError as exc:
            raise aws_failure("EC2 DescribeInstances", exc) from exc


_RUNNING = {"Name": "instance-state-name", "Values": ["running"]}
