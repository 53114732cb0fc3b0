"""Starting and following deployments: shared by the pipeline action, the REST API and the retry handlers.

The record is written before any command is sent (in the transaction that takes the target, see target_lock), and
each try is saved in its attempt before it is made (see command_sender). A deployment is carried out by a few
collaborators: command_sender sends an attempt's command and finds it again when the answer was lost, command_results
reads where a command that is over leaves it, attempt_retries turns a failed attempt into a scheduled retry or the
final failure, and deployment_ends settles its end. A rollout in waves is handed to services/rollout.py.

A REST deployment (no pipeline job) that fails before its command may have reached SSM is abandoned: nothing of it
remains and the caller gets the error. From the moment the command may have reached SSM, the deployment has started
and the caller gets its id. A pipeline's deployment is resumed by the job's next invocation instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from chalicelib.adapters.ec2 import InstanceDirectory
from chalicelib.adapters.ecr import ImageRegistry
from chalicelib.adapters.ssm import SsmGateway
from chalicelib.adapters.store import DeploymentStore
from chalicelib.domain import transitions
from chalicelib.domain.deployment import Decision, Deployment, DeploymentStatus, Revision
from chalicelib.domain.errors import AwsCallFailed, Conflict, InvalidRevision, ScanFindings
from chalicelib.domain.freeze import retry_held_until
from chalicelib.domain.image_checks import architecture_refusal, ec2_architectures_lacking, scan_refusal
from chalicelib.domain.image_ref import ImageRef, parse_image_ref
from chalicelib.domain.progress import Phase, Progress, progress_while_running
from chalicelib.domain.release import ReleasePhase, release_due
from chalicelib.domain.retry_payload import LookAgain
from chalicelib.domain.spec import ONE_COMMAND_TRIGGERS, ImagePolicy, TargetSpec, Trigger
from chalicelib.observability import Telemetry
from chalicelib.services.attempt_retries import AttemptRetries
from chalicelib.services.command_results import CommandResults
from chalicelib.services.command_sender import CommandSender
from chalicelib.services.deployment_ends import DeploymentEnds
from chalicelib.services.looks import Looks
from chalicelib.services.notifier import Notifier
from chalicelib.services.places import Located, placed_instances, placed_ssm
from chalicelib.services.release_tasks import ReleaseTasks
from chalicelib.services.retries import Retrier
from chalicelib.services.rollout import RolloutService
from chalicelib.services.target_lock import UNSENT_AFTER, TargetLock

logger = logging.getLogger(__name__)


def in_waves(spec: TargetSpec, trigger: Trigger) -> bool:
    """Whether a deployment runs in waves. A person's rollback goes out as one command, as before: the alarms that
    call for it must neither refuse it nor halt it. So do a sync and a join, to instances named one by one."""
    return spec.in_waves and trigger not in ONE_COMMAND_TRIGGERS


@dataclass(frozen=True)
class Followed:
    deployment: Deployment
    progress: Progress | None


class DeploymentService:
    def __init__(self, store: DeploymentStore, ssm: SsmGateway, instances: InstanceDirectory,
                 registry: ImageRegistry, scripts: dict[str, str], clock: Callable[[], datetime],
                 new_id: Callable[[], str], lock_slack_seconds: int = 900, retries: Retrier | None = None,
                 telemetry: Telemetry | None = None, waves: RolloutService | None = None,
                 looks: Looks | None = None, on_end: Callable[[Deployment], None] | None = None,
                 notifier: Notifier | None = None, located: Located | None = None) -> None:
        self._store = store
        self._ssm = placed_ssm(ssm, located)
        self._instances = placed_instances(instances, located)
        self._registry = registry
        self._clock = clock
        self._new_id = new_id
        self._lock = TargetLock(store, self._ssm, lock_slack_seconds)
        self._telemetry = telemetry or Telemetry()
        self._notifier = notifier or Notifier()
        self._ends = DeploymentEnds(store, self._lock, self._telemetry, on_end, self._notifier)
        self._sender = CommandSender(store, self._ssm, scripts, clock, self._lock, self._ends)
        self._results = CommandResults(self._ssm, self._instances)
        self._retries = AttemptRetries(store, self._lock, lock_slack_seconds, self._ends, retries)
        # A spec with `release` has its release task run before the first attempt or wave (services/release_tasks.py).
        self._release = ReleaseTasks(store, self._ssm, scripts, clock, self._lock, self._ends)
        # A rollout in waves (rollout.canary or rollout.alarms) is carried out by services/rollout.py, at the hooks
        # marked "waves" below; without it a spec that asks for one is refused.
        self._waves = waves.bound_to(self) if waves is not None else None
        self._looks = looks

    def resolve_revision(self, spec: TargetSpec, image: str) -> Revision:
        """Validate the image against the spec and pin it to a digest where the registry can say."""
        ref = parse_image_ref(image)
        if ref.is_mutable and not spec.allow_mutable_tags:
            raise InvalidRevision(
                f"image {image!r} has no tag or a mutable tag ({ref.tag or 'none'}): deploy an immutable tag or a "
                "digest, or set allow_mutable_tags: true on the target"
            )
        resolved = self._registry.resolve(ref)
        if resolved.ecr_region is not None:   # only ECR tells an image's platforms and scan before a pull
            self._check_platforms(spec, resolved)
        if spec.image_policy is not None:
            self._check_scan(spec.image_policy, resolved)
        return Revision(image=str(ref), digest=resolved.digest)

    def _check_scan(self, policy: ImagePolicy, image: ImageRef) -> None:
        """Refuse an image whose ECR scan reaches the policy's severity, or that has no complete scan (ScanPending
        while the scan runs: a pipeline job waits for it)."""
        if image.ecr_region is None:
            raise ScanFindings(f"image {image}: image_policy.max_severity needs an image in ECR, whose scan findings "
                               "berth reads; this one is not")
        refusal = scan_refusal(image.pinned, policy.max_severity, self._registry.scan(image))
        if refusal is not None:
            raise refusal

    def _check_platforms(self, spec: TargetSpec, image: ImageRef) -> None:
        """Refuse an image that has no platform for some of the target's running instances, before anything is
        sent. A single-platform manifest says nothing here: the instances check it after the pull."""
        platforms = self._registry.platforms(image)
        if platforms is None:
            return
        lacking = self._instances.of_spec(spec).of_architectures(spec.instances, ec2_architectures_lacking(platforms))
        refusal = architecture_refusal(image.pinned, platforms, lacking)
        if refusal is not None:
            raise refusal

    def start(self, spec: TargetSpec, revision: Revision, trigger: Trigger, caller: str,
              job_id: str | None = None) -> Deployment:
        """Take the target and record the deployment (one transaction), then send its first attempt. Raises TargetBusy.
        Without a job id, a failure before the command may have reached SSM leaves nothing (see the module)."""
        if in_waves(spec, trigger):  # waves: an alarm in ALARM refuses the start before anything is recorded
            self._rollout_for(spec).refuse_if_firing(spec)
        now = self._clock()
        target = self._store.get_target(spec.target)
        deployment = Deployment(
            deployment_id=self._new_id(), target=spec.target, spec=spec, revision=revision,
            previous_revision=target.current_revision if target else None, trigger=trigger, caller=caller,
            job_id=job_id, created_at=now, updated_at=now,
            history=[Decision(at=now, action="created", detail=f"{revision.pinned} by {caller}", cause=trigger)],
        )
        try:
            self._lock.take(deployment, now)
            started = self.send_attempt(deployment, cause=trigger, held=True, refused_raises=job_id is None)
        except (AwsCallFailed, Conflict):
            if job_id is None:
                self._abandon(deployment)
            raise
        self._telemetry.count("DeploymentsStarted")
        self._notifier.started(started)
        return started

    def _abandon(self, deployment: Deployment) -> None:
        """Remove a REST deployment that sent no command (its record, its hold on the target), so the error its
        caller gets is the whole truth. The transaction that took the target may have been written though its answer
        was lost: this cleans that up too."""
        try:
            self._store.abandon_deployment(deployment)
        except (AwsCallFailed, Conflict) as exc:
            logger.error("could not remove a deployment that sent nothing; a refresh will close it",
                         extra={"deployment_id": deployment.deployment_id, "error": exc.message})

    def send_attempt(self, deployment: Deployment, cause: str, held: bool = False,
                     refused_raises: bool = False) -> Deployment:
        """Hold the target (unless the caller just took it), claim a new attempt in the record, send its command, and
        record the command id. A deployment the target moved on from gives up instead."""
        now = self._clock()
        number = len(deployment.attempts) + 1
        if not held and not self._lock.hold(deployment, now):
            return self._ends.superseded(deployment, now, f"attempt {number} not sent")
        try:
            expected = self._instances.of(deployment).running_instances(deployment.spec.instances)
        except InvalidRevision as exc:  # e.g. unknown instance ids: the record exists, so end it and free the lock
            return self._ends.failed(deployment, now, exc.message)
        if not expected:
            return self._ends.failed(deployment, now,
                                     "no running instance matches the target's instances; check the tags or ids")
        if release_due(deployment):      # the release task first; its passing sends the first attempt (follow)
            deployment = self._release.start(deployment, refused_raises)
            if not transitions.release_done(deployment):
                return deployment
        if in_waves(deployment.spec, deployment.trigger):  # waves: the first wave instead of one over the target
            return self._rollout_for(deployment.spec).first_wave(deployment, expected, cause, refused_raises)
        deployment = self._store.save_deployment(transitions.attempt_started(deployment, expected, now))
        return self._sender.send(deployment, cause, refused_raises)

    def _rollout_for(self, spec: TargetSpec) -> RolloutService:
        if self._waves is None:
            raise InvalidRevision("rollout.canary and rollout.alarms need berth's CloudWatch access, which this "
                                  "deployment service was built without")
        return self._waves

    def follow(self, deployment_id: str, accept: Callable[[Deployment], None] | None = None,
               look: LookAgain | None = None) -> Followed:
        """Refresh a deployment from SSM and settle it when its command is over. `accept` may refuse the record
        (raising) before anything is done with it. `look`: the scheduled look this refresh carries out, if any."""
        followed = self._follow(deployment_id, accept)
        if self._looks is not None:  # a REST rollout waiting where no event comes is looked at again (services/looks)
            self._looks.after_refresh(followed.deployment, look)
        return followed

    def _follow(self, deployment_id: str, accept: Callable[[Deployment], None] | None) -> Followed:
        deployment = self._store.get_deployment(deployment_id)
        if accept is not None:
            accept(deployment)
        attempt = deployment.current_attempt
        if deployment.status.is_final or deployment.status == DeploymentStatus.RETRYING:
            return Followed(deployment, None)
        if deployment.rollout is not None:  # waves: the alarms, the bake, a halted wave, a batch draining
            watched = self._rollout_for(deployment.spec).watch(deployment)
            if watched is not None:
                return watched
        if deployment.release is not None and deployment.release.phase == ReleasePhase.RELEASING:
            deployment, progress = self._release.watch(deployment)
            if not transitions.release_done(deployment):
                return Followed(deployment, progress)
            return Followed(self.send_attempt(deployment, cause="the release task passed"), None)
        if attempt is None:
            return Followed(self._resume_unsent(deployment), None)
        if attempt.command_id is None:
            return Followed(self._sender.recover_unrecorded_send(deployment), None)
        state = self._ssm.of(deployment).command_state(attempt.command_id)
        if state is None or not state.over:
            # While the command runs, SSM's counts are the progress: one call at any fleet size. Each instance's
            # result is read once, when the command is over.
            now = self._clock()
            self._lock.keep(deployment, attempt, now)
            progress = progress_while_running(attempt.expected_instances, state)
            if deployment.rollout is not None:
                progress = replace(progress, summary=f"{deployment.rollout.label()}: {progress.summary}")
            return Followed(self._store.save_deployment(
                transitions.progress_recorded(deployment, progress.tally, now)), progress)
        progress = self._results.final_progress(deployment, attempt.command_id, attempt.expected_instances, state)
        now = self._clock()
        deployment = transitions.results_read(deployment, progress.instances, progress.tally)
        if progress.phase == Phase.RUNNING:
            return Followed(self._store.save_deployment(transitions.still_running(deployment, now)), progress)
        if deployment.rollout is not None:  # waves: a wave passed or failed, or the rollback is over
            shown = replace(progress, summary=f"{deployment.rollout.label()}: {progress.summary}",
                            percent=min(progress.percent, 99))
            return Followed(self._rollout_for(deployment.spec).command_over(deployment, progress, now), shown)
        if progress.phase == Phase.SUCCEEDED:
            return Followed(self._ends.settle(deployment, transitions.succeeded(
                deployment, progress.summary, progress.digests, now)), progress)
        return Followed(self._retries.after_failure(deployment, progress.failure_message, now), progress)

    def _resume_unsent(self, deployment: Deployment) -> Deployment:
        """Recorded without an attempt. Just now, that is its starter at work (a duplicate delivery of the job finds
        it so): leave it be. Later, whoever recorded it failed before its first attempt was saved, and nothing was
        sent: a pipeline job resumes it, while a REST request that failed there answered with an error (and should
        have left nothing), so a refresh closes the deployment rather than send what its caller was told did not
        start."""
        now = self._clock()
        if deployment.status == DeploymentStatus.IN_PROGRESS and transitions.release_done(deployment):  # started
            if now - deployment.updated_at < UNSENT_AFTER:
                return deployment
            return self.send_attempt(deployment, cause="resumed: the release task passed, no attempt was saved")
        if now - deployment.created_at < UNSENT_AFTER:
            return deployment
        if deployment.job_id is not None:
            return self.send_attempt(deployment, cause="resumed: the first attempt was never saved")
        return self._ends.settle(deployment, transitions.abandoned(deployment, now))

    def held_by_freeze(self, deployment_id: str, attempt: int) -> datetime | None:
        """A scheduled retry whose target is frozen is held, not lost: scheduled again for the freeze's end (or
        RETRY_HOLD later when it is open-ended). Returns when it will look again; None when it is not held (not due,
        a join, or not frozen). A join goes through: it installs the revision the target already runs."""
        deployment = self._store.get_deployment(deployment_id)
        if (deployment.status != DeploymentStatus.RETRYING or len(deployment.attempts) != attempt - 1
                or deployment.trigger == "join"):
            return None
        now = self._clock()
        record = self._store.get_target(deployment.target)
        until = retry_held_until(record.freeze if record else None, now)
        if until is None or not self._retries.hold_through_freeze(deployment, attempt, until, now):
            return None
        return until

    def retry(self, deployment_id: str, attempt: int) -> Deployment | None:
        """Carry out a scheduled retry; None when it is not (or no longer) due: a duplicate or a late schedule."""
        deployment = self._store.get_deployment(deployment_id)
        if deployment.status != DeploymentStatus.RETRYING or len(deployment.attempts) != attempt - 1:
            logger.info("retry not due; nothing sent", extra={"deployment_id": deployment_id, "attempt": attempt})
            return None
        return self.send_attempt(deployment, cause=f"scheduled retry, attempt {attempt}")

    # what services/rollout.py calls back ---------------------------------------------------------------------------
    def send_claimed(self, deployment: Deployment, cause: str, refused_raises: bool = False) -> Deployment:
        """Make the try of the attempt just claimed (a wave's or a rollback's)."""
        return self._sender.send(deployment, cause, refused_raises)

    def settle(self, deployment: Deployment, finished: Deployment) -> Deployment:
        return self._ends.settle(deployment, finished)

    def superseded(self, deployment: Deployment, now: datetime, what: str) -> Deployment:
        return self._ends.superseded(deployment, now, what)

    def read_results(self, deployment: Deployment, command_id: str) -> Deployment:
        """The results of the last attempt's command, which is over (not saved: the next transition keeps them)."""
        return self._results.read(deployment, command_id)

    def put_batch_back(self, deployment: Deployment) -> None:
        """Before a deployment ends outside its rollout (a person's cancel): a batch it took out of its load balancer's
        target groups is registered again (raises AwsCallFailed when it cannot be)."""
        if deployment.rollout is not None and deployment.rollout.out_of_groups:
            self._rollout_for(deployment.spec).put_batch_back(deployment)

    def count_failure(self, deployment: Deployment, at: datetime) -> None:
        """A deployment that ended without succeeding and is not retried counts toward its target's breaker."""
        self._retries.count_failure(deployment, at)
