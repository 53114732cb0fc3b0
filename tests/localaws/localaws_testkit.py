"""Helpers shared by the localaws tests (conftest.py holds only fixtures)."""

from __future__ import annotations

from typing import Any

REGION = "eu-west-1"
# moto's AMI catalogue: ami-12c6146b (common in moto examples) is Windows; this one is Ubuntu.
LINUX_AMI = "ami-1e749f67"


def launch(ec2: Any, count: int = 1, tags: dict[str, str] | None = None, ami: str = LINUX_AMI) -> list[str]:
    """Start ``count`` moto EC2 instances carrying ``tags``; return their ids in launch order."""
    spec = [{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()]}]
    reply = ec2.run_instances(ImageId=ami, MinCount=count, MaxCount=count, TagSpecifications=spec if tags else [])
    return [instance["InstanceId"] for instance in reply["Instances"]]
