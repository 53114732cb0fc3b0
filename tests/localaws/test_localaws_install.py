"""install(), reset() and the moto version pin."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from localaws_testkit import REGION
from moto import mock_aws

import localaws
from localaws import InstanceOutcome, patching

JOB = "11111111-2222-4333-8444-555555555555"


def test_install_is_idempotent() -> None:
    from moto.codepipeline.responses import CodePipelineResponse

    localaws.install()
    method = CodePipelineResponse.put_job_success_result  # type: ignore[attr-defined]
    localaws.install()
    assert CodePipelineResponse.put_job_success_result is method  # type: ignore[attr-defined]


def test_wrong_moto_version_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(patching, "_installed", False)
    monkeypatch.setattr(patching, "version", lambda name: "5.1.0")
    with pytest.raises(RuntimeError, match=r"5\.2\.5"):
        patching.install()


def test_reset_clears_job_results_and_outcomes(codepipeline: Any) -> None:
    codepipeline.put_job_success_result(jobId=JOB)
    localaws.set_default_outcome(InstanceOutcome(status="Failed"))
    localaws.strict_jobs()
    localaws.reset()
    assert localaws.job_results(JOB) == []
    codepipeline.put_job_success_result(jobId=JOB)  # not strict any more, and not finished
    assert localaws.job_results(JOB) == [{"type": "success"}]


def test_a_new_mock_aws_context_starts_clean() -> None:
    localaws.install()
    with mock_aws():
        boto3.client("codepipeline", region_name=REGION).put_job_success_result(jobId=JOB)
        assert localaws.job_results(JOB)
    with mock_aws():
        assert localaws.job_results(JOB) == []
        boto3.client("codepipeline", region_name=REGION).put_job_success_result(jobId=JOB)


def test_outcome_rejects_statuses_that_are_not_final() -> None:
    with pytest.raises(ValueError, match="status"):
        InstanceOutcome(status="InProgress")
    with pytest.raises(ValueError, match="polls"):
        InstanceOutcome(polls_before_done=-1)
