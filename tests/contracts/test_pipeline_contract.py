"""The pipeline's ports: FakeArtifacts against ArtifactReader on moto's S3, FakeJobReporter against JobReporter on
localaws's CodePipeline results."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from chalicelib.adapters.artifacts import ArtifactReader
from chalicelib.adapters.codepipeline import JobReporter
from chalicelib.domain.errors import ArtifactUnreadable, AwsCallFailed
from chalicelib.domain.job import Artifact
from chalicelib.domain.results import Continue, Fail, FailureType, Succeed
from tests.fakes.pipeline import FakeArtifacts, FakeJobReporter
from tools import emulated

BUCKET, KEY = "codepipeline-artifacts", "pipeline/BuildArtif/abc123"
JOB_1, JOB_2 = "11111111-abcd-1111-abcd-111111abcdef", "22222222-abcd-2222-abcd-222222abcdef"


def artifact(key: str = KEY) -> Artifact:
    return Artifact.model_validate({"name": "BuildArtif", "location": {
        "type": "S3", "s3Location": {"bucketName": BUCKET, "objectKey": key}}})


@pytest.fixture(params=["fake", pytest.param("moto", marks=pytest.mark.slow)])
def artifacts(request: pytest.FixtureRequest) -> Iterator[tuple[ArtifactReader, Any]]:
    """The reader and a way to put an artifact's files where it reads them."""
    if request.param == "fake":
        fake = FakeArtifacts()
        yield fake, fake.put
    else:
        request.getfixturevalue("moto_account")
        s3 = boto3.client("s3", region_name="us-east-1")
        yield ArtifactReader(lambda credentials: s3), lambda key, files: emulated.put_artifact(s3, files, BUCKET, key)


def test_the_files_berth_reads_come_back_and_no_others(artifacts: tuple[ArtifactReader, Any]) -> None:
    reader, put = artifacts
    put(KEY, {"image.txt": "registry/web:1", "appspec.yml": b"version: 0.0", "README": "not read"})
    assert reader.read(artifact(), None) == {"image.txt": b"registry/web:1", "appspec.yml": b"version: 0.0"}


def test_a_missing_artifact_is_unreadable(artifacts: tuple[ArtifactReader, Any]) -> None:
    reader, put = artifacts
    put(KEY, {"image.txt": "registry/web:1"})
    with pytest.raises(ArtifactUnreadable, match="BuildArtif"):
        reader.read(artifact("pipeline/BuildArtif/missing"), None)


@pytest.fixture(params=["fake", pytest.param("moto", marks=pytest.mark.slow)])
def reporter(request: pytest.FixtureRequest) -> Iterator[tuple[JobReporter, Any]]:
    """The reporter and a way to read back the results CodePipeline accepted for a job, as their types."""
    if request.param == "fake":
        fake = FakeJobReporter()
        yield fake, lambda job_id: [type(result).__name__ for result in fake.results.get(job_id, [])]
    else:
        import localaws

        request.getfixturevalue("moto_account")
        client = boto3.client("codepipeline", region_name="us-east-1")
        names = {"success": "Succeed", "failure": "Fail"}
        yield JobReporter(client), lambda job_id: [
            "Continue" if "continuationToken" in r else names[r["type"]] for r in localaws.job_results(job_id)]


def test_a_job_takes_one_result_a_continuation_included(reporter: tuple[JobReporter, Any]) -> None:
    report, accepted = reporter
    assert report.report(JOB_1, Continue("token", "running", 10, "d-1")) is True
    assert report.report(JOB_1, Succeed("done", "d-1", {"deployment_id": "d-1"})) is False   # a duplicate's word
    assert report.report(JOB_2, Succeed("done", "d-1", {"deployment_id": "d-1"})) is True
    assert (accepted(JOB_1), accepted(JOB_2)) == (["Continue"], ["Succeed"])


def test_a_failure_is_one_result_too(reporter: tuple[JobReporter, Any]) -> None:
    report, accepted = reporter
    assert report.report(JOB_2, Fail("bad parameters", FailureType.CONFIGURATION_ERROR)) is True
    assert report.report(JOB_2, Fail("again", FailureType.JOB_FAILED)) is False
    assert accepted(JOB_2) == ["Fail"]


def test_a_job_id_codepipeline_never_gives_is_refused(reporter: tuple[JobReporter, Any]) -> None:
    report, accepted = reporter
    with pytest.raises(AwsCallFailed, match="PutJobSuccessResult failed with ValidationException"):
        report.report("job-1", Continue("token", "running"))
    assert accepted("job-1") == []
