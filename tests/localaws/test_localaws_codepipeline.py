"""PutJobSuccessResult / PutJobFailureResult and localaws.job_results."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

import localaws

JOB = "11111111-2222-4333-8444-555555555555"
OTHER_JOB = "66666666-7777-4888-9999-aaaaaaaaaaaa"


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def test_success_is_recorded_with_what_was_sent(codepipeline: Any) -> None:
    codepipeline.put_job_success_result(
        jobId=JOB,
        continuationToken="deploy-123",
        executionDetails={"summary": "deploying", "externalExecutionId": "d-1", "percentComplete": 10},
    )
    assert localaws.job_results(JOB) == [
        {
            "type": "success",
            "continuationToken": "deploy-123",
            "executionDetails": {"summary": "deploying", "externalExecutionId": "d-1", "percentComplete": 10},
        }
    ]
    assert localaws.job_results(OTHER_JOB) == []


def test_failure_is_recorded(codepipeline: Any) -> None:
    codepipeline.put_job_failure_result(
        jobId=JOB, failureDetails={"type": "ConfigurationError", "message": "bad image", "externalExecutionId": "x"}
    )
    assert localaws.job_results(JOB) == [
        {
            "type": "failure",
            "failureDetails": {"type": "ConfigurationError", "message": "bad image", "externalExecutionId": "x"},
        }
    ]


def test_success_with_output_variables_and_revision(codepipeline: Any) -> None:
    codepipeline.put_job_success_result(
        jobId=JOB,
        outputVariables={"ImageUri": "repo/app:1"},
        currentRevision={"revision": "abc", "changeIdentifier": "c1"},
    )
    [result] = localaws.job_results(JOB)
    assert result["outputVariables"] == {"ImageUri": "repo/app:1"}
    assert result["currentRevision"] == {"revision": "abc", "changeIdentifier": "c1"}


@pytest.mark.parametrize("second", ["success", "failure"])
def test_second_result_for_a_finished_job_is_refused_and_not_recorded(codepipeline: Any, second: str) -> None:
    codepipeline.put_job_success_result(jobId=JOB, continuationToken="t")
    with pytest.raises(ClientError) as error:
        if second == "success":
            codepipeline.put_job_success_result(jobId=JOB)
        else:
            codepipeline.put_job_failure_result(jobId=JOB, failureDetails={"type": "JobFailed", "message": "m"})
    assert _code(error) == "InvalidJobStateException"
    assert codepipeline.exceptions.InvalidJobStateException is type(error.value)
    assert len(localaws.job_results(JOB)) == 1


def test_returned_results_are_copies(codepipeline: Any) -> None:
    codepipeline.put_job_success_result(jobId=JOB)
    localaws.job_results(JOB)[0]["type"] = "tampered"
    assert localaws.job_results(JOB)[0]["type"] == "success"


def test_strict_jobs_refuses_unknown_job_ids(codepipeline: Any) -> None:
    localaws.strict_jobs(JOB)
    codepipeline.put_job_success_result(jobId=JOB)
    with pytest.raises(ClientError) as error:
        codepipeline.put_job_success_result(jobId=OTHER_JOB)
    assert _code(error) == "JobNotFoundException"
    assert localaws.job_results(OTHER_JOB) == []


@pytest.mark.parametrize(
    ("call", "where"),
    [
        (lambda cp: cp.put_job_success_result(jobId="job-1"), "jobId"),
        (lambda cp: cp.put_job_success_result(jobId=JOB, continuationToken="t" * 2049), "continuationToken"),
        (lambda cp: cp.put_job_success_result(jobId=JOB, executionDetails={"summary": "s" * 2049}), "summary"),
        (lambda cp: cp.put_job_success_result(jobId=JOB, executionDetails={"percentComplete": 101}), "percentComplete"),
        (
            lambda cp: cp.put_job_failure_result(
                jobId=JOB, failureDetails={"type": "JobFailed", "message": "m" * 5001}
            ),
            "failureDetails.message",
        ),
        (
            lambda cp: cp.put_job_failure_result(jobId=JOB, failureDetails={"type": "Oops", "message": "m"}),
            "failureDetails.type",
        ),
        (
            lambda cp: cp.put_job_success_result(jobId=JOB, continuationToken="t", outputVariables={"a": "b"}),
            "outputVariables",
        ),
    ],
)
def test_constraints_botocore_leaves_to_the_service_are_enforced(codepipeline: Any, call: Any, where: str) -> None:
    with pytest.raises(ClientError) as error:
        call(codepipeline)
    assert _code(error) == "ValidationException"
    assert where in error.value.response["Error"]["Message"]
    assert localaws.job_results(JOB) == []


def test_limits_themselves_are_accepted(codepipeline: Any) -> None:
    codepipeline.put_job_success_result(
        jobId=JOB, continuationToken="t" * 2048, executionDetails={"summary": "s" * 2048, "percentComplete": 100}
    )
    codepipeline.put_job_failure_result(jobId=OTHER_JOB, failureDetails={"type": "JobFailed", "message": "m" * 5000})
    assert len(localaws.job_results(OTHER_JOB)[0]["failureDetails"]["message"]) == 5000
