"""CodeDeploy operations moto lacks: StopDeployment, ContinueDeployment, ListDeploymentTargets,
BatchGetDeploymentTargets, GetDeploymentTarget, ListDeploymentInstances and
PutLifecycleEventHookExecutionStatus, over the deployments ``codedeploy_deployments`` keeps.

PutLifecycleEventHookExecutionStatus exists for the Lambda and ECS compute platforms only; for an
EC2/on-premises deployment it is refused as AWS refuses it, and each hook execution takes one final
status (Succeeded or Failed).
"""

from __future__ import annotations

from typing import Any

from moto.codedeploy.models import DeploymentInfo
from moto.core.responses import ActionResult, EmptyResult

from . import codedeploy_deployments as deployments
from . import codedeploy_model as model
from .errors import AwsError
from .paging import page
from .params import request_params
from .shapes import shaped
from .state import LOCK, current

SERVICE = "codedeploy"
PAGE_SIZE = 100
MAX_BATCH = 25
_PAGING_ERROR = "InvalidNextTokenException"


def deployment_of(self: Any, params: dict[str, Any], must_have_started: bool = False) -> DeploymentInfo:
    """The request's deployment, with the errors CodeDeploy gives for a missing or unknown id."""
    deployment_id = params.get("deploymentId")
    if not deployment_id:
        raise AwsError("DeploymentIdRequiredException", "At least one deployment ID must be specified.")
    found: DeploymentInfo | None = self.codedeploy_backend.deployments.get(deployment_id)
    if found is None:
        raise AwsError(
            "DeploymentDoesNotExistException",
            f"The deployment {deployment_id} does not exist with the user or AWS account.",
        )
    if must_have_started and found.status in ("Created", "Queued"):
        raise AwsError("DeploymentNotStartedException", f"The deployment {deployment_id} has not started.")
    return found


def _arn(self: Any, instance_id: str) -> str:
    return f"arn:aws:ec2:{self.region}:{self.current_account}:instance/{instance_id}"


def stop_deployment(self: Any) -> ActionResult:
    params = request_params(self, SERVICE, "StopDeployment")
    with LOCK:
        deployment = deployment_of(self, params)
        if deployment.status in model.DONE_STATUSES:
            raise AwsError("DeploymentAlreadyCompletedException", f"The deployment {deployment.deployment_id} ended.")
        deployments.localaws_data(deployment).stop_rollback = bool(params.get("autoRollbackEnabled", False))
        deployments.finish(deployment, "Stopped", {"code": "MANUAL_STOP", "message": "The deployment was stopped."})
    return shaped(SERVICE, "StopDeployment", {"status": "Pending", "statusMessage": "Stop request is pending."})


def continue_deployment(self: Any) -> ActionResult:
    params = request_params(self, SERVICE, "ContinueDeployment")
    with LOCK:
        deployment = deployment_of(self, params)
        if deployment.status in model.DONE_STATUSES:
            raise AwsError("DeploymentAlreadyCompletedException", f"The deployment {deployment.deployment_id} ended.")
        if deployment.status != "Ready":
            raise AwsError("DeploymentIsNotInReadyStateException", "The deployment is not in the Ready state.")
        deployments.finish(deployment, "InProgress", None)
    return EmptyResult()


def _targets_with_status(deployment: DeploymentInfo, wanted: list[str] | None) -> list[str]:
    return [iid for iid, spec in deployments.specs(deployment) if not wanted or spec["status"] in wanted]


def list_deployment_targets(self: Any) -> ActionResult:
    params = request_params(self, SERVICE, "ListDeploymentTargets")
    filters: dict[str, list[str]] = params.get("targetFilters") or {}
    with LOCK:
        deployment = deployment_of(self, params, must_have_started=True)
        ids = _targets_with_status(deployment, filters.get("TargetStatus"))
        if filters.get("ServerInstanceLabel"):
            ids = []  # in-place deployments have no Blue/Green labels
        chosen, token = page(
            ids, "ListDeploymentTargets", PAGE_SIZE, params.get("nextToken"), "InvalidNextTokenException"
        )
    result: dict[str, Any] = {"targetIds": chosen}
    if token:
        result["nextToken"] = token
    return shaped(SERVICE, "ListDeploymentTargets", result)


