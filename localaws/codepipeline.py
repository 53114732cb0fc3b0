"""PutJobSuccessResult and PutJobFailureResult, which moto lacks.

moto does not model CodePipeline jobs, so any job id is accepted unless :func:`localaws.strict_jobs`
named the known ones. A job is finished by its first accepted result; AWS answers any later result for
it with ``InvalidJobStateException``, and so does this, without recording the refused call.
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult, BaseResponse, EmptyResult

from . import state
from .errors import AwsError, validation_error
from .params import request_params
from .shapes import shaped

SERVICE = "codepipeline"
_SUCCESS_KEYS = ("continuationToken", "executionDetails", "outputVariables", "currentRevision")


def _record(job_id: str, result: dict[str, Any]) -> None:
    with state.LOCK:
        live = state.current()
        if live.strict_jobs and job_id not in live.known_jobs:
            raise AwsError("JobNotFoundException", f"The job {job_id} was not found.")
        if live.job_results.get(job_id):
            raise AwsError("InvalidJobStateException", f"The job {job_id} is not in a state that accepts results.")
        live.job_results[job_id] = [result]


def put_job_success_result(self: BaseResponse) -> ActionResult:
    params = request_params(self, SERVICE, "PutJobSuccessResult")
    if "continuationToken" in params and "outputVariables" in params:
        raise validation_error(
            ["outputVariables can be included only when there is no continuation token on the request"]
        )
    result: dict[str, Any] = {"type": "success"}
    result.update({key: params[key] for key in _SUCCESS_KEYS if key in params})
    _record(params["jobId"], result)
    return EmptyResult()


def put_job_failure_result(self: BaseResponse) -> ActionResult:
    params = request_params(self, SERVICE, "PutJobFailureResult")
    _record(params["jobId"], {"type": "failure", "failureDetails": params["failureDetails"]})
    return EmptyResult()


def retry_stage_execution(self: BaseResponse) -> ActionResult:
    """Recorded, after the checks AWS makes that can be made here: the pipeline and the stage must exist."""
    params = request_params(self, SERVICE, "RetryStageExecution")
    from moto.codepipeline.models import codepipeline_backends

    backend = codepipeline_backends[self.current_account][self.region]
    pipeline = backend.pipelines.get(params["pipelineName"])
    if pipeline is None:
        raise AwsError("PipelineNotFoundException", f"Account '{self.current_account}' does not have a pipeline "
                                                    f"with name '{params['pipelineName']}'")
    stages = [stage["name"] for stage in pipeline.pipeline.get("stages", [])]
    if params["stageName"] not in stages:
        raise AwsError("StageNotFoundException", f"Stage '{params['stageName']}' not found")
    with state.LOCK:
        state.current().stage_retries.append(dict(params))
    return shaped(SERVICE, "RetryStageExecution", {"pipelineExecutionId": params["pipelineExecutionId"]})


METHODS = {
    "put_job_success_result": put_job_success_result,
    "put_job_failure_result": put_job_failure_result,
    "retry_stage_execution": retry_stage_execution,
}
