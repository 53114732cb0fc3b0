"""Looks: a rollout in waves started without a pipeline job advances on its own, through one-time schedules.

A pipeline's rollout is refreshed by its job's continuations (every ~30 s); any rollout is refreshed by SSM's command
event when a wave's (or the rollback's) command is over, and by `GET /deployments/{id}`. A REST rollout that bakes, or
waits for its cancelled wave to wind down, gets none of these: nothing would ever end its bake. So after every refresh
of such a deployment (DeploymentService.follow), `Looks.after_refresh` asks the domain when it must next be looked at
(`domain.rollout.next_look`) and creates an EventBridge Scheduler one-time schedule for that moment, invoking the
retry_deployment Lambda with a `LookAgain` payload; that Lambda follows the deployment again (`Looks.look`), which
schedules the next look, until the rollout sends its next wave (SSM's event takes over) or ends. No Lambda sleeps.

The schedule's name comes from the deployment, its wave and phase and the moment asked for (`LookAgain.schedule_name`).
Looks fall on a one-minute grid (or the bake's end), so refreshes asking within the same minute ask for the same look:
the second create is a ConflictException, "already scheduled". A look that fires schedules the next minute's, which a
refresh may have created already: at most one look fires per minute of a phase, and the chain never doubles. A look
that finds the deployment final or in another wave or phase does nothing. Schedules delete themselves after firing.

A look that cannot be scheduled (Scheduler failing, or retries not configured) is logged and does not fail the refresh
that asked for it: the deployment is saved already, and the next refresh (a GET, `berth ... --wait`, an event) still
advances it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from chalicelib.adapters.scheduler import RetryScheduler
from chalicelib.domain.deployment import Deployment, DeploymentStatus
from chalicelib.domain.errors import BerthError
from chalicelib.domain.retry_payload import LookAgain
from chalicelib.domain.rollout import next_look

logger = logging.getLogger(__name__)


class LookNotDue(BerthError):
    """The deployment a look was scheduled for is final, or its rollout has moved to another wave or phase."""


class Looks:
    def __init__(self, scheduler: RetryScheduler | None, clock: Callable[[], datetime]) -> None:
        self._scheduler = scheduler
        self._clock = clock

    def after_refresh(self, deployment: Deployment, looking: LookAgain | None = None) -> None:
        """Schedule the next look at `deployment` when it waits in a phase no event ends and no pipeline job
        refreshes. `looking`: the look this refresh is carrying out, if it is one."""
        rollout = deployment.rollout
        if deployment.job_id is not None or rollout is None or deployment.status != DeploymentStatus.IN_PROGRESS:
            return
        now = self._clock()
        at = next_look(deployment.spec.rollout, rollout, now)
        if at is None:
            return
        moment = int(at.timestamp())
        if looking is not None and moment <= looking.at:
            # This look came before its moment (clocks differ by a little): the next one must be another schedule,
            # or its name would be taken by the very schedule that just fired.
            moment = looking.at + 1
        task = LookAgain(deployment_id=deployment.deployment_id, wave=rollout.wave, phase=rollout.phase.value,
                         at=moment)
        if self._scheduler is None:
            logger.warning("no look scheduled: automatic retries are not configured, so this rollout advances only "
                           "when it is refreshed (GET /deployments/{id}, berth ... --wait)",
                           extra={"deployment_id": deployment.deployment_id, "phase": task.phase})
            return
        try:
            self._scheduler.schedule(task.schedule_name(), datetime.fromtimestamp(moment, UTC), task, now)
        except BerthError as exc:
            # The refresh stands: its record is saved, and the next refresh or event still advances the rollout.
            logger.error("could not schedule the next look at a waiting rollout; it advances on its next refresh",
                         extra={"deployment_id": deployment.deployment_id, "phase": task.phase,
                                "error": exc.message})

    @staticmethod
    def accept(task: LookAgain) -> Callable[[Deployment], None]:
        """For DeploymentService.follow: refuse (LookNotDue) a deployment that no longer waits where `task` looks."""

        def check(deployment: Deployment) -> None:
            rollout = deployment.rollout
            if deployment.status != DeploymentStatus.IN_PROGRESS or rollout is None or rollout.wave != task.wave \
                    or rollout.phase.value != task.phase:
                raise LookNotDue(f"deployment {task.deployment_id} is {deployment.status.value}"
                                 + (f", {rollout.label()}" if rollout is not None else "")
                                 + f": the look for wave {task.wave} {task.phase} is not due")

        return check

