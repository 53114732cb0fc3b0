"""The one retry path: every failure berth may retry goes through `Retrier.handle`, whatever its kind.

A kind (an attempt of berth's own SSM deployment, a CodeDeploy deployment, a pipeline stage) describes its failure as a
`RetryCase`: what failed, how many attempts were made, the target whose breaker counts it, and the steps that are its
own (holding what the retry needs before it is scheduled, the payload, persisting the outcome). The path does the
rest, in this order: read the target's breaker, decide (chalicelib.domain.retry.decide_retry, pure), give up when no
scheduler is configured, let the case hold, create the schedule (a name taken by another retry gives up), let the case
persist the outcome, then count the failure in the target's breaker. The breaker is written last: the case's save is
version-checked, so a duplicate delivery that loses there counts nothing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from chalicelib.adapters.scheduler import RetryScheduler
from chalicelib.adapters.store import DeploymentStore
from chalicelib.domain.deployment import Deployment
from chalicelib.domain.errors import ScheduleTaken
from chalicelib.domain.retry import (
    Breaker,
    Failure,
    GiveUp,
    History,
    Retry,
    RetryDecision,
    RetryPolicy,
    TargetBreaker,
    decide_retry,
    schedule_name,
)
from chalicelib.domain.retry_payload import FailureRetry, RetryTask
from chalicelib.domain.spec import RetrySpec
from chalicelib.observability import Telemetry
from chalicelib.services.notifier import Notifier

T = TypeVar("T")
NOT_CONFIGURED = ("automatic retries are not configured (BERTH_RETRY_FUNCTION_ARN and BERTH_SCHEDULER_ROLE_ARN are "
                  "unset)")


@dataclass
class RetryCase(ABC, Generic[T]):
    """One failure, as the retry path needs it. `lineage` names the schedule (with the attempt); `target` is whose
    breaker counts the failure (None: none does); `budget` is the retry budget, or None for the target's own."""

    failure: Failure
    attempts_made: int
    lineage: str
    target: str | None
    budget: RetrySpec | None

    def hold(self, decision: RetryDecision, now: datetime) -> RetryDecision:
        """Claim what the decision needs before anything is scheduled; may turn a retry into a give-up."""
        return decision

    def subject(self) -> Deployment | None:
        """The deployment that failed, when the case is one of berth's own (its events then say what it carried)."""
        return None

    def without_scheduler(self, retry: Retry) -> T | None:
        """What to do with a retry when no scheduler is configured; None gives up."""
        return None

    @abstractmethod
    def task(self, retry: Retry) -> FailureRetry:
        """The payload the schedule hands the retry_deployment Lambda."""

    @abstractmethod
    def settle(self, decision: RetryDecision, schedule: str, now: datetime) -> T:
        """Persist the outcome: a give-up, or a retry scheduled as `schedule`."""


class Retrier:
    def __init__(self, store: DeploymentStore, scheduler: RetryScheduler | None, breaker: Breaker,
                 rng: Callable[[float, float], float], telemetry: Telemetry | None = None,
                 notifier: Notifier | None = None) -> None:
        self._store = store
        self._scheduler = scheduler
        self._breaker = breaker
        self._rng = rng
        self._telemetry = telemetry or Telemetry()
        self._notifier = notifier or Notifier()

    def handle(self, case: RetryCase[T], now: datetime) -> T:
        """Decide what follows the failure and carry it out (see the module); returns what the case settled."""
        decision = self._decide(case, now)
        if isinstance(decision, Retry) and self._scheduler is None:
            carried_out = case.without_scheduler(decision)
            if carried_out is not None:
                return carried_out
            decision = GiveUp(NOT_CONFIGURED)
        decision = case.hold(decision, now)
        name = ""
        if isinstance(decision, Retry):
            assert self._scheduler is not None
            task = case.task(decision)
            name = schedule_name(case.lineage, task.attempt)
            try:
                self._scheduler.schedule(name, decision.at, task, now)
            except ScheduleTaken as exc:
                decision = GiveUp(exc.message)
        settled = case.settle(decision, name, now)
        opens = isinstance(decision, GiveUp) and decision.open_breaker
        if case.target is not None:
            self.record_failure(case.target, now, opens)
        self._telemetry.count("RetriesScheduled" if isinstance(decision, Retry) else "RetriesGivenUp")
        if isinstance(decision, Retry):
            self._notifier.retry_scheduled(case.target, case.lineage, decision.attempt, decision.at, decision.reason,
                                           now, case.subject())
        else:
            self._notifier.gave_up(case.target, case.lineage, decision.reason, opens, now, case.subject())
        return settled

    def _decide(self, case: RetryCase[T], now: datetime) -> RetryDecision:
        record = self._store.get_target(case.target) if case.target is not None else None
        budget = case.budget if case.budget is not None else record.spec.retry if record else RetrySpec()
        policy = RetryPolicy(budget.max_attempts, budget.base_seconds, budget.cap_seconds, self._breaker)
        breaker = None
        if case.target is not None:
            breaker = (TargetBreaker(tuple(record.recent_failures), bool(record.breaker_open_since)) if record
                       else TargetBreaker())
        return decide_retry(case.failure, History(case.attempts_made, breaker), policy, now, self._rng)

    @property
    def schedules(self) -> bool:
        return self._scheduler is not None

    def schedule(self, name: str, at: datetime, task: RetryTask, now: datetime) -> None:
        """A schedule outside a failure's decision: a retry waiting on its remediation."""
        assert self._scheduler is not None, "check Retrier.schedules first"
        self._scheduler.schedule(name, at, task, now)

    def record_failure(self, target: str, now: datetime, open_breaker: bool) -> None:
        at = int(now.timestamp())
        self._store.record_failure(target, at, keep_after=at - self._breaker.window_seconds, open_breaker=open_breaker)
