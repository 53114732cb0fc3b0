"""CodeDeploy in memory, behind CodeDeployGateway: the deployments the lifecycle hook reads, and the hook statuses
it reports. Only those two calls are covered."""

from __future__ import annotations

from typing import NoReturn

from chalicelib.adapters.codedeploy import CodeDeployGateway, CodeDeployInfo
from chalicelib.domain.errors import AwsCallFailed


class FakeCodeDeploy(CodeDeployGateway):
    def __init__(self) -> None:
        super().__init__(codedeploy_client=None, codedeploy_client_for_creating=lambda: None)
        self.deployments: dict[str, CodeDeployInfo] = {}
        self.hook_statuses: dict[tuple[str, str], str] = {}

    def add(self, deployment_id: str, application: str, group: str, status: str = "InProgress") -> None:
        self.deployments[deployment_id] = CodeDeployInfo(deployment_id, application, group, status, "user", {}, "", "")

    def deployment(self, deployment_id: str) -> CodeDeployInfo:
        if deployment_id not in self.deployments:
            self._missing("GetDeployment", deployment_id)
        return self.deployments[deployment_id]

    def put_hook_status(self, deployment_id: str, hook_execution_id: str, succeeded: bool) -> None:
        if deployment_id not in self.deployments:
            self._missing("PutLifecycleEventHookExecutionStatus", deployment_id)
        self.hook_statuses[(deployment_id, hook_execution_id)] = "Succeeded" if succeeded else "Failed"

    @staticmethod
    def _missing(operation: str, deployment_id: str) -> NoReturn:
        raise AwsCallFailed(f"CodeDeploy {operation} failed with DeploymentDoesNotExist: "
                            f"The deployment {deployment_id} could not be found.")
