"""The SSM retry case: a failed attempt of berth's own deployment goes through the one retry path (services/retries.py)
and, when retried, becomes the deployment's next attempt. The deployment stays open (RETRYING) and keeps holding its
target until the retry is due, so nothing else deploys there in between.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib.adapters.store import DeploymentStore
from chalicelib.domain import transitions
from chalicelib.domain.deployment import Deployment
from chalicelib.domain.retry import Failure, GiveUp, Retry, RetryDecision, classify_attempt, remedy_of, schedule_name
from chalicelib.domain.retry_payload import SsmRetry
from chalicelib.services.deployment_ends import DeploymentEnds
from chalicelib.services.retries import Retrier, RetryCase
from chalicelib.services.target_lock import TargetLock


class AttemptRetries:
    def __init__(self, store: DeploymentStore, lock: TargetLock, lock_slack_seconds: int, ends: DeploymentEnds,
                 retries: Retrier | None) -> None:
        self._store = store
        self._lock = lock
        self._lock_slack = lock_slack_seconds
        self._ends = ends
        self._retries = retries

    def after_failure(self, deployment: Deployment, message: str, now: datetime) -> Deployment:
        """A failed attempt either becomes a scheduled retry (the deployment stays open, holding its target until the
        retry is due) or the final failure."""
        if self._retries is None:
            return self._ends.failed(deployment, now, message)
        attempt = deployment.attempts[-1]
        failure = Failure(classify_attempt(attempt, deployment.attempts[:-1]),
                          is_rollback=deployment.trigger == "rollback", remedy=remedy_of(attempt))
        return self._retries.handle(FailedAttempt(
            failure=failure, attempts_made=len(deployment.attempts), lineage=deployment.deployment_id,
            target=deployment.target, budget=deployment.spec.retry, retries=self, deployment=deployment,
            message=message), now)

    def count_failure(self, deployment: Deployment, at: datetime) -> None:
        """A deployment that ended without succeeding and is not retried counts toward its target's breaker."""
        if self._retries is not None:
            self._retries.record_failure(deployment.target, at, open_breaker=False)

    def hold_through_freeze(self, deployment: Deployment, attempt: int, until: datetime, now: datetime) -> bool:
        """A retry that came due while its target is frozen: keep the target and schedule the same retry again for
        `until` (domain/freeze.py). False when it cannot be held (no scheduler, or the target moved on): the retry
        then goes ahead as it would have."""
        if self._retries is None or not self._retries.schedules:
            return False
        if not self._lock.hold(deployment, now, until=until + timedelta(seconds=self._lock_slack)):
            return False
        name = schedule_name(deployment.deployment_id, attempt, int(until.timestamp()))
        self._retries.schedule(name, until, SsmRetry(deployment_id=deployment.deployment_id, attempt=attempt), now)
        self._store.save_deployment(transitions.noted(
            deployment, [("retry-held", f"attempt {attempt} held until {until.isoformat()}: the target is frozen")],
            f"scheduled retry, attempt {attempt}", now))
        return True

    def hold_for_retry(self, deployment: Deployment, decision: RetryDecision, now: datetime) -> RetryDecision:
        if isinstance(decision, Retry) and not self._lock.hold(
                deployment, now, until=decision.at + timedelta(seconds=self._lock_slack)):
            return GiveUp(self._lock.moved_on(deployment))
        return decision

    def decided(self, deployment: Deployment, message: str, failure: Failure, decision: RetryDecision,
                schedule: str, now: datetime) -> Deployment:
        cause = f"attempt {len(deployment.attempts)} failed ({failure.failure_class.value}): {message[:500]}"
        if isinstance(decision, GiveUp):
            return self._ends.settle(deployment, transitions.gave_up(
                deployment, f"{message} Gave up: {decision.reason}.", decision.reason, cause, now))
        return self._store.save_deployment(transitions.retry_scheduled(deployment, message, decision, schedule, cause,
                                                                        now))


@dataclass
class FailedAttempt(RetryCase[Deployment]):
    """A failed attempt of berth's own deployment: retried as the deployment's next attempt, which keeps the target
    until it is due."""

    retries: AttemptRetries
    deployment: Deployment
    message: str

    def subject(self) -> Deployment:
        return self.deployment

    def hold(self, decision: RetryDecision, now: datetime) -> RetryDecision:
        return self.retries.hold_for_retry(self.deployment, decision, now)

    def task(self, retry: Retry) -> SsmRetry:
        return SsmRetry(deployment_id=self.deployment.deployment_id, attempt=retry.attempt)

    def settle(self, decision: RetryDecision, schedule: str, now: datetime) -> Deployment:
        return self.retries.decided(self.deployment, self.message, self.failure, decision, schedule, now)
