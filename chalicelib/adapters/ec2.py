"""EC2: which running instances a target resolves to when its command is sent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.adapters.errors import aws_call, raising, returning
from chalicelib.domain.errors import InvalidRevision
from chalicelib.domain.spec import InstancesSpec


@dataclass(frozen=True)
class InstanceFacts:
    """What berth needs to know of one instance: its tags, its state and when it was (last) launched."""

    instance_id: str
    tags: dict[str, str]
    state: str
    launched_at: datetime


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

    def describe(self, instance_id: str) -> InstanceFacts | None:
        """One instance's tags, state and launch time (DescribeInstances); None when EC2 does not know it (yet, or
        any more: a new instance's id can take a moment to be seen by every EC2 endpoint)."""
        page = aws_call("EC2 DescribeInstances", self._ec2.describe_instances,
                        expected={"InvalidInstanceID": returning(None)}, InstanceIds=[instance_id])
        found = [inst for res in (page or {}).get("Reservations", []) for inst in res["Instances"]]
        if not found:
            return None
        instance = found[0]
        return InstanceFacts(instance_id=instance_id,
                             tags={str(tag["Key"]): str(tag["Value"]) for tag in instance.get("Tags", [])},
                             state=str(instance.get("State", {}).get("Name", "")),
                             launched_at=_timestamp(instance["LaunchTime"]))
    def of_architectures(self, instances: InstancesSpec, architectures: list[str]) -> dict[str, str]:
        """The target's running instances whose EC2 architecture is one of `architectures` (id -> architecture).

        One filtered DescribeInstances (by tags, or by ids 200 at a time): asked for the architectures an image lacks,
        the answer is empty for a fleet of any size that can run it. Unknown ids are not an error here: sending the
        command finds them."""
        if not architectures:
            return {}
        by_arch = {"Name": "architecture", "Values": list(architectures)}
        if instances.ids is None:
            tags = [{"Name": f"tag:{key}", "Values": [value]} for key, value in sorted((instances.tags or {}).items())]
            return self._architectures({"Filters": [_RUNNING, by_arch, *tags]})
        found: dict[str, str] = {}
        ids = sorted(set(instances.ids))
        for start in range(0, len(ids), 200):
            found |= self._architectures({"Filters": [_RUNNING, by_arch,
                                                      {"Name": "instance-id", "Values": ids[start:start + 200]}]})
        return found

    def _architectures(self, kwargs: dict[str, Any]) -> dict[str, str]:
        found: dict[str, str] = {}
        while True:
            page = aws_call("EC2 DescribeInstances", self._ec2.describe_instances, **kwargs)
            found |= {inst["InstanceId"]: str(inst.get("Architecture", "unknown"))
                      for res in page["Reservations"] for inst in res["Instances"]}
            if not page.get("NextToken"):
                return found
            kwargs = {**kwargs, "NextToken": page["NextToken"]}

    def _tagged(self, key: str, value: str) -> set[str]:
        kwargs: dict[str, Any] = {"MaxResults": 1000, "Filters": [
            {"Name": "resource-type", "Values": ["instance"]}, {"Name": "key", "Values": [key]},
            {"Name": "value", "Values": [value]}]}
        found: set[str] = set()
        while True:
            page = aws_call("EC2 DescribeTags", self._ec2.describe_tags, **kwargs)
            found |= {tag["ResourceId"] for tag in page.get("Tags", [])}
            if not page.get("NextToken"):
                return found
            kwargs["NextToken"] = page["NextToken"]

    def _described(self, kwargs: dict[str, Any]) -> set[str]:
        found: set[str] = set()
        # InvalidInstanceID.NotFound, .Malformed, ...: found under their family's name
        unknown = raising(lambda exc: InvalidRevision(
            f"instances: {exc.response['Error'].get('Message', 'unknown instance id')}"))
        while True:
            page = aws_call("EC2 DescribeInstances", self._ec2.describe_instances,
                            expected={"InvalidInstanceID": unknown}, **kwargs)
            found |= {inst["InstanceId"] for res in page["Reservations"] for inst in res["Instances"]}
            if not page.get("NextToken"):
                return found
            kwargs = {**kwargs, "NextToken": page["NextToken"]}


def _timestamp(value: Any) -> datetime:
    """berth's clients leave timestamps as AWS sent them (chalicelib/clients.py): ISO 8601 text, here read."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


_RUNNING = {"Name": "instance-state-name", "Values": ["running"]}
