"""Automatic retries of berth's own SSM deployments: what to decide when an attempt fails, and scheduling it.

The decision itself is pure (chalicelib.domain.retry); this module gathers its inputs (the target's recent failures and
breaker) and carries out its effects (an EventBridge Scheduler one-time schedule, the breaker's bookkeeping).
Exactly one retry per failed attempt: the deployment record moves from IN_PROGRESS to RETRYING by a version-checked
write, and the schedule's name is deterministic per deployment and attempt.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from chalicelib.adapters.scheduler import RetryScheduler
from chalicelib.adapters.store import DeploymentStore
from chalicelib.domain.deployment import Deployment
from chalicelib.domain.exit_codes import FailureClass
from chalicelib.domain.retry import (
    FailureSignal,
    GiveUp,
    Retry,
    RetryDecision,
    RetryPolicy,
    classify_failure,
    plan_retry,
    schedule_name,
)


@dataclass(frozen=True)
class BreakerPolicy:
    threshold: int = 5
    window_seconds: int = 3600


class SsmRetries:
    def __init__(self, store: DeploymentStore, scheduler: RetryScheduler | None, breaker: BreakerPolicy,
                 rng: Callable[[float, float], float]) -> None:
        self._store = store
        self._scheduler = scheduler
        self._breaker = breaker
        self._rng = rng

    def decide(self, deployment: Deployment, now: datetime) -> tuple[FailureClass, RetryDecision]:
        attempt = deployment.attempts[-1]
        failed = [r for r in attempt.instances.values() if not r.succeeded]
        # Instances SSM cancelled because the error budget was spent say nothing about the failure's kind.
        signals = [FailureSignal(status=r.status, exit_code=r.response_code, text=r.output_tail)
                   for r in failed if r.status != "Cancelled"] or [
                   FailureSignal(status=r.status, exit_code=r.response_code, text=r.output_tail) for r in failed]
        failure = classify_failure(signals)
        target = self._store.get_target(deployment.target)
        recent = [*(target.recent_failures if target else ()), int(now.timestamp())]
        retry = deployment.spec.retry
        policy = RetryPolicy(retry.max_attempts, retry.base_seconds, retry.cap_seconds, self._breaker.threshold,
                             self._breaker.window_seconds)
        decision = plan_retry(failure, len(deployment.attempts), policy, is_rollback=deployment.trigger == "rollback",
                              stopped_by_person=False, breaker_open=bool(target and target.breaker_open_since),
                              recent_failures=recent, now=now, rng=self._rng)
        if isinstance(decision, Retry) and self._scheduler is None:
            decision = GiveUp("automatic retries are not configured (BERTH_RETRY_FUNCTION_ARN and "
                              "BERTH_SCHEDULER_ROLE_ARN are unset)")
        return failure, decision

    def schedule(self, deployment: Deployment, decision: Retry, now: datetime) -> str:
        assert self._scheduler is not None  # decide() never returns Retry without one
        name = schedule_name(deployment.deployment_id, decision.attempt)
        self._scheduler.schedule(name, decision.at, {"kind": "ssm", "deployment_id": deployment.deployment_id,
                                                     "attempt": decision.attempt}, now)
        return name

    def record_failure(self, target: str, now: datetime, open_breaker: bool) -> None:
        at = int(now.timestamp())
        self._store.record_failure(target, at, keep_after=at - self._breaker.window_seconds, open_breaker=open_breaker)
