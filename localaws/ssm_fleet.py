"""Which moto EC2 instances count as SSM managed nodes, and how Targets resolve to them.

A node is managed when its moto EC2 instance is running and its configured outcome does not ``skip``
(real instances without a working agent or role are invisible to SSM in the same way). Targets resolve
like SSM's: ``tag:<key>`` entries are ANDed, values within one entry ORed; ``tag-key`` matches instances
carrying any of the keys; ``InstanceIds`` names nodes directly. Resource-group targets are not modelled.
"""

from __future__ import annotations

from typing import Any

from moto.ec2.models import ec2_backends

from .errors import AwsError
from .state import LOCK, current


def running_instances(account_id: str, region: str) -> list[Any]:
    """moto EC2 instances in ``running`` state, in launch order."""
    backend = ec2_backends[account_id][region]
    return [instance for instance in backend.all_instances() if instance.state == "running"]


def tags_of(instance: Any) -> dict[str, str]:
    return {tag["key"]: tag["value"] for tag in instance.get_tags()}


def platform_of(instance: Any) -> str:
    """SSM's PlatformType for a moto instance: moto marks Windows AMIs ``platform="windows"``."""
    return "Windows" if (getattr(instance, "platform", None) or "").lower() == "windows" else "Linux"


def configured_skip(instance_id: str) -> bool:
    """Whether the outcome set for the instance (not the hook, which needs a command) makes it unmanaged."""
    with LOCK:
        live = current()
        return live.outcomes.get(instance_id, live.default_outcome).skip


def managed_instances(account_id: str, region: str) -> list[Any]:
    return [i for i in running_instances(account_id, region) if not configured_skip(i.id)]


def _matches(instance: Any, target: dict[str, Any]) -> bool:
    key: str = target["Key"]
    values: list[str] = target.get("Values", [])
    tags = tags_of(instance)
    if key == "InstanceIds":
        return bool(instance.id in values)
    if key == "tag-key":
        return any(value in tags for value in values)
    if key.startswith("tag:"):
        return tags.get(key[len("tag:") :]) in values
    raise AssertionError(key)  # _check_key ran first


def _check_key(key: str) -> None:
    if key in ("InstanceIds", "tag-key") or (key.startswith("tag:") and len(key) > len("tag:")):
        return
    if key.startswith("resource-groups:"):
        raise NotImplementedError(f"localaws does not model resource-group targets ({key})")
    raise AwsError("InvalidParameters", f"Target key {key} is not supported.")


def resolve_targets(account_id: str, region: str, targets: list[dict[str, Any]]) -> list[str]:
    """Ids of running instances matching every target entry, in id order (skip is applied at send time).

    The order is the order invocations are sent in under MaxConcurrency. AWS does not specify one; id
    order keeps a test deterministic although moto's instance ids are random.
    """
    for target in targets:
        if not target.get("Key") or not target.get("Values"):
            raise AwsError("InvalidParameters", "Each target needs a Key and at least one value.")
        _check_key(target["Key"])
    return sorted(
        instance.id
        for instance in running_instances(account_id, region)
        if all(_matches(instance, target) for target in targets)
    )


def check_explicit_ids(account_id: str, region: str, instance_ids: list[str], platforms: set[str] | None) -> None:
    """SendCommand with InstanceIds fails as a whole if one of them is not a running managed node, or
    runs a platform the document does not support (``platforms`` None: no platform check)."""
    running = {instance.id: instance for instance in running_instances(account_id, region)}
    invalid = [iid for iid in instance_ids if iid not in running or configured_skip(iid)]
    if invalid:
        raise AwsError("InvalidInstanceId", f"Instances {invalid} not in a valid state for account {account_id}")
    unsupported = [iid for iid in instance_ids if platforms is not None and platform_of(running[iid]) not in platforms]
    if unsupported:
        raise AwsError(
            "UnsupportedPlatformType",
            f"The document does not support the platform type of the given managed node IDs: {unsupported}",
        )
