"""The CodePipeline job event, parsed once at the edge.

`artifactCredentials` are kept in a SecretStr-like wrapper whose repr hides them, so no log line or error message
can carry them by accident.

`read_job_event` is what the pipeline_job handler calls: a job event is a `PipelineJob`; a broken one whose id can
still be read is an `UnreadableJob` (it still gets exactly one failure result); without an id it is None, since
CodePipeline has no job to take a result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from .errors import InvalidEvent


class _Lenient(BaseModel):
    # AWS adds fields over time; the event's shape is AWS's, so extra keys are allowed here (unlike berth's own spec).
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class S3Location(_Lenient):
    bucket_name: str = Field(alias="bucketName", min_length=1)
    object_key: str = Field(alias="objectKey", min_length=1)


class ArtifactLocation(_Lenient):
    type: str
    s3_location: S3Location | None = Field(default=None, alias="s3Location")


class Artifact(_Lenient):
    name: str
    revision: str | None = None
    location: ArtifactLocation


class ArtifactCredentials(_Lenient):
    access_key_id: SecretStr = Field(alias="accessKeyId")
    secret_access_key: SecretStr = Field(alias="secretAccessKey")
    session_token: SecretStr | None = Field(default=None, alias="sessionToken")


class ActionConfiguration(_Lenient):
    configuration: dict[str, str] = Field(default_factory=dict)


class JobData(_Lenient):
    action_configuration: ActionConfiguration = Field(alias="actionConfiguration")
    input_artifacts: list[Artifact] = Field(default_factory=list, alias="inputArtifacts")
    output_artifacts: list[Artifact] = Field(default_factory=list, alias="outputArtifacts")
    artifact_credentials: ArtifactCredentials | None = Field(default=None, alias="artifactCredentials")
    continuation_token: str | None = Field(default=None, alias="continuationToken")


class PipelineJob(_Lenient):
    id: str = Field(min_length=1, max_length=512)
    account_id: str = Field(default="", alias="accountId")
    data: JobData

    @property
    def user_parameters(self) -> str | None:
        return self.data.action_configuration.configuration.get("UserParameters")


def job_id_of(event: Any) -> str | None:
    """The job id, if the event has one at all: without it no result can be reported."""
    if isinstance(event, dict):
        job = event.get("CodePipeline.job")
        if isinstance(job, dict) and isinstance(job.get("id"), str) and job["id"]:
            return str(job["id"])
    return None


def parse_job_event(event: Any) -> PipelineJob:
    if not isinstance(event, dict) or not isinstance(event.get("CodePipeline.job"), dict):
        raise InvalidEvent("the event is not a CodePipeline job event (no 'CodePipeline.job' object)")
    try:
        return PipelineJob.model_validate(event["CodePipeline.job"])
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors(include_input=False))
        raise InvalidEvent(f"the CodePipeline job event is malformed at: {fields}") from None


@dataclass(frozen=True)
class UnreadableJob:
    """A job event CodePipeline would not send as is: its id is known, so the job can still be failed."""

    id: str
    problem: InvalidEvent


def read_job_event(event: Any) -> PipelineJob | UnreadableJob | None:
    job_id = job_id_of(event)
    if job_id is None:
        return None
    try:
        return parse_job_event(event)
    except InvalidEvent as exc:
        return UnreadableJob(job_id, exc)
