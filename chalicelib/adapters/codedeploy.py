"""CodeDeploy: what a deployment was, why its instances failed, and creating a deployment again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.adapters.errors import aws_failure, error_code
from chalicelib.domain.errors import Conflict
from chalicelib.domain.retry import FailureSignal

# CodeDeploy's creator for deployments it starts itself to roll back.
ROLLBACK_CREATORS = frozenset({"autoRollback", "codeDeployRollback"})


@dataclass(frozen=True)
class CodeDeployInfo:
    deployment_id: str
    application: str
    group: str
    status: str
    creator: str
    revision: dict[str, Any]
    error_code: str
    error_message: str
    description: str = ""

    @property
    def is_rollback(self) -> bool:
        return self.creator in ROLLBACK_CREATORS

    @property
    def stopped_by_person(self) -> bool:
        return self.status == "Stopped" or self.error_code == "MANUAL_STOP"


@dataclass(frozen=True)
class InstanceFailure:
    instance_id: str
    signal: FailureSignal
    lifecycle_event: str


class CodeDeployGateway:
    def __init__(self, codedeploy_client: Any) -> None:
        self._cd = codedeploy_client

    def deployment(self, deployment_id: str) -> CodeDeployInfo:
        info = self._call("GetDeployment", self._cd.get_deployment, deploymentId=deployment_id)["deploymentInfo"]
        error = info.get("errorInformation") or {}
        return CodeDeployInfo(
            deployment_id=deployment_id, application=info.get("applicationName", ""),
            group=info.get("deploymentGroupName", ""), status=info.get("status", ""),
            creator=info.get("creator", ""), revision=info.get("revision") or {},
            error_code=error.get("code", ""), error_message=error.get("message", ""),
            description=info.get("description", ""))

    def failed_instances(self, deployment_id: str) -> list[InstanceFailure]:
        """The failed lifecycle events of every instance target, with CodeDeploy's diagnostics."""
        target_ids: list[str] = []
        kwargs: dict[str, Any] = {"deploymentId": deployment_id}
        while True:
            page = self._call("ListDeploymentTargets", self._cd.list_deployment_targets, **kwargs)
            target_ids += page.get("targetIds", [])
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        failures: list[InstanceFailure] = []
        for start in range(0, len(target_ids), 25):
            batch = self._call("BatchGetDeploymentTargets", self._cd.batch_get_deployment_targets,
                               deploymentId=deployment_id, targetIds=target_ids[start:start + 25])
            for target in batch.get("deploymentTargets", []):
                instance = target.get("instanceTarget") or {}
                failures += _failures_of(instance)
        return failures

    def create_deployment(self, application: str, group: str, revision: dict[str, Any], description: str) -> str:
        try:
            return str(self._cd.create_deployment(applicationName=application, deploymentGroupName=group,
                                                  revision=revision, description=description[:100])["deploymentId"])
        except ClientError as exc:
            if error_code(exc) == "DeploymentLimitExceededException":
                raise Conflict(f"deployment group {application}/{group} already has a deployment in progress") \
                    from None
            raise aws_failure("CodeDeploy CreateDeployment", exc) from exc
        except BotoCoreError as exc:
            raise aws_failure("CodeDeploy CreateDeployment", exc) from exc

    def put_hook_status(self, deployment_id: str, hook_execution_id: str, succeeded: bool) -> None:
        self._call("PutLifecycleEventHookExecutionStatus", self._cd.put_lifecycle_event_hook_execution_status,
                   deploymentId=deployment_id, lifecycleEventHookExecutionId=hook_execution_id,
                   status="Succeeded" if succeeded else "Failed")

    @staticmethod
    def _call(operation: str, method: Any, **kwargs: Any) -> Any:
        try:
            return method(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise aws_failure(f"CodeDeploy {operation}", exc) from exc


def _failures_of(instance: dict[str, Any]) -> list[InstanceFailure]:
    instance_id = str(instance.get("targetId") or instance.get("targetArn", "").rsplit("/", 1)[-1])
    failures = []
    for event in instance.get("lifecycleEvents", []):
        if event.get("status") != "Failed":
            continue
        diagnostics = event.get("diagnostics") or {}
        failures.append(InstanceFailure(instance_id, FailureSignal(
            status="Failed", error_code=diagnostics.get("errorCode", ""),
            script_name=diagnostics.get("scriptName", ""),
            text=f"{diagnostics.get('message', '')}\n{diagnostics.get('logTail', '')}"),
            lifecycle_event=str(event.get("lifecycleEventName", ""))))
    return failures
