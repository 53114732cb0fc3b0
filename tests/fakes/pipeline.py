"""CodePipeline's side of a job in memory: the input artifact's files and the job results (JobReporter)."""

from __future__ import annotations

from chalicelib.adapters.artifacts import ArtifactReader
from chalicelib.adapters.codepipeline import JobReporter
from chalicelib.domain.errors import ArtifactUnreadable
from chalicelib.domain.job import Artifact, ArtifactCredentials
from chalicelib.domain.results import JobResult


class FakeArtifacts(ArtifactReader):
    """The files of each artifact by its S3 object key; an unknown key is unreadable, as a missing object is."""

    def __init__(self) -> None:
        super().__init__(s3_client_for=lambda credentials: None)
        self.files: dict[str, dict[str, bytes]] = {}

    def read(self, artifact: Artifact, credentials: ArtifactCredentials | None) -> dict[str, bytes]:
        location = artifact.location.s3_location
        if artifact.location.type != "S3" or location is None:
            raise ArtifactUnreadable(f"input artifact {artifact.name!r} is not in S3")
        if location.object_key not in self.files:
            raise ArtifactUnreadable(f"could not read input artifact {artifact.name!r} from "
                                     f"s3://{location.bucket_name}/{location.object_key}: NoSuchKey")
        return dict(self.files[location.object_key])


class FakeJobReporter(JobReporter):
    """Every result by job id. A result for a job that already has a final one is refused (False), as
    CodePipeline's InvalidJobStateException is."""

    def __init__(self) -> None:
        super().__init__(codepipeline_client=None)
        self.results: dict[str, list[JobResult]] = {}

    def report(self, job_id: str, result: JobResult) -> bool:
        from chalicelib.domain.results import Continue

        earlier = self.results.setdefault(job_id, [])
        if earlier and not isinstance(earlier[-1], Continue):
            return False
        earlier.append(result)
        return True