def list_deployment_instances(self: Any) -> ActionResult:
    params = request_params(self, SERVICE, "ListDeploymentInstances")
    with LOCK:
        deployment = deployment_of(self, params, must_have_started=True)
        ids = _targets_with_status(deployment, params.get("instanceStatusFilter"))
        if params.get("instanceTypeFilter"):
            ids = []
        chosen, token = page(ids, "ListDeploymentInstances", PAGE_SIZE, params.get("nextToken"), _PAGING_ERROR)
    result: dict[str, Any] = {"instancesList": chosen}
    if token:
        result["nextToken"] = token
    return shaped(SERVICE, "ListDeploymentInstances", result)


def _target_views(self: Any, deployment: DeploymentInfo, target_ids: list[str]) -> list[dict[str, Any]]:
    known = dict(deployments.specs(deployment))
    moment = deployment.complete_time or deployment.start_time or deployment.create_time
    views = []
    for target_id in target_ids:
        if target_id not in known:
            raise AwsError("DeploymentTargetDoesNotExistException", f"The target {target_id} does not exist.")
        views.append(
            model.instance_target(deployment.deployment_id, target_id, _arn(self, target_id), known[target_id], moment)
        )
    return views


def batch_get_deployment_targets(self: Any) -> ActionResult:
    params = request_params(self, SERVICE, "BatchGetDeploymentTargets")
    target_ids: list[str] = params.get("targetIds") or []
    if not target_ids:
        raise AwsError("DeploymentTargetIdRequiredException", "A deployment target ID was not provided.")
    if len(target_ids) > MAX_BATCH:
        raise AwsError("DeploymentTargetListSizeExceededException", f"At most {MAX_BATCH} target ids per call.")
    with LOCK:
        deployment = deployment_of(self, params, must_have_started=True)
        views = _target_views(self, deployment, target_ids)
    return shaped(SERVICE, "BatchGetDeploymentTargets", {"deploymentTargets": views})


def get_deployment_target(self: Any) -> ActionResult:
    params = request_params(self, SERVICE, "GetDeploymentTarget")
    if not params.get("targetId"):
        raise AwsError("DeploymentTargetIdRequiredException", "A deployment target ID was not provided.")
    with LOCK:
        deployment = deployment_of(self, params, must_have_started=True)
        [view] = _target_views(self, deployment, [params["targetId"]])
    return shaped(SERVICE, "GetDeploymentTarget", {"deploymentTarget": view})


def put_lifecycle_event_hook_execution_status(self: Any) -> ActionResult:
    params = request_params(self, SERVICE, "PutLifecycleEventHookExecutionStatus")
    hook_id = params.get("lifecycleEventHookExecutionId")
    status = params.get("status")
    with LOCK:
        deployment = deployment_of(self, params)
        if deployment.application.compute_platform not in ("Lambda", "ECS"):
            raise AwsError(
                "UnsupportedActionForDeploymentTypeException",
                "Lifecycle hook status can only be reported for Lambda and ECS deployments.",
            )
        if not hook_id:
            raise AwsError(
                "InvalidLifecycleEventHookExecutionIdException", "A lifecycle hook execution id is required."
            )
        if status not in ("Succeeded", "Failed"):
            raise AwsError(
                "InvalidLifecycleEventHookExecutionStatusException", "The status must be Succeeded or Failed."
            )
        recorded = current().hook_statuses
        key = (deployment.deployment_id, hook_id)
        if key in recorded:
            raise AwsError("LifecycleEventAlreadyCompletedException", f"The lifecycle event {hook_id} already ended.")
        recorded[key] = status
    return shaped(SERVICE, "PutLifecycleEventHookExecutionStatus", {"lifecycleEventHookExecutionId": hook_id})


def deployment_info_with_outcome(moto_info: Any) -> Any:
    """Wrap moto's ``_deployment_info`` so GetDeployment/BatchGetDeployments carry errorInformation."""

    def _deployment_info(deployment: DeploymentInfo) -> dict[str, Any]:
        info: dict[str, Any] = moto_info(deployment)
        error = deployments.localaws_data(deployment).error
        info["errorInformation"] = dict(error) if error else {}
        if info.get("startTime") is None:
            info.pop("startTime", None)
        if info.get("completeTime") is None:
            info.pop("completeTime", None)
        return info

    return _deployment_info


METHODS: dict[str, Any] = {
    "stop_deployment": stop_deployment,
    "continue_deployment": continue_deployment,
    "list_deployment_targets": list_deployment_targets,
    "list_deployment_instances": list_deployment_instances,
    "batch_get_deployment_targets": batch_get_deployment_targets,
    "get_deployment_target": get_deployment_target,
    "put_lifecycle_event_hook_execution_status": put_lifecycle_event_hook_execution_status,
}
