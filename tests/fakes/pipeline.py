"""CodePipeline's side of a job in memory: the input artifact's files and the job results (JobReporter)."""

from __future__ import annotations

import re

from chalicelib.adapters.artifacts import ArtifactReader
from chalicelib.adapters.codepipeline import JobReporter
from chalicelib.domain.errors import ArtifactUnreadable, AwsCallFailed
from chalicelib.domain.job import Artifact, ArtifactCredentials
from chalicelib.domain.results import Fail, JobResult
from chalicelib.domain.revision import ARTIFACT_FILES

JOB_ID = re.compile("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class FakeArtifacts(ArtifactReader):
    """The files of each artifact by its S3 object key; an unknown key is unreadable, as a missing object is. As the
    adapter, only the files berth reads (ARTIFACT_FILES) come back."""

    def __init__(self) -> None:
        super().__init__(s3_client_for=lambda credentials: None)
        self.files: dict[str, dict[str, bytes]] = {}

    def put(self, key: str, files: dict[str, str | bytes]) -> None:
        self.files[key] = {name: content.encode() if isinstance(content, str) else content
                           for name, content in files.items()}

    def read(self, artifact: Artifact, credentials: ArtifactCredentials | None) -> dict[str, bytes]:
        location = artifact.location.s3_location
        if artifact.location.type != "S3" or location is None:
            raise ArtifactUnreadable(f"input artifact {artifact.name!r} is not in S3")
        if location.object_key not in self.files:
            raise ArtifactUnreadable(f"could not read input artifact {artifact.name!r} from "
                                     f"s3://{location.bucket_name}/{location.object_key}: NoSuchKey")
        return {name: content for name, content in self.files[location.object_key].items() if name in ARTIFACT_FILES}


class FakeJobReporter(JobReporter):
    """Every result by job id. A job takes one result: a continuation comes back as a new job carrying the token,
    so a second result for a job id is refused (False), as CodePipeline's InvalidJobStateException is. A job id
    that is not a UUID is CodePipeline's ValidationException, which the adapter lets through as botocore raised it."""

    def __init__(self) -> None:
        super().__init__(codepipeline_client=None)
        self.results: dict[str, list[JobResult]] = {}

    def report(self, job_id: str, result: JobResult) -> bool:
        if not JOB_ID.fullmatch(job_id):
            operation = "PutJobFailureResult" if isinstance(result, Fail) else "PutJobSuccessResult"
            raise AwsCallFailed(
                f"CodePipeline {operation} failed with ValidationException: 1 validation error detected: Value "
                f"'{job_id}' at 'jobId' failed to satisfy constraint: Member must satisfy regular expression pattern: "
                f"{JOB_ID.pattern}")
        if job_id in self.results:
            return False
        self.results[job_id] = [result]
        return True
