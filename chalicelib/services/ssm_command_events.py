"""The ssm_command_events Lambda: an SSM command changed status, so the deployment it belongs to is refreshed (which
settles it or retries it)."""

from __future__ import annotations

from chalicelib.adapters.store import DeploymentStore
from chalicelib.domain.errors import Conflict
from chalicelib.domain.events import SsmCommandEvent
from chalicelib.services.deployments import DeploymentService
from chalicelib.services.outcome import Outcome


class SsmCommandFollower:
    def __init__(self, store: DeploymentStore, deployments: DeploymentService) -> None:
        self._store = store
        self._deployments = deployments

    def on_event(self, event: SsmCommandEvent) -> Outcome:
        deployment_id = self._store.find_command(event.detail.command_id)
        if deployment_id is None:
            return Outcome("ignored", f"command {event.detail.command_id} is not berth's")
        for _ in range(3):
            try:
                deployment = self._deployments.follow(deployment_id).deployment
                return Outcome("recorded", f"deployment {deployment_id} is {deployment.status.value}")
            except Conflict:
                continue     # another follower (the pipeline job, a duplicate event) wrote first: read again
        raise Conflict(f"deployment {deployment_id} kept changing; EventBridge will deliver again")
