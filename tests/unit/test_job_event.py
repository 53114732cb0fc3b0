"""The CodePipeline job event, parsed once at the edge: typed fields, and credentials no printout can show."""

from __future__ import annotations

import traceback
from typing import Any

import pytest

from chalicelib.domain.errors import InvalidEvent
from chalicelib.domain.job import PipelineJob, UnreadableJob, job_id_of, parse_job_event, read_job_event
from tests.events import load_event

JOB_ID = "11111111-abcd-1111-abcd-111111abcdef"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN_START = "MIICiTCCAfICCQD6m7oRw0uXOjANBgkqhkiG9w0B"
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRETS = (SECRET_KEY, SESSION_TOKEN_START, ACCESS_KEY)


def assert_no_secrets(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def malformed(event: Any) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as caught:
        parse_job_event(event)
    return caught.value


def test_the_aws_sample_event_parses() -> None:
    job = parse_job_event(load_event("codepipeline_job"))
    assert (job.id, job.account_id, job.user_parameters, job.data.continuation_token) == (
        JOB_ID, "111111111111", "some-input-such-as-a-URL", None)
    assert job.data.action_configuration.configuration == {
        "FunctionName": "MyLambdaFunctionForAWSCodePipeline", "UserParameters": "some-input-such-as-a-URL"}
    [artifact] = job.data.input_artifacts
    assert (artifact.name, artifact.revision, artifact.location.type) == ("ArtifactName", None, "S3")
    assert artifact.location.s3_location is not None
    assert artifact.location.s3_location.bucket_name.startswith("the name of the bucket")
    assert artifact.location.s3_location.object_key.startswith("the name of the application")
    assert job.data.output_artifacts == []
    credentials = job.data.artifact_credentials
    assert credentials is not None
    assert credentials.secret_access_key.get_secret_value() == SECRET_KEY
    assert credentials.access_key_id.get_secret_value() == ACCESS_KEY
    assert credentials.session_token is not None
    assert credentials.session_token.get_secret_value().startswith(SESSION_TOKEN_START)


def test_the_continuation_event_carries_its_token() -> None:
    event = load_event("codepipeline_job_continuation")
    job = parse_job_event(event)
    assert job.data.continuation_token == event["CodePipeline.job"]["data"]["continuationToken"]


def test_an_action_without_user_parameters() -> None:
    job = parse_job_event(load_event("codepipeline_job_no_user_parameters"))
    assert (job.id, job.user_parameters) == (JOB_ID, None)


def test_fields_aws_may_add_are_ignored() -> None:
    event = load_event("codepipeline_job")
    event["CodePipeline.job"]["newField"] = {"x": 1}
    event["CodePipeline.job"]["data"]["encryptionKey"] = {"id": "arn:aws:kms:...", "type": "KMS"}
    assert parse_job_event(event) == parse_job_event(load_event("codepipeline_job"))


def test_minimal_event() -> None:
    job = parse_job_event({"CodePipeline.job": {"id": "j", "data": {"actionConfiguration": {}}}})
    assert job == PipelineJob.model_validate({"id": "j", "data": {"actionConfiguration": {"configuration": {}}}})
    assert (job.account_id, job.user_parameters, job.data.input_artifacts, job.data.artifact_credentials) == (
        "", None, [], None)


@pytest.mark.parametrize("event", [None, [], "CodePipeline.job", 42, {}, {"CodePipeline.job": None},
                                   {"CodePipeline.job": "id"}, {"codepipeline.job": {"id": "x"}},
                                   {"Records": [{"eventSource": "aws:sqs"}]}])
def test_events_that_are_not_job_events(event: Any) -> None:
    assert malformed(event).message == (
        "the event is not a CodePipeline job event (no 'CodePipeline.job' object)")


def _break(path: tuple[str, ...], value: Any = ...) -> dict[str, Any]:
    event = load_event("codepipeline_job")
    node = event["CodePipeline.job"]
    for part in path[:-1]:
        node = node[part]
    if value is ...:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return event


@pytest.mark.parametrize(("path", "value", "field"), [
    (("data",), ..., "data"),
    (("data",), "not a dict", "data"),
    (("data",), None, "data"),
    (("id",), ..., "id"),
    (("id",), 12345, "id"),
    (("id",), None, "id"),
    (("id",), "", "id"),
    (("id",), "x" * 513, "id"),
    (("data", "actionConfiguration"), ..., "data.actionConfiguration"),
    (("data", "actionConfiguration", "configuration"), {"UserParameters": {"target": "x"}},
     "data.actionConfiguration.configuration.UserParameters"),
    (("data", "inputArtifacts"), {"name": "x"}, "data.inputArtifacts"),
    (("data", "inputArtifacts", 0, "location", "s3Location", "bucketName"), "",
     "data.inputArtifacts.0.location.s3Location.bucketName"),
    (("data", "inputArtifacts", 0, "name"), ..., "data.inputArtifacts.0.name"),
    (("data", "artifactCredentials", "secretAccessKey"), ..., "data.artifactCredentials.secretAccessKey"),
    (("data", "artifactCredentials", "accessKeyId"), 7, "data.artifactCredentials.accessKeyId"),
    (("data", "continuationToken"), {"v": 1}, "data.continuationToken"),
])
def test_malformed_events_name_the_field(path: tuple[Any, ...], value: Any, field: str) -> None:
    error = malformed(_break(path, value))
    assert error.message.startswith("the CodePipeline job event is malformed at: ")
    assert field in error.message.removeprefix("the CodePipeline job event is malformed at: ").split(", ")
    assert_no_secrets(str(error))
    assert_no_secrets(repr(error))
    assert_no_secrets("".join(traceback.format_exception(error)))


def test_every_bad_field_is_named() -> None:
    event = _break(("id",), 5)
    del event["CodePipeline.job"]["data"]["actionConfiguration"]
    assert malformed(event).message == "the CodePipeline job event is malformed at: id, data.actionConfiguration"


def test_the_parsed_job_never_shows_its_credentials() -> None:
    job = parse_job_event(load_event("codepipeline_job"))
    for text in (repr(job), str(job), repr(job.data), str(job.data.artifact_credentials), job.model_dump_json(),
                 repr(job.model_dump()), f"{job}", f"{job!r}"):
        assert_no_secrets(text)


@pytest.mark.parametrize(("event", "job_id"), [
    (load_event("codepipeline_job"), JOB_ID),
    ({"CodePipeline.job": {"id": "j-1"}}, "j-1"),
    ({"CodePipeline.job": {"id": ""}}, None),
    ({"CodePipeline.job": {"id": 5}}, None),
    ({"CodePipeline.job": "j-1"}, None),
    ({}, None),
    (None, None),
    ("CodePipeline.job", None),
])
def test_job_id_of_finds_an_id_to_report_to_even_in_a_broken_event(event: Any, job_id: str | None) -> None:
    assert job_id_of(event) == job_id


def test_the_handler_reads_a_job_a_broken_job_or_nothing() -> None:
    assert read_job_event(load_event("codepipeline_job")) == parse_job_event(load_event("codepipeline_job"))
    broken = read_job_event({"CodePipeline.job": {"id": "j-1"}})
    assert isinstance(broken, UnreadableJob) and broken.id == "j-1"
    assert broken.problem.message == "the CodePipeline job event is malformed at: data"
    assert read_job_event({"hello": "world"}) is None


def test_a_broken_job_never_shows_its_credentials() -> None:
    event = load_event("codepipeline_job")
    del event["CodePipeline.job"]["data"]["actionConfiguration"]
    broken = read_job_event(event)
    assert isinstance(broken, UnreadableJob)
    assert_no_secrets(repr(broken) + str(broken.problem))
