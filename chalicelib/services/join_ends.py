"""How a new instance's join ends: its result decided once, then its lifecycle action completed once.

Apart from services/instance_joins.py because every handler that can settle a join deployment (the SSM events, the
pipeline job, the REST API, the retry Lambda) calls `deployment_ended`: it needs the join record and Auto Scaling,
never what starting a join reads (the targets, EC2, SSM's managed nodes).

`completed` is saved before CompleteLifecycleAction is called, so no two handlers call it; a call that fails gives the
claim back and a scheduled look (a `join` payload) completes it, within MAX_COMPLETION_LOOKS looks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from chalicelib.adapters.autoscaling import LifecycleActions
from chalicelib.adapters.scheduler import RetryScheduler
from chalicelib.adapters.store import DeploymentStore
from chalicelib.domain.deployment import Deployment, DeploymentStatus
from chalicelib.domain.errors import AwsCallFailed, BerthError, Conflict
from chalicelib.domain.join import JoinPolicy, JoinRecord, Result
from chalicelib.domain.retry import schedule_name
from chalicelib.domain.retry_payload import JoinLook
from chalicelib.services.outcome import Outcome
from chalicelib.services.places import Located, placed_lifecycle

logger = logging.getLogger(__name__)
KEEP_RECORD = timedelta(days=7)
MAX_COMPLETION_LOOKS = 40       # scheduled looks in all, beyond which a failing completion is left to the heartbeat


class JoinEnds:
    def __init__(self, store: DeploymentStore, lifecycle: LifecycleActions, scheduler: RetryScheduler | None,
                 clock: Callable[[], datetime], policy: JoinPolicy | None = None,
                 located: Located | None = None) -> None:
        self._store = store
        self._lifecycle = placed_lifecycle(lifecycle, located)
        self._scheduler = scheduler
        self._clock = clock
        self._policy = policy or JoinPolicy()

    @property
    def can_look(self) -> bool:
        return self._scheduler is not None

    def deployment_ended(self, deployment: Deployment) -> None:
        """Called once a deployment's end is saved. Never raises: the end is settled whatever happens here; a
        completion that fails is taken up again by a scheduled look."""
        ids = deployment.spec.instances.ids or []
        if deployment.trigger != "join" or len(ids) != 1:
            return
        try:
            for _ in range(3):
                record = self._store.get_join(ids[0])
                if (record is None or record.result is not None or record.target != deployment.target
                        or record.deployment_id not in (None, deployment.deployment_id)
                        or deployment.created_at < record.first_seen):    # a deployment of an earlier launch
                    return
                try:
                    self.end_with(record, deployment)
                    return
                except Conflict:
                    continue
        except BerthError as exc:
            logger.error("could not complete a join after its deployment ended",
                         extra={"deployment_id": deployment.deployment_id, "error": exc.message})

    def end_with(self, record: JoinRecord, deployment: Deployment) -> Outcome:
        succeeded = deployment.status == DeploymentStatus.SUCCEEDED
        return self.end(record, "CONTINUE" if succeeded else "ABANDON",
                        f"deployment {deployment.deployment_id} {deployment.status.value}"
                        + ("" if succeeded else f": {deployment.message[:500]}"))

    def end(self, record: JoinRecord, result: Result, detail: str) -> Outcome:
        record = self.save(record.ended(result, detail))
        logger.info("join decided", extra={"instance_id": record.instance_id, "result": result, "detail": detail})
        return self.complete(record)

    def complete(self, record: JoinRecord) -> Outcome:
        """Complete the lifecycle action once: the claim (`completed`) is saved before the call."""
        if not record.to_complete:
            return Outcome("joined" if record.result == "CONTINUE" else "refused", record.detail)
        assert record.hook is not None and record.result is not None
        claimed = self.save(record.completion_claimed())
        try:
            done = self._lifecycle.at(record.location, record.instance_id).complete(record.hook, record.instance_id,
                                                                                    record.result)
        except AwsCallFailed as exc:    # give the claim back and look again: the completion is still owed
            logger.warning("CompleteLifecycleAction failed; looking again", extra={
                "instance_id": record.instance_id, "error": exc.message})
            return self._complete_later(self.save(claimed.completion_claimed(False)), exc.message)
        # The token only at debug level: it is no secret, but it is what completes the action.
        logger.debug("lifecycle action completed", extra={"instance_id": record.instance_id,
                                                          "token": record.hook.token, "result": record.result})
        note = "" if done else " (the lifecycle action was no longer waiting)"
        return Outcome("joined" if record.result == "CONTINUE" else "refused",
                       f"{record.detail}; lifecycle action {record.result}{note}")

    def schedule_look(self, record: JoinRecord, now: datetime) -> int:
        """Schedule the join's next look; its number. ScheduleTaken when the name holds another look."""
        assert self._scheduler is not None, "check can_look first"
        look = JoinLook(instance_id=record.instance_id, launch=int(record.launched_at.timestamp()),
                        attempt=record.looks + 1)
        self._scheduler.schedule(schedule_name(record.lineage, look.attempt),
                                 now + timedelta(seconds=self._policy.look_seconds), look, now)
        return look.attempt

    def save(self, record: JoinRecord) -> JoinRecord:
        expires = int((self._clock() + KEEP_RECORD).timestamp())
        return self._store.save_join(record, expires)

    def _complete_later(self, record: JoinRecord, error: str) -> Outcome:
        """A look that finds the result decided and the action not completed completes it (bounded)."""
        if self._scheduler is None or record.looks >= MAX_COMPLETION_LOOKS:
            return Outcome("gave-up", f"completing the lifecycle action failed: {error}")
        self.schedule_look(record, self._clock())
        return Outcome("retry-scheduled", f"completing the lifecycle action failed ({error}); look again scheduled")
