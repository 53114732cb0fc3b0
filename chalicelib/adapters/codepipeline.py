"""CodePipeline: job results, and retrying a stage's failed actions.

A second result for a finished job is AWS's way of saying a duplicate already reported. A stage retry CodePipeline
refuses (the stage is not retryable, the execution is no longer the latest, the pipeline or stage is gone) is a
StageRetryRefused value; any other failure is AwsCallFailed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.errors import aws_call, error_code, returning
from chalicelib.domain.results import MAX_FAILURE, MAX_SUMMARY, Continue, Fail, JobResult, Succeed, clip

logger = logging.getLogger(__name__)
# RetryStageExecution's answers that mean "this retry cannot happen", not "try again".
_STAGE_RETRY_REFUSALS = frozenset({"StageNotRetryableException", "NotLatestPipelineExecutionException",
                                   "ConflictException", "PipelineNotFoundException", "StageNotFoundException"})
# A result for a job that is already finished: a duplicate delivery, reported before.
_ALREADY_FINISHED = object()
_FINISHED = {code: returning(_ALREADY_FINISHED) for code in ("InvalidJobStateException", "JobNotFoundException")}


class JobReporter:
    def __init__(self, codepipeline_client: Any) -> None:
        self._cp = codepipeline_client

    def report(self, job_id: str, result: JobResult) -> bool:
        """Send the result; False when CodePipeline says the job is already finished (a duplicate delivery)."""
        if isinstance(result, Fail):
            details: dict[str, Any] = {"type": result.failure_type.value, "message": clip(result.message, MAX_FAILURE)}
            if result.external_id:
                details["externalExecutionId"] = result.external_id
            sent = aws_call("CodePipeline PutJobFailureResult", self._cp.put_job_failure_result, expected=_FINISHED,
                            jobId=job_id, failureDetails=details)
        else:
            sent = aws_call("CodePipeline PutJobSuccessResult", self._cp.put_job_success_result, expected=_FINISHED,
                            **_success_kwargs(job_id, result))
        if sent is _ALREADY_FINISHED:
            logger.info("job already finished; result not sent again", extra={"job_id": job_id})
            return False
        return True


def _success_kwargs(job_id: str, result: Continue | Succeed) -> dict[str, Any]:
    execution: dict[str, Any] = {"summary": clip(result.summary, MAX_SUMMARY)}
    if result.external_id:
        execution["externalExecutionId"] = result.external_id
    kwargs: dict[str, Any] = {"jobId": job_id, "executionDetails": execution}
    if isinstance(result, Continue):
        execution["percentComplete"] = max(0, min(100, result.percent))
        kwargs["continuationToken"] = result.token
    elif result.output_variables:
        kwargs["outputVariables"] = result.output_variables
    return kwargs


@dataclass(frozen=True)
class StageRetryRefused:
    code: str              # CodePipeline's error code

    @property
    def reason(self) -> str:
        return f"CodePipeline refused the retry: {self.code}"


class PipelineStages:
    def __init__(self, codepipeline_client: Any) -> None:
        self._cp = codepipeline_client

    def retry_failed_actions(self, pipeline: str, stage: str, execution_id: str) -> StageRetryRefused | None:
        """RetryStageExecution in FAILED_ACTIONS mode; None once CodePipeline took it, else why it refused."""
        refused = aws_call("CodePipeline RetryStageExecution", self._cp.retry_stage_execution,
                           expected={code: _refusal for code in _STAGE_RETRY_REFUSALS},
                           pipelineName=pipeline, stageName=stage, pipelineExecutionId=execution_id,
                           retryMode="FAILED_ACTIONS")
        return refused if isinstance(refused, StageRetryRefused) else None


def _refusal(exc: ClientError) -> StageRetryRefused:
    return StageRetryRefused(error_code(exc))
