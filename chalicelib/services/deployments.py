"""Starting and following deployments: shared by the pipeline action, the REST API and the retry handlers.

The record is written before any command is sent (in the transaction that takes the target, see target_lock), and
each SendCommand try is saved in the attempt before it is made, so a crash or an unanswered send is visible: a later
refresh finds an attempt with no command id and looks for its command by the try's comment (SSM has no idempotency
token; the comment is berth's). Only once no command has carried it for UNSENT_AFTER is the attempt sent again, by
a deployment that still holds its target.

A REST deployment (no pipeline job) that fails before its command may have reached SSM is abandoned: nothing of it
remains and the caller gets the error. From the moment the command may have reached SSM, the deployment has started
and the caller gets its id. A pipeline's deployment is resumed by the job's next invocation instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from chalicelib.adapters.ec2 import InstanceDirectory
from chalicelib.adapters.ecr import ImageRegistry
from chalicelib.adapters.ssm import SsmGateway
from chalicelib.adapters.store import DeploymentStore
from chalicelib.domain import transitions
from chalicelib.domain.command import DeployCommand, build_shell_commands
from chalicelib.domain.deployment import (
    Attempt,
    Decision,
    Deployment,
    DeploymentStatus,
    Revision,
    command_comment,
)
from chalicelib.domain.errors import (
    AwsCallFailed,
    CallUnanswered,
    Conflict,
    InvalidRevision,
)
from chalicelib.domain.image_ref import parse_image_ref
from chalicelib.domain.progress import (
    CommandState,
    Invocation,
    Phase,
    Progress,
    assess,
    progress_while_running,
    success_from_counts,
)
from chalicelib.domain.retry import Failure, GiveUp, Retry, RetryDecision, classify_attempt
from chalicelib.domain.retry_payload import SsmRetry
from chalicelib.domain.spec import InstancesSpec, TargetSpec, Trigger
from chalicelib.observability import Telemetry
from chalicelib.services.retries import Retrier, RetryCase
from chalicelib.services.rollout import RolloutService
from chalicelib.services.target_lock import UNSENT_AFTER, TargetLock, sent_commands

logger = logging.getLogger(__name__)
# The metric each end counts (infra/resources.yaml alarms on DeploymentsFailed).
ENDED_METRICS = {DeploymentStatus.SUCCEEDED: "DeploymentsSucceeded", DeploymentStatus.FAILED: "DeploymentsFailed",
                 DeploymentStatus.CANCELLED: "DeploymentsCancelled",
                 DeploymentStatus.ROLLED_BACK: "DeploymentsRolledBack"}
# Failed instances whose full output (GetCommandInvocation) is fetched per refresh; the rest keep SSM's short cut.
FULL_OUTPUT_FOR = 5


def in_waves(spec: TargetSpec, trigger: Trigger) -> bool:
    """Whether a deployment runs in waves. A person's rollback goes out as one command, as before: the alarms that
    call for it must neither refuse it nor halt it."""
    return spec.rollout.in_waves and trigger != "rollback"


@dataclass(frozen=True)
class Followed:
    deployment: Deployment
    progress: Progress | None


class DeploymentService:
    def __init__(self, store: DeploymentStore, ssm: SsmGateway, instances: InstanceDirectory,
                 registry: ImageRegistry, scripts: dict[str, str], clock: Callable[[], datetime],
                 new_id: Callable[[], str], lock_slack_seconds: int = 900, retries: Retrier | None = None,
                 telemetry: Telemetry | None = None, waves: RolloutService | None = None) -> None:
        self._store = store
        self._ssm = ssm
        self._instances = instances
        self._registry = registry
        self._scripts = scripts
        self._clock = clock
        self._new_id = new_id
        self._lock_slack = lock_slack_seconds
        self._lock = TargetLock(store, ssm, lock_slack_seconds)
        self._retries = retries
        self._telemetry = telemetry or Telemetry()
        # A rollout in waves (rollout.canary or rollout.alarms) is carried out by services/rollout.py, at the hooks
        # marked "waves" below; without it a spec that asks for one is refused.
        self._waves = waves.bound_to(self) if waves is not None else None

    def resolve_revision(self, spec: TargetSpec, image: str) -> Revision:
        """Validate the image against the spec and pin it to a digest where the registry can say."""
        ref = parse_image_ref(image)
        if ref.is_mutable and not spec.allow_mutable_tags:
            raise InvalidRevision(
                f"image {image!r} has no tag or a mutable tag ({ref.tag or 'none'}): deploy an immutable tag or a "
                "digest, or set allow_mutable_tags: true on the target"
            )
        resolved = self._registry.resolve(ref)
        return Revision(image=str(ref), digest=resolved.digest)

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
            return self._superseded(deployment, now, f"attempt {number} not sent")
        try:
            expected = self._instances.running_instances(deployment.spec.instances)
        except InvalidRevision as exc:  # e.g. unknown instance ids: the record exists, so end it and free the lock
            return self._failed(deployment, now, exc.message)
        if not expected:
            return self._failed(deployment, now,
                                "no running instance matches the target's instances; check the tags or ids")
        if in_waves(deployment.spec, deployment.trigger):  # waves: the first wave instead of one over the target
            return self._rollout_for(deployment.spec).first_wave(deployment, expected, cause, refused_raises)
        deployment = self._store.save_deployment(transitions.attempt_started(deployment, expected, now))
        return self._send(deployment, cause, refused_raises)

    def _rollout_for(self, spec: TargetSpec) -> RolloutService:
        if self._waves is None:
            raise InvalidRevision("rollout.canary and rollout.alarms need berth's CloudWatch access, which this "
                                  "deployment service was built without")
        return self._waves

    def _send(self, deployment: Deployment, cause: str, refused_raises: bool = False) -> Deployment:
        """Make the try the attempt's record names. From here on the command may exist: nothing raises out of this
        once SendCommand was called, except SSM's refusal when `refused_raises` (then nothing ran)."""
        attempt = deployment.attempts[-1]
        command = DeployCommand(deployment.deployment_id, parse_image_ref(attempt.image or deployment.revision.pinned),
                                deployment.spec.container, deployment.spec.health_check,
                                deployment.spec.allow_mutable_tags)
        # A wave or a rollback goes to its own instances by id; a plain attempt to the target as the spec names it.
        targets = deployment.spec.instances if deployment.rollout is None else InstancesSpec(
            ids=attempt.expected_instances)
        try:
            command_id = self._ssm.send_deploy_command(
                targets, build_shell_commands(command, self._scripts), deployment.spec.rollout,
                comment=command_comment(deployment.deployment_id, attempt.number, attempt.sends))
        except CallUnanswered as exc:
            return self._unanswered(deployment, cause, exc)
        except AwsCallFailed as exc:
            if refused_raises:
                raise
            return self._failed(deployment, self._clock(),
                                f"could not send the deploy command, nothing ran: {exc.message}")
        try:
            return self._record_sent(deployment, command_id, cause)
        except (AwsCallFailed, Conflict) as exc:
            logger.warning("command sent but not recorded; the next refresh finds it by its comment",
                           extra={"deployment_id": deployment.deployment_id, "error": exc.message})
            return deployment

    def _unanswered(self, deployment: Deployment, cause: str, exc: CallUnanswered) -> Deployment:
        """SendCommand got no answer: the command may be running. Look for it now; if SSM does not list it yet, the
        attempt stays unsent and later refreshes look again (and send again only once it is proven absent)."""
        attempt = deployment.attempts[-1]
        logger.warning("SendCommand went unanswered; looking for the command by its comment",
                       extra={"deployment_id": deployment.deployment_id, "error": exc.message})
        try:
            found = self._find_sent(deployment, attempt)
            if found is not None:
                return self._record_sent(deployment, found, f"{cause}; found by its comment ({exc.message})")
            now = self._clock()
            return self._store.save_deployment(transitions.send_unanswered(
                deployment, exc.message, int(UNSENT_AFTER.total_seconds()), cause, now))
        except (AwsCallFailed, Conflict):
            return deployment

    def _find_sent(self, deployment: Deployment, attempt: Attempt) -> str | None:
        """The attempt's command, found by its comment. Should two tries of one attempt both have landed, the later
        ones are cancelled: never two commands on one target."""
        found = sent_commands(self._ssm, deployment, attempt)
        for duplicate in found[1:]:
            logger.error("two commands for one attempt; cancelling the later one",
                         extra={"deployment_id": deployment.deployment_id, "command_id": duplicate})
            self._ssm.cancel(duplicate)
        return found[0] if found else None

    def _record_sent(self, deployment: Deployment, command_id: str, cause: str) -> Deployment:
        now = self._clock()
        # The index first: SSM's status events find the deployment by it, even if the save below fails.
        self._store.index_command(command_id, deployment.deployment_id, int((now + timedelta(days=7)).timestamp()))
        return self._store.save_deployment(transitions.command_sent(deployment, command_id, cause, now))

    def follow(self, deployment_id: str, accept: Callable[[Deployment], None] | None = None) -> Followed:
        """Refresh a deployment from SSM and settle it when its command is over. `accept` may refuse the record
        (raising) before anything is done with it."""
        deployment = self._store.get_deployment(deployment_id)
        if accept is not None:
            accept(deployment)
        attempt = deployment.current_attempt
        if deployment.status.is_final or deployment.status == DeploymentStatus.RETRYING:
            return Followed(deployment, None)
        if attempt is None:
            return Followed(self._resume_unsent(deployment), None)
        if deployment.rollout is not None:  # waves: the alarms, the bake, a halted wave
            watched = self._rollout_for(deployment.spec).watch(deployment)
            if watched is not None:
                return watched
        if attempt.command_id is None:
            return Followed(self._recover_unrecorded_send(deployment), None)
        state = self._ssm.command_state(attempt.command_id)
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
        progress = self._final_progress(deployment, attempt.command_id, attempt.expected_instances, state)
        now = self._clock()
        deployment = transitions.results_read(deployment, progress.instances, progress.tally)
        if progress.phase == Phase.RUNNING:
            return Followed(self._store.save_deployment(transitions.still_running(deployment, now)), progress)
        if deployment.rollout is not None:  # waves: a wave passed or failed, or the rollback is over
            shown = replace(progress, summary=f"{deployment.rollout.label()}: {progress.summary}",
                            percent=min(progress.percent, 99))
            return Followed(self._rollout_for(deployment.spec).command_over(deployment, progress, now), shown)
        if progress.phase == Phase.SUCCEEDED:
            return Followed(self._settle(deployment, transitions.succeeded(
                deployment, progress.summary, progress.digests, now)), progress)
        return Followed(self._after_failure(deployment, progress.failure_message, now), progress)

    def _resume_unsent(self, deployment: Deployment) -> Deployment:
        """Recorded without an attempt. Just now, that is its starter at work (a duplicate delivery of the job finds
        it so): leave it be. Later, whoever recorded it failed before its first attempt was saved, and nothing was
        sent: a pipeline job resumes it, while a REST request that failed there answered with an error (and should
        have left nothing), so a refresh closes the deployment rather than send what its caller was told did not
        start."""
        now = self._clock()
        if now - deployment.created_at < UNSENT_AFTER:
            return deployment
        if deployment.job_id is not None:
            return self.send_attempt(deployment, cause="resumed: the first attempt was never saved")
        return self._settle(deployment, transitions.abandoned(deployment, now))

    def _after_failure(self, deployment: Deployment, message: str, now: datetime) -> Deployment:
        """A failed attempt either becomes a scheduled retry (the deployment stays open, holding its target until the
        retry is due) or the final failure."""
        if self._retries is None:
            return self._failed(deployment, now, message)
        failure = Failure(classify_attempt(deployment.attempts[-1]), is_rollback=deployment.trigger == "rollback")
        return self._retries.handle(_FailedAttempt(
            failure=failure, attempts_made=len(deployment.attempts), lineage=deployment.deployment_id,
            target=deployment.target, budget=deployment.spec.retry, service=self, deployment=deployment,
            message=message), now)

    def _hold_for_retry(self, deployment: Deployment, decision: RetryDecision, now: datetime) -> RetryDecision:
        if isinstance(decision, Retry) and not self._lock.hold(
                deployment, now, until=decision.at + timedelta(seconds=self._lock_slack)):
            return GiveUp(self._lock.moved_on(deployment))
        return decision

    def _retry_decided(self, deployment: Deployment, message: str, failure: Failure, decision: RetryDecision,
                       schedule: str, now: datetime) -> Deployment:
        cause = f"attempt {len(deployment.attempts)} failed ({failure.failure_class.value}): {message[:500]}"
        if isinstance(decision, GiveUp):
            return self._settle(deployment, transitions.gave_up(
                deployment, f"{message} Gave up: {decision.reason}.", decision.reason, cause, now))
        return self._store.save_deployment(transitions.retry_scheduled(deployment, message, decision, schedule, cause,
                                                                        now))

    def _superseded(self, deployment: Deployment, now: datetime, what: str) -> Deployment:
        """The target moved on: this deployment must not act on it again. It ends FAILED, saying who took it."""
        reason = self._lock.moved_on(deployment)
        logger.warning("the target moved on; giving up", extra={"deployment_id": deployment.deployment_id,
                                                                 "reason": reason})
        finished = self._settle(deployment, transitions.gave_up(deployment, f"{what}: {reason}. Gave up.", reason, what,
                                                                now))
        self._telemetry.count("RetriesGivenUp")
        return finished

    def retry(self, deployment_id: str, attempt: int) -> Deployment | None:
        """Carry out a scheduled retry; None when it is not (or no longer) due: a duplicate or a late schedule."""
        deployment = self._store.get_deployment(deployment_id)
        if deployment.status != DeploymentStatus.RETRYING or len(deployment.attempts) != attempt - 1:
            logger.info("retry not due; nothing sent", extra={"deployment_id": deployment_id, "attempt": attempt})
            return None
        return self.send_attempt(deployment, cause=f"scheduled retry, attempt {attempt}")

    def _expected_now(self, expected: list[str], invocations: list[Invocation], state: CommandState) -> list[str]:
        """Once the command is over, an expected instance without an invocation counts as never having run it, unless
        it is not running (stopped since, or never started): then it was not part of this deployment."""
        if not state.over:
            return expected
        missing = sorted(set(expected) - {inv.instance_id for inv in invocations})
        if not missing:
            return expected
        running = self._instances.running_among(missing)
        return [instance for instance in expected if instance not in missing or instance in running]

    def _recover_unrecorded_send(self, deployment: Deployment) -> Deployment:
        """An attempt without a command id: its send went unanswered, or the sender died around it. Look for the
        command by its comment; only once none has appeared for UNSENT_AFTER since the last try is the attempt sent
        again (a new try, with a comment of its own), and only by a deployment that still holds its target."""
        attempt = deployment.attempts[-1]
        found = self._find_sent(deployment, attempt)
        if found is not None:
            return self._record_sent(deployment, found, cause="recovered: the command was sent but not recorded")
        now = self._clock()
        if now - attempt.last_send_at < UNSENT_AFTER:
            return deployment
        if not self._lock.hold(deployment, now):
            return self._superseded(deployment, now, f"attempt {attempt.number} not sent again")
        logger.warning("attempt recorded but its command never reached SSM; sending it again",
                       extra={"deployment_id": deployment.deployment_id})
        deployment = self._store.save_deployment(transitions.sent_again(deployment, now))
        waited = int((now - attempt.last_send_at).total_seconds())
        return self._send(deployment, cause=f"sent again: no command carried the attempt's comment {waited} s after "
                                            "its last send")

    def _final_progress(self, deployment: Deployment, command_id: str, expected: list[str], state: CommandState
                        ) -> Progress:
        """Where a command that is over leaves the deployment."""
        if deployment.revision.digest is not None:  # otherwise an instance's output must say what it pulled
            counted = success_from_counts(expected, state)
            if counted is not None:
                return counted
        invocations = self._final_invocations(deployment, command_id, state)
        max_errors = deployment.spec.rollout.max_errors
        expected = self._expected_now(expected, invocations, state)
        progress = assess(expected, invocations, state.status, max_errors)
        if progress.phase == Phase.FAILED:
            invocations = self._with_full_output(command_id, invocations)
            progress = assess(expected, invocations, state.status, max_errors)
        return progress

    def _final_invocations(self, deployment: Deployment, command_id: str, state: CommandState) -> list[Invocation]:
        """Every instance's result, read once the command is over. When SSM's counts say every instance succeeded and
        the digest is already pinned, statuses are all berth needs: a page without exit codes and output is cheaper to
        read. Anything but Success in it, and the pages are read again in full."""
        clean = (state.error_count == 0 and state.delivery_timed_out_count == 0
                 and state.completed_count == state.target_count and deployment.revision.digest is not None)
        if clean:
            invocations = self._ssm.list_invocations(command_id, details=False)
            if all(inv.status == "Success" for inv in invocations):
                return invocations
        return self._ssm.list_invocations(command_id, details=True)

    def _with_full_output(self, command_id: str, invocations: list[Invocation]) -> list[Invocation]:
        """Swap SSM's 2,500-character cut for the fuller output of the first few failed instances."""
        failed = sorted((inv for inv in invocations if inv.status != "Success" or inv.response_code not in (0, None)),
                        key=lambda inv: inv.instance_id)[:FULL_OUTPUT_FOR]
        fuller = {inv.instance_id: self._ssm.full_output(command_id, inv.instance_id) for inv in failed}
        return [replace(inv, output=fuller[inv.instance_id]) if inv.instance_id in fuller else inv
                for inv in invocations]

    # what services/rollout.py calls back ---------------------------------------------------------------------------
    def send_claimed(self, deployment: Deployment, cause: str, refused_raises: bool = False) -> Deployment:
        """Make the try of the attempt just claimed (a wave's or a rollback's)."""
        return self._send(deployment, cause, refused_raises)

    def settle(self, deployment: Deployment, finished: Deployment) -> Deployment:
        return self._settle(deployment, finished)

    def superseded(self, deployment: Deployment, now: datetime, what: str) -> Deployment:
        return self._superseded(deployment, now, what)

    def read_results(self, deployment: Deployment, command_id: str) -> Deployment:
        """The results of the last attempt's command, which is over (not saved: the next transition keeps them)."""
        attempt = deployment.attempts[-1]
        state = self._ssm.command_state(command_id) or CommandState(status="Cancelled")
        progress = self._final_progress(deployment, command_id, attempt.expected_instances, state)
        return transitions.results_read(deployment, progress.instances, progress.tally)

    def count_failure(self, deployment: Deployment, at: datetime) -> None:
        """A deployment that ended without succeeding and is not retried counts toward its target's breaker."""
        if self._retries is not None:
            self._retries.record_failure(deployment.target, at, open_breaker=False)

    def _failed(self, deployment: Deployment, now: datetime, message: str) -> Deployment:
        return self._settle(deployment, transitions.failed(deployment, message, now))

    def _settle(self, deployment: Deployment, finished: Deployment) -> Deployment:
        """Persist a deployment's end (what a transition returned from `deployment`, the record as read)."""
        # The target first (its revision and lock, in one transaction), then the record: should anything fail in
        # between, the record is still open and the next refresh finishes it again, finding the target settled.
        succeeded = finished.status == DeploymentStatus.SUCCEEDED
        self._store.settle_target(deployment.target, deployment.deployment_id,
                                  finished.revision if succeeded else None, deployment.created_at)
        saved = self._store.save_deployment(finished)
        self._telemetry.count(ENDED_METRICS[finished.status])
        self._telemetry.seconds("DeploymentDurationSeconds",
                                (finished.updated_at - deployment.created_at).total_seconds())
        return saved


@dataclass
class _FailedAttempt(RetryCase[Deployment]):
    """A failed attempt of berth's own deployment: retried as the deployment's next attempt, which keeps the target
    until it is due."""

    service: DeploymentService
    deployment: Deployment
    message: str

    def hold(self, decision: RetryDecision, now: datetime) -> RetryDecision:
        return self.service._hold_for_retry(self.deployment, decision, now)

    def task(self, retry: Retry) -> SsmRetry:
        return SsmRetry(deployment_id=self.deployment.deployment_id, attempt=retry.attempt)

    def settle(self, decision: RetryDecision, schedule: str, now: datetime) -> Deployment:
        return self.service._retry_decided(self.deployment, self.message, self.failure, decision, schedule, now)
