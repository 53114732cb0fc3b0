"""The ssm_command_events Lambda: an SSM command changed status, so the deployment it belongs to is refreshed (which
settles it or retries it)."""

from __future__ import annotations

import logging

from chalicelib.adapters.store import DeploymentStore
from chalicelib.domain.deployment import Deployment
from chalicelib.domain.errors import Conflict, StrangerEvent
from chalicelib.domain.events import SsmCommandEvent
from chalicelib.domain.spec.location import Home, lives_in
from chalicelib.services.deployments import DeploymentService
from chalicelib.services.outcome import Outcome

logger = logging.getLogger(__name__)


class SsmCommandFollower:
    def __init__(self, store: DeploymentStore, deployments: DeploymentService, home: Home | None = None) -> None:
        self._store = store
        self._deployments = deployments
        self._home = home or Home("", "")

    def on_event(self, event: SsmCommandEvent) -> Outcome:
        deployment_id = self._store.find_command(event.detail.command_id)
        if deployment_id is None:
            return Outcome("ignored", f"command {event.detail.command_id} is not berth's")

        def from_its_place(deployment: Deployment) -> None:
            """A command id names one command, but only in its own account and region: the event must come from
            where the deployment's target lives (member accounts forward their events to berth's bus)."""
            if not lives_in(deployment.spec.location, event.account, event.region, self._home):
                raise StrangerEvent(f"command {event.detail.command_id} reported from account {event.account or '?'}"
                                    f", region {event.region or '?'}, where target {deployment.target} does not live")

        for _ in range(3):
            try:
                deployment = self._deployments.follow(deployment_id, from_its_place).deployment
                return Outcome("recorded", f"deployment {deployment_id} is {deployment.status.value}")
            except StrangerEvent as stranger:
                logger.warning("an SSM event from elsewhere than its target: ignored", extra={
                    "account": event.account, "region": event.region, "deployment_id": deployment_id})
                return Outcome("ignored", stranger.message)
            except Conflict:
                continue     # another follower (the pipeline job, a duplicate event) wrote first: read again
        raise Conflict(f"deployment {deployment_id} kept changing; EventBridge will deliver again")
