"""The CodePipeline Lambda action: every invocation ends in exactly one job result.

First invocation: validate the revision, take the target's lock, record the deployment, send the SSM command, and
answer with a continuation token. Continued invocations: refresh from SSM and answer running, succeeded or failed.
A duplicate delivery of a job berth already started finds the job's claim and only reports progress.
Once a deployment exists, a failing AWS call answers with a continuation rather than a failure, so the next
invocation picks the deployment up where the record says it is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from chalicelib.adapters.artifacts import ArtifactReader
from chalicelib.adapters.codepipeline import JobReporter
from chalicelib.adapters.store import DeploymentStore
from chalicelib.domain import continuation
from chalicelib.domain.deployment import Deployment, DeploymentStatus
from chalicelib.domain.errors import (
    ArtifactUnreadable,
    AwsCallFailed,
    BerthError,
    Conflict,
    ImageNotFound,
    InvalidRevision,
    ScanPending,
    TargetBusy,
)
from chalicelib.domain.freeze import FREEZE_WAIT, in_force
from chalicelib.domain.job import PipelineJob, UnreadableJob
from chalicelib.domain.results import Continue, Fail, FailureType, JobResult, Succeed
from chalicelib.domain.revision import check_appspec, image_from_artifact
from chalicelib.domain.spec import STORED, TargetReference, TargetSpec, parse_pipeline_parameters
from chalicelib.observability import correlate
from chalicelib.services.deployments import DeploymentService

logger = logging.getLogger(__name__)


class PipelineJobService:
    def __init__(self, deployments: DeploymentService, store: DeploymentStore, artifacts: ArtifactReader,
                 reporter: JobReporter, clock: Callable[[], datetime], lock_wait_seconds: int) -> None:
        self._deployments = deployments
        self._store = store
        self._artifacts = artifacts
        self._reporter = reporter
        self._clock = clock
        self._lock_wait = lock_wait_seconds

    def handle(self, job: PipelineJob | UnreadableJob | None) -> JobResult | None:
        """`job` is what the handler read from its event (chalicelib.domain.job.read_job_event)."""
        if job is None:
            logger.error("not a CodePipeline job event: no job id, so no result can be reported")
            return None
        job_id = job.id
        correlate(job_id=job_id)
        try:
            result = self._decide(job) if isinstance(job, PipelineJob) else Fail(job.problem.message,
                                                                                   _failure_type(job.problem))
        except BerthError as exc:
            result = Fail(exc.message, _failure_type(exc))
        except Exception:
            logger.exception("unexpected error while handling the job", extra={"job_id": job_id})
            result = Fail("berth hit an internal error (details in its logs under this job id); no deployment was "
                          "left half-recorded. Retry the stage; if it fails again, open an issue with the logs.",
                          FailureType.SYSTEM_UNAVAILABLE)
        correlate(deployment_id=getattr(result, "external_id", None))
        self._reporter.report(job_id, result)
        logger.info("job result reported", extra={"job_id": job_id, "result": type(result).__name__})
        return result

    def _decide(self, job: PipelineJob) -> JobResult:
        if job.data.continuation_token:
            # The token is untrusted input: it must name this action's own target (from its UserParameters, which
            # every job of the action carries, admitted by its first job) and, when it follows a deployment, one a
            # pipeline job started.
            token = continuation.decode(job.data.continuation_token)
            target = parse_pipeline_parameters(job.user_parameters, context=STORED).target
            if isinstance(token, continuation.Following):
                return self._progress(token.deployment_id,
                                      accept=lambda deployment: continuation.check_following(deployment, target))
            continuation.check_waiting(token, target, int(self._clock().timestamp()))
            return self._first(job, waiting_since=token.since)
        claimed = self._store.find_job(job.id)
        if claimed is not None:
            logger.info("duplicate delivery of a started job", extra={"job_id": job.id, "deployment_id": claimed})
            return self._progress(claimed)
        return self._first(job, waiting_since=None)

    def _first(self, job: PipelineJob, waiting_since: int | None) -> JobResult:
        params = parse_pipeline_parameters(job.user_parameters)
        spec = self._spec_for(params)
        files: dict[str, bytes] = {}
        if job.data.input_artifacts:
            files = self._artifacts.read(job.data.input_artifacts[0], job.data.artifact_credentials)
        if "appspec.yml" in files or "appspec.yaml" in files:
            check_appspec(files.get("appspec.yml") or files["appspec.yaml"])
        image = params.image or spec.image or image_from_artifact(files, spec.container.name)
        try:
            revision = self._deployments.resolve_revision(spec, image)
        except ScanPending as pending:
            return self._wait(spec.target, pending.message, waiting_since)
        frozen = self._frozen(spec.target, waiting_since)
        if frozen is not None:
            return frozen
        if isinstance(params, TargetSpec):
            self._store.put_target(spec, caller=f"codepipeline-job:{job.id}")
        try:
            deployment = self._deployments.start(spec, revision, "pipeline", f"codepipeline-job:{job.id}", job.id)
        except TargetBusy as busy:
            return self._busy(job, spec.target, busy, waiting_since)
        except (Conflict, AwsCallFailed):
            # A duplicate got there first, or a call failed after the record was written: either way the claimed
            # deployment is the one to follow, and its record says what is left to do.
            claimed = self._store.find_job(job.id)
            if claimed is None:
                raise
            return self._progress(claimed)
        return Continue(continuation.encode(continuation.Following(deployment.deployment_id)),
                        summary=f"deployment {deployment.deployment_id}: {revision.pinned} sent to target "
                                f"{spec.target} ({deployment.history[-1].detail})",
                        percent=0, external_id=deployment.deployment_id)

    def _spec_for(self, params: TargetSpec | TargetReference) -> TargetSpec:
        if isinstance(params, TargetSpec):
            return params
        record = self._store.get_target(params.target)
        if record is None:
            raise InvalidRevision(
                f"target {params.target!r} is not registered: pass its whole spec in UserParameters once "
                f"(instances, container, ...) or register it with PUT /targets/{params.target}")
        return record.spec

    def _frozen(self, target: str, waiting_since: int | None) -> JobResult | None:
        """A frozen target: the job waits through continuations (the lock's waiting token, which carries when the
        wait began), then fails after FREEZE_WAIT naming the freeze. None when the target is not frozen."""
        record = self._store.get_target(target)
        now = self._clock()
        freeze = in_force(record.freeze if record else None, now)
        if freeze is None:
            return None
        since = waiting_since if waiting_since is not None else int(now.timestamp())
        waited = int(now.timestamp()) - since
        if waited >= FREEZE_WAIT.total_seconds():
            return Fail(f"{freeze.describe(target)}; waited {waited // 60} minutes for it to end. Retry this stage "
                        f"once it is lifted (`berth unfreeze {target}`).")
        return Continue(continuation.encode(continuation.WaitingForLock(target, since)),
                        summary=f"waiting: {freeze.describe(target)}"[:2000], percent=0)

    def _busy(self, job: PipelineJob, target: str, busy: TargetBusy, waiting_since: int | None) -> JobResult:
        lock = self._store.get_lock(target)
        if lock is not None and lock.job_id == job.id:
            return self._progress(lock.deployment_id)
        return self._wait(target, busy.message, waiting_since,
                          f"for it to finish. Retry this stage when it has finished, or cancel it with "
                          f"`berth cancel {busy.holder}`.")

    def _wait(self, target: str, why: str, waiting_since: int | None,
              give_up: str = "for the image's scan to complete. Retry this stage when it has.") -> JobResult:
        """Answer with a continuation that starts the job over (the target's lock is busy, or the image's scan is
        still running), until `lock_wait_seconds` have passed since the first wait."""
        now = int(self._clock().timestamp())
        since = waiting_since if waiting_since is not None else now
        if now - since >= self._lock_wait:
            return Fail(f"{why}; waited {(now - since) // 60} minutes {give_up}")
        return Continue(continuation.encode(continuation.WaitingForLock(target, since)),
                        summary=f"waiting: {why}", percent=0)

    def _progress(self, deployment_id: str, accept: Callable[[Deployment], None] | None = None) -> JobResult:
        token = continuation.encode(continuation.Following(deployment_id))
        try:
            followed = self._deployments.follow(deployment_id, accept)
        except (AwsCallFailed, Conflict) as exc:
            logger.warning("could not refresh the deployment; will look again", extra={"deployment_id": deployment_id})
            return Continue(token, f"deployment {deployment_id}: could not check progress ({exc.message}); "
                                   "checking again", external_id=deployment_id)
        deployment = followed.deployment
        if deployment.status == DeploymentStatus.SUCCEEDED:
            variables = {"deployment_id": deployment_id, "image": deployment.revision.image}
            if deployment.revision.digest:
                variables["image_digest"] = deployment.revision.digest
            return Succeed(f"deployment {deployment_id} succeeded: {deployment.message}", deployment_id, variables)
        if deployment.status.is_final:
            ended = deployment.status.value.lower().replace("_", " ")
            return Fail(f"deployment {deployment_id} {ended}: {deployment.message}",
                        FailureType.JOB_FAILED, deployment_id)
        progress = followed.progress
        summary = progress.summary if progress else (deployment.message or f"status {deployment.status.value}")
        return Continue(token, f"deployment {deployment_id}: {summary}", progress.percent if progress else 0,
                        deployment_id)


def _failure_type(exc: BerthError) -> FailureType:
    if isinstance(exc, (ImageNotFound, ArtifactUnreadable)):
        return FailureType.REVISION_UNAVAILABLE
    if isinstance(exc, InvalidRevision):
        return FailureType.CONFIGURATION_ERROR
    if isinstance(exc, AwsCallFailed):
        return FailureType.SYSTEM_UNAVAILABLE
    return FailureType.JOB_FAILED
