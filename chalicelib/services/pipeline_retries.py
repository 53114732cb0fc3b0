"""Retrying a pipeline stage's failed actions (RetryStageExecution, FAILED_ACTIONS) for pipelines that opt in.

Bounded and backed off like every berth retry: at most `max_attempts` per pipeline execution and stage, each after a
full-jitter delay through EventBridge Scheduler. A duplicate delivery of one FAILED event is recognised by its
EventBridge id and retries nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.adapters.errors import aws_failure, error_code
from chalicelib.adapters.scheduler import RetryScheduler
from chalicelib.adapters.store import DeploymentStore
from chalicelib.domain.errors import ScheduleTaken
from chalicelib.domain.events import PipelineActionEvent
from chalicelib.domain.retry import RetryPolicy, backoff_seconds, schedule_name
from chalicelib.services.codedeploy_events import Outcome

logger = logging.getLogger(__name__)
CLAIM_DAYS = 7


class PipelineRetrier:
    def __init__(self, store: DeploymentStore, codepipeline_client: Any, scheduler: RetryScheduler | None,
                 opted_in: frozenset[str], policy: RetryPolicy, clock: Callable[[], datetime],
                 rng: Callable[[float, float], float]) -> None:
        self._store = store
        self._cp = codepipeline_client
        self._scheduler = scheduler
        self._opted_in = opted_in
        self._policy = policy
        self._clock = clock
        self._rng = rng

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
        key = f"{detail.pipeline}#{detail.execution_id}#{detail.stage}"
        attempt = self._store.increment(f"PIPELINE#{key}", expires)
        if attempt > self._policy.max_attempts:
            return Outcome("gave-up", f"stage {detail.stage} of execution {detail.execution_id} was retried "
                                      f"{attempt - 1} times already")
        if self._scheduler is None:
            return self.retry(detail.pipeline, detail.stage, detail.execution_id)
        delay = backoff_seconds(attempt, self._policy.base_seconds, self._policy.cap_seconds, self._rng)
        # The whole key: the name keeps a readable start of it and a hash of all of it (schedule_name).
        name = schedule_name(f"{detail.pipeline}-{detail.stage}-{detail.execution_id}", attempt)
        try:
            self._scheduler.schedule(name, now + timedelta(seconds=delay), {
                "kind": "pipeline", "pipeline": detail.pipeline, "stage": detail.stage,
                "execution_id": detail.execution_id, "attempt": attempt}, now)
        except ScheduleTaken as exc:
            return Outcome("gave-up", exc.message)
        return Outcome("retry-scheduled", f"stage {detail.stage} retry {attempt} in {delay:.0f}s ({name})")

    def retry(self, pipeline: str, stage: str, execution_id: str) -> Outcome:
        try:
            self._cp.retry_stage_execution(pipelineName=pipeline, stageName=stage, pipelineExecutionId=execution_id,
                                           retryMode="FAILED_ACTIONS")
        except ClientError as exc:
            if error_code(exc) in ("StageNotRetryableException", "NotLatestPipelineExecutionException",
                                   "ConflictException", "PipelineNotFoundException", "StageNotFoundException"):
                return Outcome("gave-up", f"CodePipeline refused the retry: {error_code(exc)}")
            raise aws_failure("CodePipeline RetryStageExecution", exc) from exc
        except BotoCoreError as exc:
            raise aws_failure("CodePipeline RetryStageExecution", exc) from exc
        return Outcome("retried", f"stage {stage} of {pipeline} execution {execution_id}: failed actions retried")
