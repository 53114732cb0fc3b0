"""CodeDeploy deployments with outcomes: realistic ids, the one-active-deployment rule, targets.

moto's ``create_deployment`` is wrapped at the backend so every caller gets the same behaviour:
- ids look like AWS's (``d-`` and nine characters) instead of UUIDs;
- a second deployment while one is active in the group raises ``DeploymentLimitExceededException``;
- the targets are the running EC2 instances matching the group's tags at creation; with none, the
  deployment fails at once with ``NO_INSTANCES``, as CodeDeploy does.
localaws data is kept on moto's ``DeploymentInfo`` (an ``Extra`` under ``localaws``), so it lives and
dies with the deployment.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from moto.codedeploy.models import CodeDeployBackend, DeploymentInfo, codedeploy_backends
from moto.core.utils import utcnow

from . import codedeploy_model as model
from . import ssm_fleet
from .errors import AwsError
from .state import LOCK

_ID_ALPHABET = string.ascii_uppercase + string.digits
NO_INSTANCES_MESSAGE = "The deployment failed because no instances were found for your deployment group."
HEALTH_MESSAGE = (
    "The overall deployment failed because too many individual instances failed deployment, too few healthy "
    "instances are available for deployment, or some instances in your deployment group are experiencing problems."
)


@dataclass
class Extra:
    """What localaws knows about one moto deployment."""

    targets: list[str] = field(default_factory=list)
    instances: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: dict[str, str] | None = None
    stop_rollback: bool = False


def localaws_data(deployment: DeploymentInfo) -> Extra:
    found: Extra | None = deployment.__dict__.get("localaws")
    if found is None:
        found = deployment.__dict__["localaws"] = Extra()
    return found


def _tag_filter_matches(tags: dict[str, str], item: dict[str, Any]) -> bool:
    kind = item.get("Type", "KEY_AND_VALUE")
    if kind == "KEY_ONLY":
        return item.get("Key") in tags
    if kind == "VALUE_ONLY":
        return item.get("Value") in tags.values()
    return tags.get(item.get("Key", "")) == item.get("Value")


def _group_matches(group: Any, tags: dict[str, str]) -> bool:
    """Filters in ``ec2TagFilters`` are ORed; tag-set groups are ANDed, filters within one ORed."""
    tag_set = (group.ec2_tag_set or {}).get("ec2TagSetList") or []
    if tag_set:
        return all(any(_tag_filter_matches(tags, item) for item in items) for items in tag_set)
    return any(_tag_filter_matches(tags, item) for item in group.ec2_tag_filters)


def _new_id(backend: CodeDeployBackend) -> str:
    while True:
        candidate = "d-" + "".join(random.choices(_ID_ALPHABET, k=9))
        if candidate not in backend.deployments:
            return candidate


def wrap_create_deployment(moto_create: Callable[..., str]) -> Callable[..., str]:
    def create_deployment(self: CodeDeployBackend, application_name: str, deployment_group_name: str, **kw: Any) -> str:
        with LOCK:
            for other in self.deployments.values():
                same_group = (other.application_name, other.deployment_group_name) == (
                    application_name,
                    deployment_group_name,
                )
                if same_group and other.status in model.ACTIVE_STATUSES:
                    raise AwsError(
                        "DeploymentLimitExceededException",
                        f"The deployment group {deployment_group_name} already has an active deployment "
                        f"{other.deployment_id}.",
                    )
            moto_id = moto_create(self, application_name, deployment_group_name, **kw)
            deployment = self.deployments.pop(moto_id)
            deployment.deployment_id = _new_id(self)
            self.deployments[deployment.deployment_id] = deployment
            group = deployment.deployment_group
            localaws_data(deployment).targets = [
                instance.id
                for instance in ssm_fleet.running_instances(self.account_id, self.region_name)
                if _group_matches(group, ssm_fleet.tags_of(instance))
            ]
            if not localaws_data(deployment).targets and group.application.compute_platform == "Server":
                _finish(deployment, "Failed", {"code": "NO_INSTANCES", "message": NO_INSTANCES_MESSAGE})
            return deployment.deployment_id

    return create_deployment


def _finish(deployment: DeploymentInfo, status: str, error: dict[str, str] | None) -> None:
    deployment.status = status
    if status not in ("Created", "Queued") and deployment.start_time is None:
        deployment.start_time = utcnow()
    if status in model.DONE_STATUSES:
        deployment.complete_time = utcnow()
    localaws_data(deployment).error = error
    deployment.deployment_overview = model.overview([spec["status"] for _, spec in specs(deployment)])


def all_backends() -> Iterator[CodeDeployBackend]:
    for account_backends in list(codedeploy_backends.values()):
        yield from list(account_backends.values())


def find(deployment_id: str) -> tuple[CodeDeployBackend, DeploymentInfo]:
    for backend in all_backends():
        if deployment_id in backend.deployments:
            return backend, backend.deployments[deployment_id]
    raise KeyError(f"no CodeDeploy deployment {deployment_id} in any moto account or region")


def targets(deployment: DeploymentInfo) -> list[str]:
    """Instance ids in the deployment: group matches at creation, then instances the outcome named."""
    found = list(localaws_data(deployment).targets)
    return found + [iid for iid in localaws_data(deployment).instances if iid not in found]


def specs(deployment: DeploymentInfo) -> list[tuple[str, dict[str, Any]]]:
    described = localaws_data(deployment).instances
    return [(iid, model.instance_spec(deployment.status, described.get(iid))) for iid in targets(deployment)]


def set_outcome(
    deployment_id: str,
    status: str,
    instances: dict[str, dict[str, Any]] | None,
    creator: str | None,
    error_code: str | None,
    error_message: str | None,
) -> None:
    if status not in model.enum_of("DeploymentStatus"):
        raise ValueError(f"status must be one of {model.enum_of('DeploymentStatus')}")
    if creator is not None and creator not in model.enum_of("DeploymentCreator"):
        raise ValueError(
            f"creator must be one of {model.enum_of('DeploymentCreator')} (a rollback is codeDeployRollback)"
        )
    if error_code is not None and error_code not in model.enum_of("ErrorCode"):
        raise ValueError(f"error_code must be one of {model.enum_of('ErrorCode')}")
    for instance_id, spec in (instances or {}).items():
        model.check_instance_spec(instance_id, spec)
    with LOCK:
        _, deployment = find(deployment_id)
        localaws_data(deployment).instances.update(instances or {})
        if creator is not None:
            deployment.creator = creator
        error = None
        if status in ("Failed", "Stopped") or error_code:
            default_code = "MANUAL_STOP" if status == "Stopped" else "HEALTH_CONSTRAINTS"
            error = {"code": error_code or default_code, "message": error_message or HEALTH_MESSAGE}
        _finish(deployment, status, error)


def finish(deployment: DeploymentInfo, status: str, error: dict[str, str] | None) -> None:
    """Move a deployment to ``status`` (StopDeployment, ContinueDeployment)."""
    _finish(deployment, status, error)
