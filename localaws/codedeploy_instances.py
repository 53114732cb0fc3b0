"""GetDeploymentInstance and BatchGetDeploymentInstances: the older per-instance view of a deployment.

Same data as the deployment-target calls, in ``InstanceSummary`` form, where ``instanceId`` is the EC2
instance ARN (callers may pass the plain id or the ARN).
"""

from __future__ import annotations

from typing import Any

from moto.codedeploy.models import DeploymentInfo
from moto.core.responses import ActionResult

from . import codedeploy_deployments as deployments
from . import codedeploy_model as model
from .codedeploy import deployment_of
from .errors import AwsError
from .params import request_params
from .shapes import shaped
from .state import LOCK

SERVICE = "codedeploy"
MAX_BATCH = 25


def _summaries(self: Any, deployment: DeploymentInfo, wanted: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Summaries of the wanted instances that are in the deployment, and the ones that are not."""
    known = dict(deployments.specs(deployment))
    moment = deployment.complete_time or deployment.start_time or deployment.create_time
    found, missing = [], []
    for name in wanted:
        instance_id = name.rsplit("/", 1)[-1]
        if instance_id not in known:
            missing.append(name)
            continue
        spec = known[instance_id]
        found.append(
            {
                "deploymentId": deployment.deployment_id,
                "instanceId": f"arn:aws:ec2:{self.region}:{self.current_account}:instance/{instance_id}",
                "status": spec["status"],
                "lastUpdatedAt": moment,
                "lifecycleEvents": model.lifecycle_events(spec, moment),
            }
        )
    return found, missing


def get_deployment_instance(self: Any) -> ActionResult:
    params = request_params(self, SERVICE, "GetDeploymentInstance")
    if not params.get("instanceId"):
        raise AwsError("InstanceIdRequiredException", "An instance ID was not specified.")
    with LOCK:
        deployment = deployment_of(self, params)
        found, _ = _summaries(self, deployment, [params["instanceId"]])
    if not found:
        raise AwsError(
            "InstanceDoesNotExistException", f"The instance {params['instanceId']} is not in the deployment."
        )
    return shaped(SERVICE, "GetDeploymentInstance", {"instanceSummary": found[0]})


def batch_get_deployment_instances(self: Any) -> ActionResult:
    params = request_params(self, SERVICE, "BatchGetDeploymentInstances")
    wanted: list[str] = params.get("instanceIds") or []
    if not wanted:
        raise AwsError("InstanceIdRequiredException", "An instance ID was not specified.")
    if len(wanted) > MAX_BATCH:
        raise AwsError("BatchLimitExceededException", f"At most {MAX_BATCH} instance ids per call.")
    with LOCK:
        found, missing = _summaries(self, deployment_of(self, params), wanted)
    result: dict[str, Any] = {"instancesSummary": found}
    if missing:
        result["errorMessage"] = f"Instances not in the deployment: {', '.join(missing)}"
    return shaped(SERVICE, "BatchGetDeploymentInstances", result)


METHODS: dict[str, Any] = {
    "get_deployment_instance": get_deployment_instance,
    "batch_get_deployment_instances": batch_get_deployment_instances,
}
