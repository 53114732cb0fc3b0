"""CodeDeploy: what a deployment was, why its instances failed, and creating a deployment again.

CreateDeployment has no idempotency token: it goes through a client that makes one attempt (wiring), and an answer
that never came is CallUnanswered, after which the deployment is looked for by its description.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.adapters.errors import aws_call, raising
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
    create_time: float | None = None     # epoch seconds, as CodeDeploy sends it


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
    def __init__(self, codedeploy_client: Any, codedeploy_client_for_creating: Callable[[], Any]) -> None:
        """`codedeploy_client_for_creating` gives the client CreateDeployment goes through: one that makes a single
        attempt."""
        self._cd = codedeploy_client
        self._creator = codedeploy_client_for_creating

    def deployment(self, deployment_id: str) -> CodeDeployInfo:
        info = self._call("GetDeployment", self._cd.get_deployment, deploymentId=deployment_id)["deploymentInfo"]
        error = info.get("errorInformation") or {}
        return CodeDeployInfo(
            deployment_id=deployment_id, application=info.get("applicationName", ""),
            group=info.get("deploymentGroupName", ""), status=info.get("status", ""),
            creator=info.get("creator", ""), revision=info.get("revision") or {},
            error_code=error.get("code", ""), error_message=error.get("message", ""),
            description=info.get("description", ""), create_time=_epoch(info.get("createTime")))

    def deployments_since(self, application: str, group: str, since: float) -> list[str]:
        """Ids of the group's deployments created at or after `since` (epoch seconds), whatever their state."""
        ids: list[str] = []
        kwargs: dict[str, Any] = {"applicationName": application, "deploymentGroupName": group,
                                  "createTimeRange": {"start": since}}
        while True:
            page = self._call("ListDeployments", self._cd.list_deployments, **kwargs)
            ids += page.get("deployments", [])
            if not page.get("nextToken"):
                return ids
            kwargs["nextToken"] = page["nextToken"]

    def find_by_description(self, application: str, group: str, since: float, description: str) -> str | None:
        """The group's deployment created since `since` with this description (berth's retries name theirs)."""
        ids = self.deployments_since(application, group, since)
        for start in range(0, len(ids), 25):
            batch = self._call("BatchGetDeployments", self._cd.batch_get_deployments,
                               deploymentIds=ids[start:start + 25])
            for info in batch.get("deploymentsInfo", []):
                if info.get("description") == description:
                    return str(info["deploymentId"])
        return None

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
        busy = raising(lambda _exc: Conflict(
            f"deployment group {application}/{group} already has a deployment in progress"))
        created = aws_call("CodeDeploy CreateDeployment",
                           lambda **params: self._creator().create_deployment(**params), may_have_run=True,
                           expected={"DeploymentLimitExceededException": busy}, applicationName=application,
                           deploymentGroupName=group, revision=revision, description=description[:100])
        return str(created["deploymentId"])

    def put_hook_status(self, deployment_id: str, hook_execution_id: str, succeeded: bool) -> None:
        self._call("PutLifecycleEventHookExecutionStatus", self._cd.put_lifecycle_event_hook_execution_status,
                   deploymentId=deployment_id, lifecycleEventHookExecutionId=hook_execution_id,
                   status="Succeeded" if succeeded else "Failed")

    @staticmethod
    def _call(operation: str, method: Any, **kwargs: Any) -> Any:
        return aws_call(f"CodeDeploy {operation}", method, **kwargs)


def _epoch(value: Any) -> float | None:
    """CodeDeploy's timestamps as berth's session leaves them (epoch seconds), or an ISO string or datetime."""
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            try:
                return datetime.fromisoformat(value).timestamp()
            except ValueError:
                return None
    return None


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
