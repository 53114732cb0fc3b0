"""How a deployment ends: the target settled first (its revision, instance map and lock, in one transaction), then
the record. A success lists the instances it left behind (domain/fleet.py) in its record and message.

Every end goes through `DeploymentEnds.settle`, whatever decided it (a refresh, a retry given up, a rollout in waves),
so each end is counted once and the target is never left held by a finished deployment.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from chalicelib.adapters.store import DeploymentStore
from chalicelib.domain import transitions
from chalicelib.domain.deployment import Deployment, DeploymentStatus
from chalicelib.domain.fleet import NAMED_INSTANCE_TRIGGERS, fleet_after, left_behind, reached, with_left_behind
from chalicelib.observability import Telemetry
from chalicelib.services.notifier import Notifier
from chalicelib.services.target_lock import TargetLock

logger = logging.getLogger(__name__)
# The metric each end counts (infra/resources.yaml alarms on DeploymentsFailed).
ENDED_METRICS = {DeploymentStatus.SUCCEEDED: "DeploymentsSucceeded", DeploymentStatus.FAILED: "DeploymentsFailed",
                 DeploymentStatus.CANCELLED: "DeploymentsCancelled",
                 DeploymentStatus.ROLLED_BACK: "DeploymentsRolledBack"}


class DeploymentEnds:
    def __init__(self, store: DeploymentStore, lock: TargetLock, telemetry: Telemetry,
                 on_end: Callable[[Deployment], None] | None = None, notifier: Notifier | None = None) -> None:
        """`on_end` is told of every end once it is saved (a new instance's join completes its lifecycle action);
        `notifier` publishes it (Deployment Succeeded, Failed, Rolled Back; Instance Joined)."""
        self._store = store
        self._lock = lock
        self._telemetry = telemetry
        self._on_end = on_end
        self._notifier = notifier or Notifier()

    def settle(self, deployment: Deployment, finished: Deployment) -> Deployment:
        """Persist a deployment's end (what a transition returned from `deployment`, the record as read)."""
        # The target first (its revision, instance map and lock, in one transaction), then the record: should
        # anything fail in between, the record is still open and the next refresh finishes it again, finding the
        # target settled. A sync or a join goes to named instances only: it never changes the target's revision.
        succeeded = finished.status == DeploymentStatus.SUCCEEDED
        revision = finished.revision if succeeded and finished.trigger not in NAMED_INSTANCE_TRIGGERS else None
        target = self._store.get_target(deployment.target)
        current = revision or (target.current_revision if target else None)
        fleet = fleet_after(target.fleet, finished, current) if target else None
        if fleet is not None and succeeded:
            finished = with_left_behind(finished, left_behind(fleet, current, reached(finished)))
        self._store.settle_target(deployment.target, deployment.deployment_id, revision, deployment.created_at, fleet)
        saved = self._store.save_deployment(finished)
        self._telemetry.count(ENDED_METRICS[finished.status])
        self._telemetry.seconds("DeploymentDurationSeconds",
                                (finished.updated_at - deployment.created_at).total_seconds())
        self._notifier.ended(saved)
        if self._on_end is not None:
            self._on_end(saved)
        return saved

    def failed(self, deployment: Deployment, now: datetime, message: str) -> Deployment:
        return self.settle(deployment, transitions.failed(deployment, message, now))

    def superseded(self, deployment: Deployment, now: datetime, what: str) -> Deployment:
        """The target moved on: this deployment must not act on it again. It ends FAILED, saying who took it."""
        reason = self._lock.moved_on(deployment)
        logger.warning("the target moved on; giving up", extra={"deployment_id": deployment.deployment_id,
                                                                 "reason": reason})
        finished = self.settle(deployment, transitions.gave_up(deployment, f"{what}: {reason}. Gave up.", reason, what,
                                                               now))
        self._telemetry.count("RetriesGivenUp")
        return finished
