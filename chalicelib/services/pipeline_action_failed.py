"""The pipeline_action_failed Lambda: retry a pipeline stage's failed actions (RetryStageExecution, FAILED_ACTIONS) for
pipelines that opt in.

Bounded and backed off like every berth retry, through the one retry path (chalicelib.services.retries): a stage is
retried at most three times per pipeline execution, each after a full-jitter delay through EventBridge Scheduler (at
once where no scheduler is configured). A stage belongs to no target: no breaker counts its failures. A duplicate
delivery of one FAILED event is recognised by its EventBridge id and retries nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib.adapters.codepipeline import PipelineStages
from chalicelib.adapters.store import DeploymentStore
from chalicelib.domain.events import PipelineActionEvent
from chalicelib.domain.exit_codes import FailureClass
from chalicelib.domain.retry import Failure, GiveUp, Retry, RetryDecision
from chalicelib.domain.retry_payload import PipelineStageRetry
from chalicelib.domain.spec import RetrySpec
from chalicelib.services.outcome import Outcome
from chalicelib.services.retries import Retrier, RetryCase

CLAIM_DAYS = 7
# The stage's own run is its first attempt: three retries make four attempts.
STAGE_BUDGET = RetrySpec(max_attempts=4)


class PipelineRetrier:
    def __init__(self, store: DeploymentStore, stages: PipelineStages, retrier: Retrier, opted_in: frozenset[str],
                 clock: Callable[[], datetime], budget: RetrySpec = STAGE_BUDGET) -> None:
        self._store = store
        self._stages = stages
        self._retrier = retrier
        self._opted_in = opted_in
        self._clock = clock
        self._budget = budget

    def on_action_failed(self, event: PipelineActionEvent) -> Outcome:
        detail = event.detail
        if detail.state != "FAILED":
            return Outcome("ignored", f"action state {detail.state}")
        if detail.pipeline not in self._opted_in:
            return Outcome("ignored", f"pipeline {detail.pipeline} has not opted in (BERTH_RETRY_PIPELINES)")
        now = self._clock()
        expires = int((now + timedelta(days=CLAIM_DAYS)).timestamp())
        if not self._store.claim(f"EVENT#{event.id}", expires):
            return Outcome("duplicate", f"event {event.id} was handled already")
        failures = self._store.increment(f"PIPELINE#{detail.pipeline}#{detail.execution_id}#{detail.stage}", expires)
        # The whole key names the schedule: it keeps a readable start of it and a hash of all of it (schedule_name).
        return self._retrier.handle(_FailedStage(
            failure=Failure(FailureClass.TRANSIENT), attempts_made=failures,
            lineage=f"{detail.pipeline}-{detail.stage}-{detail.execution_id}", target=None, budget=self._budget,
            retrier=self, pipeline=detail.pipeline, stage=detail.stage, execution_id=detail.execution_id), now)

    def retry(self, task: PipelineStageRetry) -> Outcome:
        refused = self._stages.retry_failed_actions(task.pipeline, task.stage, task.execution_id)
        if refused is not None:
            return Outcome("gave-up", refused.reason)
        return Outcome("retried", f"stage {task.stage} of {task.pipeline} execution {task.execution_id}: failed "
                                  "actions retried")


@dataclass
class _FailedStage(RetryCase[Outcome]):
    """A pipeline stage whose actions failed: its failed actions are retried. `attempt` in its payload and schedule
    name is the retry's number (the stage's failures so far), not the attempt's."""

    retrier: PipelineRetrier
    pipeline: str
    stage: str
    execution_id: str

    def task(self, retry: Retry) -> PipelineStageRetry:
        return PipelineStageRetry(pipeline=self.pipeline, stage=self.stage, execution_id=self.execution_id,
                                  attempt=retry.attempt - 1)

    def without_scheduler(self, retry: Retry) -> Outcome:
        return self.retrier.retry(self.task(retry))

    def settle(self, decision: RetryDecision, schedule: str, now: datetime) -> Outcome:
        if isinstance(decision, GiveUp):
            return Outcome("gave-up", f"stage {self.stage} of execution {self.execution_id}: {decision.reason}")
        return Outcome("retry-scheduled", f"stage {self.stage} retry {decision.attempt - 1} in "
                                          f"{decision.delay_seconds:.0f}s ({schedule})")
